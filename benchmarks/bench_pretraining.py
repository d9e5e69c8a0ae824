"""Pretraining throughput: run_pretraining.py against a transformers training step, from one run.

    .venv/bin/python benchmarks/bench_pretraining.py [--batch_size=8] [--models=base,mini]

Ours: the real command, run_pretraining.py on random records (seq 128, 20 predictions), with
XLA; examples/s is the engine's own figure for its last host loop, after compilation.
Theirs: transformers' BertForPreTraining on torch CPU (sdpa attention), a training step with
torch.optim.AdamW on the same batch shape: forward (masked-LM logits at every position, as
transformers computes them), backward, clip to norm 1.0, update. Best of --repeats steps after
two warm-up steps. Both use every core; ratios above 1.0 mean ours is faster.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

flags.DEFINE_integer("batch_size", 8, "Sequences per training step.")
flags.DEFINE_integer(
    "repeats", 3, "transformers: timed steps, the best counts. Ours: host loops of 3 steps."
)
flags.DEFINE_list("models", ["base", "mini"], "Which of base, mini to run.")
FLAGS = flags.FLAGS

SIZES = {"base": (12, 768, 12), "mini": (4, 256, 4)}
SEQ, PREDICTIONS, VOCAB = 128, 20, 30522


def write_records(path, count):
    import file_io
    import tensorflow as tf

    rng = np.random.RandomState(0)

    def int_feature(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

    with file_io.TFRecordWriter(path) as writer:
        for _ in range(count):
            features = {
                "input_ids": int_feature(rng.randint(1000, VOCAB, SEQ)),
                "input_mask": int_feature([1] * SEQ),
                "segment_ids": int_feature([0] * 64 + [1] * 64),
                "masked_lm_positions": int_feature(
                    np.sort(rng.choice(np.arange(1, SEQ), PREDICTIONS, replace=False))
                ),
                "masked_lm_ids": int_feature(rng.randint(1000, VOCAB, PREDICTIONS)),
                "next_sentence_labels": int_feature([rng.randint(2)]),
                "masked_lm_weights": tf.train.Feature(
                    float_list=tf.train.FloatList(value=[1.0] * PREDICTIONS)
                ),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()
            )


def ours(layers, hidden, heads, work):
    import tensorflow as tf

    config = {
        "vocab_size": VOCAB,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": 4 * hidden,
        "type_vocab_size": 2,
    }
    config_file = os.path.join(work, f"config_{hidden}.json")
    with open(config_file, "w") as writer:
        json.dump(config, writer)
    output_dir = os.path.join(work, f"out_{hidden}")
    steps_per_loop = 3
    command = [
        sys.executable,
        os.path.join(REPO_ROOT, "run_pretraining.py"),
        f"--input_file={work}/records.tfrecord",
        f"--output_dir={output_dir}",
        f"--bert_config_file={config_file}",
        "--do_train=True",
        f"--train_batch_size={FLAGS.batch_size}",
        f"--max_seq_length={SEQ}",
        f"--max_predictions_per_seq={PREDICTIONS}",
        f"--iterations_per_loop={steps_per_loop}",
        f"--num_train_steps={steps_per_loop * (FLAGS.repeats + 1)}",
        "--num_warmup_steps=1",
        "--save_checkpoints_steps=100000",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(result.stderr[-3000:])
    rates = []
    for path in tf.io.gfile.glob(os.path.join(output_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if (
                    value.tag == "examples_per_second" and event.step > steps_per_loop
                ):  # the first loop compiles
                    rates.append(float(tf.make_ndarray(value.tensor)))
    return max(rates)


def theirs(layers, hidden, heads):
    import torch
    from transformers import BertConfig, BertForPreTraining

    torch.manual_seed(0)
    model = BertForPreTraining(
        BertConfig(
            vocab_size=VOCAB,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=4 * hidden,
            attn_implementation="sdpa",
        )
    ).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, eps=1e-6)
    rng = np.random.RandomState(0)
    input_ids = torch.tensor(rng.randint(1000, VOCAB, (FLAGS.batch_size, SEQ)))
    labels = torch.full((FLAGS.batch_size, SEQ), -100)
    for row in range(FLAGS.batch_size):
        positions = rng.choice(np.arange(1, SEQ), PREDICTIONS, replace=False)
        labels[row, positions] = torch.tensor(rng.randint(1000, VOCAB, PREDICTIONS))
    token_type_ids = torch.tensor([[0] * 64 + [1] * 64] * FLAGS.batch_size)
    next_sentence_label = torch.tensor(rng.randint(0, 2, FLAGS.batch_size))

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = model(
            input_ids=input_ids,
            token_type_ids=token_type_ids,
            labels=labels,
            next_sentence_label=next_sentence_label,
        ).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    step()
    step()
    best = float("inf")
    for _ in range(FLAGS.repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return FLAGS.batch_size / best


def main(argv):
    del argv
    work = tempfile.mkdtemp()
    write_records(os.path.join(work, "records.tfrecord"), 512)
    print(
        f"pretraining step, batch {FLAGS.batch_size} × seq {SEQ}, {PREDICTIONS} predictions; examples/s"
    )
    print(f"{'model':<6} {'ours (XLA)':>11} {'transformers':>13} {'ratio':>7}")
    for name in FLAGS.models:
        our_rate, their_rate = ours(*SIZES[name], work), theirs(*SIZES[name])
        print(
            f"{name:<6} {our_rate:>11.2f} {their_rate:>13.2f} {our_rate / their_rate:>6.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    app.run(main)
