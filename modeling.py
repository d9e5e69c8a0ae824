"""BERT in TensorFlow 2: the config, the encoder, its heads, and the reference checkpoint format.

    config = modeling.BertConfig.from_json_file("bert_config.json")
    model = modeling.BertModel(config)
    outputs = model(input_ids, input_mask, token_type_ids, training=False)
    modeling.load_checkpoint("uncased_L-12_H-768_A-12/bert_model.ckpt", modeling.variables_by_name(model))

The encoder is the reference's post-LayerNorm Transformer exactly. Every variable is created
under its reference checkpoint name (`bert/encoder/layer_3/attention/self/query/kernel`), so the
name of a variable is its key in a checkpoint and points at the class that owns it.

Shapes: B batch, S (F/T: from/to) sequence length, H hidden size, N heads, D head size (H / N),
I intermediate size, V vocabulary size, P predictions per sequence, L labels.

Precision: variables are always float32. `compute_dtype` (float32, bfloat16 or float16) is the
dtype of the matrix multiplications; embeddings sums, LayerNorm, softmax and every head's
logits are float32.

Activations: "gelu" is the exact erf form, 0.5·x·(1 + erf(x/√2)), which the released
checkpoints were trained with and Hugging Face computes; the reference code today computes the
tanh approximation, available as "gelu_tanh" (aliases "gelu_new", "gelu_pytorch_tanh"). The two
differ by at most about 1e-3 per activation.

Embedding lookup: a gather on CPU and GPU, where it reads only the B·S rows it needs;
`use_one_hot_embeddings=True` (what the engine sets on TPU, as the reference did) multiplies a
one-hot [B·S, V] matrix instead, because the TPU's matrix unit makes that cheap while gathers
and their scatter-add gradients are slow there. Both give identical values.
"""

import cpu_kernels  # noqa: F401  (first: what TensorFlow reads when it is imported)
import collections
import contextlib
import difflib
import inspect
import json
import math
import os
import re
import threading

from absl import logging
import numpy as np
import tensorflow as tf

import errors
from errors import InputError
import file_io

LAYER_NORM_EPSILON = 1e-12
# Added to the attention scores of padding keys: exp(-10000) is 0 in float32.
ATTENTION_MASK_PENALTY = -10000.0
# The reference's classifier and SQuAD fine-tuning drop 10% of the pooled output, whatever the config says.
CLASSIFIER_DROPOUT_PROB = 0.1


def gelu(x):
    """Exact GELU: x·Φ(x), Φ the standard normal CDF (tf.nn.gelu, which TensorFlow's oneDNN
    build fuses into the matmul before it)."""
    return tf.nn.gelu(x, approximate=False)


@tf.custom_gradient
def gelu_for_training(x):
    """gelu(x) as a training step on TensorFlow's kernels runs it faster, each elementwise op a
    pass over [rows, intermediate]: four passes forward instead of five, and the gradient
    Φ(x) + x·φ(x) from the CDF the forward pass kept (forward and backward of [6400, 1536]:
    39-41 ms, against 46-47 for tf.nn.gelu's). Not gelu's form elsewhere: oneDNN fuses only
    that one into the matmul before it, which it can where no gradient needs the matmul's
    output."""
    cdf = 0.5 * tf.math.erfc(x * -math.sqrt(0.5))

    def gradient(upstream):
        pdf = tf.exp(tf.square(x) * -0.5) * (1.0 / math.sqrt(2.0 * math.pi))
        return upstream * (cdf + x * pdf)

    return x * cdf, gradient


def gelu_tanh(x):
    """GELU's tanh approximation (Hendrycks & Gimpel), what the reference code computes."""
    return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * tf.pow(x, 3))))


ACTIVATIONS = {
    "gelu": gelu,
    "gelu_tanh": gelu_tanh,
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "relu": tf.nn.relu,
    "tanh": tf.tanh,
    "linear": tf.identity,
}
# Where an activation has a form that a training step on TensorFlow's kernels runs faster.
KERNELS_TRAINING_FORMS = {gelu: gelu_for_training}


def check_max_seq_length(max_seq_length, config, config_source, minimum=3):
    """InputError when --max_seq_length is below `minimum` (3: [CLS], one token, [SEP]) or above the
    max_position_embeddings of `config` (read from config_source)."""
    if max_seq_length < minimum:
        raise InputError(
            f"--max_seq_length={max_seq_length} leaves no room for [CLS], a token and [SEP]"
        )
    if max_seq_length > config.max_position_embeddings:
        raise InputError(
            f"--max_seq_length={max_seq_length} exceeds max_position_embeddings "
            f"{config.max_position_embeddings} of {config_source}"
        )


# Keys of the released Google configs (the Chinese and multilingual ones) the reference ignores.
RELEASED_CONFIG_EXTRA_KEYS = frozenset(
    {
        "directionality",
        "pooler_fc_size",
        "pooler_num_attention_heads",
        "pooler_num_fc_layers",
        "pooler_size_per_head",
        "pooler_type",
    }
)

# Keys only a Hugging Face config.json has; some (layer_norm_eps, position_embedding_type) change the model.
HF_CONFIG_KEYS = frozenset(
    {
        "architectures",
        "classifier_dropout",
        "layer_norm_eps",
        "model_type",
        "pad_token_id",
        "position_embedding_type",
        "torch_dtype",
        "transformers_version",
        "use_cache",
    }
)


class BertConfig:
    """The hyperparameters of bert_config.json, by the reference's names and defaults.

    A plain holder, as the reference's is: any values construct (BertConfig(vocab_size=99,
    hidden_size=37)); validate() checks them, and BertModel and from_json_file call it. Keys the
    reference does not know (`directionality`, `pooler_fc_size`, ... in the Chinese and
    multilingual configs) are kept as attributes and written back out.
    """

    def __init__(
        self,
        vocab_size,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=512,
        type_vocab_size=16,
        initializer_range=0.02,
        **extra_keys,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.__dict__.update(extra_keys)

    def validate(self):
        """Raises InputError, one line, for a value no model can be built with."""
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InputError(f"bert config: {name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise InputError(
                f"bert config: hidden_size {self.hidden_size} is not a multiple of "
                f"num_attention_heads {self.num_attention_heads}"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise InputError(
                f"bert config: hidden_act {self.hidden_act!r} is not one of {sorted(ACTIVATIONS)}"
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise InputError(f"bert config: {name} must be in [0, 1), got {value!r}")

    @classmethod
    def from_dict(cls, json_object):
        """A BertConfig from bert_config.json's dict; InputError for a key neither the reference nor a
        released config has (a misspelt key must not leave its default in place)."""
        if not isinstance(json_object, dict):
            raise InputError(f"bert config: not a JSON object but {type(json_object).__name__}")
        hf_keys = sorted(HF_CONFIG_KEYS.intersection(json_object))
        if hf_keys:
            raise InputError(
                f"bert config: {hf_keys[0]!r} is a key of a Hugging Face config.json, which the "
                "reference's config has no place for: convert the model with convert_checkpoint.py "
                "--hf_model_dir"
            )
        if "vocab_size" not in json_object:
            raise InputError("bert config: vocab_size is missing")
        known = set(inspect.signature(cls.__init__).parameters) - {"self", "extra_keys"}
        for key in json_object:
            if key not in known and key not in RELEASED_CONFIG_EXTRA_KEYS:
                close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
                hint = (
                    f" (did you mean {close[0]}?)"
                    if close
                    else f" (the keys are {', '.join(sorted(known))})"
                )
                raise InputError(f"bert config: unknown key {key!r}{hint}")
        return cls(**json_object)

    @classmethod
    def from_json_file(cls, json_file):
        text = file_io.read_bytes(json_file, "bert config ")
        try:
            json_object = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"bert config {json_file}: not valid JSON ({error})") from None
        try:
            config = cls.from_dict(json_object)
            config.validate()
            return config
        except InputError as error:
            raise InputError(f"{json_file}: {error}") from None

    def to_dict(self):
        return dict(self.__dict__)

    def to_json_string(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @property
    def head_size(self):
        return self.hidden_size // self.num_attention_heads


def _truncated_normal(shape, stddev):
    """The reference's initializer: a normal re-drawn beyond two standard deviations."""
    return tf.random.truncated_normal(shape, stddev=stddev)


_tracing = threading.local()


@contextlib.contextmanager
def _tracing_mode(name):
    previous = getattr(_tracing, name, False)
    setattr(_tracing, name, True)
    try:
        yield
    finally:
        setattr(_tracing, name, previous)


def compiled_by_xla():
    """Marks what is traced inside as compiled by XLA, where dropout draws its masks with ThreeFry:
    XLA on CPU runs it two to four times faster than Philox, which TensorFlow's own kernels need
    (they have no ThreeFry); activations keep their one form (XLA fuses any). The engine
    traces its compiled steps inside this."""
    return _tracing_mode("for_xla")


def skipping_padding():
    """Marks what is traced inside as run by TensorFlow's kernels, which take shapes known only
    when the step runs: BertModel then packs the real tokens of a batch (input_mask 1) into one
    [T, H] matrix for its layers' dense layers and LayerNorms, so that padding costs only its
    attention scores (and the embeddings). Not under XLA, whose shapes are fixed when it
    compiles. The engine traces its uncompiled steps (evaluation, prediction, training with
    --use_xla=False) inside this.
    """
    return _tracing_mode("skip_padding")


def fusing_layer_norm():
    """Marks what is traced inside as an inference step (no gradient) on TensorFlow's oneDNN CPU
    kernels: LayerNorm then normalizes in the form TensorFlow's graph optimizer rewrites into
    one oneDNN layer normalization (_MklLayerNorm), 3-4× faster than the moments' five kernels
    and about 7% off a MiniLM SQuAD-format prediction. It does so where the rows' count is known
    only when the step runs, as in the engine's batches; LayerNorm keeps the moments where it is
    static. The engine traces its uncompiled evaluation and prediction steps inside this where
    oneDNN is on and no GPU is visible. Not in training (the gradient keeps that form unfused,
    no faster), under XLA, in exported SavedModels (served anywhere), nor on Eigen's kernels,
    where that form ran 2-4× slower than the moments.
    """
    return _tracing_mode("fuse_layer_norm")


def dropout(x, rate, training):
    """tf.nn.dropout's semantics (each element dropped with probability `rate`, the kept ones
    scaled by 1 / (1 - rate)), with a stateless mask (dropped_unscaled). XLA on CPU lowers the
    stateful generator tf.nn.dropout uses to code about eight times slower (a third of a
    BERT-Base training step went to it).
    """
    if not training or rate == 0.0:
        return x
    return dropped_unscaled(x, rate) * tf.cast(1.0 / (1.0 - rate), x.dtype)


def dropped_unscaled(x, rate):
    """dropout(x, rate, training=True) without its 1 / (1 - rate) scale: x where kept, 0 where
    dropped, so that a caller can scale a smaller tensor downstream instead (the attention
    scales its context [B, N, F, D], not its probabilities [B, N, F, T]).

    The mask is stateless, from a seed pair drawn statefully per call, and does not depend on
    x's dtype. Under compiled_by_xla an element is kept where a float32 uniform in [0, 1) drawn
    by ThreeFry is ≥ rate (XLA fuses the draw into the select). TensorFlow's kernels have only
    Philox, whose draws cost several passes over memory each: there an element is kept where a
    16-bit half of a 32-bit draw is ≥ threshold_16_bits(rate, ...), half the draws of a uniform
    per element (an attention mask of 15M elements: 31 ms against 55 ms).
    """
    seed = tf.random.uniform([2], maxval=tf.int32.max, dtype=tf.int32)
    if getattr(_tracing, "for_xla", False):
        uniform = tf.random.stateless_uniform(tf.shape(x), seed, alg="threefry")
        kept = uniform >= tf.cast(rate, tf.float32)
    else:
        size = tf.size(x)
        draws = tf.random.stateless_uniform(
            [(size + 1) // 2], seed, dtype=tf.int32, minval=None, maxval=None, alg="philox"
        )
        halves = tf.reshape(tf.bitcast(draws, tf.uint16), [-1])[:size]
        threshold = threshold_16_bits(rate, tf.random.uniform([]))
        kept = tf.reshape(halves >= threshold, tf.shape(x))
    return tf.where(kept, x, tf.zeros([], x.dtype))


def threshold_16_bits(rate, uniform):
    """The uint16 threshold under which a uniform 16-bit integer drops its element: rate · 2^16
    rounded up with probability its fraction (`uniform` a float32 uniform in [0, 1)), down
    otherwise, so that each element is dropped with probability exactly `rate` (to float32's
    precision; a fixed rounding would be off by up to 2^-17). The elements of one call share
    the threshold. Rates above 1 - 2^-16 drop with probability 1 - 2^-16."""
    scaled = tf.cast(rate, tf.float32) * 2.0**16
    floor = tf.floor(scaled)
    rounded = floor + tf.cast(uniform < scaled - floor, tf.float32)
    return tf.cast(tf.minimum(rounded, 2.0**16 - 1), tf.uint16)


class Dense(tf.Module):
    """y = activation(x·kernel + bias), kernel [in, out] as the reference's dense layers.

    x: [..., in] in the compute dtype → [..., out] in the same dtype. With training, outside
    compiled_by_xla, the activation's form in KERNELS_TRAINING_FORMS where it has one.
    """

    def __init__(self, scope, input_size, output_size, initializer_range, activation=None):
        super().__init__()
        self.kernel = tf.Variable(
            _truncated_normal([input_size, output_size], initializer_range), name=f"{scope}/kernel"
        )
        self.bias = tf.Variable(tf.zeros([output_size]), name=f"{scope}/bias")
        self.activation = activation

    def __call__(self, x, training=False):
        # bias_add rather than +: TensorFlow fuses matmul, bias_add and the activation.
        y = tf.nn.bias_add(tf.matmul(x, tf.cast(self.kernel, x.dtype)), tf.cast(self.bias, x.dtype))
        if not self.activation:
            return y
        if training and not getattr(_tracing, "for_xla", False):
            return KERNELS_TRAINING_FORMS.get(self.activation, self.activation)(y)
        return self.activation(y)


class LayerNorm(tf.Module):
    """Normalises the last axis in float32 (epsilon 1e-12); returns the input's dtype."""

    def __init__(self, scope, size):
        super().__init__()
        self.gamma = tf.Variable(tf.ones([size]), name=f"{scope}/gamma")
        self.beta = tf.Variable(tf.zeros([size]), name=f"{scope}/beta")

    def __call__(self, x):
        x32 = tf.cast(x, tf.float32)
        # With every row known when traced, the graph optimizer folds the unit scale of that
        # form into a constant first and runs it unfused, slower than the moments.
        if getattr(_tracing, "fuse_layer_norm", False) and not x.shape[:-1].is_fully_defined():
            normalized = normalized_as_batch_norm(x32)
        else:
            mean, variance = tf.nn.moments(x32, axes=[-1], keepdims=True)
            normalized = (x32 - mean) * tf.math.rsqrt(variance + LAYER_NORM_EPSILON)
        return tf.cast(normalized * self.gamma + self.beta, x.dtype)


def normalized_as_batch_norm(x):
    """x float32 [..., H] → each vector over its last axis to mean 0 and variance 1 (epsilon
    LAYER_NORM_EPSILON), as a training-mode batch normalization of x as [1, rows, H, 1] (one
    channel per vector) with unit scale and zero offset: the form that, followed by ·gamma
    + beta, TensorFlow fuses into _MklLayerNorm for inputs of rank 2 or 3 (fusing_layer_norm).
    The raw op, because tf.nn.fused_batch_norm raises epsilon to at least 1.001e-5."""
    shape = tf.shape(x)
    rows = tf.reduce_prod(shape[:-1])
    no_statistics = tf.constant([], tf.float32)  # training mode computes each row's own
    normalized = tf.raw_ops.FusedBatchNormV3(
        x=tf.reshape(x, [1, rows, shape[-1], 1]),
        scale=tf.ones([rows]),
        offset=tf.zeros([rows]),
        mean=no_statistics,
        variance=no_statistics,
        epsilon=LAYER_NORM_EPSILON,
        data_format="NCHW",
        is_training=True,
    ).y
    return tf.reshape(normalized, shape)


def gather_positions(sequence, positions):
    """sequence [B, S, H], positions int [B, P] → [B, P, H]: the vectors at those positions."""
    return tf.gather(sequence, tf.cast(positions, tf.int32), batch_dims=1)


class PackedTokens:
    """Where the rows of a packed [T, H] matrix sit in a batch's [B·S, H] positions
    (skipping_padding): the real tokens (input_mask 1), and position 0, so that a batch without
    a real token still has a row to point at.

    The attention unpacks its queries, keys and values from the packed rows with gathers, not
    scatters (on CPU a scatter of a batch's rows took 2.6 times a gather of them): every
    position reads a packed row, its own where it has one, the row before it elsewhere. Those
    padding positions' keys are masked (their softmax weight is exactly 0 in float32) and their
    queries' contexts dropped, so no real position's value or gradient sees them.
    """

    def __init__(self, input_mask):
        """input_mask: int [B, S]."""
        self.is_real = tf.reshape(input_mask, [-1]) != 0  # bool [B·S]
        self.is_packed = tf.logical_or(self.is_real, tf.range(tf.size(self.is_real)) == 0)
        self.positions = tf.cast(tf.where(self.is_packed)[:, 0], tf.int32)  # [T]: rows' positions
        self.rows = tf.cumsum(tf.cast(self.is_packed, tf.int32)) - 1  # [B·S]: positions' rows

    # Both directions are gathers, and so are their gradients (a gather's own gradient is a
    # segment sum, slower still than the scatter).
    def pack(self, states):
        """[B·S, H] → [T, H]; its gradient is zero at the positions without a row."""

        @tf.custom_gradient
        def gather_packed(states):
            return tf.gather(states, self.positions), lambda upstream: tf.where(
                self.is_packed[:, tf.newaxis], tf.gather(upstream, self.rows), 0
            )

        return gather_packed(states)

    def spread(self, states):
        """[T, H] → [B·S, H], the positions without a row holding the row before them (for the
        attention only). Its gradient takes the packed positions' gradients: the attention's are
        exactly zero at the others (see the class docstring)."""

        @tf.custom_gradient
        def gather_rows(states):
            return tf.gather(states, self.rows), lambda upstream: tf.gather(
                upstream, self.positions
            )

        return gather_rows(states)

    def unpack(self, states):
        """[T, H] → [B·S, H] with zeros at the padding positions."""
        return tf.where(self.is_real[:, tf.newaxis], self.spread(states), 0)


class BertEmbeddings(tf.Module):
    """`bert/embeddings`: word + token type + learned absolute position embeddings, LayerNorm, dropout."""

    def __init__(self, config, use_one_hot_embeddings=False):
        super().__init__()
        scope = "bert/embeddings"
        hidden, stddev = config.hidden_size, config.initializer_range
        self.word_embeddings = tf.Variable(
            _truncated_normal([config.vocab_size, hidden], stddev), name=f"{scope}/word_embeddings"
        )
        self.token_type_embeddings = tf.Variable(
            _truncated_normal([config.type_vocab_size, hidden], stddev),
            name=f"{scope}/token_type_embeddings",
        )
        self.position_embeddings = tf.Variable(
            _truncated_normal([config.max_position_embeddings, hidden], stddev),
            name=f"{scope}/position_embeddings",
        )
        self.layer_norm = LayerNorm(f"{scope}/LayerNorm", hidden)
        self.dropout_prob = config.hidden_dropout_prob
        self.use_one_hot_embeddings = use_one_hot_embeddings

    def _lookup(self, table, ids):
        """table [V, H], ids int [B, S] → float32 [B, S, H]."""
        if not self.use_one_hot_embeddings:
            return tf.gather(table, ids)
        one_hot = tf.one_hot(ids, depth=tf.shape(table)[0], dtype=table.dtype)  # [B, S, V]
        return tf.einsum("bsv,vh->bsh", one_hot, table)

    def __call__(self, input_ids, token_type_ids, training):
        """input_ids, token_type_ids: int [B, S] → float32 [B, S, H]."""
        seq_length = input_ids.shape[1] or tf.shape(input_ids)[1]
        embeddings = (
            self._lookup(self.word_embeddings, input_ids)
            + self._lookup(self.token_type_embeddings, token_type_ids)
            + self.position_embeddings[tf.newaxis, :seq_length, :]
        )
        return dropout(self.layer_norm(embeddings), self.dropout_prob, training)


class BertSelfAttention(tf.Module):
    """`layer_N/attention/self`: scaled dot-product attention with separate query, key and value."""

    def __init__(self, config, scope):
        super().__init__()
        hidden, stddev = config.hidden_size, config.initializer_range
        self.query = Dense(f"{scope}/query", hidden, hidden, stddev)
        self.key = Dense(f"{scope}/key", hidden, hidden, stddev)
        self.value = Dense(f"{scope}/value", hidden, hidden, stddev)
        self.num_heads = config.num_attention_heads
        self.head_size = config.head_size
        self.dropout_prob = config.attention_probs_dropout_prob

    def __call__(
        self,
        from_states,
        to_states,
        mask_penalty,
        batch_size,
        from_length,
        to_length,
        training,
        from_packing=None,
        to_packing=None,
    ):
        """Queries from from_states [B·F, H], keys and values from to_states [B·T, H] (the same
        states but for the last layer of BertModel(final_positions=...)); mask_penalty float32
        [B, 1, 1, T] → context [B·F, H]. With from_packing / to_packing (PackedTokens,
        skipping_padding), that side's states are its packed rows [R, H], and so is the context
        when from_packing is given."""
        hidden = self.num_heads * self.head_size

        def split_heads(x, length, packing):  # [B·length, H], or packed [R, H] → [B, N, length, D]
            if packing is not None:
                x = packing.spread(x)
            return tf.transpose(
                tf.reshape(x, [batch_size, length, self.num_heads, self.head_size]),
                [0, 2, 1, 3],
            )

        queries, score_scale = self.query(from_states), 1.0 / math.sqrt(self.head_size)
        if training:
            # Scaled before the product, the gradient scales the queries [.., H], not the scores
            # [B, N, F, T] (on TensorFlow's kernels a pass over those took about 45 ms a layer of
            # a SQuAD-format step, forward and again backward); in inference oneDNN fuses the
            # scale into the scores' product.
            queries = queries * tf.cast(score_scale, queries.dtype)
        query = split_heads(queries, from_length, from_packing)
        key = split_heads(self.key(to_states), to_length, to_packing)
        value = split_heads(self.value(to_states), to_length, to_packing)
        scores = tf.cast(tf.matmul(query, key, transpose_b=True), tf.float32)  # [B, N, F, T]
        if not training:
            scores = scores * score_scale
        scores = scores + mask_penalty
        probs, context_scale = tf.nn.softmax(scores), 1.0  # [B, N, F, T]
        if training and self.dropout_prob > 0.0:
            probs = dropped_unscaled(probs, self.dropout_prob)
            context_scale = 1.0 / (1.0 - self.dropout_prob)  # dropout's, on D values, not T
        context = tf.matmul(tf.cast(probs, value.dtype), value)  # [B, N, F, D]
        if context_scale != 1.0:
            context = context * context_scale
        context = tf.transpose(context, [0, 2, 1, 3])  # [B, F, N, D]
        context = tf.reshape(context, [batch_size * from_length, hidden])  # [B·F, H]
        return context if from_packing is None else from_packing.pack(context)


class BertResidualOutput(tf.Module):
    """`attention/output` and `output`: dense, dropout, residual add, LayerNorm."""

    def __init__(self, config, scope, input_size):
        super().__init__()
        self.dense = Dense(
            f"{scope}/dense", input_size, config.hidden_size, config.initializer_range
        )
        self.layer_norm = LayerNorm(f"{scope}/LayerNorm", config.hidden_size)
        self.dropout_prob = config.hidden_dropout_prob

    def __call__(self, x, residual, training):
        """x [B·S, input_size], residual [B·S, H] → [B·S, H]."""
        return self.layer_norm(dropout(self.dense(x), self.dropout_prob, training) + residual)


class BertLayer(tf.Module):
    """`bert/encoder/layer_N`: self-attention, its output, intermediate, output."""

    def __init__(self, config, index):
        super().__init__()
        scope = f"bert/encoder/layer_{index}"
        self.attention_self = BertSelfAttention(config, f"{scope}/attention/self")
        self.attention_output = BertResidualOutput(
            config, f"{scope}/attention/output", config.hidden_size
        )
        self.intermediate = Dense(
            f"{scope}/intermediate/dense",
            config.hidden_size,
            config.intermediate_size,
            config.initializer_range,
            activation=ACTIVATIONS[config.hidden_act],
        )
        self.output = BertResidualOutput(config, f"{scope}/output", config.intermediate_size)

    def __call__(
        self,
        hidden_states,
        mask_penalty,
        batch_size,
        seq_length,
        training,
        positions=None,
        packing=None,
    ):
        """hidden_states [B·S, H] → [B·S, H]; with positions int [B, P], only those positions'
        outputs [B·P, H] (every position still serves as a key and a value). With packing
        (PackedTokens, skipping_padding), hidden_states are its packed rows [T, H], and so is
        the output unless positions are given."""
        from_packing = packing
        if positions is None:
            from_states, from_length = hidden_states, seq_length
        else:
            rows = tf.reshape(
                tf.cast(positions, tf.int32) + seq_length * tf.range(batch_size)[:, tf.newaxis],
                [-1],
            )  # [B·P]: the positions in [B·S]
            if packing is not None:
                rows = tf.gather(packing.rows, rows)
            from_states = tf.gather(hidden_states, rows)  # [B·P, H]
            from_length = positions.shape[1] or tf.shape(positions)[1]
            from_packing = None
        context = self.attention_self(
            from_states,
            hidden_states,
            mask_penalty,
            batch_size,
            from_length,
            seq_length,
            training,
            from_packing,
            packing,
        )
        attention_output = self.attention_output(context, from_states, training)
        return self.output(
            self.intermediate(attention_output, training), attention_output, training
        )


class BertPooler(tf.Module):
    """`bert/pooler`: tanh dense on the first token."""

    def __init__(self, config):
        super().__init__()
        self.dense = Dense(
            "bert/pooler/dense",
            config.hidden_size,
            config.hidden_size,
            config.initializer_range,
            activation=tf.tanh,
        )

    def __call__(self, sequence_output):
        """sequence_output [B, S, H] → [B, H]."""
        return self.dense(sequence_output[:, 0, :])


BertModelOutputs = collections.namedtuple(
    "BertModelOutputs",
    ["sequence_output", "pooled_output", "all_encoder_layers", "embedding_output"],
)


class BertModel(tf.Module):
    """The BERT encoder under `bert/`.

    Args:
      config: BertConfig.
      compute_dtype: tf.float32, tf.bfloat16 or tf.float16 for the matrix multiplications.
      use_one_hot_embeddings: embedding lookup as a one-hot matmul (TPU) rather than a gather.
    """

    def __init__(self, config, compute_dtype=tf.float32, use_one_hot_embeddings=False):
        super().__init__()
        config.validate()
        self.config = config
        self.compute_dtype = tf.as_dtype(compute_dtype)
        self.embeddings = BertEmbeddings(config, use_one_hot_embeddings)
        self.layers = [BertLayer(config, index) for index in range(config.num_hidden_layers)]
        self.pooler = BertPooler(config)

    @property
    def embedding_table(self):
        """float32 [V, H]: the word embeddings, which the masked-LM head shares."""
        return self.embeddings.word_embeddings

    def _check_inputs(self, input_ids, input_mask, token_type_ids):
        for name, tensor in (
            ("input_ids", input_ids),
            ("input_mask", input_mask),
            ("token_type_ids", token_type_ids),
        ):
            if tensor.shape.rank != 2:
                raise InputError(f"{name} must be [batch, seq], got shape {tensor.shape}")
            if tensor.shape != input_ids.shape:
                raise InputError(f"{name} has shape {tensor.shape}, input_ids {input_ids.shape}")
        seq_length = input_ids.shape[1]
        if seq_length is not None and seq_length > self.config.max_position_embeddings:
            raise InputError(
                f"sequence length {seq_length} exceeds max_position_embeddings "
                f"{self.config.max_position_embeddings} of the bert config"
            )

    def __call__(
        self, input_ids, input_mask=None, token_type_ids=None, training=False, final_positions=None
    ):
        """input_ids, input_mask (default all ones), token_type_ids (default zeros): int [B, S].

        Returns BertModelOutputs: sequence_output [B, S, H], pooled_output [B, H], all_encoder_layers
        (one [B, S, H] per layer), embedding_output [B, S, H]; all in the compute dtype.

        final_positions: optional int [B, P], the only positions whose final-layer vectors the
        caller reads (masked-LM positions, the [CLS] token), position 0 first (the pooler reads
        it). The last layer then computes only those (their queries, attention output and
        feed-forward; every position's keys and values), and sequence_output and the last of
        all_encoder_layers are [B, P, H], the vectors at those positions: the same values, less
        work (for a [CLS]-only classifier, a layer's worth of the feed-forward and projections).

        Traced under skipping_padding, the layers compute only the real tokens' rows: the same
        values at every real position, and zeros at the padding positions of sequence_output
        and all_encoder_layers.
        """
        input_ids = tf.convert_to_tensor(input_ids)
        input_mask = (
            tf.ones_like(input_ids) if input_mask is None else tf.convert_to_tensor(input_mask)
        )
        token_type_ids = (
            tf.zeros_like(input_ids)
            if token_type_ids is None
            else tf.convert_to_tensor(token_type_ids)
        )
        self._check_inputs(input_ids, input_mask, token_type_ids)
        if final_positions is not None:
            final_positions = tf.convert_to_tensor(final_positions)
            if final_positions.shape.rank != 2:
                raise InputError(
                    f"final_positions must be [batch, positions], got {final_positions.shape}"
                )
        # The sequence length is static when batches are padded to max_seq_length (training, XLA)
        # and dynamic in exported SavedModels, which take any length.
        batch_size, seq_length = (
            tf.shape(input_ids)[0],
            input_ids.shape[1] or tf.shape(input_ids)[1],
        )
        hidden = self.config.hidden_size

        embedding_output = tf.cast(
            self.embeddings(input_ids, token_type_ids, training), self.compute_dtype
        )
        # Padding keys get a large negative score: [B, 1, 1, T]. A reshape, not new axes: its
        # shape lets TensorFlow's graph optimizer fuse the score's scale and this add into the
        # attention's batch matmul on oneDNN's kernels.
        mask_penalty = tf.reshape(
            (1.0 - tf.cast(input_mask, tf.float32)) * ATTENTION_MASK_PENALTY,
            [batch_size, 1, 1, seq_length],
        )
        # Layers work on [B·S, H] so that every dense layer is one plain matmul; skipping
        # padding, on the real tokens' rows of it, [T, H].
        hidden_states = tf.reshape(embedding_output, [-1, hidden])
        packing = None
        if getattr(_tracing, "skip_padding", False):
            packing = PackedTokens(input_mask)
            hidden_states = packing.pack(hidden_states)  # [T, H]

        def unpacked(states):  # [B·S, H] or packed [T, H] → [B, S, H]
            if packing is not None:
                states = packing.unpack(states)
            return tf.reshape(states, [batch_size, seq_length, hidden])

        all_encoder_layers = []
        for layer in self.layers[:-1]:
            hidden_states = layer(
                hidden_states, mask_penalty, batch_size, seq_length, training, None, packing
            )
            all_encoder_layers.append(unpacked(hidden_states))
        output_length = (
            seq_length
            if final_positions is None
            else final_positions.shape[1] or tf.shape(final_positions)[1]
        )
        final_states = self.layers[-1](
            hidden_states,
            mask_penalty,
            batch_size,
            seq_length,
            training,
            final_positions,
            packing,
        )
        sequence_output = (
            unpacked(final_states)
            if final_positions is None
            else tf.reshape(final_states, [batch_size, output_length, hidden])
        )  # [B, S, H], or [B, P, H] at final_positions
        all_encoder_layers.append(sequence_output)
        return BertModelOutputs(
            sequence_output, self.pooler(sequence_output), all_encoder_layers, embedding_output
        )


class MaskedLMHead(tf.Module):
    """`cls/predictions`: transform dense + LayerNorm, then the tied word embeddings and a bias."""

    def __init__(self, config, embedding_table):
        super().__init__()
        scope = "cls/predictions"
        self.transform = Dense(
            f"{scope}/transform/dense",
            config.hidden_size,
            config.hidden_size,
            config.initializer_range,
            activation=ACTIVATIONS[config.hidden_act],
        )
        self.layer_norm = LayerNorm(f"{scope}/transform/LayerNorm", config.hidden_size)
        self.output_bias = tf.Variable(tf.zeros([config.vocab_size]), name=f"{scope}/output_bias")
        self.embedding_table = embedding_table

    def __call__(self, masked_output):
        """masked_output [B, P, H], the final-layer vectors at the masked positions → float32
        logits [B, P, V]."""
        hidden_size = masked_output.shape[-1]
        # One [B·P, H] × [H, V] matmul: a batched one would broadcast the table and sum its
        # gradient from B copies of [V, H] (a gigabyte for BERT-Mini at batch 32).
        hidden = self.layer_norm(self.transform(tf.reshape(masked_output, [-1, hidden_size])))
        logits = tf.matmul(hidden, tf.cast(self.embedding_table, hidden.dtype), transpose_b=True)
        logits = tf.cast(logits, tf.float32) + self.output_bias  # [B·P, V]
        return tf.reshape(logits, tf.concat([tf.shape(masked_output)[:2], [-1]], 0))


class OutputWeightsHead(tf.Module):
    """logits = x·output_weightsᵀ + output_bias, output_weights [L, H] as the reference stores them.

    Serves next-sentence (`cls/seq_relationship`, L 2), the classifier and the tagger (root scope,
    L labels), multiple choice (root scope, L 1) and SQuAD (`cls/squad`, L 2 for start and end).
    """

    def __init__(self, config, scope, num_outputs):
        super().__init__()
        prefix = f"{scope}/" if scope else ""
        self.output_weights = tf.Variable(
            _truncated_normal([num_outputs, config.hidden_size], config.initializer_range),
            name=f"{prefix}output_weights",
        )
        self.output_bias = tf.Variable(tf.zeros([num_outputs]), name=f"{prefix}output_bias")

    def __call__(self, x):
        """x [..., H] → float32 [..., L]."""
        logits = tf.matmul(x, tf.cast(self.output_weights, x.dtype), transpose_b=True)
        return tf.cast(logits, tf.float32) + self.output_bias


def next_sentence_head(config):
    """`cls/seq_relationship`: pooled output [B, H] → logits [B, 2] (1 = random next sentence)."""
    return OutputWeightsHead(config, "cls/seq_relationship", 2)


class BertPretrainingModel(tf.Module):
    """The encoder with the masked-LM and next-sentence heads (Hugging Face's BertForPreTraining)."""

    def __init__(self, config, compute_dtype=tf.float32, use_one_hot_embeddings=False):
        super().__init__()
        self.bert = BertModel(config, compute_dtype, use_one_hot_embeddings)
        self.masked_lm = MaskedLMHead(config, self.bert.embedding_table)
        self.next_sentence = next_sentence_head(config)

    def __call__(self, input_ids, input_mask, token_type_ids, masked_lm_positions, training=False):
        """int [B, S] inputs, masked_lm_positions int [B, P] → (MLM logits [B, P, V], NSP logits [B, 2])."""
        positions = tf.cast(masked_lm_positions, tf.int32)
        outputs = self.bert(
            input_ids,
            input_mask,
            token_type_ids,
            training,
            final_positions=tf.concat([tf.zeros_like(positions[:, :1]), positions], 1),
        )  # sequence_output [B, 1 + P, H]: [CLS], then the masked positions
        return self.masked_lm(outputs.sequence_output[:, 1:]), self.next_sentence(
            outputs.pooled_output
        )


class BertClassifierModel(tf.Module):
    """The encoder with the reference classifier: dropout 0.1 on the pooled output, `output_weights` [L, H].

    Args:
      encoder: the encoder to put the head on (default: a BertModel of `config`), e.g. a HubEncoder.
    """

    def __init__(
        self,
        config,
        num_labels,
        compute_dtype=tf.float32,
        use_one_hot_embeddings=False,
        encoder=None,
    ):
        super().__init__()
        self.bert = encoder or BertModel(config, compute_dtype, use_one_hot_embeddings)
        self.classifier = OutputWeightsHead(config, "", num_labels)

    def __call__(self, input_ids, input_mask, token_type_ids, training=False):
        """int [B, S] inputs → float32 logits [B, L]."""
        pooled = self.bert(
            input_ids, input_mask, token_type_ids, training, first_token_only(input_ids)
        ).pooled_output
        return self.classifier(dropout(pooled, CLASSIFIER_DROPOUT_PROB, training))


def first_token_only(input_ids):
    """final_positions int [B, 1] of zeros: a head that reads only the pooled [CLS] vector."""
    return tf.zeros([tf.shape(input_ids)[0], 1], tf.int32)


class HubEncoder(tf.Module):
    """A BERT encoder SavedModel with the TF-Hub interface (export_model.py's, or a published one),
    called like BertModel.

    Its variables keep the names they were saved with (the reference's, for our exports), so
    checkpoints of a model built on it are in the reference format. `vocab_file`, `do_lower_case`
    and `config` come from the module's assets when it has them: a published encoder carries the
    vocabulary and casing but no bert_config.json, and then gets a config with its vocabulary and
    hidden size and the reference's other defaults (all a head on it needs).

    Args:
      handle: a local path or a URL, as tensorflow_hub resolves them.
    """

    def __init__(self, handle):
        super().__init__()
        import tensorflow_hub

        self.handle = handle
        try:
            self.module = tensorflow_hub.load(handle)
        except (OSError, ValueError, tf.errors.OpError) as error:
            raise InputError(
                f"--hub_module_handle={handle}: not a loadable SavedModel ({error})"
            ) from None
        for attribute in ("trainable_variables", "variables"):
            if not hasattr(self.module, attribute):
                raise InputError(
                    f"--hub_module_handle={handle}: has no {attribute}: not a reusable (TF2) SavedModel"
                )
        # Lists, so that tf.Module finds the variables (a loaded object is not a tf.Module).
        self.encoder_variables = list(self.module.variables)
        self.vocab_file = (
            self.module.vocab_file.asset_path.numpy().decode()
            if hasattr(self.module, "vocab_file")
            else None
        )
        self.do_lower_case = (
            bool(self.module.do_lower_case.numpy())
            if hasattr(self.module, "do_lower_case")
            else None
        )
        if hasattr(self.module, "bert_config_file"):
            self.config = BertConfig.from_json_file(
                self.module.bert_config_file.asset_path.numpy().decode()
            )
        else:
            probe = tf.zeros([1, 2], tf.int32)
            hidden_size = int(self(probe, probe, probe).pooled_output.shape[-1])
            self.config = BertConfig(1, hidden_size=hidden_size, num_attention_heads=1)

    def __call__(self, input_ids, input_mask, token_type_ids, training=False, final_positions=None):
        """int [B, S] inputs → BertModelOutputs (no embedding_output: the interface has none);
        final_positions as BertModel's (here the module computes every position and the
        sequence output is gathered at them)."""
        outputs = self.module(
            {
                "input_word_ids": tf.cast(input_ids, tf.int32),
                "input_mask": tf.cast(input_mask, tf.int32),
                "input_type_ids": tf.cast(token_type_ids, tf.int32),
            },
            training=training,
        )
        sequence_output, layers = outputs["sequence_output"], list(outputs["encoder_outputs"])
        if final_positions is not None:
            sequence_output = layers[-1] = gather_positions(sequence_output, final_positions)
        return BertModelOutputs(sequence_output, outputs["pooled_output"], layers, None)


class BertSquadModel(tf.Module):
    """The encoder with the SQuAD span head `cls/squad` on every token."""

    def __init__(self, config, compute_dtype=tf.float32, use_one_hot_embeddings=False):
        super().__init__()
        self.bert = BertModel(config, compute_dtype, use_one_hot_embeddings)
        self.span = OutputWeightsHead(config, "cls/squad", 2)

    def __call__(self, input_ids, input_mask, token_type_ids, training=False):
        """int [B, S] inputs → (start logits [B, S], end logits [B, S]), float32."""
        logits = self.span(
            self.bert(input_ids, input_mask, token_type_ids, training).sequence_output
        )  # [B, S, 2]
        return logits[:, :, 0], logits[:, :, 1]


class BertTokenClassifierModel(tf.Module):
    """The encoder with a tagging head on every token, named as the reference's classifier:
    dropout 0.1 on the sequence output, `output_weights` [L, H], `output_bias` [L]."""

    def __init__(self, config, num_labels, compute_dtype=tf.float32, use_one_hot_embeddings=False):
        super().__init__()
        self.bert = BertModel(config, compute_dtype, use_one_hot_embeddings)
        self.classifier = OutputWeightsHead(config, "", num_labels)

    def __call__(self, input_ids, input_mask, token_type_ids, training=False):
        """int [B, S] inputs → float32 logits [B, S, L]."""
        sequence = self.bert(input_ids, input_mask, token_type_ids, training).sequence_output
        return self.classifier(dropout(sequence, CLASSIFIER_DROPOUT_PROB, training))


class BertMultipleChoiceModel(tf.Module):
    """The encoder scoring each choice's pooled output, after dropout 0.1, with one vector:
    `output_weights` [1, H], `output_bias` [1]; a softmax over the choices gives their odds."""

    def __init__(self, config, compute_dtype=tf.float32, use_one_hot_embeddings=False):
        super().__init__()
        self.bert = BertModel(config, compute_dtype, use_one_hot_embeddings)
        self.classifier = OutputWeightsHead(config, "", 1)

    def __call__(self, input_ids, input_mask, token_type_ids, training=False):
        """int [B, C, S] inputs, C choices → float32 logits [B, C]."""
        shape = tf.shape(input_ids)
        sequences = tf.reshape(input_ids, [-1, shape[2]])  # [B·C, S]
        pooled = self.bert(
            sequences,
            tf.reshape(input_mask, [-1, shape[2]]),
            tf.reshape(token_type_ids, [-1, shape[2]]),
            training,
            first_token_only(sequences),
        ).pooled_output  # [B·C, H]
        logits = self.classifier(dropout(pooled, CLASSIFIER_DROPOUT_PROB, training))  # [B·C, 1]
        return tf.reshape(logits, shape[:2])


# The reference checkpoint format: a TensorFlow V2 bundle keyed by variable name.

OPTIMIZER_SLOT_SUFFIXES = ("/adam_m", "/adam_v")
GLOBAL_STEP_NAME = "global_step"


def variables_by_name(module):
    """{reference checkpoint name: variable} for every variable of `module`."""
    return {variable.name.split(":")[0]: variable for variable in module.variables}


def is_training_state(name):
    """True for optimizer slots and global_step, which warm-starting ignores."""
    return name == GLOBAL_STEP_NAME or name.endswith(OPTIMIZER_SLOT_SUFFIXES)


CHECKPOINT_STATE_FILE = "checkpoint"
_STATE_LINE = re.compile(
    r'^(model_checkpoint_path|all_model_checkpoint_paths): "(.*)"\s*$', re.MULTILINE
)


def checkpoint_state(directory):
    """(latest, all listed) checkpoint prefixes of the `checkpoint` state file in `directory`, as
    tf.train.get_checkpoint_state gives them but with no path used as a glob; (None, []) if absent."""
    path = os.path.join(directory, CHECKPOINT_STATE_FILE)
    if not file_io.exists(path):
        return None, []
    text = file_io.read_text(path, "checkpoint state ")
    latest, listed = None, []
    for key, value in _STATE_LINE.findall(text):
        value = (
            value
            if os.path.isabs(value) or not file_io.is_local(value)
            else os.path.join(directory, value)
        )
        if key == "model_checkpoint_path":
            latest = value
        else:
            listed.append(value)
    return latest, listed


def latest_checkpoint(directory):
    """The newest complete checkpoint the state file of `directory` names, or None.

    A listed checkpoint whose index is gone is skipped for the newest older one that is complete.
    """
    latest, listed = checkpoint_state(directory)
    for prefix in ([latest] if latest else []) + listed[::-1]:
        if file_io.exists(prefix + ".index"):
            if prefix != latest:
                logging.warning(
                    "%s names %s, whose files are gone: using %s", directory, latest, prefix
                )
            return prefix
    return None


def resolve_checkpoint(path):
    """A checkpoint prefix from a prefix or a directory holding a `checkpoint` file; InputError if none."""
    # The prefix first: on ram:// a prefix of existing files also counts as a directory.
    if file_io.exists(path + ".index"):
        return path
    if file_io.isdir(path):
        latest = latest_checkpoint(path)
        if latest is None:
            raise InputError(f"checkpoint {path}: the directory holds no checkpoint")
        return latest
    raise InputError(f"checkpoint {path}: no such checkpoint ({path}.index is missing)")


@contextlib.contextmanager
def reading_checkpoint(prefix):
    """Turns a failure to read the checkpoint at `prefix` (missing, truncated or corrupt files)
    into one InputError naming it."""
    try:
        yield
    except InputError:
        raise
    # The checkpoint reader's C++ errors surface as tf.errors and as IndexError ("Read less bytes
    # than requested") or ValueError.
    except (tf.errors.OpError, OSError, IndexError, ValueError) as error:
        raise InputError(
            f"checkpoint {prefix}: cannot be read as a checkpoint ({errors.describe(error, with_file=False)})"
        ) from None


def checkpoint_reader(prefix):
    """A reader of the reference-format checkpoint at `prefix` (as resolve_checkpoint gives it).

    The prefix's own reader: tf.train.load_checkpoint first asks whether the prefix is a
    directory, which ram:// answers yes for any prefix of existing files.
    """
    with reading_checkpoint(prefix):
        return tf.compat.v1.train.NewCheckpointReader(prefix)


def checkpoint_shapes(prefix):
    """{name: shape} of every variable in the checkpoint at `prefix` (as resolve_checkpoint gives it)."""
    return checkpoint_reader(prefix).get_variable_to_shape_map()


LoadReport = collections.namedtuple("LoadReport", ["loaded", "missing", "unused"])


def load_checkpoint(path, variables, allow_missing=False):
    """Assigns each variable its value from a reference-format checkpoint.

    Args:
      path: a checkpoint prefix (`.../bert_model.ckpt`) or a directory with a `checkpoint` file.
      variables: {reference name: variable}, as variables_by_name gives.
      allow_missing: when False, a variable absent from the checkpoint is an InputError.

    Returns:
      LoadReport: names loaded, model variables not in the checkpoint, and checkpoint variables
      left unused (optimizer slots and global_step not counted).
    """
    prefix = resolve_checkpoint(path)
    reader = checkpoint_reader(prefix)
    shapes = reader.get_variable_to_shape_map()
    for name, variable in variables.items():
        if name in shapes and list(shapes[name]) != variable.shape.as_list():
            raise InputError(
                f"checkpoint {prefix}: {name} has shape {list(shapes[name])} but the model's is "
                f"{variable.shape.as_list()} (does the bert config match the checkpoint?)"
            )
    missing = sorted(name for name in variables if name not in shapes)
    if missing and not allow_missing:
        raise InputError(
            f"checkpoint {prefix}: lacks {len(missing)} model variables, first {missing[0]}"
        )
    loaded = sorted(name for name in variables if name in shapes)
    with reading_checkpoint(prefix):
        for name in loaded:
            variables[name].assign(reader.get_tensor(name))
    unused = sorted(
        name for name in shapes if name not in variables and not is_training_state(name)
    )
    return LoadReport(loaded, missing, unused)


def save_checkpoint(prefix, tensors):
    """Writes {name: tensor or variable} as a reference-format checkpoint at `prefix`, atomically.

    The bundle is written under a temporary prefix; its data file, then its index (which readers
    look for first), are renamed into place, so a reader never sees half a checkpoint.
    """
    names = sorted(tensors)
    values = [tf.convert_to_tensor(tensors[name]) for name in names]
    temporary = file_io.temporary_path(prefix)
    with file_io.reporting(prefix, ": cannot be written as a checkpoint"):
        tf.raw_ops.SaveV2(
            prefix=temporary, tensor_names=names, shape_and_slices=[""] * len(names), tensors=values
        )
        temporary_name = os.path.basename(temporary)
        for data_file in file_io.files_starting_with(
            os.path.dirname(temporary) or ".", temporary_name + ".data-"
        ):
            file_io.rename(data_file, prefix + os.path.basename(data_file)[len(temporary_name) :])
        file_io.rename(f"{temporary}.index", f"{prefix}.index")


def checkpoint_arrays(path):
    """{name: numpy array} of every variable in a checkpoint (for conversion and inspection)."""
    prefix = resolve_checkpoint(path)
    reader = checkpoint_reader(prefix)
    with reading_checkpoint(prefix):
        return {
            name: np.asarray(reader.get_tensor(name))
            for name in sorted(reader.get_variable_to_shape_map())
        }
