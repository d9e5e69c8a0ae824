"""Runs the reference implementation (PyPI bert-tensorflow 1.0.4, TF1 code) on TF2 as an oracle.

    python tests/reference_oracle.py model CHECKPOINT BERT_CONFIG INPUTS.npz OUTPUT.npz
    python tests/reference_oracle.py pretraining-data TEXT_FILE VOCAB_FILE
    python tests/reference_oracle.py squad SQUAD_JSON VOCAB_FILE SETTINGS_JSON OUTPUT_DIR

model: restores CHECKPOINT exactly as the reference's scripts do (get_assignment_map_from_checkpoint
+ init_from_checkpoint) into the reference's BertModel, runs it on input_ids / input_mask /
token_type_ids from INPUTS.npz, and saves sequence_output, pooled_output and the number of
variables restored.
pretraining-data: the reference's create_training_instances on TEXT_FILE (max_seq_length 128,
dupe_factor 5, seed 12345); prints the share of random next sentences.
squad: the reference's read_squad_examples and convert_examples_to_features on SQUAD_JSON with the
settings in SETTINGS_JSON (max_seq_length, doc_stride, max_query_length, is_training,
version_2_with_negative, do_lower_case), written to OUTPUT_DIR/features.json; for prediction,
write_predictions (n_best_size, max_answer_length, null_score_diff_threshold) on the logits of
OUTPUT_DIR/logits.npz (start_<unique_id>, end_<unique_id>), written to OUTPUT_DIR as the reference
names its files.

A test-only harness: it must run in its own process, because the shims below (legacy Keras for
tf.layers, a stand-in for the removed tf.contrib.layers.layer_norm, tf.gfile from compat.v1) have
to be in place before TensorFlow and the reference are imported.
"""

import os
import sys
import types

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

v1 = tf.compat.v1


def contrib_layer_norm(inputs, begin_norm_axis=-1, begin_params_axis=-1, scope=None):
    """tf.contrib.layers.layer_norm over the last axis, with its variable names (epsilon 1e-12)."""
    del begin_norm_axis, begin_params_axis
    with v1.variable_scope(scope, default_name="LayerNorm"):
        size = inputs.shape[-1]
        gamma = v1.get_variable("gamma", [size], initializer=v1.ones_initializer())
        beta = v1.get_variable("beta", [size], initializer=v1.zeros_initializer())
        mean, variance = tf.nn.moments(inputs, axes=[-1], keepdims=True)
        return (inputs - mean) * tf.math.rsqrt(variance + 1e-12) * gamma + beta


contrib = types.ModuleType("tensorflow.contrib")
contrib.layers = types.SimpleNamespace(layer_norm=contrib_layer_norm)
sys.modules["tensorflow.contrib"] = contrib

from absl import flags  # noqa: E402
from bert import create_pretraining_data as reference_data  # noqa: E402
from bert import modeling as reference  # noqa: E402
from bert import tokenization as reference_tokenization  # noqa: E402

reference.tf = reference_data.tf = reference_tokenization.tf = v1
flags.FLAGS.mark_as_parsed()  # the reference modules read flags while they run


def run_model(checkpoint, config_file, inputs_file, output_file):
    inputs = np.load(inputs_file)
    with tf.Graph().as_default():
        model = reference.BertModel(
            config=reference.BertConfig.from_json_file(config_file),
            is_training=False,
            input_ids=tf.constant(inputs["input_ids"], tf.int32),
            input_mask=tf.constant(inputs["input_mask"], tf.int32),
            token_type_ids=tf.constant(inputs["token_type_ids"], tf.int32),
        )
        assignment_map, restored = reference.get_assignment_map_from_checkpoint(
            v1.trainable_variables(), checkpoint
        )
        v1.train.init_from_checkpoint(checkpoint, assignment_map)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            sequence_output, pooled_output = session.run(
                [model.get_sequence_output(), model.get_pooled_output()]
            )
        num_trainable = len(v1.trainable_variables())
    np.savez(
        output_file,
        sequence_output=sequence_output,
        pooled_output=pooled_output,
        num_restored=len(assignment_map),
        num_trainable=num_trainable,
    )


def random_next_shares(text_file, vocab_file):
    import random

    tokenizer = reference_tokenization.FullTokenizer(vocab_file, do_lower_case=True)
    instances = reference_data.create_training_instances(
        [text_file],
        tokenizer,
        max_seq_length=128,
        dupe_factor=5,
        short_seq_prob=0.1,
        masked_lm_prob=0.15,
        max_predictions_per_seq=20,
        rng=random.Random(12345),
    )
    print(sum(instance.is_random_next for instance in instances) / len(instances))


def squad(squad_file, vocab_file, settings_file, output_dir):
    import json

    with open(settings_file) as reader:
        settings = json.load(reader)
    for name in (
        "do_lower_case",
        "vocab_file",
        "max_seq_length",
    ):  # defined by create_pretraining_data too
        delattr(flags.FLAGS, name)
    tf.flags = v1.flags  # the reference's run_squad reads tf.flags when imported
    from bert import run_squad as reference_squad

    reference_squad.tf = v1
    flags.FLAGS.mark_as_parsed()
    flags.FLAGS.version_2_with_negative = settings["version_2_with_negative"]
    flags.FLAGS.null_score_diff_threshold = settings.get("null_score_diff_threshold", 0.0)
    tokenizer = reference_tokenization.FullTokenizer(
        vocab_file, do_lower_case=settings["do_lower_case"]
    )
    examples = reference_squad.read_squad_examples(squad_file, settings["is_training"])
    features = []
    reference_squad.convert_examples_to_features(
        examples,
        tokenizer,
        settings["max_seq_length"],
        settings["doc_stride"],
        settings["max_query_length"],
        settings["is_training"],
        features.append,
    )
    with open(os.path.join(output_dir, "features.json"), "w") as writer:
        json.dump(
            [
                {
                    "unique_id": f.unique_id,
                    "example_index": f.example_index,
                    "tokens": f.tokens,
                    "token_to_orig_map": f.token_to_orig_map,
                    "token_is_max_context": f.token_is_max_context,
                    "input_ids": f.input_ids,
                    "segment_ids": f.segment_ids,
                    "start_position": f.start_position,
                    "end_position": f.end_position,
                }
                for f in features
            ],
            writer,
        )
    if settings["is_training"]:
        return
    logits = np.load(os.path.join(output_dir, "logits.npz"))
    results = [
        reference_squad.RawResult(
            f.unique_id,
            logits[f"start_{f.unique_id}"].tolist(),
            logits[f"end_{f.unique_id}"].tolist(),
        )
        for f in features
    ]
    reference_squad.write_predictions(
        examples,
        features,
        results,
        settings["n_best_size"],
        settings["max_answer_length"],
        settings["do_lower_case"],
        *(
            os.path.join(output_dir, name)
            for name in ("predictions.json", "nbest_predictions.json", "null_odds.json")
        ),
    )


if __name__ == "__main__":
    {"model": run_model, "pretraining-data": random_next_shares, "squad": squad}[sys.argv[1]](
        *sys.argv[2:]
    )
