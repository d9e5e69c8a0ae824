"""run_demo.py: the README's first command, scaled down (fewer pretraining steps and epochs), end to end."""

import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline_into_one_folder(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "run_demo.py"),
            f"--output_dir={out}",
            "--num_pretraining_steps=25",
            "--num_train_epochs=1",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for path in (
        "corpus.txt",
        "vocab.txt",
        "pretraining.tfrecord",
        "pretraining/eval_results.txt",
        "pretraining/curves.png",
        "all-MiniLM-L6-v2/bert_model.ckpt.index",
        "classifier/eval_results.txt",
        "classifier/test_results.tsv",
        "classifier/curves.png",
        "features.jsonl",
        "export/encoder/saved_model.pb",
        "export/preprocess/saved_model.pb",
        "export/classifier/1/saved_model.pb",
    ):
        assert (out / path).exists(), path
    assert (out / "pretraining" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = result.stdout[result.stdout.index("== Summary") :]
    assert "dev accuracy" in summary and "masked LM accuracy" in summary
    assert (
        "→ mathematics" in result.stdout or "→ files" in result.stdout or "→ text" in result.stdout
    )
