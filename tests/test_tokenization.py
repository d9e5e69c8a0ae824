"""tokenization.py: the reference's unit cases, parity with Hugging Face, the in-graph tokenizer, bad input."""

import os
import unicodedata

import pytest


import errors
import tokenization


SMALL_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "want",
    "##want",
    "##ed",
    "wa",
    "un",
    "runn",
    "##ing",
    ",",
    "low",
    "##er",
    "##est",
    "ah",
    "zz",
    "\u535a",
    "\u63a8",
    "hello",
    "!",
    "?",
    "how",
    "are",
    "you",
]


@pytest.fixture
def small_vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("".join(token + "\n" for token in SMALL_VOCAB), encoding="utf-8")
    return str(path)


# The reference's documented unit cases.


def test_full_tokenizer_splits_lowercases_strips_accents_and_maps_ids(small_vocab_file):
    tokenizer = tokenization.FullTokenizer(small_vocab_file)
    tokens = tokenizer.tokenize("UNwant\u00e9d,running")
    assert tokens == ["un", "##want", "##ed", ",", "runn", "##ing"]
    assert tokenizer.convert_tokens_to_ids(tokens) == [9, 6, 7, 12, 10, 11]
    assert tokenizer.convert_ids_to_tokens([9, 6, 7, 12, 10, 11]) == tokens
    assert tokenizer.vocab["[UNK]"] == 1 and tokenizer.inv_vocab[1] == "[UNK]"


def test_cjk_ideographs_become_single_tokens_but_kana_and_hangul_do_not():
    tokenizer = tokenization.BasicTokenizer()
    assert tokenizer.tokenize("ah\u535a\u63a8zz") == ["ah", "\u535a", "\u63a8", "zz"]
    assert tokenizer.tokenize("\u3072\u3089\ud55c\uad6d") == [
        "\u3072\u3089\u1112\u1161\u11ab\u1100\u116e\u11a8"
    ]
    assert tokenization.BasicTokenizer(do_lower_case=False).tokenize("\ud55c\uad6d\U00020000x") == [
        "\ud55c\uad6d",
        "\U00020000",
        "x",
    ]


def test_basic_tokenizer_lower_case():
    tokenizer = tokenization.BasicTokenizer(do_lower_case=True)
    assert tokenizer.tokenize(" \tHeLLo!how  \n Are yoU?  ") == [
        "hello",
        "!",
        "how",
        "are",
        "you",
        "?",
    ]
    assert tokenizer.tokenize("H\u00e9llo") == ["hello"]


def test_basic_tokenizer_cased_does_no_normalisation():
    tokenizer = tokenization.BasicTokenizer(do_lower_case=False)
    assert tokenizer.tokenize(" \tHeLLo!how  \n Are yoU?  ") == [
        "HeLLo",
        "!",
        "how",
        "Are",
        "yoU",
        "?",
    ]
    assert tokenizer.tokenize("H\u00e9llo") == ["H\u00e9llo"]


def test_wordpiece_greedy_longest_match_and_whole_word_unknown(small_vocab_file):
    tokenizer = tokenization.WordpieceTokenizer(tokenization.load_vocab(small_vocab_file))
    assert tokenizer.tokenize("") == []
    assert tokenizer.tokenize("unwanted running") == ["un", "##want", "##ed", "runn", "##ing"]
    assert tokenizer.tokenize("unwantedX running") == ["[UNK]", "runn", "##ing"]
    assert tokenizer.tokenize("lowest lower") == ["low", "##est", "low", "##er"]


def test_word_longer_than_limit_is_one_unknown(small_vocab_file):
    tokenizer = tokenization.WordpieceTokenizer(
        tokenization.load_vocab(small_vocab_file), max_input_chars_per_word=6
    )
    assert tokenizer.tokenize("lowest") == ["low", "##est"]
    assert tokenizer.tokenize("lowestx") == ["[UNK]"]
    assert tokenization.WordpieceTokenizer({"[UNK]": 0, "a": 1, "##a": 2}).tokenize("a" * 201) == [
        "[UNK]"
    ]


def test_whitespace_control_and_punctuation_predicates():
    for char in (" ", "\t", "\r", "\n", "\u00a0", "\u3000"):
        assert tokenization._is_whitespace(char), repr(char)
    for char in ("A", "-", "\u2028"):
        assert not tokenization._is_whitespace(char), repr(char)
    for char in ("\u0005", "\u00ad", "\u200b", "\ufeff"):
        assert tokenization._is_control(char), repr(char)
    for char in ("A", " ", "\t", "\r", "\n", "\U0001f4a9"):
        assert not tokenization._is_control(char), repr(char)
    for char in ("-", "$", "`", ".", "~", "\u00bf", "\u3002", "\u2014"):
        assert tokenization._is_punctuation(char), repr(char)
    for char in ("A", " ", "1", "\u00b0"):
        assert not tokenization._is_punctuation(char), repr(char)


def test_cleaning_drops_nul_replacement_and_format_characters_and_blanks_whitespace():
    tokenizer = tokenization.BasicTokenizer(do_lower_case=False)
    assert tokenizer.tokenize("co\u00adoperate a\x00b c\ufffdd e\x1bf") == [
        "cooperate",
        "ab",
        "cd",
        "ef",
    ]
    assert tokenizer.tokenize("one\u2003two\u00a0three\r\nfour") == ["one", "two", "three", "four"]


def test_undecodable_bytes_are_dropped_never_fatal(small_vocab_file, tmp_path):
    tokenizer = tokenization.FullTokenizer(small_vocab_file)
    assert tokenizer.tokenize(b"low\xffest \xc3,hello") == ["low", "##est", ",", "hello"]
    text_file = tmp_path / "text.txt"
    text_file.write_bytes(b"hello\xfe\nhow are\r\n")
    assert list(tokenization.read_text_lines(str(text_file))) == ["hello\ufffd", "how are"]


def test_special_tokens_are_split_unless_protected(small_vocab_file):
    plain = tokenization.FullTokenizer(small_vocab_file)
    assert plain.tokenize("hello [MASK]!") == ["hello", "[UNK]", "[UNK]", "[UNK]", "!"]
    protected = tokenization.FullTokenizer(small_vocab_file, protect_special_tokens=True)
    assert protected.tokenize("Hello [MASK]! how[SEP]are [mask]") == [
        "hello",
        "[MASK]",
        "!",
        "how",
        "[SEP]",
        "are",
        "[UNK]",
        "[UNK]",
        "[UNK]",
    ]
    assert set(protected.special_tokens) == {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}


def test_case_check_knows_released_checkpoints():
    check = tokenization.validate_case_matches_checkpoint
    check(True, "gs://bucket/uncased_L-12_H-768_A-12/bert_model.ckpt")
    check(False, "/models/cased_L-24_H-1024_A-16/bert_model.ckpt")
    check(False, "/models/my_own_model/bert_model.ckpt")
    check(True, None)
    for do_lower_case, path in [
        (False, "/m/uncased_L-12_H-768_A-12/bert_model.ckpt"),
        (False, "/m/wwm_uncased_L-24_H-1024_A-16/bert_model.ckpt"),
        (False, "/m/uncased_L-4_H-256_A-4/bert_model.ckpt"),
        (False, "/m/uncased_L-12_H-128_A-2/bert_model.ckpt"),
        (False, "/m/chinese_L-12_H-768_A-12/bert_model.ckpt"),
        (True, "/m/multi_cased_L-12_H-768_A-12/bert_model.ckpt"),
        (True, "/m/wwm_cased_L-24_H-1024_A-16/bert_model.ckpt"),
    ]:
        with pytest.raises(
            errors.InputError, match=r"--do_lower_case=.*rename the checkpoint folder"
        ):
            check(do_lower_case, path)


def test_small_bert_family_is_all_24_uncased_models():
    small = [
        name
        for name in tokenization._RELEASED_CHECKPOINT_CASE
        if name.startswith("uncased_L-")
        and name not in ("uncased_L-12_H-768_A-12", "uncased_L-24_H-1024_A-16")
    ]
    assert (
        len(small) + 1 == 24
    )  # uncased_L-12_H-768_A-12 is both BERT-Base and the largest small model.


# Bad input: one-line errors that name the file.


def test_missing_empty_and_unk_less_vocab_files_name_the_file(tmp_path):
    missing = tmp_path / "missing.txt"
    with pytest.raises(errors.InputError, match=f"vocab file {missing}: cannot be read"):
        tokenization.FullTokenizer(str(missing))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(errors.InputError, match=f"vocab file {empty}: is empty"):
        tokenization.load_vocab(str(empty))
    no_unk = tmp_path / "no_unk.txt"
    no_unk.write_text("[PAD]\nhello\n")
    with pytest.raises(errors.InputError, match=rf"vocab file {no_unk}: has no \[UNK\] token"):
        tokenization.load_vocab(str(no_unk))


def test_spm_model_that_does_not_load_names_the_file(tmp_path):
    bad_model = tmp_path / "bad.model"
    bad_model.write_bytes(b"not a sentencepiece model")
    with pytest.raises(errors.InputError, match=f"spm model file {bad_model}: does not load"):
        tokenization.SentencePieceTokenizer(str(bad_model))


# Unicode facts the in-graph tokenizer relies on.


def test_unicode_facts_the_tokenizer_relies_on():
    """Punctuation and whitespace lie in planes 0 and 1; no character normalises to whitespace."""
    every_char = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    punctuation = "".join(filter(tokenization._is_punctuation, every_char))
    whitespace = "".join(filter(tokenization._is_whitespace, every_char))
    assert tokenization._unicode_character_classes() == (punctuation, whitespace)
    for char in every_char:
        if not char.isspace():
            normalised = tokenization._strip_accents(char.lower())
            assert not any(c.isspace() for c in normalised), hex(ord(char))


def test_no_code_point_outside_the_tables_ranges_has_a_property_the_tokenizer_reads():
    """The in-graph tokenizer's tables are read off planes 0 to 3 and 14: everything elsewhere is
    unassigned or private use, unchanged by lower-casing and NFD, and in no class it reads."""
    tables = tokenization._character_tables()
    scanned = set().union(*map(set, tokenization._CODE_POINTS_WITH_PROPERTIES))
    context_free = tokenization.CAPITAL_SIGMA
    for code_point in range(0x110000):
        if code_point in scanned or 0xD800 <= code_point < 0xE000:
            continue
        char = chr(code_point)
        assert unicodedata.category(char) in ("Cn", "Co"), hex(code_point)
        assert char.lower() == unicodedata.normalize("NFD", char) == char, hex(code_point)
        # Neither cased nor case-ignorable: a sigma after it (after a letter) is not final (is).
        assert (char + context_free).lower()[-1] == "\u03c3", hex(code_point)
        assert ("A" + char + context_free).lower()[-1] == "\u03c3", hex(code_point)
    assert tables.punctuation and tables.cased and tables.case_ignorable


def test_punctuation_stays_punctuation_through_lower_casing_and_accent_stripping():
    """The in-graph tokenizer splits off punctuation before it lower-cases non-ASCII words (then
    splits their normalised forms again): right only if no punctuation character stops being one."""
    tables = tokenization._character_tables()
    punctuation = set(tables.punctuation)
    for code_point in punctuation:
        normalised = tables.lowered.get(code_point, [code_point])
        assert len(normalised) == 1 and normalised[0] in punctuation, hex(code_point)
    becoming_punctuation = sorted(
        c
        for c, normalised in tables.lowered.items()
        if c not in punctuation and punctuation.intersection(normalised)
    )
    assert "".join(map(chr, becoming_punctuation)) == "\u1fef\u2260\u226e\u226f"


# Parity with Hugging Face on real text.


def test_matches_transformers_bert_tokenizer_on_every_enwiki_line(
    enwiki_lines, bert_base_uncased_vocab
):
    """Identical word pieces to transformers' Python BertTokenizer on all 5,514 lines, cased and uncased.

    What differs by default: transformers' WordpieceTokenizer turns words over 100 characters into
    [UNK], the reference (and we) only over 200. With the limit set to 200 on both, every line agrees.
    """
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    long_word_line = "x" + "ab" * 70
    for do_lower_case in (True, False):
        ours = tokenization.FullTokenizer(bert_base_uncased_vocab, do_lower_case=do_lower_case)
        theirs = BertTokenizerLegacy(bert_base_uncased_vocab, do_lower_case=do_lower_case)
        assert theirs.tokenize(long_word_line) == ["[UNK]"] != ours.tokenize(long_word_line)
        theirs.wordpiece_tokenizer.max_input_chars_per_word = tokenization.MAX_INPUT_CHARS_PER_WORD
        assert theirs.tokenize(long_word_line) == ours.tokenize(long_word_line)
        identical = sum(ours.tokenize(line) == theirs.tokenize(line) for line in enwiki_lines)
        assert (identical, len(enwiki_lines)) == (5514, 5514), f"do_lower_case={do_lower_case}"


def test_rust_bert_tokenizer_differs_only_by_final_sigma(enwiki_lines, bert_base_uncased_vocab):
    """transformers' default (tokenizers-backed) BertTokenizer lower-cases without Python's context
    rule, so a word-final capital sigma becomes σ there and ς here (and in the reference)."""
    from transformers import BertTokenizer

    ours = tokenization.FullTokenizer(bert_base_uncased_vocab)
    theirs = BertTokenizer(vocab=bert_base_uncased_vocab)
    differing = [line for line in enwiki_lines if ours.tokenize(line) != theirs.tokenize(line)]
    assert len(differing) <= 5
    for line in differing:
        assert [p.replace("ς", "σ") for p in ours.tokenize(line)] == theirs.tokenize(line)


# The in-graph tokenizer (encode_batch).

TRICKY_TEXTS = [
    "",
    "   ",
    "UNwant\u00e9d,running",
    "ΣΑΣ ΟΔΟΣ Σ",
    "ﬁne ｆｕｌｌ－ｗｉｄｔｈ ①②",
    "co\u00adoperate\u200bzero",
    "\x00a\x1fb\x7fc\x85d",
    "日本語テキスト 한국어 中文字符",
    "İstanbul ǅemal ß straße",
    "naïve café Å Ω",
    "a" * 199,
    "a" * 201,
    "é" * 70,
    "é" * 201,
    "Ⅻ ½ ² № µ",
    "[MASK] hello [SEP]x",
    "x\u2028y\u2029z",
    "\ufeffbom",
    "emoji 🤗👍🏽",
    "tab\tnew\nline\rret",
    "mixed CJK和English混合",
    "\U00020000\U0002a700",
    "׳ֹשָׁלוֹם",
    "देवनागरी",
    "ฤๅษี",
    "Ǆ ǈ ǋ",
    "ﬃ",
    "\u0130\u0307",
    "𝐀𝐁𝐂",
    "a\u0301\u0302b",
    "ΑΣ'Σ ΑΣ.Σ ΑΣ\u0301 Σ. σΣ ς",
    "a\U0001d16d\U0001d165b \u1100\u302f\u302e",
    "\u1fef ≠ ≮≯ x\u2260y",
    "ß½²™ ǈ ǅ Ꭰ",
    "lone \ud800 surrogate\udfff",
    "[MASK][SEP] a[unused1]b ΣΑΣ[MASK]",
]


@pytest.mark.parametrize("do_lower_case,protect", [(True, False), (False, False), (True, True)])
def test_encode_batch_equals_full_tokenizer_on_tricky_text(
    bert_base_uncased_vocab, do_lower_case, protect
):
    tokenizer = tokenization.FullTokenizer(
        bert_base_uncased_vocab, do_lower_case, protect_special_tokens=protect
    )
    expected = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text)) for text in TRICKY_TEXTS]
    assert tokenizer.encode_batch(TRICKY_TEXTS) == expected
    encodable = [text.encode("utf-8", "replace") for text in TRICKY_TEXTS]
    assert tokenizer.encode_batch(encodable) == [
        tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text)) for text in encodable
    ]
    assert tokenizer.encode_batch([]) == []


def test_encode_batch_equals_full_tokenizer_on_every_enwiki_line(
    enwiki_lines, bert_base_uncased_vocab
):
    for do_lower_case in (True, False):
        tokenizer = tokenization.FullTokenizer(bert_base_uncased_vocab, do_lower_case=do_lower_case)
        expected = [
            tokenizer.convert_tokens_to_ids(tokenizer.tokenize(line)) for line in enwiki_lines
        ]
        got = tokenizer.encode_batch(enwiki_lines)
        identical = sum(a == b for a, b in zip(got, expected))
        assert (identical, len(got)) == (5514, 5514), f"do_lower_case={do_lower_case}"


def test_marks_out_of_canonical_order_are_reordered_as_nfd_reorders_them(tmp_path):
    """Of the combining characters accent stripping keeps (all Mc), those of different classes
    are sorted within a run of marks, across the marks that are dropped, but not across a mark
    of class 0 (U+034F), which ends a run."""
    marks = ["\U0001d165", "\U0001d16d", "\u302e", "\u1715"]  # classes 216, 226, 224, 9
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[UNK]", "a", "b"] + ["##" + m for m in marks]) + "\n", "utf-8")
    tokenizer = tokenization.FullTokenizer(str(vocab), do_lower_case=True)
    texts = [
        "a\U0001d16d\U0001d165 b\u302e\U0001d165\u1715",
        "A\U0001d16d\u0301\U0001d165",
        "a\U0001d16d\u034f\U0001d165",
        "\U0001d16d\U0001d165",
    ]
    expected = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text)) for text in texts]
    assert expected[0] == [1, 3, 4, 2, 6, 3, 5] and expected[2] == [1, 4, 3]
    assert tokenizer.encode_batch(texts) == expected


def test_every_printable_ascii_pair_splits_as_the_reference_splits(bert_base_uncased_vocab):
    """Printable ASCII texts take tensorflow-text's own whitespace and punctuation split: every
    pair of those characters, alone, inside a word and between words, cased and uncased."""
    printable = [chr(c) for c in range(0x20, 0x7F)]
    texts = [
        f"{context}{a}{b}{context}"
        for a in printable
        for b in printable
        for context in ("", "Ab", " ")
    ]
    texts.append("x" * 200 + " " + "x" * 201 + " " + "é" * 200)
    for do_lower_case in (True, False):
        tokenizer = tokenization.FullTokenizer(bert_base_uncased_vocab, do_lower_case)
        expected = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text)) for text in texts]
        assert tokenizer.encode_batch(texts) == expected


GENERATED_CASES = {
    "uncased": ("bert-base-uncased", True, False),
    "cased": ("bert-base-uncased", False, False),
    "protected special tokens": ("bert-base-uncased", True, True),
    "repeated vocab lines": ("repeated lines", True, False),
    "every character a piece, uncased": ("every generated character", True, False),
    "every character a piece, cased": ("every generated character", False, False),
    "no ## pieces": ("no ## pieces", False, False),
}


@pytest.mark.parametrize("case", GENERATED_CASES)
def test_encode_and_encode_batch_equal_full_tokenizer_on_generated_text(
    vocab_cases, generated_texts, case
):
    """All 20,000 generated texts (conftest.generated_texts) in each case, through the graph
    (encode_batch) and through the per-word memo (encode), which sees each text twice."""
    vocab, do_lower_case, protect = GENERATED_CASES[case]
    tokenizer = tokenization.FullTokenizer(vocab_cases[vocab], do_lower_case, protect)
    got = tokenizer.encode_batch(generated_texts)
    for text, got_ids in zip(generated_texts, got):
        expected = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))
        assert got_ids == expected, repr(text)
        assert tokenizer.encode(text) == expected and tokenizer.encode(text) == expected, repr(text)


# SentencePiece.


def test_sentencepiece_tokenizer_has_the_full_tokenizer_interface(tmp_path):
    import build_vocab

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(
        "\n".join(f"The {w} sat on the mat number {i}." for i in range(300) for w in ("cat", "dog"))
    )
    prefix = str(tmp_path / "spm")
    build_vocab.train_sentencepiece(
        [str(corpus)], prefix, vocab_size=50, do_lower_case=True, algorithm="unigram"
    )
    tokenizer = tokenization.load_tokenizer(
        None, do_lower_case=True, spm_model_file=prefix + ".model"
    )
    tokens = tokenizer.tokenize("THE cat [MASK] sat")
    assert "[MASK]" in tokens and "[UNK]" not in tokens
    ids = tokenizer.convert_tokens_to_ids(tokens)
    assert tokenizer.convert_ids_to_tokens(ids) == tokens
    assert tokenizer.vocab["[PAD]"] == 0 and tokenizer.inv_vocab[ids[0]] == tokens[0]
    assert tokenizer.encode_batch(["THE cat [MASK] sat"]) == [ids]
    assert "".join(tokens).replace("\u2581", " ").strip() == "the cat [MASK] sat"


def test_load_tokenizer_returns_wordpiece_without_spm(small_vocab_file):
    tokenizer = tokenization.load_tokenizer(small_vocab_file, do_lower_case=True)
    assert isinstance(tokenizer, tokenization.FullTokenizer)
    assert os.path.samefile(tokenizer.vocab_file, small_vocab_file)


# The reference's own tests.


def test_the_reference_tokenization_tests_pass_against_ours(monkeypatch):
    """bert-tensorflow 1.0.4's tokenization_test.py with its `tokenization` swapped for ours: all
    but test_full_tokenizer_preserve_unused, which sets the reference's --preserve_unused_tokens
    flag (ours is FullTokenizer(protect_special_tokens=True), tested above)."""
    import io
    import unittest

    from bert import tokenization_test as reference_tests

    monkeypatch.setattr(reference_tests, "tokenization", tokenization)
    names = [
        name
        for name in unittest.TestLoader().getTestCaseNames(reference_tests.TokenizationTest)
        if name != "test_full_tokenizer_preserve_unused"
    ]
    assert "test_convert_tokens_to_ids" in names and len(names) == 10
    result = unittest.TextTestRunner(stream=io.StringIO()).run(
        unittest.TestSuite(reference_tests.TokenizationTest(name) for name in names)
    )
    assert result.wasSuccessful(), result.failures + result.errors


def test_module_level_id_conversions():
    vocab = {"[UNK]": 0, "un": 1, "##want": 2}
    assert tokenization.convert_tokens_to_ids(vocab, ["un", "##want"]) == [1, 2]
    assert tokenization.convert_ids_to_tokens({0: "[UNK]", 1: "un"}, [1, 0]) == ["un", "[UNK]"]
