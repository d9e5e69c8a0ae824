"""Pretrains BERT (masked LM + next sentence prediction) on TFRecords from create_pretraining_data.py.

    python run_pretraining.py --input_file=/tmp/tf_examples.tfrecord --output_dir=/tmp/pretraining_output \
        --do_train=True --do_eval=True --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt --train_batch_size=32 --max_seq_length=128 \
        --max_predictions_per_seq=20 --num_train_steps=20 --num_warmup_steps=10 --learning_rate=2e-5

Add --use_tpu --tpu_name=... for a Cloud TPU; several GPUs are used as they are found, several
machines through TF_CONFIG (see the README). Running the same command again after a crash or a
preemption resumes from the newest checkpoint in --output_dir.

Losses as the reference: masked LM Σ(w · cross-entropy) / (Σw + 1e-5) over the predicted
positions, next sentence the mean cross-entropy on the pooled output (label 1 = random next),
their sum the training loss. --do_eval writes eval_results.txt to --output_dir.

--dynamic_masking (beyond the reference, as RoBERTa) draws fresh masks every time a record is
read, from records written with --dupe_factor=1 or masked ones alike (their masks are ignored):
num_to_predict = min(max_predictions_per_seq, max(1, round(tokens · masked_lm_prob))) positions
among the non-special tokens, 80% [MASK], 10% random, 10% kept.
"""

import cpu_kernels  # noqa: F401  (first: what TensorFlow reads when it is imported)
import functools
import os

from absl import flags
from absl import logging
import tensorflow as tf

import errors
import file_io
import modeling
import shared_flags
import tokenization
import training

FLAGS = flags.FLAGS

shared_flags.define_training_flags()
shared_flags.define_eval_flags()
shared_flags.define_input_file("Input TF example files (can be a glob or comma separated).")
shared_flags.define_max_seq_length()
shared_flags.define_masking_flags()
shared_flags.define_vocab_file(
    "With --dynamic_masking: the vocabulary, for the ids of [CLS], [SEP], [MASK]."
)
flags.DEFINE_string(
    "eval_input_file",
    None,
    "Evaluation TF example files (default: --input_file, as the reference).",
)
flags.DEFINE_integer("num_train_steps", 100000, "Number of training steps.", lower_bound=1)
flags.DEFINE_integer("num_warmup_steps", 10000, "Number of warmup steps.", lower_bound=0)
flags.DEFINE_integer("max_eval_steps", 100, "Maximum number of eval steps.", lower_bound=1)
flags.DEFINE_bool(
    "dynamic_masking", False, "Draw fresh masks each time a record is read (needs --vocab_file)."
)

METRIC_NAMES = (
    "masked_lm_accuracy",
    "masked_lm_loss",
    "next_sentence_accuracy",
    "next_sentence_loss",
)
MASKED_LM_DENOMINATOR_EPSILON = 1e-5


def record_features(max_seq_length, max_predictions_per_seq, with_masks=True):
    """The reference pretraining TFRecord schema."""
    features = {
        "input_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "input_mask": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "segment_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
    }
    if with_masks:
        features.update(
            {
                "masked_lm_positions": tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64),
                "masked_lm_ids": tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64),
                "masked_lm_weights": tf.io.FixedLenFeature([max_predictions_per_seq], tf.float32),
            }
        )
    return features


def dynamic_masking(
    features, special_ids, mask_id, vocab_size, max_predictions_per_seq, masked_lm_prob
):
    """Adds fresh masked_lm_positions / ids / weights to a batch and masks its input_ids.

    features: input_ids, input_mask int32 [B, S] → the same dict plus masked_lm_* [B, P].
    """
    input_ids = features["input_ids"]
    shape = tf.shape(input_ids)
    candidate = tf.cast(features["input_mask"], tf.bool)
    for special_id in special_ids:
        candidate &= tf.not_equal(input_ids, special_id)
    num_tokens = tf.reduce_sum(tf.cast(features["input_mask"], tf.float32), axis=1)  # [B]
    num_to_predict = tf.minimum(
        max_predictions_per_seq,
        tf.maximum(1, tf.cast(tf.round(num_tokens * masked_lm_prob), tf.int32)),
    )
    # A random order of the candidates first: the first num_to_predict of it are predicted.
    scores = tf.where(candidate, tf.random.uniform(shape), -1.0)
    _, order = tf.math.top_k(scores, k=max_predictions_per_seq)  # [B, P]
    chosen = tf.range(max_predictions_per_seq)[tf.newaxis, :] < num_to_predict[:, tf.newaxis]
    chosen &= tf.gather(candidate, order, batch_dims=1)
    # Predictions sorted by position, as the reference writes them; unused slots at the end.
    positions = tf.sort(tf.where(chosen, order, shape[1]), axis=1)
    weights = tf.cast(positions < shape[1], tf.float32)
    positions = tf.where(positions < shape[1], positions, 0)
    original = tf.gather(input_ids, positions, batch_dims=1)
    draw = tf.random.uniform(tf.shape(positions))
    random_words = tf.random.uniform(tf.shape(positions), maxval=vocab_size, dtype=input_ids.dtype)
    replacement = tf.where(
        draw < 0.8, tf.cast(mask_id, input_ids.dtype), tf.where(draw < 0.9, original, random_words)
    )
    replacement = tf.where(weights > 0, replacement, original)
    row = tf.broadcast_to(tf.range(shape[0])[:, tf.newaxis], tf.shape(positions))
    masked_ids = tf.tensor_scatter_nd_update(input_ids, tf.stack([row, positions], -1), replacement)
    return {
        **features,
        "input_ids": masked_ids,
        "masked_lm_positions": positions,
        "masked_lm_ids": tf.where(weights > 0, original, 0),
        "masked_lm_weights": weights,
    }


def pretraining_losses(model, features, training, example_weights=None):
    """Masked LM and next-sentence losses and metric pairs for one batch.

    Returns (total loss, {metric: (numerator, denominator)}); example_weights [B] (is_real_example)
    leaves out padding examples at evaluation.
    """
    mlm_logits, nsp_logits = model(
        features["input_ids"],
        features["input_mask"],
        features["segment_ids"],
        features["masked_lm_positions"],
        training=training,
    )  # [B, P, V], [B, 2]
    example_weights = (
        tf.ones([tf.shape(nsp_logits)[0]])
        if example_weights is None
        else tf.cast(example_weights, tf.float32)
    )
    mlm_weights = features["masked_lm_weights"] * example_weights[:, tf.newaxis]  # [B, P]
    mlm_losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
        features["masked_lm_ids"], mlm_logits
    )  # [B, P]
    mlm_loss = tf.reduce_sum(mlm_weights * mlm_losses) / (
        tf.reduce_sum(mlm_weights) + MASKED_LM_DENOMINATOR_EPSILON
    )
    nsp_labels = tf.reshape(features["next_sentence_labels"], [-1])
    nsp_losses = tf.nn.sparse_softmax_cross_entropy_with_logits(nsp_labels, nsp_logits)  # [B]
    nsp_loss = tf.reduce_sum(nsp_losses * example_weights) / tf.maximum(
        tf.reduce_sum(example_weights), 1.0
    )
    mlm_correct = tf.cast(
        tf.equal(tf.argmax(mlm_logits, -1, output_type=tf.int32), features["masked_lm_ids"]),
        tf.float32,
    )
    nsp_correct = tf.cast(
        tf.equal(tf.argmax(nsp_logits, -1, output_type=tf.int32), nsp_labels), tf.float32
    )
    metrics = {
        "masked_lm_accuracy": (
            tf.reduce_sum(mlm_correct * mlm_weights),
            tf.reduce_sum(mlm_weights),
        ),
        "masked_lm_loss": (tf.reduce_sum(mlm_losses * mlm_weights), tf.reduce_sum(mlm_weights)),
        "next_sentence_accuracy": (
            tf.reduce_sum(nsp_correct * example_weights),
            tf.reduce_sum(example_weights),
        ),
        "next_sentence_loss": (
            tf.reduce_sum(nsp_losses * example_weights),
            tf.reduce_sum(example_weights),
        ),
    }
    return mlm_loss + nsp_loss, metrics


def pretraining_training_loss(model, features):
    """The engine's compute_loss: (total loss, metric pairs) with dropout."""
    return pretraining_losses(model, features, True)


def pretraining_eval_metrics(model, features):
    """The engine's compute_metrics: metric pairs and the loss, padding examples weighing nothing."""
    loss, metrics = pretraining_losses(model, features, False, features["is_real_example"])
    return {**metrics, "loss": (loss, tf.constant(1.0))}


def make_parse_batch():
    """Serialized records [b] → features, with fresh masks under --dynamic_masking."""
    parse = training.parse_records(
        record_features(
            FLAGS.max_seq_length,
            FLAGS.max_predictions_per_seq,
            with_masks=not FLAGS.dynamic_masking,
        )
    )
    if not FLAGS.dynamic_masking:
        return parse
    if not FLAGS.vocab_file:
        raise errors.InputError("--dynamic_masking needs --vocab_file")
    vocab = tokenization.load_vocab(FLAGS.vocab_file)
    for token in ("[CLS]", "[SEP]", "[MASK]"):
        if token not in vocab:
            raise errors.InputError(f"--vocab_file: {FLAGS.vocab_file} has no {token} token")
    special_ids = (vocab["[CLS]"], vocab["[SEP]"])
    return lambda serialized: dynamic_masking(
        parse(serialized),
        special_ids,
        vocab["[MASK]"],
        len(vocab),
        FLAGS.max_predictions_per_seq,
        FLAGS.masked_lm_prob,
    )


def main(argv):
    del argv
    if not FLAGS.do_train and not FLAGS.do_eval:
        raise errors.InputError("at least one of --do_train or --do_eval must be True")
    if not FLAGS.bert_config_file:
        raise errors.InputError("--bert_config_file is required")

    # Data.
    # First: several machines must be joined before any other TensorFlow work.
    strategy = training.create_strategy(**shared_flags.strategy_options())
    config = modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
    modeling.check_max_seq_length(FLAGS.max_seq_length, config, FLAGS.bert_config_file, minimum=1)
    train_files = file_io.expand_input_files(FLAGS.input_file, "input_file")
    eval_files = (
        file_io.expand_input_files(FLAGS.eval_input_file, "eval_input_file")
        if FLAGS.eval_input_file
        else train_files
    )
    expected = {"input_ids": (FLAGS.max_seq_length, "--max_seq_length")}
    if not FLAGS.dynamic_masking:
        expected["masked_lm_positions"] = (
            FLAGS.max_predictions_per_seq,
            "--max_predictions_per_seq",
        )
    for path in {train_files[0], eval_files[0]}:
        training.check_record_lengths(path, expected)
    parse_batch = make_parse_batch()

    # Model.
    trainer = training.Trainer(
        functools.partial(modeling.BertPretrainingModel, config),
        strategy,
        eval_batch_size=FLAGS.eval_batch_size,
        **shared_flags.trainer_options(),
    )

    # Loop.
    if FLAGS.do_train:
        logging.info(
            "Training %d steps of %d sequences", FLAGS.num_train_steps, FLAGS.train_batch_size
        )
        trainer.train(
            train_files,
            parse_batch,
            pretraining_training_loss,
            METRIC_NAMES,
            FLAGS.num_train_steps,
            FLAGS.num_warmup_steps,
        )

    # Outputs.
    if FLAGS.do_eval:
        results = trainer.evaluate(
            eval_files,
            parse_batch,
            pretraining_eval_metrics,
            METRIC_NAMES + ("loss",),
            max_steps=FLAGS.max_eval_steps,
        )
        if trainer.chief:
            training.write_results(os.path.join(FLAGS.output_dir, "eval_results.txt"), results)


if __name__ == "__main__":
    errors.run_script(main)
