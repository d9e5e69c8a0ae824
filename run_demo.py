"""The end-to-end demo on the embedded sample text; every step is the command a user would run.

    .venv/bin/python run_demo.py [--output_dir=demo_output]

Today the pipeline is: learn a WordPiece vocabulary from sample_text.txt (build_vocab.py), then
tokenize the text with it, on the exact path and on the fast batch path, and check both agree.
Everything lands under --output_dir; a short summary closes the run.
"""

import os
import subprocess
import sys
import time

from absl import flags

import errors
import file_io
import tokenization

REPO_ROOT = os.path.dirname(os.path.abspath(__file__))
SAMPLE_TEXT = os.path.join(REPO_ROOT, "sample_text.txt")

flags.DEFINE_string("output_dir", os.path.join(REPO_ROOT, "demo_output"), "Where every output of the demo goes.")
FLAGS = flags.FLAGS


def run_step(title, script, *args):
    """Runs one of the project's scripts as a user would, echoing the command; stops on failure."""
    command = [sys.executable, os.path.join(REPO_ROOT, script), *args]
    print(f"\n== {title}\n$ {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if result.returncode != 0:
        raise errors.InputError(f"{script} failed with exit status {result.returncode}")
    return time.perf_counter() - start


def main(argv):
    del argv
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    vocab_file = os.path.join(FLAGS.output_dir, "vocab.txt")
    vocab_seconds = run_step("Learn a WordPiece vocabulary from the sample text", "build_vocab.py",
                             f"--input_file={SAMPLE_TEXT}", f"--output_file={vocab_file}", "--vocab_size=500",
                             "--min_frequency=1", "--num_unused_tokens=10")

    print("\n== Tokenize the sample text: exact path and fast batch path", flush=True)
    tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case=True)
    lines = [line for line in tokenization.read_text_lines(SAMPLE_TEXT) if line.strip()]
    start = time.perf_counter()
    exact_ids = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(line)) for line in lines]
    exact_seconds = time.perf_counter() - start
    fast_ids = tokenizer.encode_batch(lines)
    if fast_ids != exact_ids:
        raise AssertionError("the fast batch path disagrees with FullTokenizer on the sample text")

    tokens_file = os.path.join(FLAGS.output_dir, "sample_tokens.txt")
    file_io.write_text_atomically(
        tokens_file, "".join(" ".join(tokenizer.convert_ids_to_tokens(ids)) + "\n" for ids in exact_ids))
    for line, ids in list(zip(lines, exact_ids))[:3]:
        print(f"  {line}\n  → {' '.join(tokenizer.convert_ids_to_tokens(ids))}")

    pieces = sum(map(len, exact_ids))
    unknown = sum(ids.count(tokenizer.vocab[tokenization.UNKNOWN_TOKEN]) for ids in exact_ids)
    print("\n== Summary")
    print(f"  vocabulary      {len(tokenizer.vocab)} tokens in {vocab_file} ({vocab_seconds:.1f} s)")
    print(f"  tokenized       {len(lines)} lines into {pieces} word pieces, {unknown} unknown "
          f"({exact_seconds * 1000:.0f} ms), written to {tokens_file}")
    print(f"  fast batch path identical ids on all {len(lines)} lines")


if __name__ == "__main__":
    errors.run_script(main)
