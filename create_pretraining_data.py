"""Creates masked-LM / next-sentence pretraining TFRecords from text, streaming and in parallel.

    python create_pretraining_data.py --input_file=./sample_text.txt --output_file=/tmp/tf_examples.tfrecord \
        --vocab_file=$BERT_BASE_DIR/vocab.txt --do_lower_case=True --max_seq_length=128 \
        --max_predictions_per_seq=20 --masked_lm_prob=0.15 --random_seed=12345 --dupe_factor=5 --num_workers=2

Input: one sentence per line, a blank line between documents (prepare_pretraining_text.py turns
raw text into that). Output: the reference's TFRecord schema (input_ids, input_mask, segment_ids,
masked_lm_positions, masked_lm_ids, masked_lm_weights, next_sentence_labels), instances going
round-robin across the comma-separated --output_file list.

The algorithm is the reference's: --dupe_factor passes over every document; a target length of
max_seq_length − 3, or with probability short_seq_prob a random one in [2, that]; sentences
gather into a chunk up to the target; A takes a random number of the chunk's sentences; B is,
with probability 0.5 (or when the chunk has one sentence), a random span of another document,
the unused sentences going back, else the rest of the chunk; the longer side is trimmed one
token at a time from the front or back at random; then masking as described in
create_masked_lm_predictions.

Scale: the reference holds the whole corpus in memory and draws the random-next document from
all of it. Here the input streams through in shards of --documents_per_shard documents: memory
is bounded by a few shards, and --num_workers processes build shards in parallel. The random
next document is drawn from the same shard, and documents and instances are shuffled within a
shard; with shards of thousands of documents the next-sentence task is as hard as with the whole
corpus (a random document is almost never a neighbour). Each shard has its own seed from
--random_seed and its index, so the output is the same whatever --num_workers is.
"""

import collections
import contextlib
import multiprocessing
import random
import struct
import time

from absl import flags
from absl import logging

import errors
import file_io
import shared_flags
import tokenization

FLAGS = flags.FLAGS

shared_flags.define_input_file("Input raw text file (or comma-separated list of files or globs).")
shared_flags.define_output_file("Output TF example file (or comma-separated list of files).")
shared_flags.define_vocab_flags()
shared_flags.define_spm_model_file()
shared_flags.define_max_seq_length()
shared_flags.define_masking_flags()
shared_flags.define_random_seed()
flags.DEFINE_bool(
    "do_whole_word_mask", False, "Whether to mask all of the word pieces of a word at once."
)
flags.DEFINE_integer(
    "dupe_factor",
    10,
    "Number of times to duplicate the input data (with different masks).",
    lower_bound=1,
)
flags.DEFINE_float(
    "short_seq_prob",
    0.1,
    "Probability of creating sequences shorter than the maximum length.",
    lower_bound=0.0,
    upper_bound=1.0,
)
flags.DEFINE_integer("num_workers", 1, "Processes building shards in parallel.", lower_bound=1)
flags.DEFINE_integer(
    "documents_per_shard",
    2000,
    "Documents a shard holds: the unit of memory, parallelism and "
    "random-next sampling. Changing it changes the output.",
    lower_bound=1,
)
flags.DEFINE_integer("log_first_instances", 20, "How many instances to log in full.", lower_bound=0)

TrainingInstance = collections.namedtuple(
    "TrainingInstance",
    ["input_ids", "segment_ids", "masked_lm_positions", "masked_lm_ids", "is_random_next"],
)
# What masking needs of the vocabulary, all as ids: `continues_word[id]` is whether that piece
# continues the word before it (WordPiece `##`, or a SentencePiece piece without `▁`).
MaskingVocab = collections.namedtuple(
    "MaskingVocab", ["cls_id", "sep_id", "mask_id", "size", "continues_word"]
)


def masking_vocab(tokenizer, spm):
    vocab = tokenizer.vocab
    for token in ("[CLS]", "[SEP]", "[MASK]"):
        if token not in vocab:
            raise errors.InputError(f"the vocabulary has no {token} token")
    tokens = tokenizer.convert_ids_to_tokens(range(len(vocab)))
    continues = (
        [not t.startswith("\u2581") for t in tokens]
        if spm
        else [t.startswith("##") for t in tokens]
    )
    return MaskingVocab(vocab["[CLS]"], vocab["[SEP]"], vocab["[MASK]"], len(vocab), continues)


# The pieces of one instance.


def truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng):
    """Trims the longer list one token at a time, from the front or the back at random, in place."""
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def _random_order(items, rng):
    """Yields `items` in a uniformly random order, drawing only as many as are consumed.

    The reference shuffles every candidate to use the first ~15%; drawing lazily (Fisher-Yates,
    one swap per item taken) gives the same distribution for a fraction of the random numbers.
    """
    items = list(items)
    for i in range(len(items)):
        j = rng.randrange(i, len(items))
        items[i], items[j] = items[j], items[i]
        yield items[i]


def create_masked_lm_predictions(
    input_ids, masked_lm_prob, max_predictions_per_seq, vocab, rng, do_whole_word_mask=False
):
    """Masks token ids as the reference masks tokens.

    Candidates are every token but [CLS] and [SEP] (whole words under whole-word masking: a piece
    and the continuation pieces right after it; unlike the reference, a `##` piece right after
    [SEP] is not joined to the word before it), in random order. Up to num_to_predict =
    min(max_predictions_per_seq, max(1, round(len(input_ids) · masked_lm_prob))) tokens are taken,
    skipping a word that would overflow it; each becomes [MASK] with probability 0.8, stays with
    0.1, or becomes a random vocabulary entry with 0.1.

    Returns (masked ids, positions sorted, original ids at those positions).
    """
    candidates = []
    for index, token_id in enumerate(input_ids):
        if token_id == vocab.cls_id or token_id == vocab.sep_id:
            continue
        if (
            do_whole_word_mask
            and candidates
            and vocab.continues_word[token_id]
            and candidates[-1][-1] == index - 1
        ):
            candidates[-1].append(index)
        else:
            candidates.append([index])
    output_ids = list(input_ids)
    num_to_predict = min(
        max_predictions_per_seq, max(1, int(round(len(input_ids) * masked_lm_prob)))
    )
    masked = []
    for indexes in _random_order(candidates, rng):
        if len(masked) >= num_to_predict:
            break
        if len(masked) + len(indexes) > num_to_predict:
            continue
        for index in indexes:
            if rng.random() < 0.8:
                output_ids[index] = vocab.mask_id
            elif rng.random() >= 0.5:
                output_ids[index] = rng.randint(0, vocab.size - 1)
            masked.append(index)
    masked.sort()
    return output_ids, masked, [input_ids[index] for index in masked]


def create_instances_from_document(documents, document_index, settings, vocab, rng, counters):
    """The reference's instances from one document; `documents` are lists of sentences of token ids."""
    document = documents[document_index]
    max_num_tokens = settings.max_seq_length - 3
    target_seq_length = max_num_tokens
    if rng.random() < settings.short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)
        counters["short_targets"] += 1
    counters["targets"] += 1
    instances = []
    current_chunk, current_length = [], 0
    i = 0
    while i < len(document):
        current_chunk.append(document[i])
        current_length += len(document[i])
        if i == len(document) - 1 or current_length >= target_seq_length:
            a_end = rng.randint(1, len(current_chunk) - 1) if len(current_chunk) >= 2 else 1
            tokens_a = [token for sentence in current_chunk[:a_end] for token in sentence]
            tokens_b = []
            if len(current_chunk) == 1 or rng.random() < 0.5:
                is_random_next = True
                target_b_length = target_seq_length - len(tokens_a)
                for _ in range(10):
                    random_document_index = rng.randint(0, len(documents) - 1)
                    if random_document_index != document_index:
                        break
                random_document = documents[random_document_index]
                for sentence in random_document[rng.randint(0, len(random_document) - 1) :]:
                    tokens_b.extend(sentence)
                    if len(tokens_b) >= target_b_length:
                        break
                # The sentences of the chunk that B did not use are read again.
                i -= len(current_chunk) - a_end
            else:
                is_random_next = False
                tokens_b = [token for sentence in current_chunk[a_end:] for token in sentence]
            truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
            if tokens_a and tokens_b:
                input_ids = [vocab.cls_id] + tokens_a + [vocab.sep_id] + tokens_b + [vocab.sep_id]
                segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
                input_ids, positions, labels = create_masked_lm_predictions(
                    input_ids,
                    settings.masked_lm_prob,
                    settings.max_predictions_per_seq,
                    vocab,
                    rng,
                    settings.do_whole_word_mask,
                )
                instances.append(
                    TrainingInstance(input_ids, segment_ids, positions, labels, is_random_next)
                )
            else:
                counters["skipped_empty_side"] += 1
            current_chunk, current_length = [], 0
        i += 1
    return instances


# tf.train.Example, serialized by hand: protobuf objects would cost more than building instances.


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# Varints of small numbers (ids of vocabularies up to 65,536 entries), looked up instead of encoded.
_VARINTS = [_varint(value) for value in range(1 << 16)]


def _length_delimited(field_number, payload):
    size = len(payload)
    return (
        _VARINTS[field_number << 3 | 2]
        + (_VARINTS[size] if size < 65536 else _varint(size))
        + payload
    )


def _packed_varints(values):
    return b"".join([_VARINTS[v] if v < 65536 else _varint(v) for v in values])


def _feature(name, packed, is_float):
    """One `feature` map entry of tf.train.Features: key, then a Feature holding a packed list."""
    feature = _length_delimited(2 if is_float else 3, _length_delimited(1, packed))
    return _length_delimited(1, _length_delimited(1, name.encode()) + _length_delimited(2, feature))


def serialize_instance(instance, max_seq_length, max_predictions_per_seq):
    """A TrainingInstance → serialized tf.train.Example in the reference schema (zero-padded)."""
    length, predictions = len(instance.input_ids), len(instance.masked_lm_positions)
    padding = b"\x00" * (max_seq_length - length)
    prediction_padding = b"\x00" * (max_predictions_per_seq - predictions)
    features = (
        _feature("input_ids", _packed_varints(instance.input_ids) + padding, False)
        + _feature("input_mask", b"\x01" * length + padding, False)
        + _feature("segment_ids", bytes(instance.segment_ids) + padding, False)
        + _feature(
            "masked_lm_positions",
            _packed_varints(instance.masked_lm_positions) + prediction_padding,
            False,
        )
        + _feature(
            "masked_lm_ids", _packed_varints(instance.masked_lm_ids) + prediction_padding, False
        )
        + _feature(
            "masked_lm_weights",
            struct.pack(
                f"<{max_predictions_per_seq}f",
                *([1.0] * predictions + [0.0] * (max_predictions_per_seq - predictions)),
            ),
            True,
        )
        + _feature("next_sentence_labels", b"\x01" if instance.is_random_next else b"\x00", False)
    )
    return _length_delimited(1, features)


# Shards.

Settings = collections.namedtuple(
    "Settings",
    [
        "vocab_file",
        "spm_model_file",
        "do_lower_case",
        "do_whole_word_mask",
        "max_seq_length",
        "max_predictions_per_seq",
        "random_seed",
        "dupe_factor",
        "masked_lm_prob",
        "short_seq_prob",
        "log_first_instances",
    ],
)

_worker_tokenizer = None


def _tokenizer(settings):
    """One tokenizer (and its masking vocabulary) per process, built on first use."""
    global _worker_tokenizer
    if _worker_tokenizer is None:
        tokenizer = tokenization.load_tokenizer(
            settings.vocab_file, settings.do_lower_case, settings.spm_model_file
        )
        _worker_tokenizer = tokenizer, masking_vocab(tokenizer, bool(settings.spm_model_file))
    return _worker_tokenizer


def build_shard(settings, shard_index, raw_documents):
    """Instances of one shard: tokenized, dupe_factor passes, shuffled with the shard's own seed.

    Returns (serialized examples, statistics dict, the first instances as printable dicts).
    """
    tokenizer, vocab = _tokenizer(settings)
    rng = random.Random(f"{settings.random_seed}:{shard_index}")
    documents = []
    for lines in raw_documents:
        sentences = [
            tokenizer.convert_tokens_to_ids(tokens)
            for tokens in map(tokenizer.tokenize, lines)
            if tokens
        ]
        if sentences:
            documents.append(sentences)
    rng.shuffle(documents)
    counters = collections.Counter()
    instances = []
    if documents:
        for _ in range(settings.dupe_factor):
            for document_index in range(len(documents)):
                instances.extend(
                    create_instances_from_document(
                        documents, document_index, settings, vocab, rng, counters
                    )
                )
    rng.shuffle(instances)
    serialized = [
        serialize_instance(instance, settings.max_seq_length, settings.max_predictions_per_seq)
        for instance in instances
    ]
    counters["documents"] = len(raw_documents)
    counters["instances"] = len(instances)
    counters["tokens"] = sum(len(instance.input_ids) for instance in instances)
    counters["predictions"] = sum(len(instance.masked_lm_positions) for instance in instances)
    counters["maskable_tokens"] = sum(len(instance.input_ids) - 3 for instance in instances)
    counters["random_next"] = sum(instance.is_random_next for instance in instances)
    examples = [
        {
            "tokens": " ".join(tokenizer.convert_ids_to_tokens(i.input_ids)),
            "segment_ids": " ".join(map(str, i.segment_ids)),
            "is_random_next": i.is_random_next,
            "masked_lm_positions": " ".join(map(str, i.masked_lm_positions)),
            "masked_lm_labels": " ".join(tokenizer.convert_ids_to_tokens(i.masked_lm_ids)),
        }
        for i in instances[: settings.log_first_instances]
    ]
    return serialized, counters, examples


def read_documents(paths):
    """Yields documents (lists of non-blank lines), streaming the files in order; a file ends a document."""
    for path in paths:
        document = []
        for line in tokenization.read_text_lines(path):
            line = line.strip()
            if line:
                document.append(line)
            elif document:
                yield document
                document = []
        if document:
            yield document


def read_document_shards(paths, documents_per_shard):
    """Yields lists of documents_per_shard documents (the last may hold fewer)."""
    shard = []
    for document in read_documents(paths):
        shard.append(document)
        if len(shard) == documents_per_shard:
            yield shard
            shard = []
    if shard:
        yield shard


def _build_shard_task(args):
    return build_shard(*args)


def built_shards(settings, shards, num_workers):
    """build_shard over `shards` in order, on num_workers processes with a bounded queue."""
    if num_workers <= 1:
        for index, shard in enumerate(shards):
            yield build_shard(settings, index, shard)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(num_workers) as pool:
        pending = collections.deque()
        for index, shard in enumerate(shards):
            pending.append(pool.apply_async(_build_shard_task, ((settings, index, shard),)))
            # At most two shards a worker in flight: memory stays bounded by shards, not the corpus.
            if len(pending) >= 2 * num_workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def main(argv):
    del argv
    for name in ("input_file", "output_file"):
        if not getattr(FLAGS, name):
            raise errors.InputError(f"--{name} is required")
    if not FLAGS.vocab_file and not FLAGS.spm_model_file:
        raise errors.InputError("--vocab_file (or --spm_model_file) is required")
    input_files = file_io.expand_input_files(FLAGS.input_file, "input_file")
    output_files = [path.strip() for path in FLAGS.output_file.split(",") if path.strip()]
    file_io.check_output_files(output_files, "output_file", input_files)
    if FLAGS.max_seq_length < 5:
        raise errors.InputError(
            f"--max_seq_length={FLAGS.max_seq_length} leaves no room for two segments"
        )
    expected_predictions = int(round(FLAGS.max_seq_length * FLAGS.masked_lm_prob))
    if FLAGS.max_predictions_per_seq < expected_predictions:
        logging.warning(
            "--max_predictions_per_seq=%d is below max_seq_length × masked_lm_prob = %d: full-length "
            "sequences will have fewer than %.0f%% of their tokens masked",
            FLAGS.max_predictions_per_seq,
            expected_predictions,
            FLAGS.masked_lm_prob * 100,
        )
    settings = Settings(
        FLAGS.vocab_file,
        FLAGS.spm_model_file,
        FLAGS.do_lower_case,
        FLAGS.do_whole_word_mask,
        FLAGS.max_seq_length,
        FLAGS.max_predictions_per_seq,
        FLAGS.random_seed,
        FLAGS.dupe_factor,
        FLAGS.masked_lm_prob,
        FLAGS.short_seq_prob,
        FLAGS.log_first_instances,
    )
    _tokenizer(settings)  # fails early on a bad vocabulary, before any worker starts

    totals = collections.Counter()
    started = last_log = time.time()
    logged = 0
    with contextlib.ExitStack() as stack:
        temporary_files = [
            stack.enter_context(file_io.atomic_output(path)) for path in output_files
        ]
        writers = [stack.enter_context(file_io.TFRecordWriter(path)) for path in temporary_files]
        for serialized, counters, examples in built_shards(
            settings,
            read_document_shards(input_files, FLAGS.documents_per_shard),
            FLAGS.num_workers,
        ):
            for example in serialized:
                writers[totals["instances"] % len(writers)].write(example)
                totals["instances"] += 1
            totals.update({k: v for k, v in counters.items() if k != "instances"})
            for example in examples[: max(0, FLAGS.log_first_instances - logged)]:
                logging.info(
                    "*** Example ***\n%s", "\n".join(f"{k}: {v}" for k, v in example.items())
                )
                logged += 1
            if time.time() - last_log > 10:
                last_log = time.time()
                logging.info(
                    "%d documents, %d instances, %.0f instances/s",
                    totals["documents"],
                    totals["instances"],
                    totals["instances"] / (last_log - started),
                )
        if not totals["instances"]:
            raise errors.InputError(
                f"--input_file: {FLAGS.input_file} gave no instances (no non-empty documents?)"
            )
    elapsed = time.time() - started
    logging.info(
        "Wrote %d instances to %d files in %.1f s (%.0f instances/s): %d documents, %d tokens, %.2f%% of non-special "
        "tokens masked, %.1f%% random next sentences, %.1f%% short target lengths, %d instances skipped for an "
        "empty side",
        totals["instances"],
        len(output_files),
        elapsed,
        totals["instances"] / elapsed,
        totals["documents"],
        totals["tokens"],
        100 * totals["predictions"] / max(1, totals["maskable_tokens"]),
        100 * totals["random_next"] / totals["instances"],
        100 * totals["short_targets"] / max(1, totals["targets"]),
        totals["skipped_empty_side"],
    )


if __name__ == "__main__":
    errors.run_script(main)
