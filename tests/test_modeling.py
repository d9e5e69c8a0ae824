"""modeling.py: shapes, parity with transformers and the reference, checkpoints, XLA, precision, bad input."""

import collections
import contextlib
import functools
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf

import cpu_kernels
import errors
import modeling

from conftest import REPO_ROOT, minilm_model_dir

TINY_CONFIG = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    type_vocab_size=2,
)
BATCH, SEQ = 13, 7


def tiny_config(**overrides):
    return modeling.BertConfig(**{**TINY_CONFIG, **overrides})


def make_inputs(seed=0, batch=BATCH, seq=SEQ, vocab_size=99):
    """Random ids; rows padded to different lengths; segment 0 then 1 within each row's real tokens."""
    rng = np.random.RandomState(seed)
    input_ids = rng.randint(1, vocab_size, size=(batch, seq)).astype(np.int32)
    lengths = rng.randint(2, seq + 1, size=batch)
    lengths[0] = seq
    input_mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    token_type_ids = ((np.arange(seq)[None, :] >= (lengths // 2)[:, None]) * input_mask).astype(
        np.int32
    )
    input_ids *= input_mask
    return input_ids, input_mask, token_type_ids


def randomize(module, seed=1):
    """Gives every variable (LayerNorm and biases too) random values, so parity tests see all of them."""
    rng = np.random.RandomState(seed)
    for variable in module.variables:
        variable.assign(rng.normal(0.0, 0.2, size=variable.shape).astype(np.float32))


def max_abs_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def test_tiny_config_shapes():
    config = tiny_config()
    model = modeling.BertModel(config)
    input_ids, input_mask, token_type_ids = make_inputs()
    outputs = model(input_ids, input_mask, token_type_ids)
    assert outputs.sequence_output.shape == (BATCH, SEQ, 32)
    assert outputs.pooled_output.shape == (BATCH, 32)
    assert outputs.embedding_output.shape == (BATCH, SEQ, 32)
    assert [layer.shape for layer in outputs.all_encoder_layers] == [(BATCH, SEQ, 32)] * 2
    assert model.embedding_table.shape == (99, 32)
    pretraining = modeling.BertPretrainingModel(config)
    mlm_logits, nsp_logits = pretraining(
        input_ids, input_mask, token_type_ids, np.zeros((BATCH, 3), np.int32)
    )
    assert mlm_logits.shape == (BATCH, 3, 99) and nsp_logits.shape == (BATCH, 2)
    assert modeling.BertClassifierModel(config, num_labels=5)(
        input_ids, input_mask, token_type_ids
    ).shape == (BATCH, 5)
    start_logits, end_logits = modeling.BertSquadModel(config)(
        input_ids, input_mask, token_type_ids
    )
    assert start_logits.shape == end_logits.shape == (BATCH, SEQ)


def test_defaults_are_all_ones_mask_and_segment_zero():
    model = modeling.BertModel(tiny_config())
    input_ids, _, _ = make_inputs()
    default = model(input_ids).sequence_output
    explicit = model(input_ids, np.ones_like(input_ids), np.zeros_like(input_ids)).sequence_output
    np.testing.assert_array_equal(default.numpy(), explicit.numpy())


def test_dropout_acts_only_in_training():
    model = modeling.BertModel(tiny_config())
    input_ids, input_mask, token_type_ids = make_inputs()
    first = model(input_ids, input_mask, token_type_ids).sequence_output.numpy()
    np.testing.assert_array_equal(
        first, model(input_ids, input_mask, token_type_ids).sequence_output.numpy()
    )
    trained = model(input_ids, input_mask, token_type_ids, training=True).sequence_output.numpy()
    assert max_abs_diff(first, trained) > 1e-3


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16])
@pytest.mark.parametrize("compiled", ["eager", "graph", "xla"])
def test_dropout_drops_at_its_rate_scales_the_rest_and_draws_a_new_mask_each_call(compiled, dtype):
    """Over about 10^6 elements the dropped share is within 5 standard errors of the rate, the
    kept elements are exactly 1 / (1 - rate) in x's dtype, and two calls (two sites in one
    step, or two steps) differ."""
    ones = tf.ones([999, 1001], dtype)  # an odd count: the last 32-bit draw is half used

    def two_masks(rate):
        return modeling.dropout(ones, rate, True), modeling.dropout(ones, rate, True)

    if compiled == "xla":
        with modeling.compiled_by_xla():  # ThreeFry, as the engine's compiled steps draw
            two_masks = tf.function(two_masks, jit_compile=True).get_concrete_function(
                tf.TensorSpec([], tf.float32)
            )
    elif compiled == "graph":
        two_masks = tf.function(two_masks)
    for rate in (0.1, 0.5):
        first, second = (t.numpy().astype(np.float32) for t in two_masks(tf.constant(rate)))
        again, _ = (t.numpy().astype(np.float32) for t in two_masks(tf.constant(rate)))
        for mask in (first, second):
            dropped = np.mean(mask == 0)
            assert abs(dropped - rate) < 5 * np.sqrt(rate * (1 - rate) / mask.size)
            kept = tf.cast(1 / (1 - rate), dtype).numpy().astype(np.float32)
            np.testing.assert_array_equal(np.unique(mask), [0, kept])
        # Independent masks differ at 2·rate·(1 - rate) of the elements.
        for other in (second, again):
            assert np.mean(first != other) > rate * (1 - rate)


def test_dropout_threshold_keeps_the_rate_exactly_on_average_over_its_rounding():
    """On TensorFlow's kernels dropout compares 16-bit integers with threshold_16_bits: over its
    rounding draw (a grid of 10^4 uniforms) the drop probability is the float32 rate to 1e-8,
    which a fixed rounding of rate · 2^16 misses by up to 2^-17 (0.1: by 6.1e-6)."""
    uniforms = tf.range(10_000, dtype=tf.float32) / 10_000
    for rate in (0.1, 0.15, 0.37, 0.5, 0.9):
        thresholds = modeling.threshold_16_bits(rate, uniforms).numpy()
        dropped = np.mean(thresholds.astype(np.float64)) / 2**16
        assert abs(dropped - float(np.float32(rate))) < 1e-8, rate


def test_attention_drops_probabilities_as_dropout_does_and_scales_the_context_instead():
    """The attention applies dropout's mask to its probabilities and its 1 / (1 - rate) to the
    context: the same mask (same seed) and within 1e-5 of dropout() on the probabilities."""
    config = tiny_config(attention_probs_dropout_prob=0.3)
    attention = modeling.BertSelfAttention(config, "attention")
    randomize(attention)
    states = tf.random.normal([BATCH * SEQ, config.hidden_size])
    _, input_mask, _ = make_inputs()
    penalty = (1.0 - tf.cast(input_mask, tf.float32))[:, None, None, :] * -10000.0
    tf.random.set_seed(7)
    ours = attention(states, states, penalty, BATCH, SEQ, SEQ, training=True)

    def heads(dense):  # [B·S, H] → [B, N, S, D]
        return tf.transpose(tf.reshape(dense(states), [BATCH, SEQ, 4, -1]), [0, 2, 1, 3])

    query, key, value = heads(attention.query), heads(attention.key), heads(attention.value)
    scores = tf.matmul(query, key, transpose_b=True) / np.sqrt(config.head_size) + penalty
    tf.random.set_seed(7)
    probs = modeling.dropout(tf.nn.softmax(scores), 0.3, True)
    expected = tf.reshape(tf.transpose(tf.matmul(probs, value), [0, 2, 1, 3]), [BATCH * SEQ, -1])
    assert max_abs_diff(ours, expected) < 1e-5
    tf.random.set_seed(8)
    assert max_abs_diff(attention(states, states, penalty, BATCH, SEQ, SEQ, True), expected) > 1e-3


def test_one_hot_embedding_lookup_equals_gather():
    config = tiny_config()
    gather_model = modeling.BertModel(config)
    one_hot_model = modeling.BertModel(config, use_one_hot_embeddings=True)
    for name, variable in modeling.variables_by_name(one_hot_model).items():
        variable.assign(modeling.variables_by_name(gather_model)[name])
    inputs = make_inputs()
    assert (
        max_abs_diff(gather_model(*inputs).sequence_output, one_hot_model(*inputs).sequence_output)
        < 1e-6
    )


def test_activations():
    x = tf.constant([-3.0, -1.0, 0.0, 0.5, 2.0])
    from scipy.special import erf

    np.testing.assert_allclose(
        modeling.gelu(x).numpy(), 0.5 * x.numpy() * (1 + erf(x.numpy() / np.sqrt(2))), atol=1e-6
    )
    assert max_abs_diff(modeling.gelu(x), modeling.gelu_tanh(x)) < 1e-3
    for alias in ("gelu_new", "gelu_pytorch_tanh"):
        assert modeling.ACTIVATIONS[alias] is modeling.gelu_tanh


def test_gelu_for_training_equals_gelu_and_its_gradient():
    from scipy.special import erf

    x = np.linspace(-9.0, 9.0, 721)
    inputs = tf.constant(x, tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(inputs)
        plain, for_training = modeling.gelu(inputs), modeling.gelu_for_training(inputs)
    assert max_abs_diff(for_training, plain) < 1e-6
    # d/dx x·Φ(x) = Φ(x) + x·φ(x), in float64
    exact = 0.5 * (1 + erf(x / np.sqrt(2))) + x * np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(tape.gradient(for_training, inputs).numpy(), exact, atol=1e-6)
    np.testing.assert_allclose(tape.gradient(plain, inputs).numpy(), exact, atol=1e-6)


def test_dense_takes_the_kernels_training_form_only_when_training_outside_xla(monkeypatch):
    applied = []

    def plain(y):
        applied.append("plain")
        return y

    def for_training(y):
        applied.append("for training")
        return y

    monkeypatch.setitem(modeling.KERNELS_TRAINING_FORMS, plain, for_training)
    dense = modeling.Dense("dense", 3, 2, 0.02, activation=plain)
    x = tf.ones([4, 3])
    dense(x)
    dense(x, training=True)
    with modeling.compiled_by_xla():
        dense(x, training=True)
    assert applied == ["plain", "for training", "plain"]
    assert modeling.KERNELS_TRAINING_FORMS[modeling.gelu] is modeling.gelu_for_training


# Parity with transformers (torch CPU) through convert_checkpoint.py.


@pytest.fixture(scope="module")
def hf_pretraining_model(tmp_path_factory):
    """A transformers BertForPreTraining with random weights everywhere, saved and converted to the
    reference format by the convert_checkpoint.py command."""
    import torch
    from transformers import BertConfig as HFBertConfig, BertForPreTraining

    torch.manual_seed(0)
    hf_model = BertForPreTraining(HFBertConfig(**TINY_CONFIG)).eval()
    with torch.no_grad():
        for parameter in hf_model.parameters():
            parameter.normal_(0.0, 0.2)
    hf_dir = tmp_path_factory.mktemp("hf")
    hf_model.save_pretrained(hf_dir)
    (hf_dir / "vocab.txt").write_text(
        "".join(f"[unused{i}]\n" if i != 1 else "[UNK]\n" for i in range(99))
    )
    reference_dir = tmp_path_factory.mktemp("reference")
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "convert_checkpoint.py"),
            f"--hf_model_dir={hf_dir}",
            f"--output_dir={reference_dir}",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return hf_model, hf_dir, reference_dir


@pytest.mark.slow
def test_matches_transformers_bert_within_1e5(hf_pretraining_model):
    """Sequence, pooled, every layer, embeddings, MLM and NSP logits within 1e-5 (fp32), on a batch
    with padding and both segment ids, against BertForPreTraining and BertModel."""
    import torch
    from transformers import BertModel as HFBertModel

    hf_model, hf_dir, reference_dir = hf_pretraining_model
    config = modeling.BertConfig.from_json_file(str(reference_dir / "bert_config.json"))
    ours = modeling.BertPretrainingModel(config)
    report = modeling.load_checkpoint(str(reference_dir), modeling.variables_by_name(ours))
    assert report.missing == [] and report.unused == []

    input_ids, input_mask, token_type_ids = make_inputs()
    torch_inputs = dict(
        input_ids=torch.tensor(input_ids, dtype=torch.long),
        attention_mask=torch.tensor(input_mask, dtype=torch.long),
        token_type_ids=torch.tensor(token_type_ids, dtype=torch.long),
    )
    with torch.no_grad():
        theirs = hf_model(**torch_inputs, output_hidden_states=True)
        pooled = hf_model.bert(**torch_inputs).pooler_output
    all_positions = np.tile(np.arange(SEQ, dtype=np.int32), (BATCH, 1))
    mlm_logits, nsp_logits = ours(input_ids, input_mask, token_type_ids, all_positions)
    outputs = ours.bert(input_ids, input_mask, token_type_ids)

    assert max_abs_diff(mlm_logits, theirs.prediction_logits) < 1e-5
    assert max_abs_diff(nsp_logits, theirs.seq_relationship_logits) < 1e-5
    assert max_abs_diff(outputs.embedding_output, theirs.hidden_states[0]) < 1e-5
    for layer, (our_layer, their_layer) in enumerate(
        zip(outputs.all_encoder_layers, theirs.hidden_states[1:])
    ):
        assert max_abs_diff(our_layer, their_layer) < 1e-5, f"layer {layer}"
    assert max_abs_diff(outputs.sequence_output, theirs.hidden_states[-1]) < 1e-5
    assert max_abs_diff(outputs.pooled_output, pooled) < 1e-5

    encoder_only = modeling.BertModel(config)
    report = modeling.load_checkpoint(str(reference_dir), modeling.variables_by_name(encoder_only))
    assert report.unused and all(name.startswith("cls/") for name in report.unused)
    hf_encoder = HFBertModel.from_pretrained(hf_dir).eval()
    with torch.no_grad():
        their_encoder = hf_encoder(**torch_inputs)
    our_encoder = encoder_only(input_ids, input_mask, token_type_ids)
    assert max_abs_diff(our_encoder.sequence_output, their_encoder.last_hidden_state) < 1e-5
    assert max_abs_diff(our_encoder.pooled_output, their_encoder.pooler_output) < 1e-5


def test_minilm_sentence_embeddings_match_sentence_transformers_within_1e5(tmp_path):
    """Real weights: all-MiniLM-L6-v2 from its package, converted, mean-pooled and L2-normalised,
    on 20 real sentences (the repository's sample_text.txt)."""
    import tokenization

    import convert_checkpoint
    from sentence_transformers import SentenceTransformer

    model_dir = minilm_model_dir()
    convert_checkpoint.hf_to_reference(model_dir, str(tmp_path))
    with open(os.path.join(REPO_ROOT, "sample_text.txt"), encoding="utf-8") as reader:
        sentences = [line.strip() for line in reader if line.strip()][:20]

    tokenizer = tokenization.FullTokenizer(str(tmp_path / "vocab.txt"), do_lower_case=True)
    rows = [
        tokenizer.convert_tokens_to_ids(["[CLS]"] + tokenizer.tokenize(s) + ["[SEP]"])
        for s in sentences
    ]
    seq = max(map(len, rows))
    input_ids = np.array([row + [0] * (seq - len(row)) for row in rows], np.int32)
    input_mask = (input_ids != 0).astype(np.int32)
    model = modeling.BertModel(
        modeling.BertConfig.from_json_file(str(tmp_path / "bert_config.json"))
    )
    modeling.load_checkpoint(str(tmp_path), modeling.variables_by_name(model))
    sequence_output = model(input_ids, input_mask).sequence_output.numpy()
    mean_pooled = (sequence_output * input_mask[..., None]).sum(1) / input_mask.sum(
        1, keepdims=True
    )
    ours = mean_pooled / np.linalg.norm(mean_pooled, axis=1, keepdims=True)

    reference = SentenceTransformer(model_dir, device="cpu")
    their_ids = reference.tokenizer(sentences)["input_ids"]
    assert [row for row in rows] == their_ids
    theirs = reference.encode(sentences, normalize_embeddings=True, convert_to_numpy=True)
    assert max_abs_diff(ours, theirs) < 1e-5


# The reference checkpoint format.


def expected_reference_names(num_layers, heads):
    """Every variable name a reference checkpoint of this config holds, written out."""
    names = [
        "bert/embeddings/LayerNorm/beta",
        "bert/embeddings/LayerNorm/gamma",
        "bert/embeddings/position_embeddings",
        "bert/embeddings/token_type_embeddings",
        "bert/embeddings/word_embeddings",
        "bert/pooler/dense/bias",
        "bert/pooler/dense/kernel",
    ]
    per_layer = [
        "attention/output/LayerNorm/beta",
        "attention/output/LayerNorm/gamma",
        "attention/output/dense/bias",
        "attention/output/dense/kernel",
        "attention/self/key/bias",
        "attention/self/key/kernel",
        "attention/self/query/bias",
        "attention/self/query/kernel",
        "attention/self/value/bias",
        "attention/self/value/kernel",
        "intermediate/dense/bias",
        "intermediate/dense/kernel",
        "output/LayerNorm/beta",
        "output/LayerNorm/gamma",
        "output/dense/bias",
        "output/dense/kernel",
    ]
    names += [f"bert/encoder/layer_{i}/{suffix}" for i in range(num_layers) for suffix in per_layer]
    if "pretraining" in heads:
        names += [
            "cls/predictions/output_bias",
            "cls/predictions/transform/LayerNorm/beta",
            "cls/predictions/transform/LayerNorm/gamma",
            "cls/predictions/transform/dense/bias",
            "cls/predictions/transform/dense/kernel",
            "cls/seq_relationship/output_bias",
            "cls/seq_relationship/output_weights",
        ]
    if "classifier" in heads:
        names += ["output_bias", "output_weights"]
    if "squad" in heads:
        names += ["cls/squad/output_bias", "cls/squad/output_weights"]
    return sorted(names)


@pytest.mark.parametrize(
    "model_class,heads",
    [
        (modeling.BertPretrainingModel, ("pretraining",)),
        (lambda config: modeling.BertClassifierModel(config, num_labels=3), ("classifier",)),
        (modeling.BertSquadModel, ("squad",)),
    ],
)
def test_written_checkpoint_has_exactly_the_reference_names_and_round_trips(
    tmp_path, model_class, heads
):
    config = tiny_config()
    model = model_class(config)
    randomize(model)
    prefix = str(tmp_path / "model.ckpt")
    modeling.save_checkpoint(prefix, modeling.variables_by_name(model))
    assert sorted(os.listdir(tmp_path)) == ["model.ckpt.data-00000-of-00001", "model.ckpt.index"]
    listed = tf.train.list_variables(prefix)
    assert [name for name, _ in listed] == expected_reference_names(2, heads)
    assert dict(listed)["bert/encoder/layer_1/intermediate/dense/kernel"] == [32, 37]

    restored = model_class(config)
    report = modeling.load_checkpoint(prefix, modeling.variables_by_name(restored))
    assert report.missing == [] and report.unused == []
    inputs = make_inputs()
    if heads == ("pretraining",):
        inputs += (np.ones((BATCH, 2), np.int32),)
    for before, after in zip(tf.nest.flatten(model(*inputs)), tf.nest.flatten(restored(*inputs))):
        np.testing.assert_array_equal(before.numpy(), after.numpy())


def test_training_state_is_written_by_reference_names_and_ignored_when_warm_starting(tmp_path):
    model = modeling.BertModel(tiny_config())
    variables = modeling.variables_by_name(model)
    state = dict(variables)
    for name, variable in variables.items():
        state[f"{name}/adam_m"] = tf.zeros_like(variable)
        state[f"{name}/adam_v"] = tf.ones_like(variable)
    state["global_step"] = tf.constant(42, tf.int64)
    prefix = str(tmp_path / "model.ckpt-42")
    modeling.save_checkpoint(prefix, state)
    names = dict(tf.train.list_variables(prefix))
    assert names["global_step"] == [] and names["bert/pooler/dense/kernel/adam_v"] == [32, 32]
    report = modeling.load_checkpoint(
        prefix, modeling.variables_by_name(modeling.BertModel(tiny_config()))
    )
    assert report.unused == [] and report.missing == []


@pytest.mark.slow
def test_reference_implementation_restores_our_checkpoint(tmp_path):
    """The reference's own BertModel (bert-tensorflow 1.0.4, TF1 code under compat shims) restores a
    checkpoint we wrote, every variable, and computes the same outputs within 1e-5. The reference code
    computes the tanh GELU for "gelu", so our side runs gelu_tanh on the same weights."""
    config = tiny_config(hidden_act="gelu_tanh")
    model = modeling.BertModel(config)
    randomize(model)
    prefix = str(tmp_path / "bert_model.ckpt")
    modeling.save_checkpoint(prefix, modeling.variables_by_name(model))
    config_file = tmp_path / "bert_config.json"
    config_file.write_text(tiny_config(hidden_act="gelu").to_json_string())
    input_ids, input_mask, token_type_ids = make_inputs()
    np.savez(
        tmp_path / "inputs.npz",
        input_ids=input_ids,
        input_mask=input_mask,
        token_type_ids=token_type_ids,
    )
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "tests", "reference_oracle.py"),
            "model",
            prefix,
            str(config_file),
            str(tmp_path / "inputs.npz"),
            str(tmp_path / "outputs.npz"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reference = np.load(tmp_path / "outputs.npz")
    assert (
        int(reference["num_restored"])
        == int(reference["num_trainable"])
        == len(expected_reference_names(2, ()))
    )
    ours = model(input_ids, input_mask, token_type_ids)
    assert max_abs_diff(ours.sequence_output, reference["sequence_output"]) < 1e-5
    assert max_abs_diff(ours.pooled_output, reference["pooled_output"]) < 1e-5


def test_final_positions_compute_the_same_vectors_as_the_whole_last_layer():
    """BertModel(final_positions=...) is the whole encoder gathered at those positions (padding
    keys still masked, every position a key), and the heads that use it (masked LM + NSP,
    classifier, multiple choice) equal the same heads on the whole last layer, within 1e-5;
    with gradients (XLA) too."""
    config = tiny_config()
    model = modeling.BertPretrainingModel(config)
    randomize(model)
    input_ids, input_mask, token_type_ids = make_inputs()
    positions = np.random.RandomState(3).randint(0, SEQ, size=(BATCH, 4)).astype(np.int32)
    first_then_masked = np.concatenate([np.zeros((BATCH, 1), np.int32), positions], 1)

    whole = model.bert(input_ids, input_mask, token_type_ids)
    chosen = model.bert(input_ids, input_mask, token_type_ids, final_positions=first_then_masked)
    expected = np.take_along_axis(whole.sequence_output.numpy(), first_then_masked[..., None], 1)
    assert chosen.sequence_output.shape == (BATCH, 5, 32)
    assert max_abs_diff(chosen.sequence_output, expected) < 1e-5
    assert chosen.all_encoder_layers[-1] is chosen.sequence_output
    for ours, full in zip(chosen.all_encoder_layers[:-1], whole.all_encoder_layers[:-1]):
        assert max_abs_diff(ours, full) < 1e-6
    assert max_abs_diff(chosen.pooled_output, whole.pooled_output) < 1e-5

    # The masked-LM head on the gathered whole-layer vectors, as before final_positions.
    mlm_logits, nsp_logits = model(input_ids, input_mask, token_type_ids, positions)
    assert max_abs_diff(mlm_logits, model.masked_lm(expected[:, 1:])) < 1e-5
    assert max_abs_diff(nsp_logits, model.next_sentence(whole.pooled_output)) < 1e-5

    def gradients(final_positions):
        with tf.GradientTape() as tape:
            outputs = model.bert(
                input_ids, input_mask, token_type_ids, final_positions=final_positions
            )
            chosen_vectors = (
                outputs.sequence_output
                if final_positions is not None
                else tf.gather(outputs.sequence_output, first_then_masked, batch_dims=1)
            )
            loss = tf.reduce_sum(chosen_vectors**2) + tf.reduce_sum(outputs.pooled_output)
        return [
            tf.convert_to_tensor(g) for g in tape.gradient(loss, model.bert.trainable_variables)
        ]

    for ours, full in zip(
        tf.function(gradients, jit_compile=True)(first_then_masked), gradients(None)
    ):
        scale = max(1.0, float(np.max(np.abs(full))))
        assert max_abs_diff(ours, full) / scale < 1e-5

    classifier = modeling.BertClassifierModel(config, num_labels=3, encoder=model.bert)
    expected_logits = classifier.classifier(whole.pooled_output)
    assert max_abs_diff(classifier(input_ids, input_mask, token_type_ids), expected_logits) < 1e-5

    choices = modeling.BertMultipleChoiceModel(config)
    randomize(choices)
    stacked = [np.stack([x[:6], x[6:12]], 1) for x in (input_ids, input_mask, token_type_ids)]
    pooled = choices.bert(*[x.reshape(12, SEQ) for x in stacked]).pooled_output
    expected_choices = tf.reshape(choices.classifier(pooled), [6, 2])
    assert max_abs_diff(choices(*stacked), expected_choices) < 1e-5


@pytest.mark.parametrize("padding_example", [5, 0])
def test_skipping_padding_computes_the_same_values_at_every_real_position_and_gradients(
    padding_example,
):
    """Under skipping_padding the dense layers see only the real tokens: every real position of
    every layer, the pooled output, the final_positions path, the heads and the gradients equal
    the padded computation's within 1e-5; padding positions come out as zeros. A padding
    example first in its batch leaves position 0, which the packed rows always hold, unreal."""
    config = tiny_config()
    model = modeling.BertPretrainingModel(config)
    randomize(model)
    input_ids, input_mask, token_type_ids = make_inputs()
    # Masked positions are real tokens; one example is a padding example of a last batch, no
    # real token at all, whose outputs nothing reads.
    lengths = input_mask.sum(1)
    positions = (np.random.RandomState(3).rand(BATCH, 4) * lengths[:, None]).astype(np.int32)
    input_mask[padding_example] = 0
    read = np.arange(BATCH) != padding_example
    weights = tf.constant(np.random.RandomState(2).normal(size=(BATCH, 4, 99)).astype(np.float32))
    real = input_mask[..., None].astype(bool)

    def run(skip):
        def forward_and_gradients():
            with modeling.skipping_padding() if skip else contextlib.nullcontext():
                with tf.GradientTape() as tape:
                    whole = model.bert(input_ids, input_mask, token_type_ids)
                    mlm_logits, nsp_logits = model(input_ids, input_mask, token_type_ids, positions)
                    loss = (
                        tf.reduce_sum(tf.boolean_mask(mlm_logits * weights, read))
                        + tf.reduce_sum(tf.boolean_mask(nsp_logits, read))
                        + tf.reduce_sum(tf.where(real, whole.sequence_output, 0.0) ** 2)
                    )
            gradients = tape.gradient(loss, model.trainable_variables)
            return whole, mlm_logits, nsp_logits, [tf.convert_to_tensor(g) for g in gradients]

        # Traced: the engine's steps are tf.functions, and the rows' count is known only then.
        return tf.function(forward_and_gradients)()

    padded, skipped = run(False), run(True)
    for ours, full in zip(
        [skipped[0].sequence_output, *skipped[0].all_encoder_layers],
        [padded[0].sequence_output, *padded[0].all_encoder_layers],
    ):
        assert max_abs_diff(np.where(real, ours, 0), np.where(real, full, 0)) < 1e-5
        assert not np.any(np.where(real, 0, ours))
    assert max_abs_diff(skipped[0].pooled_output[read], padded[0].pooled_output[read]) < 1e-5
    assert max_abs_diff(skipped[1][read], padded[1][read]) < 1e-5
    assert max_abs_diff(skipped[2][read], padded[2][read]) < 1e-5
    for variable, ours, full in zip(model.trainable_variables, skipped[3], padded[3]):
        scale = max(1.0, float(np.max(np.abs(full))))
        assert max_abs_diff(ours, full) / scale < 1e-5, variable.name


def test_skipping_padding_runs_a_batch_without_a_real_token_to_zeros():
    """A replica's share of a last batch can be padding examples only: the packed rows still
    hold position 0, every output position comes out zero, and the gradients are finite."""
    config = tiny_config()
    model = modeling.BertModel(config)
    randomize(model)
    input_ids, input_mask, token_type_ids = make_inputs()
    input_mask[:] = 0

    @tf.function
    def forward_and_gradients():
        with modeling.skipping_padding():
            with tf.GradientTape() as tape:
                outputs = model(input_ids, input_mask, token_type_ids, training=True)
                loss = tf.reduce_sum(outputs.pooled_output)
            return outputs, tape.gradient(loss, model.trainable_variables)

    outputs, gradients = forward_and_gradients()
    assert outputs.sequence_output.shape == (BATCH, SEQ, config.hidden_size)
    for layer in [outputs.sequence_output, *outputs.all_encoder_layers]:
        assert not np.any(layer.numpy())
    assert all(np.all(np.isfinite(tf.convert_to_tensor(g))) for g in gradients if g is not None)


def executed_op_types(function):
    """How many of each op type TensorFlow ran for function()'s second call (the first traces
    it and runs the graph optimizer), from the profiler's trace."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    function()
    with tempfile.TemporaryDirectory() as profile_dir:
        tf.profiler.experimental.start(profile_dir)
        function()
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        (trace,) = glob.glob(os.path.join(profile_dir, "**", "*.xplane.pb"), recursive=True)
        with open(trace, "rb") as trace_file:
            space.ParseFromString(trace_file.read())
    op_types = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                op_types[name.rsplit(":", 1)[-1]] += ":" in name
    return op_types


@pytest.mark.skipif(not cpu_kernels.onednn_on(), reason="TensorFlow's oneDNN kernels are off")
@pytest.mark.parametrize("skip_padding", [False, True])
def test_fusing_layer_norm_runs_one_kernel_per_layer_norm_with_the_same_values(skip_padding):
    """Under fusing_layer_norm (the engine's evaluation and prediction on oneDNN's CPU kernels)
    TensorFlow runs each LayerNorm as one _MklLayerNorm, and each layer's attention scores'
    scale and mask add inside its batch matmul (_MklFusedBatchMatMulV2); the outputs equal the
    moments form's within 1e-5 at every position. Traced as the engine's steps are, for any
    batch length (a static one keeps the moments)."""
    config = tiny_config()
    model = modeling.BertModel(config)
    randomize(model)
    input_ids, input_mask, token_type_ids = make_inputs()

    def forward(fused):
        @tf.function(input_signature=[tf.TensorSpec([BATCH, None], tf.int32)] * 3)
        def sequence_output(input_ids, input_mask, token_type_ids):
            with contextlib.ExitStack() as modes:
                if skip_padding:
                    modes.enter_context(modeling.skipping_padding())
                if fused:
                    modes.enter_context(modeling.fusing_layer_norm())
                return model(input_ids, input_mask, token_type_ids).sequence_output

        return functools.partial(sequence_output, input_ids, input_mask, token_type_ids)

    fused, moments = forward(True), forward(False)
    fused_ops, moments_ops = executed_op_types(fused), executed_op_types(moments)
    layers = config.num_hidden_layers
    assert fused_ops["_MklLayerNorm"] == 1 + 2 * layers
    assert moments_ops["_MklLayerNorm"] == 0
    assert fused_ops["_MklFusedBatchMatMulV2"] == moments_ops["_MklFusedBatchMatMulV2"] == layers
    assert max_abs_diff(fused(), moments()) < 1e-5


# Compilation and precision.


def test_xla_forward_and_backward_equal_eager_within_1e5():
    config = tiny_config()
    model = modeling.BertPretrainingModel(config)
    randomize(model)
    input_ids, input_mask, token_type_ids = make_inputs()
    positions = np.tile(np.array([1, 3, 5], np.int32), (BATCH, 1))
    weights = tf.constant(np.random.RandomState(2).normal(size=(BATCH, 3, 99)).astype(np.float32))

    def forward_and_gradients():
        with tf.GradientTape() as tape:
            mlm_logits, nsp_logits = model(input_ids, input_mask, token_type_ids, positions)
            loss = tf.reduce_sum(mlm_logits * weights) + tf.reduce_sum(nsp_logits)
        gradients = tape.gradient(loss, model.trainable_variables)
        # Gathered embedding tables get IndexedSlices; compare them dense.
        return mlm_logits, nsp_logits, [tf.convert_to_tensor(gradient) for gradient in gradients]

    eager = forward_and_gradients()
    compiled = tf.function(forward_and_gradients, jit_compile=True)()
    assert max_abs_diff(eager[0], compiled[0]) < 1e-5
    assert max_abs_diff(eager[1], compiled[1]) < 1e-5
    assert len(eager[2]) == len(model.trainable_variables) == 2 * 16 + 7 + 7
    for variable, eager_gradient, compiled_gradient in zip(
        model.trainable_variables, eager[2], compiled[2]
    ):
        scale = max(1.0, float(np.max(np.abs(eager_gradient))))
        assert max_abs_diff(eager_gradient, compiled_gradient) / scale < 1e-5, variable.name


@pytest.mark.parametrize("compute_dtype,tolerance", [(tf.bfloat16, 0.1), (tf.float16, 0.01)])
def test_reduced_precision_stays_close_to_float32(compute_dtype, tolerance):
    """bf16 keeps 8 bits of mantissa (relative error ~4e-3 per op), fp16 11 bits: over two layers of
    LayerNorm-scaled activations (values of order 1) the outputs stay within 0.1 and 0.01 of fp32.
    Variables stay float32 and the logits come out float32."""
    config = tiny_config()
    full = modeling.BertPretrainingModel(config)
    randomize(full)
    reduced = modeling.BertPretrainingModel(config, compute_dtype=compute_dtype)
    for name, variable in modeling.variables_by_name(reduced).items():
        assert variable.dtype == tf.float32
        variable.assign(modeling.variables_by_name(full)[name])
    inputs = make_inputs() + (np.tile(np.array([0, 2], np.int32), (BATCH, 1)),)
    full_outputs = full.bert(*inputs[:3])
    reduced_outputs = reduced.bert(*inputs[:3])
    assert reduced_outputs.sequence_output.dtype == compute_dtype
    assert (
        max_abs_diff(
            full_outputs.sequence_output, tf.cast(reduced_outputs.sequence_output, tf.float32)
        )
        < tolerance
    )
    full_mlm, _ = full(*inputs)
    reduced_mlm, _ = reduced(*inputs)
    assert reduced_mlm.dtype == tf.float32
    # Logits are sums over the hidden size of order-1 products: compare relative to their scale.
    assert max_abs_diff(full_mlm, reduced_mlm) / float(np.max(np.abs(full_mlm))) < tolerance


# BertConfig and bad input.


def test_config_json_round_trip_keeps_unknown_keys(tmp_path):
    path = tmp_path / "bert_config.json"
    path.write_text(
        json.dumps(
            {**TINY_CONFIG, "directionality": "bidi", "pooler_fc_size": 768, "hidden_act": "gelu"}
        )
    )
    config = modeling.BertConfig.from_json_file(str(path))
    assert (
        config.directionality == "bidi"
        and config.type_vocab_size == 2
        and config.initializer_range == 0.02
    )
    text = config.to_json_string()
    assert text.startswith('{\n  "attention_probs_dropout_prob": 0.1,\n  "directionality": "bidi",')
    assert (
        json.loads(text) == config.to_dict()
        and modeling.BertConfig.from_dict(json.loads(text)).to_dict() == config.to_dict()
    )
    assert modeling.BertConfig(vocab_size=10).type_vocab_size == 16


def test_a_misspelt_config_key_is_refused_and_the_released_configs_keys_load():
    """#8 of issue 15: a misspelt key would leave its default (12 layers) in place."""
    with pytest.raises(
        errors.InputError,
        match=r"unknown key 'num_hiden_layers' \(did you mean num_hidden_layers\?\)",
    ):
        modeling.BertConfig.from_dict({"vocab_size": 10, "num_hiden_layers": 2})
    with pytest.raises(
        errors.InputError, match="'layer_norm_eps' is a key of a Hugging Face config.json"
    ):
        modeling.BertConfig.from_dict({"vocab_size": 10, "layer_norm_eps": 1e-5})
    # multi_cased_L-12_H-768_A-12/bert_config.json, as released.
    multilingual = {
        "attention_probs_dropout_prob": 0.1,
        "directionality": "bidi",
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": 768,
        "initializer_range": 0.02,
        "intermediate_size": 3072,
        "max_position_embeddings": 512,
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "pooler_fc_size": 768,
        "pooler_num_attention_heads": 12,
        "pooler_num_fc_layers": 3,
        "pooler_size_per_head": 128,
        "pooler_type": "first_token_transform",
        "type_vocab_size": 2,
        "vocab_size": 119547,
    }
    assert modeling.BertConfig.from_dict(multilingual).to_dict() == multilingual


def test_the_config_is_a_plain_holder_as_the_reference_s_is():
    """The reference's own test_config_to_json_string: any values construct and serialise; a
    model is not built from them."""
    config = modeling.BertConfig(vocab_size=99, hidden_size=37)
    assert json.loads(config.to_json_string())["hidden_size"] == 37
    assert modeling.BertConfig.from_dict(config.to_dict()).hidden_size == 37
    with pytest.raises(
        errors.InputError, match="^bert config: hidden_size 37 is not a multiple of num_attention"
    ):
        modeling.BertModel(config)


def test_bad_configs_fail_clearly(tmp_path):
    with pytest.raises(errors.InputError, match="bert config: vocab_size is missing"):
        modeling.BertConfig.from_dict({"hidden_size": 32})
    path = tmp_path / "bert_config.json"
    path.write_text(json.dumps({"hidden_size": 32}))
    with pytest.raises(errors.InputError, match=f"{path}: bert config: vocab_size is missing"):
        modeling.BertConfig.from_json_file(str(path))
    with pytest.raises(
        errors.InputError, match="hidden_size 30 is not a multiple of num_attention_heads 4"
    ):
        modeling.BertModel(tiny_config(hidden_size=30))
    with pytest.raises(errors.InputError, match="hidden_act 'swish' is not one of"):
        modeling.BertModel(tiny_config(hidden_act="swish"))
    for value in (1.0, -0.1, "0.1"):
        with pytest.raises(
            errors.InputError, match=r"hidden_dropout_prob must be in \[0, 1\), got"
        ):
            modeling.BertModel(tiny_config(hidden_dropout_prob=value))
    path.write_text(json.dumps(tiny_config(num_hidden_layers=0).to_dict()))
    with pytest.raises(
        errors.InputError, match=f"^{path}: bert config: num_hidden_layers must be a positive"
    ):
        modeling.BertConfig.from_json_file(str(path))
    path.write_text("{not json")
    with pytest.raises(errors.InputError, match="not valid JSON"):
        modeling.BertConfig.from_json_file(str(path))


def test_checkpoint_that_does_not_match_the_config_fails_before_loading(tmp_path):
    prefix = str(tmp_path / "model.ckpt")
    modeling.save_checkpoint(prefix, modeling.variables_by_name(modeling.BertModel(tiny_config())))
    other = modeling.BertModel(tiny_config(intermediate_size=40))
    before = other.embeddings.word_embeddings.numpy()
    with pytest.raises(
        errors.InputError,
        match=r"bert/encoder/layer_0/intermediate/dense/bias has shape \[37\] but "
        r"the model's is \[40\]",
    ):
        modeling.load_checkpoint(prefix, modeling.variables_by_name(other))
    np.testing.assert_array_equal(before, other.embeddings.word_embeddings.numpy())
    with pytest.raises(
        errors.InputError, match="lacks 16 model variables, first bert/encoder/layer_2/"
    ):
        modeling.load_checkpoint(
            prefix, modeling.variables_by_name(modeling.BertModel(tiny_config(num_hidden_layers=3)))
        )
    with pytest.raises(errors.InputError, match="no such checkpoint"):
        modeling.load_checkpoint(str(tmp_path / "absent.ckpt"), {})


def test_input_longer_than_max_position_embeddings_fails_before_compute():
    model = modeling.BertModel(tiny_config(max_position_embeddings=8))
    with pytest.raises(
        errors.InputError, match="sequence length 9 exceeds max_position_embeddings 8"
    ):
        model(np.ones((2, 9), np.int32))
    with pytest.raises(errors.InputError, match=r"input_ids must be \[batch, seq\]"):
        model(np.ones((9,), np.int32))
