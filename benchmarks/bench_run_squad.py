"""run_squad.py's host-side work against the reference, from one run: reading and featurizing
questions (train and predict), and decoding answers from logits.

    .venv/bin/python benchmarks/bench_run_squad.py [--questions=2000]

Questions are built from real text as tests/test_run_squad.py builds them (enwiki_sample, four
sentences of context, a year or name blanked out of one), at the reference's settings
(max_seq_length 384, doc_stride 128, max_query_length 64, n_best_size 20) and at max_seq_length
128 (several spans a context). The reference is PyPI bert-tensorflow 1.0.4's run_squad.py under
tests/reference_oracle.py's TF2 shims, timed in its own process on the same files and logits.
Both tokenize with their own FullTokenizer; the bert-base-uncased vocab.
"""

import json
import os
import random
import subprocess
import sys
import tempfile
import time

from absl import app, flags
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))

flags.DEFINE_integer("questions", 2000, "Questions to featurize and decode.")
FLAGS = flags.FLAGS

TIME_REFERENCE = """
import json, sys, time
sys.path.insert(0, {tests!r})
import numpy as np
import reference_oracle
from absl import flags
for name in ("do_lower_case", "vocab_file", "max_seq_length"):
    delattr(flags.FLAGS, name)
reference_oracle.tf.flags = reference_oracle.v1.flags
from bert import run_squad as squad
squad.tf = reference_oracle.v1
flags.FLAGS.mark_as_parsed()
tokenizer = reference_oracle.reference_tokenization.FullTokenizer({vocab!r}, do_lower_case=True)
timings = {{}}
for max_seq_length in (384, 128):
    for is_training in (True, False):
        start = time.perf_counter()
        examples = squad.read_squad_examples({squad_file!r}, is_training)
        features = []
        squad.convert_examples_to_features(examples, tokenizer, max_seq_length, 128 if max_seq_length == 384 else 64,
                                           64 if max_seq_length == 384 else 48, is_training, features.append)
        timings[f"featurize {{max_seq_length}} {{'train' if is_training else 'predict'}}"] = time.perf_counter() - start
    rng = np.random.RandomState(0)
    results = [squad.RawResult(f.unique_id, rng.normal(size=max_seq_length).tolist(),
                               rng.normal(size=max_seq_length).tolist()) for f in features]
    start = time.perf_counter()
    squad.write_predictions(examples, features, results, 20, 30, True, "/dev/null", "/dev/null", "/dev/null")
    timings[f"decode {{max_seq_length}}"] = time.perf_counter() - start
print(json.dumps(timings))
"""


def our_timings(squad_file, vocab_file):
    import run_squad
    import tokenization

    flags.FLAGS.mark_as_parsed()
    tokenizer = tokenization.FullTokenizer(vocab_file)
    data = run_squad.load_squad_json(squad_file)
    timings = {}
    for max_seq_length in (384, 128):
        for is_training in (True, False):
            start = time.perf_counter()
            examples, _ = run_squad.read_squad_examples(squad_file, data, is_training, False)
            features = []
            for example_index, example in enumerate(examples):
                for feature in run_squad.featurize_example(
                        example, tokenizer, max_seq_length, 128 if max_seq_length == 384 else 64,
                        64 if max_seq_length == 384 else 48, is_training):
                    features.append({**feature, "example_index": example_index,
                                     "unique_id": run_squad.FIRST_UNIQUE_ID + len(features)})
            timings[f"featurize {max_seq_length} {'train' if is_training else 'predict'}"] = time.perf_counter() - start
        rng = np.random.RandomState(0)
        results = {f["unique_id"]: (rng.normal(size=max_seq_length), rng.normal(size=max_seq_length)) for f in features}
        start = time.perf_counter()
        run_squad.predict_answers(examples, features, results, 20, 30, True, False)
        timings[f"decode {max_seq_length}"] = time.perf_counter() - start
    return timings, len(features)


def main(argv):
    del argv
    from conftest import SHARED_DATA_DIR, minilm_model_dir
    from test_run_squad import extractive_set

    corpus = os.path.join(SHARED_DATA_DIR, "corpora", "enwiki_sample.txt")
    if not os.path.exists(corpus):
        sys.exit(f"needs {corpus} (../shared/data beside the checkout)")
    vocab_file = os.path.join(minilm_model_dir(), "vocab.txt")
    with tempfile.TemporaryDirectory() as work:
        sentences = os.path.join(work, "sentences.txt")
        subprocess.run([sys.executable, os.path.join(REPO_ROOT, "prepare_pretraining_text.py"), f"--input_file={corpus}",
                        f"--output_file={sentences}"], check=True, capture_output=True)
        with open(sentences, encoding="utf-8") as reader:
            articles = [[s for s in block.splitlines() if len(s.split()) > 4] for block in reader.read().split("\n\n")]
        dataset = extractive_set([a for a in articles if len(a) > 12], FLAGS.questions, random.Random(0))
        squad_file = os.path.join(work, "squad.json")
        with open(squad_file, "w", encoding="utf-8") as writer:
            json.dump(dataset, writer)
        result = subprocess.run([sys.executable, "-c", TIME_REFERENCE.format(
            tests=os.path.join(REPO_ROOT, "tests"), vocab=vocab_file, squad_file=squad_file)],
            capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        if result.returncode != 0:
            sys.exit(f"the reference failed:\n{result.stderr[-3000:]}")
        reference = json.loads(result.stdout.strip().splitlines()[-1])
        ours, num_features = our_timings(squad_file, vocab_file)
    print(f"{FLAGS.questions} questions ({num_features} predict features at max_seq_length 128), questions/s:")
    print("| step | reference | ours | ratio |\n|---|---:|---:|---:|")
    for name in reference:
        print(f"| {name} | {FLAGS.questions / reference[name]:,.0f} | {FLAGS.questions / ours[name]:,.0f} | "
              f"{reference[name] / ours[name]:.2f}× |")


if __name__ == "__main__":
    app.run(main)
