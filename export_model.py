"""Exports a checkpoint as TF-Hub SavedModels (a BERT encoder and its preprocessing) and, for a
fine-tuned classifier, as a SavedModel that TensorFlow Serving answers from raw text.

    python export_model.py --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt --vocab_file=$BERT_BASE_DIR/vocab.txt \
        --do_lower_case=True --export_dir=/tmp/bert_export

Writes, in --export_dir:
  encoder/     the interface of the published bert_en_uncased_L-12_H-768_A-12 encoders:
               encoder({"input_word_ids", "input_mask", "input_type_ids"}: int32 [batch, seq],
               training=False) → {"pooled_output" [batch, H], "sequence_output" [batch, seq, H],
               "encoder_outputs": one [batch, seq, H] per layer, "default": pooled_output};
               trainable variables (reference names), the assets vocab_file and
               bert_config_file, and the do_lower_case variable. Loads with hub.load and
               hub.KerasLayer(trainable=True).
  preprocess/  the matching bert_en_uncased_preprocess interface: preprocess(strings [batch]) →
               the encoder's inputs at --max_seq_length; preprocess.tokenize(strings) → int32
               ragged [batch, (words), (pieces)]; preprocess.bert_pack_inputs([tokens_a,
               (tokens_b)], seq_length=...) → the encoder's inputs (a pair trimmed as the
               reference trims it). Tokenization runs in the graph.
  classifier/1/ when the checkpoint holds a classifier head (output_weights, from
               run_classifier.py): signatures serving_default (text [batch] strings) and
               serve_pairs (text_a, text_b) → {"probabilities" [batch, labels], "label" [batch]},
               labels from --label_list (default 0, 1, ...); classifier.tokenize(strings) as
               preprocess.tokenize. `1` is the version directory TensorFlow Serving expects.
Each SavedModel is written under a temporary name and renamed when complete. The in-graph
tokenizer (tokenization.GraphWordpieceTokenizer, TensorFlow and tensorflow-text ops) gives exactly
FullTokenizer's ids, so a served model answers as run_classifier.py --do_predict does on the same
text, whatever its characters (the published preprocessing models normalise some otherwise:
ß → ss, ½, ², ™ → t ##m, ...); its Unicode tables are those of the exporting Python.
"""

import cpu_kernels  # noqa: F401  (first: what TensorFlow reads when it is imported)
import os

from absl import flags
from absl import logging
import tensorflow as tf

import errors
import file_io
import modeling
import tokenization
import shared_flags

FLAGS = flags.FLAGS

shared_flags.define_model_flags()
shared_flags.define_vocab_flags()
shared_flags.define_max_seq_length()
shared_flags.define_label_list(
    "The classifier's labels, in the order of its outputs (default 0, 1, ...)."
)
shared_flags.define_random_seed(
    "Seeds the encoder's dropout (training=True): fine-tuning through the export draws the same "
    "masks in every run."
)
flags.DEFINE_string("export_dir", None, "Where to write encoder/, preprocess/ and classifier/1/.")

INT_MATRIX = tf.TensorSpec([None, None], tf.int32)
ENCODER_INPUTS = {
    "input_word_ids": INT_MATRIX,
    "input_mask": INT_MATRIX,
    "input_type_ids": INT_MATRIX,
}


class BertPacker(tf.Module):
    """Word pieces of one or two segments → the encoder's inputs, in the graph.

    `[CLS] a [SEP] (b [SEP])`, padded to seq_length; segments are trimmed round-robin, which for
    two segments is the reference's rule of cutting the longer one.
    """

    def __init__(self, cls_id, sep_id):
        super().__init__()
        self.cls_id, self.sep_id = cls_id, sep_id

    def __call__(self, segments, seq_length):
        """segments: list of int ragged [B, (words), (pieces)] or [B, (pieces)] → dict of int32 [B, seq_length]."""
        import tensorflow_text

        segments = [
            tf.cast(s.merge_dims(-2, -1) if s.shape.rank == 3 else s, tf.int32) for s in segments
        ]
        trimmed = tensorflow_text.RoundRobinTrimmer(
            max_seq_length=seq_length - len(segments) - 1
        ).trim(segments)
        ids, type_ids = tensorflow_text.combine_segments(
            trimmed, start_of_sequence_id=self.cls_id, end_of_segment_id=self.sep_id
        )
        word_ids, mask = tensorflow_text.pad_model_inputs(ids, max_seq_length=seq_length)
        type_ids, _ = tensorflow_text.pad_model_inputs(type_ids, max_seq_length=seq_length)
        return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids}


class GraphTokenizer(tf.Module):
    """Strings → word pieces in the graph, exactly FullTokenizer's ids
    (tokenization.GraphWordpieceTokenizer)."""

    def __init__(self, full_tokenizer):
        super().__init__()
        self.graph_tokenizer = tokenization.GraphWordpieceTokenizer(full_tokenizer)
        # Tracked, so that SavedModels keep the WordPiece models (and any special-token table).
        self.resources = self.graph_tokenizer.resources

    def pieces(self, texts):
        """texts: string [B] → int32 ragged [B, (pieces)]."""
        return tf.cast(self.graph_tokenizer.pieces(texts), tf.int32)

    def words(self, texts):
        """texts: string [B] → int32 ragged [B, (words), (pieces)]: a basic token's pieces."""
        return tf.cast(self.graph_tokenizer.words(texts), tf.int32)


def hub_asset_holder(vocab_file, do_lower_case, config_file=None):
    """A trackable carrying the assets Hub BERT users read: vocab_file, do_lower_case (and ours, bert_config_file).

    A tf.train.Checkpoint serves as a plain trackable: unlike tf.Module, it lets `variables` and
    `trainable_variables` be set as the lists the Reusable SavedModel interface asks for.
    """
    holder = tf.train.Checkpoint()
    holder.vocab_file = tf.saved_model.Asset(vocab_file)
    holder.do_lower_case = tf.Variable(do_lower_case, trainable=False, name="do_lower_case")
    if config_file:
        holder.bert_config_file = tf.saved_model.Asset(config_file)
    return holder


def encoder_export(bert, vocab_file, do_lower_case, config_file, random_seed):
    """The Hub encoder object around a restored BertModel.

    Its dropout draws its masks' seeds with a stateful op, whose own seed is fixed when the
    function is traced: without a global seed then, every process that loads the export would
    draw other masks, and fine-tuning through it could not be repeated.
    """
    export = hub_asset_holder(vocab_file, do_lower_case, config_file)
    export.bert = bert

    @tf.function
    def call(inputs, training=False):
        outputs = bert(
            inputs["input_word_ids"],
            inputs["input_mask"],
            inputs["input_type_ids"],
            training=training,
        )
        return {
            "pooled_output": outputs.pooled_output,
            "sequence_output": outputs.sequence_output,
            "encoder_outputs": outputs.all_encoder_layers,
            "default": outputs.pooled_output,
        }

    tf.random.set_seed(random_seed)
    for training_mode in (False, True):
        call.get_concrete_function(ENCODER_INPUTS, training=training_mode)
    export.__call__ = call
    export.variables = list(bert.variables)
    export.trainable_variables = list(bert.trainable_variables)
    export.regularization_losses = []
    return export


def preprocess_export(graph_tokenizer, packer, vocab_file, do_lower_case, seq_length):
    """The Hub preprocessing object: __call__, tokenize and bert_pack_inputs."""
    export = hub_asset_holder(vocab_file, do_lower_case)
    export.tokenizer, export.packer = graph_tokenizer, packer
    texts = tf.TensorSpec([None], tf.string)

    export.tokenize = tf.function(export.tokenizer.words, input_signature=[texts])
    export.__call__ = tf.function(
        lambda strings: export.packer([export.tokenizer.words(strings)], seq_length),
        input_signature=[texts],
    )

    @tf.function
    def bert_pack_inputs(inputs, seq_length=seq_length):
        return export.packer(inputs, seq_length)

    words = tf.RaggedTensorSpec(
        [None, None, None], tf.int32, ragged_rank=2, row_splits_dtype=tf.int64
    )
    pieces = tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1, row_splits_dtype=tf.int64)
    length = tf.TensorSpec([], tf.int32)
    for spec in (words, pieces):
        for count in (1, 2):
            bert_pack_inputs.get_concrete_function([spec] * count)
            bert_pack_inputs.get_concrete_function([spec] * count, length)
    export.bert_pack_inputs = bert_pack_inputs
    return export


def classifier_export(model, graph_tokenizer, packer, labels, seq_length):
    """The serving object of a fine-tuned classifier, with its two signatures."""
    export = tf.Module()
    export.model, export.tokenizer, export.packer = model, graph_tokenizer, packer
    export.labels = tf.constant(labels)

    def classify(segments):
        inputs = export.packer([export.tokenizer.pieces(s) for s in segments], seq_length)
        probabilities = tf.nn.softmax(
            model(inputs["input_word_ids"], inputs["input_mask"], inputs["input_type_ids"])
        )
        return {
            "probabilities": probabilities,
            "label": tf.gather(export.labels, tf.argmax(probabilities, axis=-1)),
        }

    texts = tf.TensorSpec([None], tf.string)
    export.tokenize = tf.function(export.tokenizer.words, input_signature=[texts])
    export.serve = tf.function(lambda text: classify([text]), input_signature=[texts])
    export.serve_pairs = tf.function(
        lambda text_a, text_b: classify([text_a, text_b]), input_signature=[texts, texts]
    )
    return export, {"serving_default": export.serve, "serve_pairs": export.serve_pairs}


def save_atomically(export, path, signatures=None):
    """tf.saved_model.save into a hidden temporary directory beside `path`, then published to it
    (saved_model.pb last on object stores: a loader never sees half an export)."""
    temporary = file_io.temporary_path(path)
    try:
        with file_io.reporting(path, ": cannot be written", "--export_dir: "):
            tf.saved_model.save(export, temporary, signatures=signatures)
            file_io.publish_directory(temporary, path)
    finally:
        if file_io.exists(temporary):
            file_io.rmtree(temporary)
    logging.info("Wrote %s", path)


def main(argv):
    del argv
    for name in ("bert_config_file", "init_checkpoint", "vocab_file", "export_dir"):
        if not getattr(FLAGS, name):
            raise errors.InputError(f"--{name} is required")
    config = modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
    modeling.check_max_seq_length(FLAGS.max_seq_length, config, FLAGS.bert_config_file)
    tokenization.validate_case_matches_checkpoint(FLAGS.do_lower_case, FLAGS.init_checkpoint)
    tokenizer = tokenization.FullTokenizer(FLAGS.vocab_file, FLAGS.do_lower_case)
    if len(tokenizer.vocab) != config.vocab_size:
        raise errors.InputError(
            f"--vocab_file={FLAGS.vocab_file} has {len(tokenizer.vocab)} tokens but "
            f"{FLAGS.bert_config_file} says vocab_size {config.vocab_size}"
        )
    checkpoint = modeling.resolve_checkpoint(FLAGS.init_checkpoint)
    shapes = modeling.checkpoint_shapes(checkpoint)
    file_io.prepare_output_dir(FLAGS.export_dir, "export_dir")

    bert = modeling.BertModel(config)
    modeling.load_checkpoint(checkpoint, modeling.variables_by_name(bert))
    save_atomically(
        encoder_export(
            bert, FLAGS.vocab_file, FLAGS.do_lower_case, FLAGS.bert_config_file, FLAGS.random_seed
        ),
        os.path.join(FLAGS.export_dir, "encoder"),
    )
    # One in-graph tokenizer for both exports (its character tables are built once).
    graph_tokenizer = GraphTokenizer(tokenizer)
    packer = BertPacker(tokenizer.vocab["[CLS]"], tokenizer.vocab["[SEP]"])
    save_atomically(
        preprocess_export(
            graph_tokenizer, packer, FLAGS.vocab_file, FLAGS.do_lower_case, FLAGS.max_seq_length
        ),
        os.path.join(FLAGS.export_dir, "preprocess"),
    )
    if "output_weights" in shapes:
        num_labels = shapes["output_weights"][0]
        labels = FLAGS.label_list or [str(i) for i in range(num_labels)]
        if len(labels) != num_labels:
            raise errors.InputError(
                f"--label_list has {len(labels)} labels but the classifier in {checkpoint} "
                f"has {num_labels} outputs"
            )
        model = modeling.BertClassifierModel(config, num_labels, encoder=bert)
        modeling.load_checkpoint(checkpoint, modeling.variables_by_name(model))
        export, signatures = classifier_export(
            model, graph_tokenizer, packer, labels, FLAGS.max_seq_length
        )
        file_io.makedirs(os.path.join(FLAGS.export_dir, "classifier"), "--export_dir: ")
        save_atomically(export, os.path.join(FLAGS.export_dir, "classifier", "1"), signatures)


if __name__ == "__main__":
    errors.run_script(main)
