"""run_classifier.py: every processor on its GLUE layout, the metrics against scikit-learn and SciPy,
real fine-tuning of all-MiniLM-L6-v2, prediction alone, bad input."""

import os
import random
import subprocess
import sys
import time

from absl import flags
import numpy as np
import pytest

import errors

from conftest import REPO_ROOT, SHARED_DATA_DIR

import run_classifier


def write(directory, name, rows):
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")


GLUE_FIXTURES = {
    # task: {file: rows}, expected (split, text_a, text_b, label, guid) of the first example of each split
    "cola": (
        {
            "train.tsv": [["gj04", "1", "", "Our friends won't buy this analysis."]],
            "dev.tsv": [["gj04", "0", "*", "They drank the pub."]],
            "test.tsv": [["index", "sentence"], ["0", "Bill whistled past the house."]],
        },
        [
            ("train", "Our friends won't buy this analysis.", None, "1"),
            ("dev", "They drank the pub.", None, "0"),
            ("test", "Bill whistled past the house.", None, None, "test-0"),
        ],
    ),
    "mnli": (
        {
            "train.tsv": [
                ["index"] + ["x"] * 10,
                [
                    "0",
                    "31193",
                    "31193n",
                    "government",
                    "(",
                    "(",
                    "(",
                    "(",
                    "Conceptually cream skimming.",
                    "Product and geography.",
                    "neutral",
                ],
            ],
            "dev_matched.tsv": [
                ["index"] + ["x"] * 14,
                [
                    "0",
                    "63735",
                    "63735n",
                    "slate",
                    "(",
                    "(",
                    "(",
                    "(",
                    "The new rights are nice.",
                    "Everyone loves them.",
                    "neutral",
                    "entailment",
                    "neutral",
                    "neutral",
                    "neutral",
                ],
            ],
            "test_matched.tsv": [
                ["index"] + ["x"] * 9,
                [
                    "0",
                    "31493",
                    "31493",
                    "travel",
                    "(",
                    "(",
                    "(",
                    "(",
                    "Hierbas is a drink.",
                    "It is a liqueur.",
                ],
            ],
        },
        [
            ("train", "Conceptually cream skimming.", "Product and geography.", "neutral"),
            ("dev", "The new rights are nice.", "Everyone loves them.", "neutral"),
            ("test", "Hierbas is a drink.", "It is a liqueur.", None, "test-0"),
        ],
    ),
    "mrpc": (
        {
            "train.tsv": [
                ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                [
                    "1",
                    "702876",
                    "702977",
                    "Amrozi accused his brother.",
                    "Referring to him, Amrozi accused.",
                ],
            ],
            "dev.tsv": [
                ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                ["0", "1", "2", "He said the foodservice pie.", "The foodservice pie business."],
            ],
            "test.tsv": [
                ["index", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                [
                    "0",
                    "1089874",
                    "1089925",
                    "PCCW's chief operating officer.",
                    "Mr Wong, PCCW's COO.",
                ],
            ],
        },
        [
            ("train", "Amrozi accused his brother.", "Referring to him, Amrozi accused.", "1"),
            ("dev", "He said the foodservice pie.", "The foodservice pie business.", "0"),
            ("test", "PCCW's chief operating officer.", "Mr Wong, PCCW's COO.", None, "test-0"),
        ],
    ),
    "sst-2": (
        {
            "train.tsv": [
                ["sentence", "label"],
                ["hide new secretions from the parental units ", "0"],
            ],
            "dev.tsv": [
                ["sentence", "label"],
                ["it 's a charming and often affecting journey . ", "1"],
            ],
            "test.tsv": [["index", "sentence"], ["0", "uneasy mishmash of styles and genres ."]],
        },
        [
            ("train", "hide new secretions from the parental units", None, "0"),
            ("dev", "it 's a charming and often affecting journey .", None, "1"),
            ("test", "uneasy mishmash of styles and genres .", None, None, "test-0"),
        ],
    ),
    "qqp": (
        {
            "train.tsv": [
                ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
                [
                    "133273",
                    "213221",
                    "213222",
                    "How is the life of a math student?",
                    "Which is the best?",
                    "0",
                ],
            ],
            "dev.tsv": [
                ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
                [
                    "201359",
                    "303345",
                    "303346",
                    "Why are African-Americans so beautiful?",
                    "Why are hispanics?",
                    "0",
                ],
            ],
            "test.tsv": [
                ["id", "question1", "question2"],
                ["0", "Would the idea work?", "Can it work?"],
            ],
        },
        [
            (
                "train",
                "How is the life of a math student?",
                "Which is the best?",
                "0",
                "train-133273",
            ),
            (
                "dev",
                "Why are African-Americans so beautiful?",
                "Why are hispanics?",
                "0",
                "dev-201359",
            ),
            ("test", "Would the idea work?", "Can it work?", None, "test-0"),
        ],
    ),
    "qnli": (
        {
            "train.tsv": [
                ["index", "question", "sentence", "label"],
                [
                    "0",
                    "When did the third Digimon series begin?",
                    "Unlike the two seasons.",
                    "not_entailment",
                ],
            ],
            "dev.tsv": [
                ["index", "question", "sentence", "label"],
                ["0", "What came into force?", "The law.", "entailment"],
            ],
            "test.tsv": [["index", "question", "sentence"], ["0", "What is it?", "A thing."]],
        },
        [
            (
                "train",
                "When did the third Digimon series begin?",
                "Unlike the two seasons.",
                "not_entailment",
            ),
            ("dev", "What came into force?", "The law.", "entailment"),
            ("test", "What is it?", "A thing.", None),
        ],
    ),
    "rte": (
        {
            "train.tsv": [
                ["index", "sentence1", "sentence2", "label"],
                ["0", "No weapons were found.", "Weapons found.", "not_entailment"],
            ],
            "dev.tsv": [
                ["index", "sentence1", "sentence2", "label"],
                ["0", "Dana Reeve died.", "Reeve is dead.", "entailment"],
            ],
            "test.tsv": [
                ["index", "sentence1", "sentence2"],
                ["0", "Mangla was filled.", "Mangla is full."],
            ],
        },
        [
            ("train", "No weapons were found.", "Weapons found.", "not_entailment"),
            ("dev", "Dana Reeve died.", "Reeve is dead.", "entailment"),
            ("test", "Mangla was filled.", "Mangla is full.", None),
        ],
    ),
    "wnli": (
        {
            "train.tsv": [
                ["index", "sentence1", "sentence2", "label"],
                ["0", "I stuck a pin.", "The pin had a hole.", "1"],
            ],
            "dev.tsv": [
                ["index", "sentence1", "sentence2", "label"],
                ["0", "The drain is clogged.", "It is clogged.", "0"],
            ],
            "test.tsv": [
                ["index", "sentence1", "sentence2"],
                ["0", "Maude and Dora saw trains.", "They saw them."],
            ],
        },
        [
            ("train", "I stuck a pin.", "The pin had a hole.", "1"),
            ("dev", "The drain is clogged.", "It is clogged.", "0"),
            ("test", "Maude and Dora saw trains.", "They saw them.", None),
        ],
    ),
    "sts-b": (
        {
            "train.tsv": [
                [
                    "index",
                    "genre",
                    "filename",
                    "year",
                    "old_index",
                    "source1",
                    "source2",
                    "sentence1",
                    "sentence2",
                    "score",
                ],
                [
                    "0",
                    "main-captions",
                    "MSRvid",
                    "2012test",
                    "0001",
                    "none",
                    "none",
                    "A plane is taking off.",
                    "An air plane is taking off.",
                    "5.000",
                ],
            ],
            "dev.tsv": [
                [
                    "index",
                    "genre",
                    "filename",
                    "year",
                    "old_index",
                    "source1",
                    "source2",
                    "sentence1",
                    "sentence2",
                    "score",
                ],
                [
                    "0",
                    "main-captions",
                    "MSRvid",
                    "2012test",
                    "0000",
                    "none",
                    "none",
                    "A man with a hard hat.",
                    "A man wearing a hard hat.",
                    "5.000",
                ],
            ],
            "test.tsv": [
                [
                    "index",
                    "genre",
                    "filename",
                    "year",
                    "old_index",
                    "source1",
                    "source2",
                    "sentence1",
                    "sentence2",
                ],
                [
                    "0",
                    "main-captions",
                    "MSRvid",
                    "2012test",
                    "0024",
                    "none",
                    "none",
                    "A girl is styling.",
                    "A girl is brushing.",
                ],
            ],
        },
        [
            ("train", "A plane is taking off.", "An air plane is taking off.", 5.0),
            ("dev", "A man with a hard hat.", "A man wearing a hard hat.", 5.0),
            ("test", "A girl is styling.", "A girl is brushing.", None),
        ],
    ),
    "ax": (
        {
            "AX.tsv": [
                ["index", "sentence1", "sentence2"],
                ["0", "The cat sat on the mat.", "The cat did not sit."],
            ]
        },
        [("test", "The cat sat on the mat.", "The cat did not sit.", None)],
    ),
}


@pytest.mark.parametrize("task_name", sorted(GLUE_FIXTURES) + ["mnli-mm", "xnli"])
def test_processor_reads_its_glue_layout(tmp_path, task_name):
    if task_name == "mnli-mm":
        files, expected = GLUE_FIXTURES["mnli"]
        files = {name.replace("_matched", "_mismatched"): rows for name, rows in files.items()}
    elif task_name == "xnli":
        files = {
            "multinli/multinli.train.zh.tsv": [
                ["premise", "hypo", "label"],
                ["前提", "假设", "contradictory"],
            ],
            "xnli.dev.tsv": [
                ["language", "gold_label"] + ["x"] * 6,
                ["en", "neutral", "", "", "", "", "English premise.", "English hypothesis."],
                ["zh", "entailment", "", "", "", "", "中文前提。", "中文假设。"],
            ],
        }
        expected = [
            ("train", "前提", "假设", "contradiction"),
            ("dev", "中文前提。", "中文假设。", "entailment"),
        ]
    else:
        files, expected = GLUE_FIXTURES[task_name]
    for name, rows in files.items():
        write(tmp_path, name, rows)
    flags.FLAGS.mark_as_parsed()
    task = run_classifier.get_task(task_name, str(tmp_path))
    for split, text_a, text_b, label, *guid in expected:
        examples = task.examples(str(tmp_path), split)
        assert len(examples) == 1 or task_name == "xnli"
        assert (examples[0].text_a, examples[0].text_b, examples[0].label) == (
            text_a,
            text_b,
            label,
        ), split
        if guid:
            assert examples[0].guid == guid[0]
    assert task.is_regression == (task_name == "sts-b")


def test_table_task_by_column_names(tmp_path):
    from absl.testing import flagsaver

    write(
        tmp_path, "train.csv", [["id,review,verdict"], ["1,Great film,pos"], ['2,"Dull, slow",neg']]
    )
    flags.FLAGS.mark_as_parsed()
    # flagsaver, not monkeypatch, whose undo deletes a flag that is not in FlagValues.__dict__.
    with flagsaver.flagsaver(
        text_a_column="review",
        text_b_column=None,
        label_column="verdict",
        skip_header=True,
        label_list=None,
    ):
        task = run_classifier.get_task("csv", str(tmp_path))
    assert task.labels == ["neg", "pos"]
    examples = task.examples(str(tmp_path), "train")
    assert [(e.text_a, e.label) for e in examples] == [("Great film", "pos"), ("Dull, slow", "neg")]


def test_bad_rows_name_the_file_and_line(tmp_path):
    flags.FLAGS.mark_as_parsed()
    task = run_classifier.get_task("mrpc", str(tmp_path))
    header = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
    cases = [
        (
            [header, ["1", "2", "3", "only four columns"]],
            "train.tsv:2: has 4 columns, text_b is column 5",
        ),
        ([header, ["7", "1", "2", "a", "b"]], "train.tsv:2: unknown label '7'"),
        (
            [header, ["1", "1", "2", "a", "b"], ["1", "1", "2", "  ", "b"]],
            "train.tsv:3: empty text",
        ),
    ]
    for rows, message in cases:
        write(tmp_path, "train.tsv", rows)
        with pytest.raises(errors.InputError, match=message):
            task.examples(str(tmp_path), "train")
    with pytest.raises(errors.InputError, match="dev.tsv: file not found"):
        task.examples(str(tmp_path), "dev")


def test_featurization_truncates_the_longer_side_from_its_end(bert_base_uncased_vocab):
    import tokenization

    tokenizer = tokenization.FullTokenizer(bert_base_uncased_vocab)
    task = run_classifier.Task({}, {}, ["0", "1"], True, "T")
    example = run_classifier.InputExample("x", "one two three four five six", "seven eight", "1")
    features = run_classifier.featurize(example, task, tokenizer, max_seq_length=8)
    assert features["tokens"] == [
        "[CLS]",
        "one",
        "two",
        "three",
        "[SEP]",
        "seven",
        "eight",
        "[SEP]",
    ]
    assert features["segment_ids"] == [0, 0, 0, 0, 0, 1, 1, 1] and features["label_ids"] == 1
    single = run_classifier.featurize(
        run_classifier.InputExample("y", "a b c d e f g h", None, "0"), task, tokenizer, 6
    )
    assert single["tokens"] == ["[CLS]", "a", "b", "c", "d", "[SEP]"]
    short = run_classifier.featurize(
        run_classifier.InputExample("z", "hello", None, "0"), task, tokenizer, 6
    )
    assert short["input_mask"] == [1, 1, 1, 0, 0, 0] and short["input_ids"][3:] == [0, 0, 0]


def test_metrics_equal_scikit_learn_and_scipy():
    from scipy import stats
    from sklearn import metrics

    rng = np.random.RandomState(0)
    for _ in range(5):
        labels, predictions = rng.randint(0, 2, 200), rng.randint(0, 2, 200)
        assert run_classifier.f1_score(labels, predictions) == pytest.approx(
            metrics.f1_score(labels, predictions)
        )
        assert run_classifier.matthews_correlation(labels, predictions) == pytest.approx(
            metrics.matthews_corrcoef(labels, predictions)
        )
        labels3, predictions3 = rng.randint(0, 3, 200), rng.randint(0, 3, 200)
        assert run_classifier.matthews_correlation(labels3, predictions3) == pytest.approx(
            metrics.matthews_corrcoef(labels3, predictions3)
        )
        scores, gold = (
            rng.normal(size=100),
            np.round(rng.uniform(0, 5, 100) * 2) / 2,
        )  # ties in gold
        assert run_classifier.pearson(scores, gold) == pytest.approx(
            stats.pearsonr(scores, gold)[0]
        )
        assert run_classifier.spearman(scores, gold) == pytest.approx(
            stats.spearmanr(scores, gold)[0]
        )
    outputs = rng.dirichlet([1, 1], 50)
    gold = rng.randint(0, 2, 50)
    computed = run_classifier.task_metrics(
        "mrpc", run_classifier.Task({}, {}, ["0", "1"], True, "M"), gold, outputs
    )
    assert computed["eval_accuracy"] == pytest.approx(
        metrics.accuracy_score(gold, outputs.argmax(1))
    )
    assert computed["f1"] == pytest.approx(metrics.f1_score(gold, outputs.argmax(1)))


# Real fine-tuning.


def run_classifier_command(checkpoint_dir, data_dir, output_dir, task_name, *extra):
    command = [
        sys.executable,
        os.path.join(REPO_ROOT, "run_classifier.py"),
        f"--task_name={task_name}",
        f"--data_dir={data_dir}",
        f"--output_dir={output_dir}",
        f"--vocab_file={checkpoint_dir}/vocab.txt",
        f"--bert_config_file={checkpoint_dir}/bert_config.json",
        "--max_seq_length=64",
        "--train_batch_size=16",
        "--eval_batch_size=16",
        "--predict_batch_size=16",
        "--learning_rate=5e-5",
        "--num_train_epochs=4",
        "--save_checkpoints_steps=1000",
        "--iterations_per_loop=10",
        *extra,
    ]
    started = time.time()
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return time.time() - started


def read_results(path):
    return {
        key: float(value)
        for key, value in (line.split(" = ") for line in path.read_text().splitlines())
    }


def run_script(name, *arguments):
    result = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, name), *arguments], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]


# Reviews with characters that tensorflow-text's BERT normalisation (and so the published Hub
# preprocessing models) tokenizes otherwise than the reference.
SERVING_TEXTS = [
    "A Straße-level, ½-baked plot: ² stars™ at best.",
    "ΕΝΑ ΑΡΙΣΤΟΥΡΓΗΜΑ ΤΟΥ ΣΙΝΕΜΑ, ΟΠΩΣ ΛΕΝΕ ΟΛΟΙ ΟΙ ΚΡΙΤΙΚΟΣ",
    "電影很好看, 素晴らしい映画 and 영화",
    "cafe\u0301 na\u0308ive re\u0301sume\u0301 of a film",
    "zero\u200bwidth\u00adsoft\ufeffhyphens in a dull movie",
    "ﬁne ｆｕｌｌ－ｗｉｄｔｈ ①② ﬃ Ⅻ № µ",
    "İstanbul ǅemal Ꭰ ẞ: wonderful",
    "emoji 🤗👍🏽 great fun",
    "[MASK] the worst [SEP] film",
    "\x01control\x7fchars and \u00a0spaces\u3000everywhere",
]


@pytest.mark.slow
def test_fine_tunes_minilm_on_movie_review_polarity_from_checkpoint_and_hub_then_predicts_and_serves(
    minilm_checkpoint, tmp_path
):
    """all-MiniLM-L6-v2 on 200 real movie-review sentences (Pang & Lee) in SST-2 layout, 120 to train
    and 80 to evaluate, from its checkpoint and from its export_model.py Hub encoder
    (--hub_module_handle). Both fine-tune: each labels at least 0.8 of its 120 training sentences
    right (chance 0.5; seen 0.875-0.99 with --random_seed 1, 2, 3 and the default). The dev
    accuracy is printed, not bounded: over those seeds it ran 0.56-0.74 from the checkpoint and
    0.56-0.65 through the export, so 80 sentences cannot tell the two apart, nor either from
    chance, reliably. Both runs repeat exactly (the export seeds its dropout). The
    hub-trained checkpoint has the reference's names: --do_predict alone writes test_results.tsv
    and SST-2.tsv, and its serving export's probabilities equal test_results.tsv's (1e-5), on the
    200 reviews and on SERVING_TEXTS, which hold the characters the published preprocessing
    models tokenize otherwise than the reference (ß, ½, ², ™, final sigma, ...)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the serving model tokenizes with its ops)

    del tensorflow_text

    path = os.path.join(SHARED_DATA_DIR, "labelled", "pang_lee_polarity.cor")
    if not os.path.exists(path):
        pytest.skip(f"{path} is absent: ../shared/data is not beside this checkout")
    rows = [line.strip().split(" ", 1)[::-1] for line in open(path, encoding="latin-1")]
    rows = [[text, "1" if label == "__label__pos" else "0"] for text, label in rows]
    random.Random(0).shuffle(rows)
    data = tmp_path / "sst2"
    write(data, "train.tsv", [["sentence", "label"]] + rows[:120])
    write(data, "dev.tsv", [["sentence", "label"]] + rows[120:])
    test_texts = [text for text, _ in rows] + SERVING_TEXTS
    write(
        data,
        "test.tsv",
        [["index", "sentence"]] + [[str(i), text] for i, text in enumerate(test_texts)],
    )
    run_script(
        "export_model.py",
        f"--bert_config_file={minilm_checkpoint}/bert_config.json",
        f"--init_checkpoint={minilm_checkpoint}/bert_model.ckpt",
        f"--vocab_file={minilm_checkpoint}/vocab.txt",
        f"--export_dir={tmp_path}/minilm_hub",
    )
    training_flags = [
        "--do_train=True",
        "--do_eval=True",
        "--learning_rate=5e-5",
        "--num_train_epochs=4",
    ]
    run_classifier_command(
        minilm_checkpoint,
        data,
        tmp_path / "checkpoint",
        "SST-2",
        *training_flags,
        "--do_predict=True",
        f"--init_checkpoint={minilm_checkpoint}/bert_model.ckpt",
    )
    hub_flags = [
        f"--hub_module_handle={tmp_path}/minilm_hub/encoder",
        "--vocab_file=",
        "--bert_config_file=",
    ]
    run_classifier_command(
        minilm_checkpoint, data, tmp_path / "hub", "SST-2", *training_flags, *hub_flags
    )
    from_checkpoint = read_results(tmp_path / "checkpoint" / "eval_results.txt")
    from_hub = read_results(tmp_path / "hub" / "eval_results.txt")
    print(
        f"dev accuracy from the checkpoint {from_checkpoint['eval_accuracy']:.3f}, "
        f"from its Hub export {from_hub['eval_accuracy']:.3f}"
    )
    assert sorted(from_hub) == [
        "eval_accuracy",
        "eval_examples",
        "eval_loss",
        "global_step",
        "loss",
    ]
    assert (
        from_hub["eval_examples"] == 80
        and from_hub["global_step"] == from_checkpoint["global_step"] == 30
    )

    run_classifier_command(
        minilm_checkpoint, data, tmp_path / "hub", "SST-2", "--do_predict=True", *hub_flags
    )
    probabilities = np.loadtxt(tmp_path / "hub" / "test_results.tsv")
    assert probabilities.shape == (len(test_texts), 2)
    assert np.allclose(probabilities.sum(1), 1, atol=1e-5)
    gold = [label for _, label in rows]
    for run, results in (("checkpoint", from_checkpoint), ("hub", from_hub)):
        submission = (tmp_path / run / "SST-2.tsv").read_text().splitlines()
        assert submission[0] == "index\tprediction" and len(submission) == len(test_texts) + 1
        right = [line.split("\t")[1] == label for line, label in zip(submission[1:201], gold)]
        print(f"{run}: {np.mean(right[:120]):.3f} of its training sentences right")
        assert np.mean(right[:120]) >= 0.8
        assert np.mean(right[120:]) == pytest.approx(results["eval_accuracy"])
    names = {name for name, _ in tf.train.list_variables(str(tmp_path / "hub"))}
    assert {"output_weights", "output_bias", "bert/pooler/dense/kernel", "global_step"} <= names
    run_script(
        "export_model.py",
        f"--bert_config_file={minilm_checkpoint}/bert_config.json",
        f"--init_checkpoint={tmp_path}/hub",
        f"--vocab_file={minilm_checkpoint}/vocab.txt",
        f"--export_dir={tmp_path}/served",
        "--max_seq_length=64",
        "--label_list=negative,positive",
    )
    served = tf.saved_model.load(f"{tmp_path}/served/classifier/1")
    outputs = served.signatures["serving_default"](text=tf.constant(test_texts))
    np.testing.assert_allclose(outputs["probabilities"].numpy(), probabilities, atol=1e-5)
    assert [label.decode() for label in outputs["label"].numpy()] == [
        ["negative", "positive"][int(np.argmax(p))] for p in probabilities
    ]
    pair = served.signatures["serve_pairs"](
        text_a=tf.constant(["a fine film"]), text_b=tf.constant(["truly"])
    )
    assert pair["probabilities"].shape == (1, 2)


@pytest.mark.slow
def test_fine_tunes_minilm_on_a_sentence_pair_task_built_from_real_text(
    minilm_checkpoint, enwiki_articles, tmp_path
):
    """Pairs of Wikipedia sentences in MRPC layout: label 1 when the second sentence is the first
    with a third of its words left out (a near-paraphrase), 0 when it is the sentence after the
    first in its article with as many words left out; 400 to train, 100 to evaluate (seen:
    accuracy 0.95, 0.98, 0.99, 0.99, 0.99 with --random_seed 12345, 1, 2, 3, 4). The task it
    replaces (is the second sentence the next one or one from another article?) reached
    0.50-0.75 over those seeds here and 0.60-0.72 over six with transformers on the same recipe:
    it tested the seed, not the pipeline."""
    articles = [a for a in enwiki_articles if len(a) > 10]
    rng = random.Random(1)

    def shortened(sentence):
        words = sentence.split()
        kept = sorted(rng.sample(range(len(words)), len(words) - len(words) // 3))
        return " ".join(words[i] for i in kept)

    rows = []
    for index in range(500):
        article = rng.randrange(len(articles))
        position = rng.randrange(len(articles[article]) - 1)
        first = articles[article][position]
        if index % 2:
            second, label = shortened(first), "1"
        else:
            second, label = shortened(articles[article][position + 1]), "0"
        rows.append([label, str(2 * index), str(2 * index + 1), first, second])
    header = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
    data = tmp_path / "pairs"
    write(data, "train.tsv", [header] + rows[:400])
    write(data, "dev.tsv", [header] + rows[400:])
    seconds = run_classifier_command(
        minilm_checkpoint,
        data,
        tmp_path / "out",
        "MRPC",
        "--do_train=True",
        "--do_eval=True",
        "--num_train_epochs=2",
        "--max_seq_length=96",
        f"--init_checkpoint={minilm_checkpoint}/bert_model.ckpt",
    )
    results = read_results(tmp_path / "out" / "eval_results.txt")
    print(f"near-paraphrase pairs in MRPC layout: {results} in {seconds:.0f} s")
    assert sorted(results) == [
        "eval_accuracy",
        "eval_examples",
        "eval_loss",
        "f1",
        "global_step",
        "loss",
    ]
    assert results["eval_examples"] == 100 and results["eval_accuracy"] >= 0.85
