"""Text to WordPiece or SentencePiece tokens and ids, with the reference BERT semantics.

    tokenizer = tokenization.FullTokenizer("vocab.txt", do_lower_case=True)
    tokens = tokenizer.tokenize("UNwant\u00e9d,running")  # un ##want ##ed , runn ##ing
    ids = tokenizer.convert_tokens_to_ids(tokens)
    ids_per_line = tokenizer.encode_batch(lines)          # the same ids, in TensorFlow ops

The WordPiece path reproduces the reference tokenizer exactly:
  1. clean: drop U+0000, U+FFFD and control characters (categories Cc, Cf, except tab,
     newline, carriage return); every whitespace character (space, \\t\\n\\r, category Zs)
     becomes a space;
  2. put spaces around CJK ideographs (not Hangul or Kana: those are written with spaces);
  3. split on whitespace; when lower-casing, each word is lower-cased, NFD-decomposed and
     stripped of combining marks (category Mn); the cased path does no normalisation;
  4. split off every punctuation character (all non-alphanumeric ASCII and every Unicode P*);
  5. greedy longest-match-first WordPiece with `##` continuations; a word with any part
     that matches nothing, or longer than max_input_chars_per_word, is one [UNK].

Undecodable bytes are decoded with errors="replace" and the replacement character is then
dropped by step 1: a bad byte never stops a run and never becomes a token.

`protect_special_tokens=True` keeps the vocabulary's bracketed tokens ([CLS], [SEP], [MASK],
[unused0], ...) whole wherever they appear in the text; the reference splits them into
`[`, `mask`, `]`, so it is off by default.
"""

import collections
import contextlib
import functools
import gc
import itertools
import re
import unicodedata
from typing import NamedTuple

from errors import InputError
import file_io

UNKNOWN_TOKEN = "[UNK]"
# The most words a per-word cache holds before it starts over: bounded memory on any corpus.
_WORD_CACHE_ENTRIES = 1 << 20
BYTE_ORDER_MARK = "\ufeff"
MAX_INPUT_CHARS_PER_WORD = 200

# Inclusive code point ranges of the CJK Unified Ideographs blocks and their extensions and
# compatibility blocks. Hangul and Japanese kana are written with spaces, so they are not here.
CJK_IDEOGRAPH_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)

_SPECIAL_TOKEN_PATTERN = re.compile(r"\[[^\[\]\s]+\]")


def convert_to_unicode(text):
    """Returns `text` as str; bytes are UTF-8 decoded with undecodable bytes replaced."""
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray)):
        return bytes(text).decode("utf-8", errors="replace")
    raise TypeError(f"expected str or bytes, got {type(text).__name__}")


def printable_text(text):
    """Returns `text` as str, suitable for printing or logging."""
    return convert_to_unicode(text)


def read_text_lines(path):
    """Yields the lines of a text file without their line ends (and without a leading byte-order
    mark), decoded as convert_to_unicode does.

    Streams: the file is never held whole in memory.
    """
    return text_lines(file_io.read_lines(path))


def text_lines(raw_lines):
    """read_text_lines over lines already read (bytes, line ends kept) from any reader."""
    for index, raw_line in enumerate(raw_lines):
        line = convert_to_unicode(raw_line).rstrip("\r\n")
        yield line.removeprefix(BYTE_ORDER_MARK) if index == 0 else line


def load_vocab(vocab_file):
    """Reads a vocabulary file, one token per line, into an ordered {token: id} dict.

    Raises InputError naming the file when it is missing, empty or has no [UNK].
    """
    lines = file_io.read_text(vocab_file, "vocab file ").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    vocab = collections.OrderedDict()
    for index, line in enumerate(lines):
        vocab[line.strip()] = index
    if not vocab:
        raise InputError(f"vocab file {vocab_file}: is empty")
    if UNKNOWN_TOKEN not in vocab:
        raise InputError(f"vocab file {vocab_file}: has no {UNKNOWN_TOKEN} token")
    return vocab


@contextlib.contextmanager
def garbage_collection_paused():
    """Pauses Python's cyclic garbage collector while hundreds of thousands of id lists are made:
    its passes over them would cost as much as making them, and they hold no cycles."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def convert_by_vocab(vocab, items):
    """Maps each item through `vocab` (tokens to ids or ids to tokens)."""
    return [vocab[item] for item in items]


def convert_tokens_to_ids(vocab, tokens):
    """The reference's module function: tokens → ids through `vocab` ({token: id})."""
    return convert_by_vocab(vocab, tokens)


def convert_ids_to_tokens(inv_vocab, ids):
    """The reference's module function: ids → tokens through `inv_vocab` ({id: token})."""
    return convert_by_vocab(inv_vocab, ids)


def whitespace_tokenize(text):
    """Strips `text` and splits it on whitespace."""
    return text.split()


# Released checkpoints by the case their vocabulary was built for: name → lower-cased?
_RELEASED_CHECKPOINT_CASE = {
    "uncased_L-12_H-768_A-12": True,
    "uncased_L-24_H-1024_A-16": True,
    "wwm_uncased_L-24_H-1024_A-16": True,
    "multilingual_L-12_H-768_A-12": True,
    "chinese_L-12_H-768_A-12": True,
    "cased_L-12_H-768_A-12": False,
    "cased_L-24_H-1024_A-16": False,
    "wwm_cased_L-24_H-1024_A-16": False,
    "multi_cased_L-12_H-768_A-12": False,
}
# The 24 small English models (Turc et al. 2019) are all uncased.
for _layers in (2, 4, 6, 8, 10, 12):
    for _hidden in (128, 256, 512, 768):
        _RELEASED_CHECKPOINT_CASE[f"uncased_L-{_layers}_H-{_hidden}_A-{_hidden // 64}"] = True

_CHECKPOINT_NAME_PATTERN = re.compile(r"^.*?([A-Za-z0-9_-]+)/bert_model\.ckpt")


def released_checkpoint_case(init_checkpoint):
    """Whether the released checkpoint at `init_checkpoint` was trained on lower-cased text (True),
    cased text (False), or None when its folder name (`.../uncased_L-12_H-768_A-12/bert_model.ckpt`)
    is not a released one."""
    match = _CHECKPOINT_NAME_PATTERN.match(init_checkpoint or "")
    return _RELEASED_CHECKPOINT_CASE.get(match.group(1)) if match else None


def validate_case_matches_checkpoint(do_lower_case, init_checkpoint):
    """Raises InputError when do_lower_case contradicts a released checkpoint's known casing.

    The checkpoint is recognised by the name of its folder (e.g. `.../uncased_L-12_H-768_A-12/
    bert_model.ckpt`); unknown names are not checked.
    """
    expected_lower_case = released_checkpoint_case(init_checkpoint)
    if expected_lower_case is None or expected_lower_case == do_lower_case:
        return
    model_name = _CHECKPOINT_NAME_PATTERN.match(init_checkpoint).group(1)
    actual = "lower-cased" if do_lower_case else "cased"
    expected = "lower-cased" if expected_lower_case else "cased"
    raise InputError(
        f"--do_lower_case={do_lower_case} makes the text {actual}, but the released checkpoint "
        f"{model_name} was trained on {expected} text; set --do_lower_case={expected_lower_case}, "
        f"or rename the checkpoint folder if you really mean to fine-tune it this way"
    )


def _is_whitespace(char):
    """True for the characters the reference treats as whitespace: space, \\t\\n\\r, Zs."""
    if char in " \t\n\r":
        return True
    return unicodedata.category(char) == "Zs"


def _is_control(char):
    """True for control and format characters (Cc, Cf), except the whitespace \\t\\n\\r."""
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _is_punctuation(char):
    """True for every non-alphanumeric printable ASCII character and every Unicode P*."""
    code_point = ord(char)
    if (
        33 <= code_point <= 47
        or 58 <= code_point <= 64
        or 91 <= code_point <= 96
        or 123 <= code_point <= 126
    ):
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk_ideograph(code_point):
    return any(low <= code_point <= high for low, high in CJK_IDEOGRAPH_RANGES)


class _CleaningTable(dict):
    """str.translate table for steps 1 and 2: drop, blank or space-pad each character.

    Filled on first sight of each character, so the Unicode lookups happen once per character.
    """

    def __missing__(self, code_point):
        char = chr(code_point)
        if code_point == 0 or code_point == 0xFFFD or _is_control(char):
            replacement = None
        elif _is_whitespace(char):
            replacement = " "
        elif _is_cjk_ideograph(code_point):
            replacement = f" {char} "
        else:
            replacement = char
        self[code_point] = replacement
        return replacement


# Every punctuation and whitespace character lies in planes 0 and 1 (the highest, U+1E95F, is
# punctuation); planes 2 to 16 hold ideographs, tags and private use. A test checks this.
_PUNCTUATION_AND_WHITESPACE_PLANES_END = 0x20000


@functools.lru_cache(maxsize=1)
def _unicode_character_classes():
    """(punctuation, whitespace): every character of each class, from one scan of planes 0 and 1."""
    chars = [chr(c) for c in range(_PUNCTUATION_AND_WHITESPACE_PLANES_END)]
    return "".join(filter(_is_punctuation, chars)), "".join(filter(_is_whitespace, chars))


@functools.lru_cache(maxsize=1)
def _punctuation_splitter():
    """A regex that captures each punctuation character."""
    return re.compile("([" + re.escape(_unicode_character_classes()[0]) + "])")


def _strip_accents(text):
    """NFD-decomposes `text` and drops the combining marks (category Mn)."""
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def _token_splitter(tokens):
    """A regex whose split() alternates the text between `tokens` and the tokens (longest first),
    or None when there are no tokens."""
    if not tokens:
        return None
    return re.compile(
        "(" + "|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True)) + ")"
    )


class BasicTokenizer:
    """Cleaning, CJK spacing, lower-casing, accent stripping and punctuation splitting.

    Args:
      do_lower_case: lower-case, NFD-decompose and strip accents.
      never_split: tokens kept whole and unchanged wherever they stand in the text.
    """

    def __init__(self, do_lower_case=True, never_split=()):
        self.do_lower_case = do_lower_case
        self.never_split = frozenset(never_split)
        self._cleaning_table = _CleaningTable()
        self._never_split_pattern = _token_splitter(self.never_split)

    def tokenize(self, text):
        """Returns the list of basic tokens (words and punctuation) of `text`."""
        text = convert_to_unicode(text).translate(self._cleaning_table)
        if self._never_split_pattern is None:
            return self._split_words(text)
        tokens = []
        for index, part in enumerate(self._never_split_pattern.split(text)):
            # re.split with one capture group alternates plain text and protected tokens.
            if index % 2:
                tokens.append(part)
            else:
                tokens.extend(self._split_words(part))
        return tokens

    def _split_words(self, text):
        splitter = _punctuation_splitter()
        tokens = []
        for word in text.split():
            if self.do_lower_case:
                word = _strip_accents(word.lower())
            # Letters and digits only: nothing to split (most words). Lower-casing and accent
            # stripping never produce whitespace (a test checks every character), so the
            # reference's final whitespace re-split has nothing to do either.
            if word.isalnum():
                tokens.append(word)
            else:
                tokens.extend(piece for piece in splitter.split(word) if piece)
        return tokens


class WordpieceTokenizer:
    """Greedy longest-match-first WordPiece over a vocabulary.

    Args:
      vocab: {token: id}; continuation pieces carry the `##` prefix.
      unk_token: what a word with an unmatchable part, or a too-long word, becomes.
      max_input_chars_per_word: words longer than this become `unk_token`.
    """

    def __init__(
        self, vocab, unk_token=UNKNOWN_TOKEN, max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD
    ):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        self._word_cache = {}

    def tokenize(self, text):
        """Returns the word pieces of each whitespace-separated word of `text`."""
        pieces = []
        for word in whitespace_tokenize(convert_to_unicode(text)):
            cached = self._word_cache.get(word)
            if cached is None:
                cached = self._tokenize_word(word)
                if len(self._word_cache) >= _WORD_CACHE_ENTRIES:
                    self._word_cache.clear()
                self._word_cache[word] = cached
            pieces.extend(cached)
        return pieces

    def _tokenize_word(self, word):
        if len(word) > self.max_input_chars_per_word:
            return (self.unk_token,)
        vocab = self.vocab
        pieces = []
        start = 0
        while start < len(word):
            end = len(word)
            piece = None
            while start < end:
                candidate = word[start:end] if start == 0 else "##" + word[start:end]
                if candidate in vocab:
                    piece = candidate
                    break
                end -= 1
            if piece is None:
                return (self.unk_token,)
            pieces.append(piece)
            start = end
        return tuple(pieces)


class FullTokenizer:
    """BasicTokenizer then WordpieceTokenizer over a vocabulary file.

    Args:
      vocab_file: one token per line; the line number is the id.
      do_lower_case: lower-case and strip accents (must match the checkpoint's vocabulary).
      protect_special_tokens: keep the vocabulary's bracketed tokens ([MASK], ...) whole.
    """

    def __init__(self, vocab_file, do_lower_case=True, protect_special_tokens=False):
        self.vocab_file = vocab_file
        self.do_lower_case = do_lower_case
        self.vocab = load_vocab(vocab_file)
        self.inv_vocab = {index: token for token, index in self.vocab.items()}
        self.special_tokens = (
            tuple(t for t in self.vocab if _SPECIAL_TOKEN_PATTERN.fullmatch(t))
            if protect_special_tokens
            else ()
        )
        self.basic_tokenizer = BasicTokenizer(
            do_lower_case=do_lower_case, never_split=self.special_tokens
        )
        self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab)
        self._graph_tokenizer = None
        self._word_ids = {}

    def tokenize(self, text):
        """Returns the word pieces of `text`."""
        pieces = []
        for token in self.basic_tokenizer.tokenize(text):
            if token in self.basic_tokenizer.never_split:
                pieces.append(token)
            else:
                pieces.extend(self.wordpiece_tokenizer.tokenize(token))
        return pieces

    def convert_tokens_to_ids(self, tokens):
        return convert_by_vocab(self.vocab, tokens)

    def convert_ids_to_tokens(self, ids):
        return convert_by_vocab(self.inv_vocab, ids)

    def encode(self, text):
        """Returns the ids of `text`: exactly `convert_tokens_to_ids(tokenize(text))`.

        Cleaning is per character and every later step is per whitespace-separated word, so each
        cleaned word's ids are computed once and looked up after (natural text repeats its words).
        """
        if self.special_tokens:
            return self.convert_tokens_to_ids(self.tokenize(text))
        basic, wordpiece, vocab = self.basic_tokenizer, self.wordpiece_tokenizer, self.vocab
        word_ids = self._word_ids
        ids = []
        for word in convert_to_unicode(text).translate(basic._cleaning_table).split():
            cached = word_ids.get(word)
            if cached is None:
                cached = tuple(
                    vocab[piece]
                    for token in basic._split_words(word)
                    for piece in wordpiece.tokenize(token)
                )
                if len(word_ids) >= _WORD_CACHE_ENTRIES:
                    word_ids.clear()
                word_ids[word] = cached
            ids.extend(cached)
        return ids

    def encode_batch(self, texts):
        """Returns the ids of each text: exactly `convert_tokens_to_ids(tokenize(text))`.

        Runs the whole batch through GraphWordpieceTokenizer, in TensorFlow's ops.
        """
        if self._graph_tokenizer is None:
            self._graph_tokenizer = GraphWordpieceTokenizer(self)
        return self._graph_tokenizer.encode_batch([convert_to_unicode(text) for text in texts])


class SentencePieceTokenizer:
    """The FullTokenizer interface over a SentencePiece model (ALBERT-style vocabularies).

    The pieces are the model's own (`▁` marks a word start); the vocabulary is the model's
    piece list, so ids are the model's ids. Special tokens such as [CLS], [SEP] and [MASK]
    must be user-defined symbols of the model (build_vocab.py adds them).

    Args:
      spm_model_file: a trained SentencePiece model.
      do_lower_case: lower-case the text before encoding.
    """

    def __init__(self, spm_model_file, do_lower_case=True):
        import sentencepiece

        self.spm_model_file = spm_model_file
        self.do_lower_case = do_lower_case
        self.processor = sentencepiece.SentencePieceProcessor()
        model_proto = file_io.read_bytes(spm_model_file, "spm model file ")
        try:
            self.processor.LoadFromSerializedProto(model_proto)
        except (OSError, RuntimeError) as error:
            raise InputError(
                f"spm model file {spm_model_file}: does not load as a SentencePiece model "
                f"({str(error).splitlines()[0]})"
            ) from None
        self.vocab = collections.OrderedDict(
            (self.processor.IdToPiece(index), index)
            for index in range(self.processor.GetPieceSize())
        )
        self.inv_vocab = {index: token for token, index in self.vocab.items()}
        self._special_piece_splitter = _token_splitter(
            [piece for piece in self.vocab if _SPECIAL_TOKEN_PATTERN.fullmatch(piece)]
        )

    def tokenize(self, text):
        text = " ".join(convert_to_unicode(text).split())
        if self.do_lower_case:
            # re.split with one capture group alternates plain text and special pieces, which keep
            # their case so that [MASK] stays one piece.
            parts = (
                self._special_piece_splitter.split(text) if self._special_piece_splitter else [text]
            )
            text = "".join(part if index % 2 else part.lower() for index, part in enumerate(parts))
        return self.processor.EncodeAsPieces(text)

    def convert_tokens_to_ids(self, tokens):
        return [self.processor.PieceToId(token) for token in tokens]

    def convert_ids_to_tokens(self, ids):
        return [self.processor.IdToPiece(index) for index in ids]

    def encode(self, text):
        """Returns the ids of `text`, as convert_tokens_to_ids(tokenize(text))."""
        return self.convert_tokens_to_ids(self.tokenize(text))

    def encode_batch(self, texts):
        """Returns the ids of each text, as convert_tokens_to_ids(tokenize(text))."""
        return [self.encode(text) for text in texts]


def pack_segments(tokenizer, tokens_a, tokens_b, max_seq_length):
    """One or two segments of word pieces → the reference's model inputs.

    `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, segment ids 0 then 1, zero padding. A pair is cut
    by popping from the end of the longer segment until it fits (the reference's rule), a single
    segment from its end. tokens_b is None for one text; the lists are cut in place.

    Returns:
      {"tokens", "input_ids", "input_mask", "segment_ids" [max_seq_length], "truncated"}.
    """
    budget = max_seq_length - (2 if tokens_b is None else 3)
    truncated = len(tokens_a) + len(tokens_b or ()) > budget
    if tokens_b is None:
        del tokens_a[budget:]
    while tokens_b is not None and len(tokens_a) + len(tokens_b) > budget:
        (tokens_a if len(tokens_a) > len(tokens_b) else tokens_b).pop()
    tokens = ["[CLS]"] + tokens_a + ["[SEP]"]
    segment_ids = [0] * len(tokens)
    if tokens_b:
        tokens += tokens_b + ["[SEP]"]
        segment_ids += [1] * (len(tokens_b) + 1)
    padding = [0] * (max_seq_length - len(tokens))
    return {
        "tokens": tokens,
        "input_ids": tokenizer.convert_tokens_to_ids(tokens) + padding,
        "input_mask": [1] * len(tokens) + padding,
        "segment_ids": segment_ids + padding,
        "truncated": truncated,
    }


def doc_spans(num_tokens, max_tokens_for_doc, doc_stride):
    """[(start, length)] windows over num_tokens pieces; the last one ends at the last piece."""
    spans, start = [], 0
    while start < num_tokens:
        length = min(num_tokens - start, max_tokens_for_doc)
        spans.append((start, length))
        if start + length == num_tokens:
            break
        start += min(length, doc_stride)
    return spans


def is_max_context(spans, span_index, position):
    """Whether span `span_index` gives piece `position` the most context: the largest
    min(left, right) context, plus 0.01 × span length to break ties; the first span wins ties."""
    best_score, best_index = None, None
    for index, (start, length) in enumerate(spans):
        end = start + length - 1
        if start <= position <= end:
            score = min(position - start, end - position) + 0.01 * length
            if best_score is None or score > best_score:
                best_score, best_index = score, index
    return span_index == best_index


def load_tokenizer(
    vocab_file, do_lower_case=True, spm_model_file=None, protect_special_tokens=False
):
    """The tokenizer the scripts' flags ask for: SentencePiece when spm_model_file is set."""
    if spm_model_file:
        return SentencePieceTokenizer(spm_model_file, do_lower_case=do_lower_case)
    return FullTokenizer(
        vocab_file, do_lower_case=do_lower_case, protect_special_tokens=protect_special_tokens
    )


# The in-graph tokenizer.

# Outside these ranges every code point is unassigned or private use in the Unicode versions Python
# ships: none is cased, case-ignorable, a mark, punctuation, whitespace, a control or decomposable
# (a test checks every code point), so the tables below are read off these alone.
_CODE_POINTS_WITH_PROPERTIES = (range(0xD800), range(0xE000, 0x40000), range(0xE0000, 0xF0000))
CAPITAL_SIGMA = "\u03a3"
FINAL_SIGMA = "\u03c2"


class _CharacterTables(NamedTuple):
    """The reference's character classes and str.lower / NFD behaviour, as code point lists."""

    deleted: list  # what cleaning drops: U+0000, U+FFFD, Cc and Cf but tab, newline, return
    separators: list  # what separates words, but the space: whitespace and what str.split splits on
    punctuation: list
    # Uncased models: code point → the code points of NFD(c.lower()) without its combining marks
    # of nonzero class, for every character where that is not the character itself.
    lowered: dict
    zero_class_marks: list  # Mn of combining class 0: they end a run of marks, then are dropped
    surviving_mark_classes: dict  # non-Mn characters of nonzero class (all Mc) → their class
    cased: list  # cased and not case-ignorable, as str.lower's final-sigma rule reads them
    case_ignorable: list


@functools.lru_cache(maxsize=1)
def _character_tables():
    deleted, separators, punctuation, zero_class_marks, cased, case_ignorable = (
        [] for _ in range(6)
    )
    lowered, surviving_mark_classes = {}, {}
    for code_point in itertools.chain(*_CODE_POINTS_WITH_PROPERTIES):
        char = chr(code_point)
        category = unicodedata.category(char)
        if code_point in (0, 0xFFFD) or _is_control(char):
            deleted.append(code_point)
            continue
        if char != " " and (_is_whitespace(char) or char.isspace()):
            separators.append(code_point)
        if _is_punctuation(char):
            punctuation.append(code_point)
        combining_class = unicodedata.combining(char)
        if category == "Mn" and combining_class == 0:
            zero_class_marks.append(code_point)
        elif combining_class and category != "Mn":
            surviving_mark_classes[code_point] = combining_class
        lower = char.lower()
        if lower != char or category == "Mn" or not unicodedata.is_normalized("NFD", char):
            decomposed = [
                ord(c)
                for c in unicodedata.normalize("NFD", lower)
                if not (unicodedata.category(c) == "Mn" and unicodedata.combining(c))
            ]
            if decomposed != [code_point]:
                lowered[code_point] = decomposed
        # str.lower makes a capital sigma final when, skipping case-ignorable characters, a cased
        # one comes before it and none comes after: read each character's part off str.lower.
        final_after_it = (char + CAPITAL_SIGMA).lower().endswith(FINAL_SIGMA)
        final_after_a_letter_and_it = ("A" + char + CAPITAL_SIGMA).lower().endswith(FINAL_SIGMA)
        if final_after_it:
            cased.append(code_point)
        elif final_after_a_letter_and_it:
            case_ignorable.append(code_point)
    return _CharacterTables(
        deleted,
        separators,
        punctuation,
        lowered,
        zero_class_marks,
        surviving_mark_classes,
        cased,
        case_ignorable,
    )


def _regex_class(code_points, negated=False):
    """A RE2 character class of exactly `code_points` (or of every other character)."""
    code_points = sorted(code_points)
    ranges = []
    for code_point in code_points:
        if ranges and ranges[-1][1] == code_point - 1:
            ranges[-1][1] = code_point
        else:
            ranges.append([code_point, code_point])
    body = "".join(
        f"\\x{{{low:X}}}" if low == high else f"\\x{{{low:X}}}-\\x{{{high:X}}}"
        for low, high in ranges
    )
    return f"[{'^' if negated else ''}{body}]"


# Stands for a protected special token in the graph: control characters, which cleaning removes
# from every text, around the token's index in hexadecimal digits U+0010..U+001F.
_PLACEHOLDER_MARK = "\x01"
# UTF-8's most bytes a character: FastWordpieceTokenizer's limit, in bytes, lets every word within
# the reference's limit, in characters, through.
_WORDPIECE_BYTES_PER_CHAR = 4


def _placeholder(index):
    digits = "".join(chr(0x10 + int(d, 16)) for d in f"{index:x}")
    return f"{_PLACEHOLDER_MARK}{digits}{_PLACEHOLDER_MARK}"


class GraphWordpieceTokenizer:
    """FullTokenizer in TensorFlow ops, with exactly its ids: SavedModels and encode_batch use it.

    Each of the reference's steps is done as the reference does it, with character classes and
    tables read off this Python's unicodedata and str.lower when the tokenizer is built (a
    SavedModel carries those of the Python that exported it):
      1. cleaning and CJK spacing: regex replacements with the reference's classes; the word
         separators other than the space (whitespace, and U+2028/U+2029, on which str.split splits)
         become spaces; invalid UTF-8 from a SavedModel's caller becomes U+FFFD, then dropped;
      2. protected special tokens (protect_special_tokens=True) are cut out of the text as the
         reference cuts them and replaced by placeholders made of control characters, which no
         cleaned text holds, each one a vocabulary entry with its token's id;
      3. uncased models: str.lower's one context rule (a capital sigma ending a word becomes ς)
         is a regex over the characters str.lower reads as cased and case-ignorable; every
         character is then replaced from a table by its lower-cased NFD decomposition without its
         combining marks, the few texts whose remaining marks are out of canonical order (the one
         context NFD has) are reordered, and the marks of combining class 0 are dropped;
      4. punctuation spacing (a regex) and the split on spaces;
      5. a word longer than max_input_chars_per_word characters becomes [UNK]; tensorflow-text's
         FastWordpieceTokenizer, given words (no normalisation or splitting of its own), does the
         reference's greedy longest-match-first WordPiece in linear time.
    """

    def __init__(self, full_tokenizer):
        import tensorflow as tf
        import tensorflow_text

        self._tf = tf
        self._tf_text = tensorflow_text
        tables = _character_tables()
        self.do_lower_case = full_tokenizer.do_lower_case
        self.max_chars_per_word = full_tokenizer.wordpiece_tokenizer.max_input_chars_per_word
        self._deleted_class = _regex_class(tables.deleted)
        self._separator_class = _regex_class(tables.separators)
        self._cjk_class = _regex_class(
            c for low, high in CJK_IDEOGRAPH_RANGES for c in range(low, high + 1)
        )
        self._punctuation_class = _regex_class(tables.punctuation)
        self._too_long_word = "x" * (_WORDPIECE_BYTES_PER_CHAR * self.max_chars_per_word + 1)

        special_tokens = sorted(full_tokenizer.basic_tokenizer.never_split, key=len, reverse=True)
        self._special_pattern = "|".join(re.escape(token) for token in special_tokens) or None
        placeholders = [_placeholder(index) for index in range(len(special_tokens))]
        self.special_token_table = (
            tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(special_tokens, placeholders), default_value=""
            )
            if special_tokens
            else None
        )

        # FastWordpieceTokenizer numbers the distinct tokens it is given: map its ids to line
        # numbers (a repeated line's token has its last line's id, as load_vocab gives it).
        vocab = full_tokenizer.vocab
        wordpiece_vocab = list(vocab) + placeholders
        line_ids = list(vocab.values()) + [vocab[token] for token in special_tokens]
        self._line_id_of_wordpiece_id = (
            None if line_ids == list(range(len(line_ids))) else tf.constant(line_ids, tf.int64)
        )
        self.wordpiece = tensorflow_text.FastWordpieceTokenizer(
            vocab=wordpiece_vocab,
            suffix_indicator="##",
            max_bytes_per_word=_WORDPIECE_BYTES_PER_CHAR * self.max_chars_per_word,
            token_out_type=tf.int64,
            unknown_token=UNKNOWN_TOKEN,
            no_pretokenization=True,
        )
        self.plain_wordpiece = tensorflow_text.FastWordpieceTokenizer(
            vocab=wordpiece_vocab,
            suffix_indicator="##",
            max_bytes_per_word=self.max_chars_per_word,
            token_out_type=tf.int64,
            unknown_token=UNKNOWN_TOKEN,
        )
        is_continuation = [False] * (max(line_ids) + 1)
        for token, line_id in vocab.items():
            is_continuation[line_id] = token.startswith("##")
        self._is_continuation = tf.constant(is_continuation)  # [line ids]

        vocab_chars = set("".join(vocab))
        self._surrogate_stand_in = next(c for c in _NONCHARACTERS if c not in vocab_chars)
        self._compiled_pieces = None

        if self.do_lower_case:
            sigma_context = tables.cased + tables.case_ignorable
            self._final_sigma_pattern = (
                f"({_regex_class(tables.cased)})({_regex_class(tables.case_ignorable)}*)"
                f"{CAPITAL_SIGMA}({_regex_class(tables.case_ignorable)}*)"
                f"($|{_regex_class(sigma_context, negated=True)})"
            )
            keys = sorted(tables.lowered)
            values = [tables.lowered[key] for key in keys]
            self._lowered_keys = tf.constant(keys, tf.int32)
            self._lowered_values = tf.RaggedTensor.from_row_lengths(
                tf.constant([c for value in values for c in value], tf.int32),
                tf.constant([len(value) for value in values], tf.int64),
            )
            # Each sorted key list starts with -1, which no code point is, so none is empty.
            self._zero_class_marks = tf.constant([-1] + tables.zero_class_marks, tf.int32)
            classes = sorted(tables.surviving_mark_classes.items())
            self._mark_class_keys = tf.constant([-1] + [key for key, _ in classes], tf.int32)
            self._mark_class_values = tf.constant([0] + [value for _, value in classes], tf.int64)

    @property
    def resources(self):
        """What a SavedModel holding this tokenizer must track."""
        return [self.wordpiece, self.plain_wordpiece] + (
            [self.special_token_table] if self.special_token_table else []
        )

    def pieces(self, texts, validate_utf8=True):
        """texts: string [B] → ids int64 ragged [B, (pieces)].

        validate_utf8: replace invalid UTF-8 first (texts from outside Python may hold any bytes).
        """
        tf = self._tf
        groups = self._pieces_by_group(texts, validate_utf8)
        rows = tf.concat([row_ids for row_ids, _ in groups], 0)
        pieces = tf.concat([group_pieces for _, group_pieces in groups], 0)
        return tf.gather(pieces, tf.math.invert_permutation(rows))

    def _pieces_by_group(self, texts, validate_utf8):
        """texts: string [B] → [(rows int32 [G], ids int64 ragged [G, (pieces)])] for the group of
        printable ASCII texts and for the others: the plain ones take the shorter way."""
        tf = self._tf
        plain = tf.strings.regex_full_match(texts, "[\\x20-\\x7E]*")
        if self._special_pattern is not None:
            plain &= ~tf.strings.regex_full_match(texts, f"(?s).*(?:{self._special_pattern}).*")
        plain_rows = tf.cast(tf.where(plain)[:, 0], tf.int32)
        other_rows = tf.cast(tf.where(~plain)[:, 0], tf.int32)
        groups = [
            (plain_rows, self._plain_pieces(tf.gather(texts, plain_rows))),
            (other_rows, self._other_pieces(tf.gather(texts, other_rows), validate_utf8)),
        ]
        if self._line_id_of_wordpiece_id is None:
            return groups
        return [
            (
                rows,
                pieces.with_flat_values(
                    tf.gather(self._line_id_of_wordpiece_id, pieces.flat_values)
                ),
            )
            for rows, pieces in groups
        ]

    def words(self, texts, validate_utf8=True):
        """texts: string [B] → ids int64 ragged [B, (words), (pieces)], a word being a basic token:
        a piece and the "##" pieces after it (a basic token never starts with "##", as "#" is
        punctuation, and only its continuations have the prefix)."""
        tf = self._tf
        pieces = self.pieces(texts, validate_utf8)
        starts_word = ~tf.gather(self._is_continuation, pieces.flat_values)
        by_word = tf.RaggedTensor.from_row_starts(pieces.flat_values, tf.where(starts_word)[:, 0])
        words_per_text = tf.math.unsorted_segment_sum(
            tf.cast(starts_word, tf.int64), pieces.value_rowids(), pieces.nrows()
        )
        return tf.RaggedTensor.from_row_lengths(by_word, words_per_text)

    def _plain_pieces(self, texts):
        """texts: printable ASCII string [P] holding no special token → ids ragged [P, (pieces)].

        FastWordpieceTokenizer's own split on whitespace and punctuation is the reference's on
        ASCII (a test checks every character), and there its byte limit is the character limit.
        """
        if self.do_lower_case:
            texts = self._tf.strings.lower(texts)
        return self.plain_wordpiece.tokenize(texts)

    def _other_pieces(self, texts, validate_utf8):
        """texts: string [R] → ids ragged [R, (pieces)], every step in our ops but WordPiece."""
        tf = self._tf
        texts = self._clean(texts, validate_utf8)
        if self._special_pattern is not None:
            texts = self._replace_special_tokens(texts)
        if self.do_lower_case:
            # str.lower's context rule reads the whole word: before punctuation splits it.
            texts = tf.strings.regex_replace(
                texts, self._final_sigma_pattern, f"\\1\\2{FINAL_SIGMA}\\3\\4"
            )
            texts = tf.strings.lower(texts)  # ASCII letters, in place
        words = tf.strings.split(tf.strings.regex_replace(texts, self._punctuation_class, " \\0 "))
        flat_words = words.flat_values  # [W]
        if not self.do_lower_case:
            return words.with_flat_values(self._word_pieces(flat_words)).merge_dims(1, 2)
        # Lower-casing and accent stripping take a table, which costs per character: only the
        # distinct words with non-ASCII characters go through it. Punctuation stays punctuation
        # through it (a test checks every character), but a few characters become punctuation
        # (≠ → = and a mark): their words are split again.
        non_ascii = tf.strings.length(flat_words, unit="UTF8_CHAR") < tf.strings.length(flat_words)
        non_ascii_at = tf.where(non_ascii)
        distinct, which = tf.unique(tf.gather_nd(flat_words, non_ascii_at))
        normalised = tf.strings.split(
            tf.strings.regex_replace(
                self._map_characters(distinct), self._punctuation_class, " \\0 "
            )
        )  # [D, (words)]
        distinct_pieces = normalised.with_flat_values(
            self._word_pieces(normalised.flat_values)
        ).merge_dims(1, 2)  # [D, (pieces)]
        # Row D, past the distinct words, is empty: the ASCII words' entry.
        empty_row = tf.RaggedTensor.from_row_lengths(
            distinct_pieces.flat_values[:0], tf.zeros([1], tf.int64)
        )
        distinct_pieces = tf.concat([distinct_pieces, empty_row], 0)
        distinct_of_word = tf.tensor_scatter_nd_update(
            tf.fill(tf.shape(flat_words), tf.size(distinct)), non_ascii_at, which
        )
        # Each word's pieces: those of an ASCII word, or those of its distinct normalised form.
        pieces = tf.concat(
            [
                self._word_pieces(tf.where(non_ascii, "", flat_words)),
                tf.gather(distinct_pieces, distinct_of_word),
            ],
            axis=1,
        )  # [W, (pieces)]
        return words.with_flat_values(pieces).merge_dims(1, 2)

    def _word_pieces(self, words):
        """words: string [W] of basic tokens → ids ragged [W, (pieces)]."""
        tf = self._tf
        # Only a word of more bytes than the limit in characters may pass that limit.
        candidates = tf.where(tf.strings.length(words) > self.max_chars_per_word)
        too_long = tf.boolean_mask(
            candidates,
            tf.strings.length(tf.gather_nd(words, candidates), unit="UTF8_CHAR")
            > self.max_chars_per_word,
        )
        words = tf.tensor_scatter_nd_update(
            words, too_long, tf.fill(tf.shape(too_long)[:1], self._too_long_word)
        )
        return self.wordpiece.tokenize(words)

    def _clean(self, texts, validate_utf8):
        """texts: string [R] → string [R]: steps 1 and 2 of the reference, CJK ideographs spaced."""
        tf = self._tf
        if validate_utf8:
            texts = tf.strings.unicode_transcode(
                texts, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
            )
        texts = tf.strings.regex_replace(texts, self._deleted_class, "")
        texts = tf.strings.regex_replace(texts, self._separator_class, " ")
        return tf.strings.regex_replace(texts, self._cjk_class, " \\0 ")

    def _replace_special_tokens(self, texts):
        """texts: string [B] → string [B], each special token a placeholder between spaces."""
        tf = self._tf
        segments = self._tf_text.regex_split(texts, self._special_pattern, self._special_pattern)
        placeholders = self.special_token_table.lookup(segments.flat_values)
        flat = tf.where(placeholders == "", segments.flat_values, " " + placeholders + " ")
        return tf.strings.reduce_join(segments.with_flat_values(flat), axis=1)

    def _map_characters(self, texts):
        """texts: string [R] → string [R], every character replaced by its `lowered` entry."""
        tf = self._tf
        chars = tf.strings.unicode_decode(texts, "UTF-8")  # int32 ragged [R, (C)]
        code_points = chars.flat_values  # [C]
        slots = self._slots(self._lowered_keys, code_points)
        mapped = tf.gather(self._lowered_keys, slots) == code_points
        replacements = tf.gather(self._lowered_values, slots)  # ragged [C, (chars it becomes)]
        lengths = tf.where(mapped, tf.cast(replacements.row_lengths(), tf.int32), 1)
        # output [C']: a mapped character's replacement, or the character itself.
        source = tf.repeat(tf.range(tf.size(code_points)), lengths)
        offsets = tf.range(tf.size(source)) - tf.gather(tf.cumsum(lengths, exclusive=True), source)
        flat_replacements = replacements.flat_values
        # An unmapped character's slot may be past the end (a mark that becomes nothing, last).
        at = tf.gather(tf.cast(replacements.row_starts(), tf.int32), source) + offsets
        replacement = tf.gather(
            tf.concat([flat_replacements, [0]], 0), tf.minimum(at, tf.size(flat_replacements))
        )
        output = tf.where(tf.gather(mapped, source), replacement, tf.gather(code_points, source))
        row_splits = tf.gather(
            tf.concat([[0], tf.cumsum(tf.cast(lengths, tf.int64))], 0), chars.row_splits
        )
        output = self._canonical_order(output, row_splits)
        keep = (
            tf.gather(self._zero_class_marks, self._slots(self._zero_class_marks, output)) != output
        )
        row_splits = tf.gather(tf.concat([[0], tf.cumsum(tf.cast(keep, tf.int64))], 0), row_splits)
        output = tf.RaggedTensor.from_row_splits(tf.boolean_mask(output, keep), row_splits)
        return tf.strings.unicode_encode(output, "UTF-8")

    def _slots(self, sorted_keys, code_points):
        """Where each code point is or would be in sorted_keys, clipped to its last index."""
        tf = self._tf
        return tf.minimum(tf.searchsorted(sorted_keys, code_points), tf.size(sorted_keys) - 1)

    def _canonical_order(self, code_points, row_splits):
        """code_points: int32 [C'] in rows → the same with each run of marks stably sorted by
        combining class, as NFD orders them; only texts whose marks are out of order are sorted."""
        tf = self._tf
        slots = self._slots(self._mark_class_keys, code_points)
        classes = tf.where(
            tf.gather(self._mark_class_keys, slots) == code_points,
            tf.gather(self._mark_class_values, slots),
            tf.zeros_like(slots, tf.int64),
        )
        out_of_order = tf.reduce_any((classes[:-1] > classes[1:]) & (classes[1:] > 0))

        def sort_runs():
            # A run starts at each character of class 0 and at each (non-empty) text's start.
            text_starts = tf.boolean_mask(row_splits[:-1], row_splits[:-1] < row_splits[1:])
            run_starts = tf.tensor_scatter_nd_max(
                tf.cast(classes == 0, tf.int64), text_starts[:, None], tf.ones_like(text_starts)
            )
            order = tf.argsort(tf.cumsum(run_starts) * 256 + classes, stable=True)
            return tf.gather(code_points, order)

        return tf.cond(out_of_order, sort_runs, lambda: code_points)

    def encode_batch(self, texts):
        """texts: list of str → list of lists of ids, one per text."""
        if not texts:
            return []
        # A lone surrogate has no UTF-8 form; in the reference it is a character no vocabulary
        # piece holds, which makes its word [UNK]. A noncharacter no piece holds does the same.
        texts = [
            _SURROGATE_PATTERN.sub(self._surrogate_stand_in, text)
            if not text.isascii() and _SURROGATE_PATTERN.search(text)
            else text
            for text in texts
        ]
        if self._compiled_pieces is None:
            self._compiled_pieces = self._tf.function(
                self._flat_pieces_by_group,
                input_signature=[self._tf.TensorSpec([None], self._tf.string)],
            )
        ids = [None] * len(texts)
        with garbage_collection_paused():
            for rows, flat_ids, row_splits in self._compiled_pieces(
                self._tf.constant(texts, self._tf.string)
            ):
                flat_ids = flat_ids.numpy().tolist()
                row_splits = row_splits.numpy().tolist()
                for row, start, end in zip(rows.numpy().tolist(), row_splits, row_splits[1:]):
                    ids[row] = flat_ids[start:end]
        return ids

    def _flat_pieces_by_group(self, texts):
        """texts: valid UTF-8 string [B] → per group (rows int32 [G], ids int64 [P], row_splits [G + 1])."""
        return [
            (rows, pieces.flat_values, pieces.row_splits)
            for rows, pieces in self._pieces_by_group(texts, validate_utf8=False)
        ]


_SURROGATE_PATTERN = re.compile("[\ud800-\udfff]")
# Unicode's noncharacters: never assigned, so in no class and unchanged by every normalisation.
_NONCHARACTERS = [chr(c) for c in range(0xFDD0, 0xFDF0)] + [
    chr(plane + last) for plane in range(0, 0x110000, 0x10000) for last in (0xFFFE, 0xFFFF)
]
