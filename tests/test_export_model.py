"""extract_features.py and export_model.py: features against modeling.py's layers, the Hub encoder and
preprocessing SavedModels through tensorflow_hub. Fine-tuning from a Hub export and the serving
export are tested with run_classifier.py's real fine-tuning (tests/test_run_classifier.py)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT

import modeling
import tokenization


def run_script(name, *arguments):
    result = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, name), *arguments], capture_output=True, text=True
    )
    return result


@pytest.fixture(scope="module")
def minilm_export(minilm_checkpoint, tmp_path_factory):
    """export_model.py's encoder/ and preprocess/ of all-MiniLM-L6-v2."""
    directory = tmp_path_factory.mktemp("minilm_export")
    result = run_script(
        "export_model.py",
        f"--bert_config_file={minilm_checkpoint}/bert_config.json",
        f"--init_checkpoint={minilm_checkpoint}/bert_model.ckpt",
        f"--vocab_file={minilm_checkpoint}/vocab.txt",
        f"--export_dir={directory}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return directory


def load_bert(directory):
    bert = modeling.BertModel(modeling.BertConfig.from_json_file(f"{directory}/bert_config.json"))
    modeling.load_checkpoint(f"{directory}/bert_model.ckpt", modeling.variables_by_name(bert))
    return bert


def sample_lines():
    with open(os.path.join(REPO_ROOT, "sample_text.txt"), encoding="utf-8") as reader:
        return [line.strip() for line in reader if line.strip()]


@pytest.mark.slow
def test_extract_features_equal_the_model_layers_in_the_reference_schema(
    minilm_checkpoint, tmp_path
):
    lines = sample_lines()[:5] + ["A man walks his dog. ||| The dog sleeps.", "", "word " * 40]
    (tmp_path / "input.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    common = [
        f"--input_file={tmp_path}/input.txt",
        f"--vocab_file={minilm_checkpoint}/vocab.txt",
        f"--bert_config_file={minilm_checkpoint}/bert_config.json",
        f"--init_checkpoint={minilm_checkpoint}/bert_model.ckpt",
        "--max_seq_length=24",
        "--batch_size=3",
    ]
    result = run_script(
        "extract_features.py", *common, f"--output_file={tmp_path}/features.jsonl", "--layers=-1,0"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        "input.txt:7: empty line" in result.stderr
        and "input.txt:8: longer than --max_seq_length=24" in result.stderr
    )
    records = [json.loads(line) for line in (tmp_path / "features.jsonl").read_text().splitlines()]
    assert [r["linex_index"] for r in records] == list(range(len(lines)))
    assert set(records[0]) == {"linex_index", "features"}
    assert set(records[0]["features"][0]) == {"token", "layers"}
    assert [layer["index"] for layer in records[0]["features"][0]["layers"]] == [-1, 0]

    tokenizer = tokenization.FullTokenizer(f"{minilm_checkpoint}/vocab.txt")
    import extract_features

    bert = load_bert(minilm_checkpoint)
    for record, line in zip(records, lines):
        input_ids, input_mask, segment_ids, _ = extract_features.featurize_line(line, tokenizer, 24)
        length = sum(input_mask)
        assert [f["token"] for f in record["features"]] == tokenizer.convert_ids_to_tokens(
            input_ids[:length]
        )
        outputs = bert(
            tf.constant([input_ids]), tf.constant([input_mask]), tf.constant([segment_ids])
        )
        for position, feature in enumerate(record["features"]):
            for layer in feature["layers"]:
                expected = outputs.all_encoder_layers[layer["index"]][0, position].numpy()
                np.testing.assert_allclose(layer["values"], expected, atol=1e-5)
                assert all(round(v, 6) == v for v in layer["values"])
    assert [f["token"] for f in records[5]["features"]] == [
        "[CLS]",
        "a",
        "man",
        "walks",
        "his",
        "dog",
        ".",
        "[SEP]",
        "the",
        "dog",
        "sleeps",
        ".",
        "[SEP]",
    ]
    assert [f["token"] for f in records[6]["features"]] == ["[CLS]", "[SEP]"] and len(
        records[7]["features"]
    ) == 24

    # One vector a line: the mean over word pieces, L2-normalised (sentence-transformers' pooling).
    result = run_script(
        "extract_features.py",
        *common,
        f"--output_file={tmp_path}/vectors.jsonl",
        "--pooling=mean",
        "--normalize",
        "--layers=-1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    vectors = [json.loads(line) for line in (tmp_path / "vectors.jsonl").read_text().splitlines()]
    input_ids, input_mask, segment_ids, _ = extract_features.featurize_line(lines[0], tokenizer, 24)
    sequence = bert(
        tf.constant([input_ids]), tf.constant([input_mask]), tf.constant([segment_ids])
    ).sequence_output[0]
    mean = sequence.numpy()[: sum(input_mask)].mean(0)
    assert vectors[0]["linex_index"] == 0 and len(vectors) == len(lines)
    np.testing.assert_allclose(vectors[0]["values"], mean / np.linalg.norm(mean), atol=1e-5)

    result = run_script(
        "extract_features.py", *common, f"--output_file={tmp_path}/bad.jsonl", "--layers=-1,6"
    )
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1] == (
        "error: --layers=-1,6: layer 6 is out of range: the model has 6 encoder layers (indexes -6...5)"
    )
    assert not (tmp_path / "bad.jsonl").exists()


@pytest.mark.slow
def test_hub_exports_load_and_equal_modeling(minilm_checkpoint, minilm_export):
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401  (registers the preprocessing model's ops, as for Hub's own)

    del tensorflow_text

    encoder = hub.load(f"{minilm_export}/encoder")
    preprocess = hub.load(f"{minilm_export}/preprocess")
    texts = sample_lines()[:6]
    inputs = preprocess(tf.constant(texts))
    assert {k: v.shape.as_list() for k, v in inputs.items()} == {
        k: [6, 128] for k in ("input_word_ids", "input_mask", "input_type_ids")
    }
    bert = load_bert(minilm_checkpoint)
    expected = bert(inputs["input_word_ids"], inputs["input_mask"], inputs["input_type_ids"])
    outputs = encoder(inputs, training=False)
    # training=True drops out, with masks seeded by export_model.py's --random_seed: every load
    # draws the same ones, so fine-tuning through the export repeats (unseeded, each differs).
    # Inference draws nothing, so the load above still draws as a fresh one.
    dropped = [
        loaded(inputs, training=True)["sequence_output"]
        for loaded in (encoder, hub.load(f"{minilm_export}/encoder"))
    ]
    assert np.abs(dropped[0] - expected.sequence_output).max() > 0.1
    np.testing.assert_array_equal(dropped[0], dropped[1])
    layer = hub.KerasLayer(f"{minilm_export}/encoder", trainable=True)
    keras_outputs = layer(inputs)
    for got in (outputs, keras_outputs):
        np.testing.assert_allclose(got["pooled_output"], expected.pooled_output, atol=1e-5)
        np.testing.assert_allclose(got["sequence_output"], expected.sequence_output, atol=1e-5)
        assert len(got["encoder_outputs"]) == 6
        np.testing.assert_allclose(
            got["encoder_outputs"][2], expected.all_encoder_layers[2], atol=1e-5
        )
    assert len(layer.trainable_weights) == len(bert.trainable_variables)
    assert {w.name.split(":")[0] for w in layer.trainable_weights} == set(
        modeling.variables_by_name(bert)
    )
    assert bool(encoder.do_lower_case.numpy())
    assert (
        open(encoder.vocab_file.asset_path.numpy().decode()).read()
        == open(f"{minilm_checkpoint}/vocab.txt").read()
    )

    # tokenize and bert_pack_inputs, a pair at another length: the reference's truncation of the longer side.
    tokenizer = tokenization.FullTokenizer(f"{minilm_checkpoint}/vocab.txt")
    import run_classifier

    task = run_classifier.Task({}, {}, ["0"], True, "T")
    for text_a, text_b in zip(texts[:3], texts[3:6]):
        packed = preprocess.bert_pack_inputs(
            [
                preprocess.tokenize(tf.constant([text_a])),
                preprocess.tokenize(tf.constant([text_b])),
            ],
            seq_length=20,
        )
        features = run_classifier.featurize(
            run_classifier.InputExample("x", text_a, text_b, "0"), task, tokenizer, 20
        )
        assert packed["input_word_ids"][0].numpy().tolist() == features["input_ids"]
        assert packed["input_type_ids"][0].numpy().tolist() == features["segment_ids"]
        assert packed["input_mask"][0].numpy().tolist() == features["input_mask"]


EXPORT_CASES = {
    # case: (vocab_cases key, do_lower_case)
    "uncased": ("bert-base-uncased", True),
    "cased": ("bert-base-uncased", False),
    "repeated vocab lines": ("repeated lines", True),
    "every character a piece": ("every generated character", True),
    "no ## pieces": ("no ## pieces", False),
}


def export_tokenizers(vocab_file, do_lower_case, directory):
    """preprocess/ and classifier/1/ as export_model.py writes them, for a vocabulary (the
    classifier's weights are random: only its tokenizer is read here)."""
    import export_model

    tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case)
    graph_tokenizer = export_model.GraphTokenizer(tokenizer)
    packer = export_model.BertPacker(tokenizer.vocab["[CLS]"], tokenizer.vocab["[SEP]"])
    export_model.save_atomically(
        export_model.preprocess_export(graph_tokenizer, packer, vocab_file, do_lower_case, 128),
        f"{directory}/preprocess",
    )
    config = modeling.BertConfig(
        max(tokenizer.vocab.values()) + 1,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
    )
    export, signatures = export_model.classifier_export(
        modeling.BertClassifierModel(config, 2), graph_tokenizer, packer, ["0", "1"], 128
    )
    export_model.save_atomically(export, f"{directory}/classifier/1", signatures)
    return tokenizer


@pytest.mark.slow
@pytest.mark.parametrize("case", EXPORT_CASES)
def test_exported_tokenizers_give_full_tokenizer_ids_on_real_and_generated_text(
    case, vocab_cases, minilm_checkpoint, minilm_export, enwiki_lines, generated_texts, tmp_path
):
    """preprocess/ through hub.load, hub.KerasLayer (its packed inputs, and its tokenize), and
    classifier/1/'s tokenize: the ids of FullTokenizer on every enwiki_sample line (cased and
    uncased) and on the 20,000 generated texts (conftest.generated_texts), sent as UTF-8 bytes, lone surrogates as the
    invalid bytes "surrogatepass" writes (FullTokenizer drops what it cannot decode). The
    uncased preprocess/ is export_model.py's own, from the MiniLM checkpoint."""
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401  (registers the ops the exports use, as for Hub's own)

    del tensorflow_text
    vocab, do_lower_case = EXPORT_CASES[case]
    tokenizer = export_tokenizers(vocab_cases[vocab], do_lower_case, tmp_path)
    preprocess_dir = (
        f"{minilm_export}/preprocess" if case == "uncased" else f"{tmp_path}/preprocess"
    )
    preprocess = hub.load(preprocess_dir)
    packing_layer = hub.KerasLayer(preprocess_dir)
    tokenize_layer = hub.KerasLayer(preprocess.tokenize)
    classifier = tf.saved_model.load(f"{tmp_path}/classifier/1")
    cls_id, sep_id = tokenizer.vocab["[CLS]"], tokenizer.vocab["[SEP]"]

    def check(texts):
        expected = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text)) for text in texts]
        batch = tf.constant(texts, tf.string)
        packed = [[cls_id] + ids[:126] + [sep_id] for ids in expected]
        packed = [ids + [0] * (128 - len(ids)) for ids in packed]
        by_caller = {
            "hub.load tokenize": preprocess.tokenize(batch),
            "KerasLayer(tokenize)": tokenize_layer(batch),
            "classifier tokenize": classifier.tokenize(batch),
        }
        for caller, words in by_caller.items():
            got = words.merge_dims(-2, -1).to_list()
            for text, got_ids, expected_ids in zip(texts, got, expected):
                assert got_ids == expected_ids, (caller, text)
        assert packing_layer(batch)["input_word_ids"].numpy().tolist() == packed

    if vocab == "bert-base-uncased":
        lines = [line.encode("utf-8") for line in enwiki_lines]
        for start in range(0, len(lines), 1000):
            check(lines[start : start + 1000])

    encoded = [text.encode("utf-8", "surrogatepass") for text in generated_texts]
    for start in range(0, len(encoded), 2000):
        check(encoded[start : start + 2000])


def test_extract_features_progress_gives_an_eta_from_the_counted_lines(
    tmp_path, monkeypatch, caplog
):
    """12 lines in batches of 4, a line per batch (a 0 s interval): done/total and an ETA."""
    from absl import flags
    from absl.testing import flagsaver

    import extract_features
    import training

    words = ["the", "cat", "sat", "on", "a", "mat"]
    (tmp_path / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words) + "\n", encoding="utf-8"
    )
    config = modeling.BertConfig(
        vocab_size=11, hidden_size=16, num_hidden_layers=2, num_attention_heads=2
    )
    (tmp_path / "bert_config.json").write_text(config.to_json_string(), encoding="utf-8")
    model = modeling.BertModel(config)
    modeling.save_checkpoint(str(tmp_path / "model.ckpt"), modeling.variables_by_name(model))
    (tmp_path / "input.txt").write_text(
        "".join(" ".join(words[: 1 + i % 6]) + "\n" for i in range(12)), encoding="utf-8"
    )
    monkeypatch.setattr(training, "PROGRESS_SECONDS", 0.0)
    # On absl's own logger: TensorFlow's SavedModel writing sets it to WARNING in-process.
    caplog.set_level("INFO", logger="absl")
    flags.FLAGS.mark_as_parsed()
    with flagsaver.flagsaver(
        input_file=str(tmp_path / "input.txt"),
        output_file=str(tmp_path / "features.jsonl"),
        vocab_file=str(tmp_path / "vocab.txt"),
        bert_config_file=str(tmp_path / "bert_config.json"),
        init_checkpoint=str(tmp_path / "model.ckpt"),
        max_seq_length=16,
        batch_size=4,
        layers="-1",
        pooling="cls",
    ):
        extract_features.main([])
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("prediction: ")]
    assert progress[0].startswith("prediction: 8/12 examples,") and " eta " in progress[0]
    assert progress[-1].startswith("prediction: 12 examples in ")
    assert len((tmp_path / "features.jsonl").read_text().splitlines()) == 12
