"""run_swag.py: SWAG's csv layout, choice features worked by hand, and real fine-tuning of the
packaged MiniLM on a which-sentence-follows set made from the shared text."""

import csv
import os
import random
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT, kill_9_then_resume, tiny_bert_config

import errors
import run_swag
import tokenization

HEADER = "video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2"


def test_reads_any_number_of_endings_and_a_test_file_without_labels(tmp_path):
    (tmp_path / "val.csv").write_text(
        HEADER + ",label\n"
        'v1,3,"A man sits, then he",A man sits.,Then he,gold,stands up.,"eats, drinks.",flies.,1\n',
        encoding="utf-8",
    )
    (example,) = run_swag.read_swag(str(tmp_path / "val.csv"), "dev")
    assert example == run_swag.SwagExample(
        "dev-0", "A man sits.", "Then he", ["stands up.", "eats, drinks.", "flies."], 1
    )
    (tmp_path / "test.csv").write_text(
        HEADER + "\nv2,4,x,The cat.,It,gen,sat.,ran.,slept.\n", encoding="utf-8"
    )
    (example,) = run_swag.read_swag(str(tmp_path / "test.csv"), "test")
    assert example.label is None and len(example.endings) == 3


def test_choices_are_cls_context_sep_start_and_ending_sep(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "it", "sat", "ran", "on", "mat"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = tokenization.FullTokenizer(str(tmp_path / "vocab.txt"))
    example = run_swag.SwagExample("train-0", "The cat", "it", ["sat", "ran on the mat"], 1)
    features = run_swag.featurize(example, tokenizer, 9)
    # [CLS] the cat [SEP] it sat [SEP], and [CLS] the cat [SEP] it ran on the [SEP]: the second
    # pair (2 + 5 pieces) is one over the budget of 6, and its longer side loses its last piece.
    assert features["input_ids"] == [[2, 4, 5, 3, 6, 7, 3, 0, 0], [2, 4, 5, 3, 6, 8, 9, 4, 3]]
    assert features["segment_ids"] == [[0, 0, 0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1, 1]]
    assert features["input_mask"] == [[1] * 7 + [0, 0], [1] * 9]
    assert features["label"] == 1


def test_bad_rows_name_the_file_and_line(tmp_path):
    path = tmp_path / "train.csv"
    cases = {
        HEADER + ",label\nv,1,x,A.,B,g,c.,d.,e.,3\n": "train.csv:2: label '3' is not an ending's "
        "index (0 to 2)",
        HEADER + ",label\nv,1,x,A.,B,g,c.,d.,1\n": "train.csv:2: 9 columns, but the header has 10",
        "video-id,sent1,sent2,ending0,label\nv,A.,B,c.,0\n": "train.csv:1: the header needs sent1, "
        "sent2 and ending0, ending1",
        HEADER + "\nv,1,x,A.,B,g,c.,d.,e.\n": "train.csv:1: the header has no label column",
        HEADER + ",label\nv,1,x, ,B,g,c.,d.,e.,0\n": "train.csv:2: sent1, the context, is empty",
        HEADER + ",label\n": "train.csv: holds no examples",
    }
    for text, message in cases.items():
        path.write_text(text, encoding="utf-8")
        with pytest.raises(errors.InputError) as raised:
            run_swag.read_swag(str(path), "train")
        assert message in str(raised.value)


# Real fine-tuning.


def follow_up_set(articles, rng, count):
    """SWAG-layout rows: sent1 a sentence, sent2 the first three words of the next one, and four
    endings: the rest of that next sentence, and the rest of three sentences of other articles."""
    rows = []
    pairs = [(a, i) for a, sentences in enumerate(articles) for i in range(len(sentences) - 1)]
    rng.shuffle(pairs)
    for article, index in pairs[:count]:
        context, following = articles[article][index], articles[article][index + 1].split()
        others = [
            rng.choice(articles[other]).split()
            for other in rng.sample([a for a in range(len(articles)) if a != article], 3)
        ]
        endings = [" ".join(following[3:])] + [" ".join(words[3:]) for words in others]
        order = list(range(4))
        rng.shuffle(order)
        rows.append(
            ["v", "0", "", context, " ".join(following[:3]), "gold"]
            + [endings[i] for i in order]
            + [str(order.index(0))]
        )
    return rows


def write_rows(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as writer:
        table = csv.writer(writer)
        table.writerow(HEADER.split(",") + ["ending3", "label"])
        table.writerows(rows)


@pytest.mark.slow
def test_fine_tunes_minilm_to_pick_the_sentence_that_follows(
    minilm_checkpoint, enwiki_articles, tmp_path
):
    """all-MiniLM-L6-v2 on 160 which-sentence-follows questions of four endings from Wikipedia
    articles, evaluated on 60 from other articles: accuracy well above chance (0.25 ± 0.056 on
    60; seen: 0.775 on 80 with 240 to train)."""
    rng = random.Random(0)
    articles = [[s for s in article if 8 <= len(s.split()) <= 40] for article in enwiki_articles]
    articles = [a for a in articles if len(a) >= 4]
    data = tmp_path / "swag"
    data.mkdir()
    write_rows(data / "train.csv", follow_up_set(articles[:60], rng, 160))
    dev = follow_up_set(articles[60:], rng, 60)
    write_rows(data / "val.csv", dev)
    with open(data / "test.csv", "w", newline="", encoding="utf-8") as writer:
        table = csv.writer(writer)
        table.writerow(HEADER.split(",") + ["ending3"])
        table.writerows(row[:-1] for row in dev[:10])
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "run_swag.py"),
            f"--data_dir={data}",
            f"--output_dir={tmp_path / 'out'}",
            f"--vocab_file={minilm_checkpoint}/vocab.txt",
            f"--bert_config_file={minilm_checkpoint}/bert_config.json",
            f"--init_checkpoint={minilm_checkpoint}/bert_model.ckpt",
            "--do_train=True",
            "--do_eval=True",
            "--do_predict=True",
            "--max_seq_length=64",
            "--train_batch_size=8",
            "--learning_rate=5e-5",
            "--num_train_epochs=2",
            "--iterations_per_loop=10",
            # One compiled shape: a short run spends less compiling (the resume test below pads
            # dynamically).
            "--dynamic_padding=False",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = dict(
        line.split(" = ")
        for line in (tmp_path / "out" / "eval_results.txt").read_text().splitlines()
    )
    rates = [float(r) for r in re.findall(r"examples_per_second (\S+)", result.stderr)][1:]
    print(
        f"dev accuracy {float(results['eval_accuracy']):.3f} (chance 0.25) on 60; fine-tuning "
        f"{sorted(rates)[len(rates) // 2]:.1f} questions/s (median after the first call)"
    )
    assert sorted(results) == ["eval_accuracy", "eval_examples", "eval_loss", "global_step", "loss"]
    assert int(results["eval_examples"]) == 60 and int(results["global_step"]) == 40
    assert float(results["eval_accuracy"]) >= 0.5
    probabilities = np.loadtxt(tmp_path / "out" / "test_results.tsv")
    assert probabilities.shape == (10, 4) and np.allclose(probabilities.sum(1), 1, atol=1e-5)


@pytest.mark.slow
def test_two_cpu_replicas_then_kill_9_and_the_same_command_resumes(
    bert_base_uncased_vocab, enwiki_articles, tmp_path
):
    """MirroredStrategy over two CPU devices (--cpu_replicas=2), a small random BERT: killed
    with SIGKILL once its step-10 checkpoint is written, the same command resumes from the last
    checkpoint, finishes, evaluates and predicts."""
    articles = [[s for s in article if 8 <= len(s.split()) <= 40] for article in enwiki_articles]
    articles = [a for a in articles if len(a) >= 4]
    data = tmp_path / "swag"
    data.mkdir()
    rows = follow_up_set(articles, random.Random(1), 48)
    write_rows(data / "train.csv", rows)
    write_rows(data / "val.csv", rows[:12])
    out = tmp_path / "out"
    command = [
        sys.executable,
        os.path.join(REPO_ROOT, "run_swag.py"),
        f"--data_dir={data}",
        f"--output_dir={out}",
        f"--vocab_file={bert_base_uncased_vocab}",
        f"--bert_config_file={tiny_bert_config(tmp_path / 'config.json', bert_base_uncased_vocab)}",
        "--do_train=True",
        "--do_eval=True",
        "--max_seq_length=64",
        "--train_batch_size=4",
        "--num_train_epochs=3",
        "--save_checkpoints_steps=10",
        "--iterations_per_loop=5",
        "--cpu_replicas=2",
    ]
    killed_at, result = kill_9_then_resume(command, out, 10)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Strategy MirroredStrategy with 2 replicas" in result.stderr
    assert f"Resumed from {out}/model.ckpt-{killed_at} at step {killed_at}" in result.stderr
    results = dict(
        line.split(" = ") for line in (out / "eval_results.txt").read_text().splitlines()
    )
    assert int(results["global_step"]) == 36 and int(results["eval_examples"]) == 12
