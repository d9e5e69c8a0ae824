"""Learns a WordPiece vocab.txt or a SentencePiece model from text.

    python build_vocab.py --input_file=corpus/*.txt --output_file=vocab.txt --vocab_size=30522

    python build_vocab.py --input_file=corpus/*.txt --output_file=spm --vocab_size=30000 \
        --model_type=sentencepiece   # writes spm.model and spm.vocab; use --spm_model_file=spm.model

WordPiece: words come from the same BasicTokenizer the model will use (so casing and
punctuation splitting match --do_lower_case), then, starting from single characters (a word's
first character plain, the rest with the `##` prefix), the most frequent adjacent pair of pieces
is merged until the vocabulary holds --vocab_size tokens or no pair occurs --min_frequency
times. The file starts with [PAD] (id 0, which padding relies on), [UNK], [CLS], [SEP], [MASK]
and --num_unused_tokens `[unusedN]` slots for later special tokens, then the alphabet, then the
merged pieces in the order they were learned.

SentencePiece: a unigram (or --spm_algorithm=bpe) model whose pieces include [PAD] (id 0),
[UNK], and [CLS], [SEP], [MASK] as whole symbols.
"""

import collections
import heapq
import io

from absl import flags
from absl import logging

import errors
import file_io
import shared_flags
import tokenization

FLAGS = flags.FLAGS

shared_flags.define_input_file("Text files to learn from: a comma-separated list of globs.")
shared_flags.define_output_file(
    "WordPiece: the vocab.txt to write. SentencePiece: the model prefix (.model and "
    ".vocab are added)."
)
flags.DEFINE_enum(
    "model_type", "wordpiece", ["wordpiece", "sentencepiece"], "Which kind of vocabulary to learn."
)
flags.DEFINE_integer(
    "vocab_size",
    30522,
    "Number of tokens in the vocabulary, special tokens included.",
    lower_bound=1,
)
shared_flags.define_do_lower_case("Lower-case (and strip accents from) the text first.")
flags.DEFINE_integer(
    "min_frequency",
    2,
    "WordPiece: stop merging when the best pair occurs fewer times than this.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "num_unused_tokens",
    100,
    "WordPiece: [unusedN] slots reserved after the special tokens.",
    lower_bound=0,
)
flags.DEFINE_enum(
    "spm_algorithm", "unigram", ["unigram", "bpe"], "SentencePiece: the model's algorithm."
)

SPECIAL_TOKENS = ("[PAD]", tokenization.UNKNOWN_TOKEN, "[CLS]", "[SEP]", "[MASK]")
CONTINUATION_PREFIX = "##"


def count_words(paths, basic_tokenizer):
    """{word: occurrences} over every line of `paths`, words as basic_tokenizer splits them."""
    counts = collections.Counter()
    for path in paths:
        for line in tokenization.read_text_lines(path):
            counts.update(basic_tokenizer.tokenize(line))
    return counts


def learn_wordpiece_vocab(word_counts, vocab_size, min_frequency=2, reserved_tokens=SPECIAL_TOKENS):
    """Learns WordPiece tokens by merging the most frequent adjacent pieces.

    Args:
      word_counts: {word: occurrences}.
      vocab_size: merging stops once the list holds this many tokens; the reserved tokens and the
        whole alphabet are always kept, so a tiny size can be exceeded.
      min_frequency: merging stops when the best pair occurs fewer times than this.
      reserved_tokens: tokens placed first, in order.

    Returns:
      list of tokens: reserved tokens, the alphabet (sorted), then merges in the order learned.
    """
    words = [(word, count) for word, count in sorted(word_counts.items())]
    pieces_of_word = [[w[0]] + [CONTINUATION_PREFIX + c for c in w[1:]] for w, _ in words]
    alphabet = sorted(
        {piece for pieces in pieces_of_word for piece in pieces} - set(reserved_tokens)
    )
    vocab = list(reserved_tokens) + alphabet
    known = set(vocab)

    pair_counts = collections.Counter()
    words_with_pair = collections.defaultdict(set)
    for index, pieces in enumerate(pieces_of_word):
        for pair in zip(pieces, pieces[1:]):
            pair_counts[pair] += words[index][1]
            words_with_pair[pair].add(index)
    # Max-heap by count with lazy deletion: stale entries are skipped when popped. Ties go to the
    # smaller pair, so the result does not depend on hash order.
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    while len(vocab) < vocab_size and heap:
        negative_count, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negative_count:
            continue
        if -negative_count < min_frequency:
            break
        merged = pair[0] + pair[1][len(CONTINUATION_PREFIX) :]
        if merged not in known:
            vocab.append(merged)
            known.add(merged)
        changed_pairs = set()
        for index in words_with_pair.pop(pair):
            pieces, count = pieces_of_word[index], words[index][1]
            for old_pair in zip(pieces, pieces[1:]):
                pair_counts[old_pair] -= count
                changed_pairs.add(old_pair)
            merged_pieces, position = [], 0
            while position < len(pieces):
                if position + 1 < len(pieces) and (pieces[position], pieces[position + 1]) == pair:
                    merged_pieces.append(merged)
                    position += 2
                else:
                    merged_pieces.append(pieces[position])
                    position += 1
            pieces_of_word[index] = merged_pieces
            for new_pair in zip(merged_pieces, merged_pieces[1:]):
                pair_counts[new_pair] += count
                words_with_pair[new_pair].add(index)
                changed_pairs.add(new_pair)
        for changed in changed_pairs:
            if pair_counts[changed] > 0:
                heapq.heappush(heap, (-pair_counts[changed], changed))
            else:
                pair_counts.pop(changed, None)
    return vocab


def train_sentencepiece(paths, model_prefix, vocab_size, do_lower_case, algorithm):
    """Trains a SentencePiece model to `model_prefix`.model / .vocab, each written through a temporary name.

    The text streams in through file_io and the model comes back as bytes, so inputs and outputs
    may be on any filesystem; the .vocab file (`piece<TAB>score` lines) is written from the model.
    """
    import sentencepiece

    model = io.BytesIO()
    sentences = (line for path in paths for line in tokenization.read_text_lines(path))
    try:
        sentencepiece.SentencePieceTrainer.Train(
            sentence_iterator=sentences,
            model_writer=model,
            vocab_size=vocab_size,
            model_type=algorithm,
            pad_id=0,
            unk_id=1,
            bos_id=-1,
            eos_id=-1,
            pad_piece="[PAD]",
            unk_piece=tokenization.UNKNOWN_TOKEN,
            user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"],
            normalization_rule_name="nmt_nfkc_cf" if do_lower_case else "nmt_nfkc",
            input_sentence_size=10_000_000,
            shuffle_input_sentence=True,
            minloglevel=2,
        )
    except RuntimeError as error:
        raise errors.InputError(
            f"--input_file: SentencePiece training failed ({str(error).splitlines()[0]})"
        ) from None
    processor = sentencepiece.SentencePieceProcessor(model_proto=model.getvalue())
    vocab = "".join(
        f"{processor.IdToPiece(i)}\t{processor.GetScore(i):g}\n"
        for i in range(processor.GetPieceSize())
    )
    file_io.write_bytes_atomically(model_prefix + ".model", model.getvalue())
    file_io.write_text_atomically(model_prefix + ".vocab", vocab)


def main(argv):
    del argv
    for name in ("input_file", "output_file"):
        if not getattr(FLAGS, name):
            raise errors.InputError(f"--{name} is required")
    if FLAGS.vocab_size <= len(SPECIAL_TOKENS):
        raise errors.InputError(
            f"--vocab_size={FLAGS.vocab_size} leaves no room beside the special tokens"
        )
    file_io.check_output_directory(FLAGS.output_file, "output_file")
    paths = file_io.expand_input_files(FLAGS.input_file, "input_file")
    logging.info(
        "Learning a %s vocabulary of %d from %d files",
        FLAGS.model_type,
        FLAGS.vocab_size,
        len(paths),
    )

    if FLAGS.model_type == "sentencepiece":
        train_sentencepiece(
            paths, FLAGS.output_file, FLAGS.vocab_size, FLAGS.do_lower_case, FLAGS.spm_algorithm
        )
        logging.info("Wrote %s.model and %s.vocab", FLAGS.output_file, FLAGS.output_file)
        return

    word_counts = count_words(paths, tokenization.BasicTokenizer(do_lower_case=FLAGS.do_lower_case))
    if not word_counts:
        raise errors.InputError(f"--input_file: {FLAGS.input_file} holds no text")
    unused = tuple(f"[unused{i}]" for i in range(FLAGS.num_unused_tokens))
    vocab = learn_wordpiece_vocab(
        word_counts, FLAGS.vocab_size, FLAGS.min_frequency, SPECIAL_TOKENS + unused
    )
    file_io.write_text_atomically(FLAGS.output_file, "".join(f"{token}\n" for token in vocab))
    logging.info(
        "Wrote %d tokens (%d distinct words seen) to %s",
        len(vocab),
        len(word_counts),
        FLAGS.output_file,
    )


if __name__ == "__main__":
    errors.run_script(main)
