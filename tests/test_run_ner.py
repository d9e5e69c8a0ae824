"""run_ner.py: CoNLL reading, first-piece labels and windows, conlleval's scores against seqeval,
and real fine-tuning of the packaged MiniLM on a tagging set made from the shared text."""

import collections
import os
import random
import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, kill_9_then_resume, tiny_bert_config

import run_ner
import tokenization


def test_scores_equal_seqeval_on_hand_made_and_random_tags():
    """Overall and per-type precision, recall and F1 equal seqeval's default (conlleval) mode,
    IOB1 and IOB2 (and IOBES), to 1e-12."""
    from seqeval import metrics

    hand_made = [
        (["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "I-PER", "O", "B-ORG"]),
        (["I-PER", "I-PER", "B-PER", "O", "I-LOC"], ["I-PER", "B-PER", "I-PER", "O", "I-LOC"]),
        (["O", "I-MISC", "I-MISC", "O", "I-MISC"], ["O", "B-MISC", "I-MISC", "I-ORG", "O"]),
        (["B-PER", "E-PER", "S-LOC", "O"], ["B-PER", "I-PER", "S-LOC", "E-LOC"]),
        (["O", "O"], ["O", "O"]),
    ]
    rng = random.Random(0)
    tags = ["O", "O", "O"] + [f"{p}-{t}" for p in "BI" for t in ("PER", "LOC", "ORG")]
    iob1 = [t.replace("B-", "I-") for t in tags] + ["B-PER"]
    generated = []
    for alphabet in (tags, iob1):
        for _ in range(300):
            gold = [rng.choice(alphabet) for _ in range(rng.randint(1, 12))]
            predicted = [t if rng.random() < 0.7 else rng.choice(alphabet) for t in gold]
            generated.append((gold, predicted))
    for cases in (hand_made, generated, hand_made + generated):
        gold = [g for g, _ in cases]
        predicted = [p for _, p in cases]
        ours = run_ner.entity_scores(gold, predicted)
        theirs = metrics.classification_report(gold, predicted, output_dict=True, zero_division=0)
        assert ours[""] == pytest.approx(
            (
                metrics.precision_score(gold, predicted, zero_division=0),
                metrics.recall_score(gold, predicted, zero_division=0),
                metrics.f1_score(gold, predicted, zero_division=0),
            ),
            abs=1e-12,
        )
        for entity_type, scores in ours.items():
            if entity_type and entity_type in theirs:
                expected = theirs[entity_type]
                assert scores == pytest.approx(
                    (expected["precision"], expected["recall"], expected["f1-score"]), abs=1e-12
                )
        assert {t for t in ours if t} >= {t for t in theirs if not t.endswith("avg")}


def test_chunks_by_hand():
    assert run_ner.chunks(["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC"]) == {
        ("PER", 0, 1),
        ("LOC", 3, 4),
        ("LOC", 5, 5),
    }
    assert run_ner.chunks(["I-PER", "I-ORG", "O"]) == {("PER", 0, 0), ("ORG", 1, 1)}


def test_reads_conll_documents_sentences_and_a_tokens_only_test_file(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\n"
        "-DOCSTART- -X- -X- O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n",
        encoding="utf-8",
    )
    sentences = run_ner.read_conll(str(path), "train", needs_tags=True)
    assert [(s.words, s.tags, s.line_numbers) for s in sentences] == [
        (["EU", "rejects"], ["B-ORG", "O"], [3, 4]),
        (["Peter", "Blackburn"], ["B-PER", "I-PER"], [9, 10]),
    ]
    (tmp_path / "test.txt").write_text("Peter\nsaid\n", encoding="utf-8")
    (sentence,) = run_ner.read_conll(str(tmp_path / "test.txt"), "test", needs_tags=False)
    assert sentence.words == ["Peter", "said"] and sentence.tags == [None, None]


def test_each_word_is_labelled_on_its_first_piece_and_predicted_from_one_window(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##want", "##ed", "runn", "##ing", "a"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = tokenization.FullTokenizer(str(tmp_path / "vocab.txt"))
    labels = ["B-X", "I-X", "O"]
    words = ["unwanted", "running", "a", "\u200b", "unwanted", "a", "running", "a"]
    tags = ["B-X", "I-X", "O", "O", "B-X", "O", "B-X", "O"]
    sentence = run_ner.Sentence("train-0", words, tags, list(range(len(words))))
    # Pieces: un ##want ##ed runn ##ing a [UNK] un ##want ##ed a runn ##ing a (14).
    whole = run_ner.featurize(sentence, tokenizer, labels, 16, 4)
    assert len(whole) == 1
    first_pieces = [1, 4, 6, 7, 8, 11, 12, 14]
    assert [p for p, m in enumerate(whole[0]["token_label_mask"]) if m] == first_pieces
    assert [whole[0]["token_label_ids"][p] for p in first_pieces] == [0, 1, 2, 2, 0, 2, 0, 2]
    assert whole[0]["scored_words"] == dict(zip(first_pieces, range(8)))
    windows = run_ner.featurize(sentence, tokenizer, labels, 8, 3)
    assert len(windows) == 4
    scored = [word for window in windows for word in window["scored_words"].values()]
    assert sorted(scored) == list(range(8))
    for window in windows:
        assert len(window["input_ids"]) == 8 and window["input_ids"][0] == 2
        for position, word in window["scored_words"].items():
            assert window["token_label_mask"][position] == 1
            assert window["token_label_ids"][position] == labels.index(tags[word])


# Real fine-tuning.

YEAR = re.compile(r"^(1[5-9]|20)\d\d$")


def tagged_sentences(sentences):
    """Words (runs of letters or digits, and single punctuation marks) tagged DATE (a year) and
    NAME (capitalised words within a sentence, consecutive ones one name), IOB2."""
    tagged = []
    for sentence in sentences:
        words = re.findall(r"\w+|[^\w\s]", sentence)
        tags = []
        for index, word in enumerate(words):
            if YEAR.match(word):
                tags.append("B-DATE")
            elif index > 0 and word[0].isupper() and word[1:].islower():
                tags.append("I-NAME" if tags and tags[-1].endswith("NAME") else "B-NAME")
            else:
                tags.append("O")
        if len(words) <= 40 and any(tag != "O" for tag in tags):
            tagged.append((words, tags))
    return tagged


def write_conll(path, tagged):
    with open(path, "w", encoding="utf-8") as writer:
        writer.write("-DOCSTART- -X- -X- O\n\n")
        for words, tags in tagged:
            writer.write("".join(f"{w} X X {t}\n" for w, t in zip(words, tags)) + "\n")


@pytest.mark.slow
def test_fine_tunes_minilm_on_years_and_names_from_real_text_above_a_lexicon(
    minilm_checkpoint, enwiki_articles, tmp_path
):
    """all-MiniLM-L6-v2 (uncased) tags years and capitalised names in Wikipedia sentences (160 to
    train, 80 to evaluate, from different articles); seen: F1 0.50 against the baseline's 0.11
    with 240 to train. The baseline is a lexicon of the training words, lower-cased
    as the model sees them: each dev word gets its most frequent training tag (O if unseen)."""
    train = tagged_sentences(s for article in enwiki_articles[:60] for s in article)[:160]
    dev = tagged_sentences(s for article in enwiki_articles[60:] for s in article)[:80]
    data = tmp_path / "conll"
    data.mkdir()
    write_conll(data / "train.txt", train)
    write_conll(data / "valid.txt", dev)
    write_conll(data / "test.txt", dev[:20])
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "run_ner.py"),
            f"--data_dir={data}",
            f"--output_dir={tmp_path / 'out'}",
            f"--vocab_file={minilm_checkpoint}/vocab.txt",
            f"--bert_config_file={minilm_checkpoint}/bert_config.json",
            f"--init_checkpoint={minilm_checkpoint}/bert_model.ckpt",
            "--do_train=True",
            "--do_eval=True",
            "--do_predict=True",
            "--max_seq_length=64",
            "--train_batch_size=16",
            "--learning_rate=1e-4",
            "--num_train_epochs=3",
            "--iterations_per_loop=10",
            # One compiled shape: a short run spends less compiling (the resume test below pads
            # dynamically).
            "--dynamic_padding=False",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = {
        key: float(value)
        for key, value in (
            line.split(" = ")
            for line in (tmp_path / "out" / "eval_results.txt").read_text().splitlines()
        )
    }
    lexicon = collections.defaultdict(collections.Counter)
    for words, tags in train:
        for word, tag in zip(words, tags):
            lexicon[word.lower()][tag] += 1
    baseline = [
        [lexicon[w.lower()].most_common(1)[0][0] if w.lower() in lexicon else "O" for w in words]
        for words, _ in dev
    ]
    baseline_f1 = run_ner.entity_scores([tags for _, tags in dev], baseline)[""][2]
    rates = [float(r) for r in re.findall(r"examples_per_second (\S+)", result.stderr)][1:]
    print(
        f"dev entity F1 {results['eval_f1']:.3f} (DATE {results['eval_f1_DATE']:.3f}, NAME "
        f"{results['eval_f1_NAME']:.3f}); lexicon baseline {baseline_f1:.3f}; fine-tuning "
        f"{sorted(rates)[len(rates) // 2]:.1f} windows/s (median after the first call)"
    )
    assert {"eval_precision", "eval_recall", "eval_f1", "eval_loss", "global_step"} <= set(results)
    assert results["eval_examples"] == len(dev)
    assert results["eval_f1"] >= baseline_f1 + 0.15
    predictions = (tmp_path / "out" / "test_predictions.txt").read_text().split("\n\n")[:-1]
    assert len(predictions) == 20
    for block, (words, tags) in zip(predictions, dev[:20]):
        rows = [line.split(" ") for line in block.splitlines()]
        assert [r[0] for r in rows] == words and [r[1] for r in rows] == tags
        assert all(len(r) == 3 for r in rows)
    evaluated = (tmp_path / "out" / "eval_predictions.txt").read_text().split("\n\n")[:-1]
    predicted = [[line.split(" ")[2] for line in block.splitlines()] for block in evaluated]
    f1 = run_ner.entity_scores([tags for _, tags in dev], predicted)[""][2]
    assert f1 == pytest.approx(results["eval_f1"])


@pytest.mark.slow
def test_two_cpu_replicas_then_kill_9_and_the_same_command_resumes(
    bert_base_uncased_vocab, enwiki_articles, tmp_path
):
    """MirroredStrategy over two CPU devices (--cpu_replicas=2), a small random BERT: killed
    with SIGKILL once its step-10 checkpoint is written, the same command resumes from the last
    checkpoint, finishes and evaluates."""
    data = tmp_path / "conll"
    data.mkdir()
    tagged = tagged_sentences(s for article in enwiki_articles[:20] for s in article)[:48]
    write_conll(data / "train.txt", tagged)
    write_conll(data / "dev.txt", tagged[:16])
    out = tmp_path / "out"
    command = [
        sys.executable,
        os.path.join(REPO_ROOT, "run_ner.py"),
        f"--data_dir={data}",
        f"--output_dir={out}",
        f"--vocab_file={bert_base_uncased_vocab}",
        f"--bert_config_file={tiny_bert_config(tmp_path / 'config.json', bert_base_uncased_vocab)}",
        "--do_train=True",
        "--do_eval=True",
        "--max_seq_length=64",
        "--train_batch_size=8",
        "--num_train_epochs=6",
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
    assert int(results["global_step"]) > killed_at and int(results["eval_examples"]) == 16
