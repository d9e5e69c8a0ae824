"""Runs the reference implementation (PyPI bert-tensorflow 1.0.4, TF1 code) on TF2 as an oracle.

    python tests/reference_oracle.py CHECKPOINT BERT_CONFIG INPUTS.npz OUTPUT.npz

Restores CHECKPOINT exactly as the reference's scripts do (get_assignment_map_from_checkpoint +
init_from_checkpoint) into the reference's BertModel, runs it on input_ids / input_mask /
token_type_ids from INPUTS.npz, and saves sequence_output, pooled_output and the number of
variables restored. A test-only harness: it must run in its own process, because the shims below
(legacy Keras for tf.layers, a stand-in for the removed tf.contrib.layers.layer_norm) have to be
in place before TensorFlow and the reference are imported.
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

from bert import modeling as reference  # noqa: E402

reference.tf = v1


def main(checkpoint, config_file, inputs_file, output_file):
    inputs = np.load(inputs_file)
    with tf.Graph().as_default():
        model = reference.BertModel(
            config=reference.BertConfig.from_json_file(config_file), is_training=False,
            input_ids=tf.constant(inputs["input_ids"], tf.int32), input_mask=tf.constant(inputs["input_mask"], tf.int32),
            token_type_ids=tf.constant(inputs["token_type_ids"], tf.int32))
        assignment_map, restored = reference.get_assignment_map_from_checkpoint(v1.trainable_variables(), checkpoint)
        v1.train.init_from_checkpoint(checkpoint, assignment_map)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            sequence_output, pooled_output = session.run([model.get_sequence_output(), model.get_pooled_output()])
        num_trainable = len(v1.trainable_variables())
    np.savez(output_file, sequence_output=sequence_output, pooled_output=pooled_output,
             num_restored=len(assignment_map), num_trainable=num_trainable)


if __name__ == "__main__":
    main(*sys.argv[1:])
