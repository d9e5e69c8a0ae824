"""Text to WordPiece or SentencePiece tokens and ids, with the reference BERT semantics.

    tokenizer = tokenization.FullTokenizer("vocab.txt", do_lower_case=True)
    tokens = tokenizer.tokenize("UNwant\u00e9d,running")  # un ##want ##ed , runn ##ing
    ids = tokenizer.convert_tokens_to_ids(tokens)
    ids_per_line = tokenizer.encode_batch(lines)          # same ids, compiled fast path

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
import functools
import re
import unicodedata

from errors import InputError
import file_io

UNKNOWN_TOKEN = "[UNK]"
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
    for index, raw_line in enumerate(file_io.read_lines(path)):
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


def convert_by_vocab(vocab, items):
    """Maps each item through `vocab` (tokens to ids or ids to tokens)."""
    return [vocab[item] for item in items]


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

    _CACHE_LIMIT = 1 << 20

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
                if len(self._word_cache) >= self._CACHE_LIMIT:
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
        self._fast_path = None

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

    def encode_batch(self, texts):
        """Returns the ids of each text: exactly `convert_tokens_to_ids(tokenize(text))`.

        Runs tensorflow-text's FastBertTokenizer over the batch; the few texts whose characters it
        treats differently from the reference take the exact path (see FastBatchTokenizer).
        """
        if self._fast_path is None:
            self._fast_path = FastBatchTokenizer(self)
        return self._fast_path.encode_batch(texts)


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

    def encode_batch(self, texts):
        """Returns the ids of each text, as convert_tokens_to_ids(tokenize(text))."""
        return [self.convert_tokens_to_ids(self.tokenize(text)) for text in texts]


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


def load_tokenizer(
    vocab_file, do_lower_case=True, spm_model_file=None, protect_special_tokens=False
):
    """The tokenizer the scripts' flags ask for: SentencePiece when spm_model_file is set."""
    if spm_model_file:
        return SentencePieceTokenizer(spm_model_file, do_lower_case=do_lower_case)
    return FullTokenizer(
        vocab_file, do_lower_case=do_lower_case, protect_special_tokens=protect_special_tokens
    )


class FastBatchTokenizer:
    """FullTokenizer.encode_batch: tensorflow-text's FastBertTokenizer, kept exact.

    FastBertTokenizer (linear-time WordPiece in C++) normalises a few things differently from
    the reference: it turns control characters into spaces rather than dropping them, it leaves
    CJK ideographs unspaced, it lower-cases without Python's context rules (final sigma), it
    counts the word-length limit in bytes, and its Unicode tables may be of another version.
    The first two are done in the graph before it, exactly as the reference does them. For the
    rest, every character is checked once, on first sight, by tokenizing it in a few contexts
    both ways; a text holding a character that disagrees anywhere, or a word that may pass the
    length limit, or a protected special token, is tokenized by the exact path instead. Texts
    that take the fast path therefore get the reference's ids, and the others get them too.
    """

    # Contexts each new character is tried in: alone, at a word's start, middle and end, between
    # capitals (cased context rules), repeated, and between spaces.
    _PROBE_CONTEXTS = ("{}", "{}ab", "ab{}", "ab{}cd", "AB{}CD", "x{}{}y", "a {} b", "{}.", "A{}")
    # Lower-casing, NFD and accent stripping turn one character into at most this many.
    _MAX_NORMALISED_CHARS_PER_CHAR = 3

    def __init__(self, full_tokenizer):
        import tensorflow as tf
        import tensorflow_text

        self._tf = tf
        self._exact = full_tokenizer
        max_chars = full_tokenizer.wordpiece_tokenizer.max_input_chars_per_word
        self.fast_wordpiece = tensorflow_text.FastBertTokenizer(
            vocab=list(full_tokenizer.vocab),
            unknown_token=UNKNOWN_TOKEN,
            # Words within the reference's character limit always fit (UTF-8 has at most 4 bytes a
            # character); words that may pass it take the exact path (_long_word_pattern).
            max_bytes_per_word=4 * max_chars * self._MAX_NORMALISED_CHARS_PER_CHAR,
            token_out_type=tf.int64,
            lower_case_nfd_strip_accents=full_tokenizer.do_lower_case,
        )
        cjk_class = "".join(f"\\x{{{low:X}}}-\\x{{{high:X}}}" for low, high in CJK_IDEOGRAPH_RANGES)
        self._cjk_pattern = f"([{cjk_class}])"
        # Category Cc is exactly U+0000–001F and U+007F–009F; tab, newline and return stay.
        self._control_pattern = "[\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F\\x{FFFD}\\p{Cf}]"
        # A word that may pass the limit once normalised: a run of this many non-whitespace characters.
        run_limit = (
            max_chars // self._MAX_NORMALISED_CHARS_PER_CHAR
            if full_tokenizer.do_lower_case
            else max_chars
        )
        whitespace_class = "".join(f"\\x{{{ord(c):X}}}" for c in _unicode_character_classes()[1])
        self._long_word_pattern = f"(?s).*[^{whitespace_class}]{{{run_limit + 1},}}.*"
        # The fast tokenizer numbers the distinct tokens; a vocabulary with a repeated line gives
        # that token the id of its last line (as load_vocab does), so its ids are mapped back.
        line_ids = list(full_tokenizer.vocab.values())
        self._id_of_fast_id = (
            None if line_ids == list(range(len(line_ids))) else tf.constant(line_ids, tf.int64)
        )
        self._fast_ids = tf.function(
            self._fast_ids_graph, input_signature=[tf.TensorSpec([None], tf.string)]
        )
        self._special_pattern = _token_splitter(full_tokenizer.basic_tokenizer.never_split)
        self._checked_chars = set()
        self._disagreeing_chars = set()
        self._learn_chars(_ASCII_CHARS)
        self._ascii_agrees = self._disagreeing_chars.isdisjoint(_ASCII_CHARS)
        self.texts_on_exact_path = 0

    def graph_tokenize(self, texts):
        """texts: string [batch] → ids int64 ragged [batch, (pieces)], in TensorFlow ops only (for
        SavedModels): the fast path alone, the reference's ids for texts of agreeing characters
        and words within the length limit (the class docstring says which differ)."""
        return self._ids_of_cleaned(self._clean_in_graph(texts))

    def _clean_in_graph(self, texts):
        texts = self._tf.strings.regex_replace(texts, self._control_pattern, "")
        return self._tf.strings.regex_replace(texts, self._cjk_pattern, " \\1 ")

    def _ids_of_cleaned(self, cleaned):
        """cleaned texts: string [batch] → ids int64 ragged [batch, (pieces)], as line numbers."""
        ids = self.fast_wordpiece.tokenize(cleaned)
        if self._id_of_fast_id is not None:
            ids = self._tf.ragged.map_flat_values(
                lambda flat: self._tf.gather(self._id_of_fast_id, flat), ids
            )
        return ids

    def _fast_ids_graph(self, texts):
        """texts: string [batch] → flat ids int64 [total], row lengths int64 [batch], and
        has_long_word bool [batch]: whether a word may pass the length limit."""
        cleaned = self._clean_in_graph(texts)
        ids = self._ids_of_cleaned(cleaned)
        long_words = self._tf.strings.regex_full_match(cleaned, self._long_word_pattern)
        return ids.flat_values, ids.row_lengths(), long_words

    def _run_fast(self, texts):
        """texts: list of str → (list of id lists, list of has_long_word flags)."""
        flat_ids, lengths, has_long_word = self._fast_ids(
            self._tf.constant(texts, dtype=self._tf.string)
        )
        flat_ids = flat_ids.numpy().tolist()
        ids, start = [], 0
        for length in lengths.numpy().tolist():
            ids.append(flat_ids[start : start + length])
            start += length
        return ids, has_long_word.numpy().tolist()

    def _exact_ids(self, text):
        return self._exact.convert_tokens_to_ids(self._exact.tokenize(text))

    def _learn_chars(self, chars):
        """Decides, for each character not seen before, whether both paths agree on it."""
        new_chars = [c for c in chars if c not in self._checked_chars]
        if not new_chars:
            return
        probes = [context.format(c, c) for c in new_chars for context in self._PROBE_CONTEXTS]
        fast, _ = self._run_fast(probes)
        per_char = len(self._PROBE_CONTEXTS)
        for index, char in enumerate(new_chars):
            block = slice(index * per_char, (index + 1) * per_char)
            if any(
                fast_ids != self._exact_ids(probe)
                for fast_ids, probe in zip(fast[block], probes[block])
            ):
                self._disagreeing_chars.add(char)
        self._checked_chars.update(new_chars)

    def encode_batch(self, texts):
        """texts: iterable of str or bytes → list of lists of ids, one per text."""
        texts = [convert_to_unicode(text) for text in texts]
        if not texts:
            return []
        # A lone surrogate has no UTF-8 form, so TensorFlow cannot take the text: exact path.
        unencodable = {i for i, text in enumerate(texts) if _SURROGATE_PATTERN.search(text)}
        # ASCII texts need no character check unless some ASCII character disagrees.
        checked_rows = [
            i
            for i, text in enumerate(texts)
            if i not in unencodable and not (self._ascii_agrees and text.isascii())
        ]
        char_sets = [set(texts[i]) for i in checked_rows]
        self._learn_chars(set().union(*char_sets))
        ids, has_long_word = self._run_fast(
            [("" if i in unencodable else text) for i, text in enumerate(texts)]
        )
        exact_rows = {
            i
            for i, chars in zip(checked_rows, char_sets)
            if not self._disagreeing_chars.isdisjoint(chars)
        }
        exact_rows.update(i for i, long_word in enumerate(has_long_word) if long_word)
        exact_rows.update(unencodable)
        if self._special_pattern is not None:
            exact_rows.update(
                i for i, text in enumerate(texts) if self._special_pattern.search(text)
            )
        for row in exact_rows:
            ids[row] = self._exact_ids(texts[row])
        self.texts_on_exact_path += len(exact_rows)
        return ids


_ASCII_CHARS = "".join(chr(c) for c in range(128))
_SURROGATE_PATTERN = re.compile("[\ud800-\udfff]")
