"""Encoder throughput against transformers on torch CPU, side by side from one run.

    .venv/bin/python benchmarks/bench_modeling.py [--batch_size=8] [--seq_length=128] [--models=base,mini]

For BERT-Base (L12 H768 A12) and BERT-Mini (L4 H256 A4), random weights, one batch of
--batch_size sequences of --seq_length tokens (a quarter of them padding):
  forward            sequence output, no dropout
  forward+backward   gradients of sum(sequence_output · R) for every weight, dropout on
Ours runs as a tf.function compiled with XLA (and without, for reference); transformers runs
BertModel with eager and with sdpa attention, and the better of the two is the baseline.
Each figure is the best of --repeats timed calls after two warm-up calls; both frameworks use
every core. Ratios above 1.0 mean ours is faster.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

flags.DEFINE_integer("batch_size", 8, "Sequences per batch.")
flags.DEFINE_integer("seq_length", 128, "Tokens per sequence.")
flags.DEFINE_integer("repeats", 3, "Timed calls per measurement; the best is reported.")
flags.DEFINE_list("models", ["base", "mini"], "Which of base, mini to run.")
FLAGS = flags.FLAGS

SIZES = {"base": (12, 768, 12), "mini": (4, 256, 4)}


def best_seconds(function):
    function()
    function()
    best = float("inf")
    for _ in range(FLAGS.repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def make_batch():
    rng = np.random.RandomState(0)
    batch, seq = FLAGS.batch_size, FLAGS.seq_length
    input_ids = rng.randint(1000, 30000, size=(batch, seq)).astype(np.int32)
    input_mask = np.ones((batch, seq), np.int32)
    input_mask[:, seq * 3 // 4 :] = 0
    token_type_ids = np.zeros((batch, seq), np.int32)
    token_type_ids[:, seq // 2 :] = 1
    return input_ids, input_mask, token_type_ids


def time_ours(layers, hidden, heads, batch):
    import tensorflow as tf
    import modeling

    config = modeling.BertConfig(
        vocab_size=30522,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        type_vocab_size=2,
    )
    model = modeling.BertModel(config)
    inputs = [tf.constant(x) for x in batch]
    weights = tf.constant(
        np.random.RandomState(1).normal(size=(FLAGS.batch_size, FLAGS.seq_length, hidden)),
        tf.float32,
    )

    def forward():
        return model(*inputs, training=False).sequence_output

    def forward_backward():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(*inputs, training=True).sequence_output * weights)
        return tape.gradient(loss, model.trainable_variables)

    results = {}
    for label, jit in (("xla", True), ("no xla", False)):
        compiled_forward = tf.function(forward, jit_compile=jit)
        compiled_backward = tf.function(forward_backward, jit_compile=jit)
        results[label] = (
            best_seconds(lambda: compiled_forward().numpy()),
            best_seconds(lambda: [g.numpy() for g in compiled_backward() if hasattr(g, "numpy")]),
        )
    return results


def time_transformers(layers, hidden, heads, batch):
    import torch
    from transformers import BertConfig, BertModel

    inputs = dict(
        input_ids=torch.tensor(batch[0], dtype=torch.long),
        attention_mask=torch.tensor(batch[1], dtype=torch.long),
        token_type_ids=torch.tensor(batch[2], dtype=torch.long),
    )
    weights = torch.tensor(
        np.random.RandomState(1).normal(size=(FLAGS.batch_size, FLAGS.seq_length, hidden)),
        dtype=torch.float32,
    )
    results = {}
    for attention in ("eager", "sdpa"):
        torch.manual_seed(0)
        config = BertConfig(
            vocab_size=30522,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=4 * hidden,
            attn_implementation=attention,
        )
        model = BertModel(config)

        def forward():
            model.eval()
            with torch.no_grad():
                return model(**inputs).last_hidden_state

        def forward_backward():
            model.train()
            model.zero_grad(set_to_none=True)
            (model(**inputs).last_hidden_state * weights).sum().backward()

        results[attention] = (best_seconds(forward), best_seconds(forward_backward))
    return results


def main(argv):
    del argv
    batch = make_batch()
    print(
        f"batch {FLAGS.batch_size} × seq {FLAGS.seq_length}, best of {FLAGS.repeats}; sequences/s"
    )
    print(
        f"{'model':<6} {'pass':<17} {'ours xla':>9} {'ours':>9} {'hf eager':>9} {'hf sdpa':>9} {'ratio':>7}"
    )
    for name in FLAGS.models:
        ours = time_ours(*SIZES[name], batch)
        theirs = time_transformers(*SIZES[name], batch)
        for index, label in enumerate(("forward", "forward+backward")):
            rate = {
                key: FLAGS.batch_size / value[index] for key, value in {**ours, **theirs}.items()
            }
            ratio = rate["xla"] / max(rate["eager"], rate["sdpa"])
            print(
                f"{name:<6} {label:<17} {rate['xla']:>9.1f} {rate['no xla']:>9.1f} {rate['eager']:>9.1f} "
                f"{rate['sdpa']:>9.1f} {ratio:>6.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    app.run(main)
