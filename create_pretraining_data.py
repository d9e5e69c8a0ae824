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
--random_seed and its index, so the output is the same whatever --num_workers is, and the same
again with --runner=DirectRunner|DataflowRunner|FlinkRunner|SparkRunner|..., which runs this
algorithm as an Apache Beam pipeline (see the section below and the README):

    python create_pretraining_data.py ... --runner=DataflowRunner --project=P --region=R \
        --temp_location=gs://B/tmp --setup_file=./setup.py --num_workers=32
"""

import collections
import contextlib
import functools
import importlib
import itertools
import multiprocessing
import os
import random
import struct
import sys
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
flags.DEFINE_integer(
    "num_workers",
    1,
    "Processes building shards in parallel; with --runner, the runner's workers (DirectRunner: "
    "its --direct_num_workers processes unless that is given; Dataflow: its --num_workers).",
    lower_bound=1,
)
flags.DEFINE_string(
    "runner",
    None,
    "Run as an Apache Beam pipeline on this runner (DirectRunner, DataflowRunner, FlinkRunner, "
    "SparkRunner, ...), with the command line's other Beam pipeline options (--project, "
    "--region, --temp_location, --direct_running_mode, ...) passed to it: the same shards, seeds "
    "and output bytes as without it. Needs requirements-beam.txt; unset, Beam is not imported.",
)
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
    """Trims the longer list one token at a time, from the front or the back at random, in place.

    The draws are the reference's, one per token trimmed; the lists are cut once at the end.
    """
    length_a, length_b = len(tokens_a), len(tokens_b)
    front_a = back_a = front_b = back_b = 0
    while length_a + length_b > max_num_tokens:
        if length_a > length_b:
            length_a -= 1
            if rng.random() < 0.5:
                front_a += 1
            else:
                back_a += 1
        else:
            length_b -= 1
            if rng.random() < 0.5:
                front_b += 1
            else:
                back_b += 1
    tokens_a[:] = tokens_a[front_a : len(tokens_a) - back_a]
    tokens_b[:] = tokens_b[front_b : len(tokens_b) - back_b]


def _random_order(items, rng):
    """Yields `items` in a uniformly random order, drawing only as many as are consumed.

    The reference shuffles every candidate to use the first ~15%; drawing lazily (Fisher-Yates,
    one swap per item taken) gives the same distribution for a fraction of the random numbers.
    floor(random() · m) is uniform on [0, m) to within m / 2^53, at a fraction of randrange's cost.
    """
    items = list(items)
    random = rng.random
    for i in range(len(items)):
        j = i + int(random() * (len(items) - i))
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
    num_to_predict = min(
        max_predictions_per_seq, max(1, int(round(len(input_ids) * masked_lm_prob)))
    )
    special = (vocab.cls_id, vocab.sep_id)
    if do_whole_word_mask:
        words = []
        for index, token_id in enumerate(input_ids):
            if token_id in special:
                continue
            if words and vocab.continues_word[token_id] and words[-1][-1] == index - 1:
                words[-1].append(index)
            else:
                words.append([index])
        masked = []
        for indexes in _random_order(words, rng):
            if len(masked) >= num_to_predict:
                break
            if len(masked) + len(indexes) <= num_to_predict:
                masked.extend(indexes)
    else:
        if input_ids.count(vocab.cls_id) + input_ids.count(vocab.sep_id) == 3:
            # Only the [CLS] a [SEP] b [SEP] layout's own: the candidates are its segments.
            second = input_ids.index(vocab.sep_id)
            candidates = [*range(1, second), *range(second + 1, len(input_ids) - 1)]
        else:
            candidates = [
                index for index, token_id in enumerate(input_ids) if token_id not in special
            ]
        # Every candidate is one token, so the reference's first num_to_predict of a random order
        # are a uniformly random set (its order does not matter: each masked token is then drawn
        # on its own, and the positions sorted): draw indexes until enough are distinct.
        chosen, random = set(), rng.random
        count, size = min(num_to_predict, len(candidates)), len(candidates)
        while len(chosen) < count:
            chosen.add(candidates[int(random() * size)])
        masked = list(chosen)
    output_ids = list(input_ids)
    mask_id, random = vocab.mask_id, rng.random
    for index in masked:
        draw = random()
        if draw < 0.8:
            output_ids[index] = mask_id
        elif draw >= 0.9:
            output_ids[index] = rng.randrange(vocab.size)
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
            tokens_a = list(itertools.chain.from_iterable(current_chunk[:a_end]))
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
                tokens_b = list(itertools.chain.from_iterable(current_chunk[a_end:]))
            truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
            if tokens_a and tokens_b:
                input_ids = [vocab.cls_id, *tokens_a, vocab.sep_id, *tokens_b, vocab.sep_id]
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
    try:
        return b"".join(map(_VARINTS.__getitem__, values))
    except IndexError:  # an id of a vocabulary over 65,536 entries
        return b"".join(map(_varint, values))


def _feature(name, packed, is_float):
    """One `feature` map entry of tf.train.Features: key, then a Feature holding a packed list."""
    return _feature_header(name, len(packed), is_float) + packed


@functools.lru_cache(maxsize=None)
def _feature_header(name, packed_size, is_float):
    """The bytes of a `feature` map entry before its packed values: the same for every
    instance whose values take packed_size bytes."""
    values = _length_delimited(1, bytes(packed_size))
    feature = _length_delimited(2 if is_float else 3, values)
    entry = _length_delimited(
        1, _length_delimited(1, name.encode()) + _length_delimited(2, feature)
    )
    return entry[: len(entry) - packed_size]


@functools.lru_cache(maxsize=None)
def _fixed_features(length, predictions, is_random_next, max_seq_length, max_predictions_per_seq):
    """input_mask, masked_lm_weights and next_sentence_labels: fixed by the lengths and label."""
    weights = [1.0] * predictions + [0.0] * (max_predictions_per_seq - predictions)
    return (
        _feature("input_mask", b"\x01" * length + bytes(max_seq_length - length), False),
        _feature("masked_lm_weights", struct.pack(f"<{max_predictions_per_seq}f", *weights), True),
        _feature("next_sentence_labels", b"\x01" if is_random_next else b"\x00", False),
    )


def serialize_instance(instance, max_seq_length, max_predictions_per_seq):
    """A TrainingInstance → serialized tf.train.Example in the reference schema (zero-padded)."""
    length, predictions = len(instance.input_ids), len(instance.masked_lm_positions)
    padding = bytes(max_seq_length - length)
    prediction_padding = bytes(max_predictions_per_seq - predictions)
    input_mask, masked_lm_weights, next_sentence_labels = _fixed_features(
        length, predictions, instance.is_random_next, max_seq_length, max_predictions_per_seq
    )
    features = b"".join(
        (
            _feature("input_ids", _packed_varints(instance.input_ids) + padding, False),
            input_mask,
            _feature("segment_ids", bytes(instance.segment_ids) + padding, False),
            _feature(
                "masked_lm_positions",
                _packed_varints(instance.masked_lm_positions) + prediction_padding,
                False,
            ),
            _feature(
                "masked_lm_ids",
                _packed_varints(instance.masked_lm_ids) + prediction_padding,
                False,
            ),
            masked_lm_weights,
            next_sentence_labels,
        )
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
    with tokenization.garbage_collection_paused():
        return _build_shard(settings, shard_index, raw_documents)


def _build_shard(settings, shard_index, raw_documents):
    tokenizer, vocab = _tokenizer(settings)
    rng = random.Random(f"{settings.random_seed}:{shard_index}")
    documents = []
    for lines in raw_documents:
        sentences = [ids for ids in map(tokenizer.encode, lines) if ids]
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


def read_documents(paths, read_lines=tokenization.read_text_lines):
    """Yields documents (lists of non-blank lines), streaming the files in order; a file ends a document."""
    for path in paths:
        document = []
        for line in read_lines(path):
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


def build_framed_shard(settings, shard_index, raw_documents, num_outputs):
    """build_shard, its records framed as in TFRecord files and dealt into num_outputs pieces:
    piece r holds records r, r + N, r + 2N, ... (no piece past the shard's last record).

    Returns (pieces, statistics dict, the first instances as printable dicts).
    """
    serialized, counters, examples = build_shard(settings, shard_index, raw_documents)
    pieces = [
        b"".join(map(file_io.tfrecord, serialized[residue::num_outputs]))
        for residue in range(min(num_outputs, len(serialized)))
    ]
    return pieces, counters, examples


def piece_for_output(output_index, offset, num_outputs):
    """The piece of a shard that output f gets when `offset` instances come before the shard:
    instances go round-robin, instance j of the shard to output (offset + j) mod N."""
    return (output_index - offset) % num_outputs


def _build_framed_shard_task(args):
    return build_framed_shard(*args)


def built_shards(settings, shards, num_workers, num_outputs):
    """build_framed_shard over `shards` in order, on num_workers processes with a bounded queue."""
    if num_workers <= 1:
        for index, shard in enumerate(shards):
            yield build_framed_shard(settings, index, shard, num_outputs)
        return
    # Forked workers start at once with the tokenizer main() built; a process that has loaded
    # TensorFlow (for a bucket path) has its threads, which a fork does not carry: spawn then.
    forking = sys.platform == "linux" and "tensorflow" not in sys.modules
    context = multiprocessing.get_context("fork" if forking else "spawn")
    with context.Pool(num_workers) as pool:
        pending = collections.deque()
        for index, shard in enumerate(shards):
            pending.append(
                pool.apply_async(_build_framed_shard_task, ((settings, index, shard, num_outputs),))
            )
            # At most two shards a worker in flight: memory stays bounded by shards, not the corpus.
            if len(pending) >= 2 * num_workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def write_locally(settings, input_files, output_files, documents_per_shard, num_workers):
    """The shards built on num_workers processes, their instances written round-robin; totals."""
    totals = collections.Counter()
    started = last_log = time.time()
    logged = 0
    with contextlib.ExitStack() as stack:
        temporary_files = [
            stack.enter_context(file_io.atomic_output(path)) for path in output_files
        ]
        writers = [stack.enter_context(file_io.open_file(path, "wb")) for path in temporary_files]
        for pieces, counters, examples in built_shards(
            settings,
            read_document_shards(input_files, documents_per_shard),
            num_workers,
            len(writers),
        ):
            for output_index, writer in enumerate(writers):
                piece = piece_for_output(output_index, totals["instances"], len(writers))
                if piece < len(pieces):
                    writer.write(pieces[piece])
            totals.update(counters)
            for example in examples[: max(0, settings.log_first_instances - logged)]:
                log_example(example)
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
            raise no_instances_error()
    return totals


def no_instances_error():
    """Raised before the outputs are renamed into place: what was there stays."""
    return errors.InputError(
        f"--input_file: {FLAGS.input_file} gave no instances (no non-empty documents?)"
    )


def log_example(example):
    logging.info("*** Example ***\n%s", "\n".join(f"{k}: {v}" for k, v in example.items()))


# Apache Beam (--runner). The local path's shards, seeds and bytes: documents are numbered across
# the files in order (each file read twice: once to count its documents), grouped into the same
# shards, each shard built by build_shard with its own seed. Where instance j of shard s lands,
# output (offset_s + j) mod N, depends on the instances of all shards before it, known only at the
# end, so each built shard is staged as N pieces by j mod N; each output then concatenates, shard
# by shard, the piece that the shard's offset sends it. TFRecord files concatenate: the outputs are
# byte for byte the local path's. The pipeline writes hidden temporaries and staged pieces; the
# driver renames the outputs into place once the pipeline has finished, and removes the pieces.

_BEAM_NAMESPACE = "create_pretraining_data"


def parse_flags(argv):
    """This script's flags, as errors.parse_flags; with --runner, the arguments that are not its
    flags are left in argv for Beam (main checks them against Beam's pipeline options)."""
    remaining = errors.parse_flags(argv, known_only=True)
    if FLAGS.runner:
        return remaining
    return errors.parse_flags(argv)


def beam_pipeline(runner, args, num_workers, num_workers_given):
    """An empty beam.Pipeline on --runner with the pass-through args; InputError for a runner or
    an option Beam does not know, before any work."""
    try:
        import apache_beam as beam
        from apache_beam.options.pipeline_options import PipelineOptions
    except ImportError:
        raise errors.InputError(
            f"--runner={runner}: needs Apache Beam (pip install -r requirements-beam.txt)"
        ) from None
    for arg in args:
        if not arg.startswith("--"):
            raise errors.InputError(
                f"{arg}: unexpected argument (Beam's pipeline options are --name=value)"
            )
    given = {arg[2:].split("=", 1)[0] for arg in args}  # never --runner: absl takes it
    args = list(args)
    if runner in ("DirectRunner", "direct"):
        # Beam's DirectRunner first tries to download the Go Prism runner (from GitHub), then
        # falls back to the FnApiRunner: run that at once, offline, with its --direct_* options.
        args.append("--runner=FnApiRunner")
        if "direct_num_workers" not in given:
            args.append(f"--direct_num_workers={num_workers}")
            if num_workers > 1 and "direct_running_mode" not in given:
                args.append("--direct_running_mode=multi_processing")
    else:
        args.append(f"--runner={runner}")
        if num_workers_given and "num_workers" not in given:
            args.append(f"--num_workers={num_workers}")
    options = PipelineOptions(args)
    unknown = set(options.get_all_options(retain_unknown_options=True)) - set(
        PipelineOptions([]).get_all_options()
    )
    if unknown:
        raise errors.InputError(
            f"--{sorted(unknown)[0]}: neither a flag of this script nor a Beam pipeline option"
        )
    try:
        return beam.Pipeline(options=options)
    except ValueError as error:
        raise errors.InputError(f"--runner={runner}: {error}") from None


def beam_text_lines(path):
    """tokenization.read_text_lines through Beam's filesystems (gs://, s3://, hdfs://, local)."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    # As read without --runner: bytes as they are, whatever the file's name says of compression.
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as reader:
        yield from tokenization.text_lines(reader)


def beam_count_documents(indexed_path):
    """(file index, path) → (file index, how many documents the file holds)."""
    from apache_beam.metrics import Metrics

    index, path = indexed_path
    # Counted even for a file without documents: metrics come back whenever the runner has them.
    Metrics.counter(_BEAM_NAMESPACE, "files").inc()
    yield index, sum(1 for _ in read_documents([path], beam_text_lines))


def beam_shard_documents(indexed_path, documents_per_file, documents_per_shard):
    """(file index, path) → (shard index, (document number, lines)) for each document of the file,
    numbered across all files in order, as read_document_shards numbers them."""
    index, path = indexed_path
    first = sum(count for other, count in documents_per_file.items() if other < index)
    for number, document in enumerate(read_documents([path], beam_text_lines), start=first):
        yield number // documents_per_shard, (number, document)


def _piece_path(staging_directory, shard_index, piece):
    return f"{staging_directory}/{shard_index:09d}-{piece:05d}"


def beam_build_and_stage_shard(keyed_documents, settings, staging_directory, num_outputs):
    """(shard index, its numbered documents) → the shard built and staged as build_framed_shard's
    pieces, one file each; yields (shard index, instances)."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.metrics import Metrics

    shard_index, numbered_documents = keyed_documents
    started = time.time()
    documents = [document for _, document in sorted(numbered_documents)]
    pieces, counters, examples = build_framed_shard(settings, shard_index, documents, num_outputs)
    for piece_index, piece in enumerate(pieces):
        with FileSystems.create(
            _piece_path(staging_directory, shard_index, piece_index),
            compression_type=CompressionTypes.UNCOMPRESSED,
        ) as writer:
            writer.write(piece)
    for name, value in counters.items():
        Metrics.counter(_BEAM_NAMESPACE, name).inc(value)
    if shard_index == 0:
        for example in examples:
            log_example(example)
    logging.info(
        "shard %d: %d documents, %d instances in %.1f s",
        shard_index,
        len(documents),
        counters["instances"],
        time.time() - started,
    )
    yield shard_index, counters["instances"]


def beam_concatenate_output(indexed_temporary, instances_per_shard, staging_directory, num_outputs):
    """(output index f, its temporary path): writes, shard by shard, the piece of the shard that
    goes to f (piece_for_output)."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    output_index, temporary = indexed_temporary
    offset = 0
    # Nothing is yielded: the pipeline's result is the files.
    with FileSystems.create(temporary, compression_type=CompressionTypes.UNCOMPRESSED) as writer:
        for shard_index in sorted(instances_per_shard):
            piece = piece_for_output(output_index, offset, num_outputs)
            if piece < instances_per_shard[shard_index]:
                with FileSystems.open(
                    _piece_path(staging_directory, shard_index, piece),
                    compression_type=CompressionTypes.UNCOMPRESSED,
                ) as reader:
                    for block in iter(lambda: reader.read(1 << 20), b""):
                        writer.write(block)
            offset += instances_per_shard[shard_index]
    return ()


def run_beam_pipeline(pipeline, settings, input_files, output_files, documents_per_shard):
    """The algorithm on `pipeline` (beam_pipeline's); the outputs renamed into place when it has
    finished.

    Returns the totals the runner's metrics report (empty when it reports none).
    """
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter

    class ThisModule(beam.DoFn):
        """Calls a beam_* function of this module by its name: a worker imports the module (and
        defines its flags) once, where a function of the running script would be pickled whole."""

        def __init__(self, function_name):
            self.function_name = function_name

        def process(self, element, *side_inputs):
            module = importlib.import_module(_BEAM_NAMESPACE)
            return getattr(module, self.function_name)(element, *side_inputs)

    # Runners in this process find the running script under its module name; worker processes
    # of this machine (DirectRunner's multi_processing) import it from the script's folder.
    sys.modules.setdefault(_BEAM_NAMESPACE, sys.modules[__name__])
    script_folder = os.path.dirname(__file__)  # absolute: the script's, or its import's
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [script_folder, os.environ.get("PYTHONPATH")])
    )
    temporaries = [file_io.temporary_path(path) for path in output_files]
    staging_directory = temporaries[0] + ".pieces"
    try:
        files = pipeline | "Files" >> beam.Create(list(enumerate(input_files)))
        documents_per_file = files | "CountDocuments" >> beam.ParDo(
            ThisModule("beam_count_documents")
        )
        instances_per_shard = (
            files
            | "ShardDocuments"
            >> beam.ParDo(
                ThisModule("beam_shard_documents"),
                beam.pvalue.AsDict(documents_per_file),
                documents_per_shard,
            )
            | "GroupShards" >> beam.GroupByKey()
            | "BuildShards"
            >> beam.ParDo(
                ThisModule("beam_build_and_stage_shard"),
                settings,
                staging_directory,
                len(output_files),
            )
        )
        (
            pipeline
            | "Outputs" >> beam.Create(list(enumerate(temporaries)))
            | "ConcatenateOutputs"
            >> beam.ParDo(
                ThisModule("beam_concatenate_output"),
                beam.pvalue.AsDict(instances_per_shard),
                staging_directory,
                len(output_files),
            )
        )
        result = pipeline.run()
        state = result.wait_until_finish()
        if state != beam.runners.runner.PipelineState.DONE:
            raise errors.InputError(f"--runner={FLAGS.runner}: the pipeline ended {state}")
        totals = collections.Counter(
            {
                counter.key.metric.name: counter.result
                for counter in result.metrics().query(
                    MetricsFilter().with_namespace(_BEAM_NAMESPACE)
                )["counters"]
            }
        )
        if totals and not totals["instances"]:
            raise no_instances_error()
        for temporary, path in zip(temporaries, output_files):
            with file_io.reporting(path, ": cannot be written"):
                file_io.rename(temporary, path)
    finally:
        for temporary in temporaries:
            if file_io.exists(temporary):
                file_io.remove(temporary)
        if file_io.exists(staging_directory):
            file_io.rmtree(staging_directory)
    return totals


def main(argv):
    pipeline_args = argv[1:] if FLAGS.runner else []
    for name in ("input_file", "output_file"):
        if not getattr(FLAGS, name):
            raise errors.InputError(f"--{name} is required")
    if not FLAGS.vocab_file and not FLAGS.spm_model_file:
        raise errors.InputError("--vocab_file (or --spm_model_file) is required")
    if FLAGS.runner:
        pipeline = beam_pipeline(
            FLAGS.runner, pipeline_args, FLAGS.num_workers, FLAGS["num_workers"].present
        )
    input_files = file_io.expand_input_files(FLAGS.input_file, "input_file")
    if FLAGS.runner:
        # A pipeline's workers would meet an unreadable file mid-run, deep in the runner's errors.
        for path in filter(file_io.is_local, input_files):
            with file_io.reporting(path, ": cannot be read", "--input_file: "):
                file_io.open_file(path, "rb").close()
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

    started = time.time()
    if FLAGS.runner:
        totals = run_beam_pipeline(
            pipeline, settings, input_files, output_files, FLAGS.documents_per_shard
        )
    else:
        totals = write_locally(
            settings, input_files, output_files, FLAGS.documents_per_shard, FLAGS.num_workers
        )
    elapsed = time.time() - started
    if not totals:
        logging.info(
            "Wrote %d files in %.1f s (the runner reported no metrics)", len(output_files), elapsed
        )
        return
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
    errors.run_script(main, parse_flags)
