"""build_vocab.py: WordPiece merges by hand, the command end to end, and its bad-input errors."""

import os
import subprocess
import sys

import pytest

import tokenization


import build_vocab

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CORPUS = """The quick brown fox jumps over the lazy dog.
A lazy dog sleeps; the quick fox runs far away!

Foxes and dogs are both mammals, and both can run quickly.
"""


def test_merges_most_frequent_pair_first_and_breaks_ties_by_order():
    counts = {"low": 5, "lower": 2, "newest": 6, "widest": 3}
    vocab = build_vocab.learn_wordpiece_vocab(
        counts, vocab_size=100, min_frequency=2, reserved_tokens=("[UNK]",)
    )
    alphabet = ["##d", "##e", "##i", "##o", "##r", "##s", "##t", "##w", "l", "n", "w"]
    assert vocab[: 1 + len(alphabet)] == ["[UNK]"] + alphabet
    # (##e,##s) and (##s,##t) occur 9 times; the smaller pair wins. Then (##o,##w) ties (l,##o) at 7.
    assert vocab[1 + len(alphabet) : 1 + len(alphabet) + 4] == ["##es", "##est", "##ow", "low"]


def test_vocab_size_and_min_frequency_stop_merging():
    counts = {"aaaa": 10, "bb": 1}
    alphabet_only = ["[UNK]", "##a", "##b", "a", "b"]
    assert (
        build_vocab.learn_wordpiece_vocab(counts, vocab_size=3, reserved_tokens=("[UNK]",))
        == alphabet_only
    )
    assert build_vocab.learn_wordpiece_vocab(
        counts, vocab_size=6, reserved_tokens=("[UNK]",)
    ) == alphabet_only + ["##aa"]
    full = build_vocab.learn_wordpiece_vocab(
        counts, vocab_size=100, min_frequency=2, reserved_tokens=("[UNK]",)
    )
    assert full == alphabet_only + [
        "##aa",
        "##aaa",
        "aaaa",
    ]  # (b, ##b) occurs once: below min_frequency


def run_build_vocab(*args):
    return subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "build_vocab.py"), *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )


@pytest.mark.slow
def test_command_writes_a_vocab_that_tokenizes_its_corpus_without_unknowns(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    vocab_file = tmp_path / "vocab.txt"
    result = run_build_vocab(
        f"--input_file={corpus}",
        f"--output_file={vocab_file}",
        "--vocab_size=80",
        "--num_unused_tokens=3",
        "--min_frequency=1",
    )
    assert result.returncode == 0, result.stderr
    assert set(os.listdir(tmp_path)) == {"corpus.txt", "vocab.txt"}  # no temporary file left behind
    lines = vocab_file.read_text(encoding="utf-8").splitlines()
    assert lines[:8] == [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "[unused0]",
        "[unused1]",
        "[unused2]",
    ]
    assert len(lines) == 80 and len(set(lines)) == 80
    tokenizer = tokenization.FullTokenizer(str(vocab_file))
    tokens = [t for line in CORPUS.splitlines() for t in tokenizer.tokenize(line)]
    assert "[UNK]" not in tokens and "quick" in tokens

    second = tmp_path / "again.txt"
    run_build_vocab(
        f"--input_file={corpus}",
        f"--output_file={second}",
        "--vocab_size=80",
        "--num_unused_tokens=3",
        "--min_frequency=1",
    )
    assert second.read_bytes() == vocab_file.read_bytes()


@pytest.mark.slow
def test_command_reports_bad_input_in_one_line(tmp_path):
    result = run_build_vocab(
        f"--input_file={tmp_path}/nothing*.txt", f"--output_file={tmp_path}/v.txt"
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1]
        == f"error: --input_file: {tmp_path}/nothing*.txt matches no file"
    )

    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    result = run_build_vocab(f"--input_file={empty}", f"--output_file={tmp_path}/missing_dir/v.txt")
    assert result.returncode == 2 and "missing_dir does not exist" in result.stderr
    result = run_build_vocab(f"--input_file={empty}", f"--output_file={tmp_path}/v.txt")
    assert result.returncode == 2 and "holds no text" in result.stderr
    assert not os.path.exists(tmp_path / "v.txt")
