"""Fine-tunes BERT on named-entity recognition (CoNLL-2003 and any tagging set in its layout).

    python run_ner.py --do_train=true --do_eval=true --do_predict=true --data_dir=$CONLL_DIR \
        --vocab_file=$BERT_BASE_DIR/vocab.txt --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt --do_lower_case=False \
        --max_seq_length=128 --train_batch_size=32 --learning_rate=5e-5 --num_train_epochs=3.0 \
        --output_dir=/tmp/ner_output/

--data_dir holds train.txt, dev.txt (or valid.txt) and test.txt in CoNLL-2003's layout: one token a
line, its tag in the last column (`EU NNP B-NP B-ORG`), a blank line between sentences,
`-DOCSTART-` lines between documents. Tags are IOB1 or IOB2 (B-/I- prefixes, and E-/S- are read
as conlleval reads them), of any types; the labels are those of train.txt, or --label_list. A
test file may hold tokens alone (one column): its predictions then have no gold column.

The paper's recipe: each word is labelled on its first word piece (the others carry no loss and
no prediction); a sentence longer than --max_seq_length is cut into windows of word pieces, each
starting --doc_stride pieces after the previous one, and each word is predicted in the window
where it has the most context, so no word is dropped.

Outputs in --output_dir: eval_results.txt (sorted `key = value`: eval_precision, eval_recall,
eval_f1 over entities as the conlleval script counts them, the same per entity type as
eval_f1_PER, ..., eval_accuracy over tokens, eval_loss, global_step, eval_examples), and in
CoNLL layout (`token gold predicted`, a blank line between sentences) eval_predictions.txt and
test_predictions.txt.
"""

import cpu_kernels  # noqa: F401  (first: what TensorFlow reads when it is imported)
import collections
import functools
import os

from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

import errors
import file_io
import modeling
import shared_flags
import tokenization
import training

FLAGS = flags.FLAGS

shared_flags.define_training_flags()
shared_flags.define_eval_flags()
shared_flags.define_prediction_flags()
shared_flags.define_fine_tuning_flags()
shared_flags.define_vocab_flags()
shared_flags.define_max_seq_length()
shared_flags.define_doc_stride()
shared_flags.define_label_list("The tags (default: those found in train.txt, sorted).")
shared_flags.define_data_dir()

Sentence = collections.namedtuple("Sentence", ["guid", "words", "tags", "line_numbers"])

DOCUMENT_START = "-DOCSTART-"
CHUNK_PREFIXES = ("B", "I", "E", "S")
OUTSIDE = "O"


# Reading CoNLL files.


def split_file(data_dir, split):
    """The path of a split's file; dev may be dev.txt or valid.txt (CoNLL-2003's name)."""
    names = {"train": ["train.txt"], "dev": ["dev.txt", "valid.txt"], "test": ["test.txt"]}[split]
    for name in names:
        path = os.path.join(data_dir, name)
        if file_io.exists(path):
            return path
    raise errors.InputError(f"--data_dir={data_dir}: has no {' or '.join(names)}")


def check_tag(where, tag):
    """InputError, naming `where` (file:line, or the flag), for a tag of no known form."""
    prefix, entity_type = split_tag(tag)
    if tag != OUTSIDE and (prefix not in CHUNK_PREFIXES or not entity_type):
        raise errors.InputError(
            f"{where}: tag {tag!r} is neither O nor B-, I-, E- or S- and a type"
        )


def read_conll(path, split, needs_tags):
    """The sentences of a CoNLL file. InputError naming the file and line for a line whose column
    count differs from the file's first token line, a tag of no known form, or a file of no
    sentence."""
    sentences, words, tags, line_numbers = [], [], [], []
    columns = None

    def end_sentence():
        if words:
            guid = f"{split}-{len(sentences)}"
            sentences.append(Sentence(guid, list(words), list(tags), list(line_numbers)))
        del words[:], tags[:], line_numbers[:]

    for line_number, line in enumerate(tokenization.read_text_lines(path), 1):
        fields = line.split()
        if not fields or fields[0] == DOCUMENT_START:
            end_sentence()
            continue
        if columns is None:
            columns = len(fields)
            if needs_tags and columns < 2:
                raise errors.InputError(
                    f"{path}:{line_number}: one column, but a {split} file needs the token and "
                    "its tag (the last column)"
                )
        elif len(fields) != columns:
            raise errors.InputError(
                f"{path}:{line_number}: {len(fields)} columns, but the file's first token line "
                f"has {columns}"
            )
        tag = fields[-1] if columns > 1 else None
        if tag is not None:
            check_tag(f"{path}:{line_number}", tag)
        words.append(fields[0])
        tags.append(tag)
        line_numbers.append(line_number)
    end_sentence()
    if not sentences:
        raise errors.InputError(
            f"{path}: holds no sentence (token lines, a blank line between sentences)"
        )
    return sentences


def check_known_tags(path, sentences, labels):
    known = set(labels)
    for sentence in sentences:
        for tag, line_number in zip(sentence.tags, sentence.line_numbers):
            if tag is not None and tag not in known:
                raise errors.InputError(
                    f"{path}:{line_number}: tag {tag!r} is not among the labels "
                    f"({', '.join(labels)})"
                )


# Features.


def featurize(sentence, tokenizer, labels, max_seq_length, doc_stride):
    """A sentence → its windows, each {input_ids, input_mask, segment_ids, token_label_ids,
    token_label_mask [max_seq_length], scored_words {position: word index}}.

    token_label_mask is 1 on the first piece of every word in the window (the positions that
    carry a loss); scored_words maps the positions whose word is predicted from this window (the
    window giving it the most context) to the word. A word with no piece (all its characters are
    dropped by cleaning) is [UNK], so that its tag has a position.
    """
    pieces, first_pieces = [], []
    for word in sentence.words:
        first_pieces.append(len(pieces))
        pieces.extend(tokenizer.tokenize(word) or [tokenization.UNKNOWN_TOKEN])
    windows = tokenization.doc_spans(len(pieces), max_seq_length - 2, doc_stride)
    features = []
    for window_index, (start, length) in enumerate(windows):
        tokens = ["[CLS]"] + pieces[start : start + length] + ["[SEP]"]
        label_ids, label_mask, scored_words = [0] * max_seq_length, [0] * max_seq_length, {}
        for word_index, first in enumerate(first_pieces):
            if start <= first < start + length:
                position = first - start + 1
                tag = sentence.tags[word_index]
                label_ids[position] = labels.index(tag) if tag is not None else 0
                label_mask[position] = 1
                if tokenization.is_max_context(windows, window_index, first):
                    scored_words[position] = word_index
        padding = [0] * (max_seq_length - len(tokens))
        features.append(
            {
                "input_ids": tokenizer.convert_tokens_to_ids(tokens) + padding,
                "input_mask": [1] * len(tokens) + padding,
                "segment_ids": [0] * max_seq_length,
                "token_label_ids": label_ids,
                "token_label_mask": label_mask,
                "scored_words": scored_words,
            }
        )
    return features


def write_records(sentences, tokenizer, labels, max_seq_length, doc_stride, path):
    """Writes every window of every sentence; returns [(sentence index, scored_words)] per record."""
    windows = []
    with file_io.atomic_output(path) as temporary, file_io.TFRecordWriter(temporary) as writer:
        for index, sentence in enumerate(sentences):
            for features in featurize(sentence, tokenizer, labels, max_seq_length, doc_stride):
                writer.write(
                    training.serialize_example(
                        {name: features[name] for name in RECORD_FEATURES}
                        | {"is_real_example": [1]}
                    )
                )
                windows.append((index, features["scored_words"]))
    return windows


RECORD_FEATURES = ("input_ids", "input_mask", "segment_ids", "token_label_ids", "token_label_mask")


def record_features(max_seq_length):
    return {name: tf.io.FixedLenFeature([max_seq_length], tf.int64) for name in RECORD_FEATURES}


# Loss and predictions.


def tagging_loss(model, features, training):
    """Per-position cross-entropy [B, S] (zero where no word starts) and logits [B, S, L]."""
    logits = model(
        features["input_ids"], features["input_mask"], features["segment_ids"], training=training
    )
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(features["token_label_ids"], logits)
    return losses * tf.cast(features["token_label_mask"], tf.float32), logits


def tagging_training_loss(model, features):
    """The engine's compute_loss: the mean over labelled positions, and their accuracy."""
    losses, logits = tagging_loss(model, features, training=True)
    mask = tf.cast(features["token_label_mask"], tf.float32)
    count = tf.maximum(tf.reduce_sum(mask), 1.0)
    correct = tf.cast(
        tf.equal(tf.argmax(logits, -1, output_type=tf.int32), features["token_label_ids"]),
        tf.float32,
    )
    return tf.reduce_sum(losses) / count, {
        "accuracy": (tf.reduce_sum(correct * mask), tf.reduce_sum(mask))
    }


def tagging_outputs(model, features):
    """The engine's predict_outputs: predicted label ids [B, S] and loss [B, S]."""
    losses, logits = tagging_loss(model, features, training=False)
    return {"predicted": tf.argmax(logits, -1, output_type=tf.int32), "loss": losses}


def predicted_tags(sentences, windows, predictions, labels):
    """Each sentence's predicted tags, each word's from the window scoring it; and the mean loss
    over the scored words."""
    tags = [[None] * len(sentence.words) for sentence in sentences]
    losses = []
    for (sentence_index, scored_words), prediction in zip(windows, predictions):
        for position, word_index in scored_words.items():
            tags[sentence_index][word_index] = labels[int(prediction["predicted"][position])]
            losses.append(float(prediction["loss"][position]))
    missing = sum(tag is None for sentence_tags in tags for tag in sentence_tags)
    if missing:
        raise RuntimeError(f"{missing} words were not predicted")
    return tags, float(np.mean(losses)) if losses else 0.0


# Scores, as the conlleval script computes them.


def split_tag(tag):
    """'B-PER' → ('B', 'PER'); 'O' → ('O', '')."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, _, entity_type = tag.partition("-")
    return prefix, entity_type


def chunk_ends(previous, current):
    """Whether a chunk ends between the tags `previous` and `current` (conlleval's endOfChunk)."""
    (previous_prefix, previous_type), (prefix, entity_type) = previous, current
    if previous_prefix in ("E", "S"):
        return True
    if previous_prefix in ("B", "I"):
        return prefix in ("B", "S", OUTSIDE) or previous_type != entity_type
    return False


def chunk_starts(previous, current):
    """Whether a chunk starts at `current` after `previous` (conlleval's startOfChunk)."""
    (previous_prefix, previous_type), (prefix, entity_type) = previous, current
    if prefix in ("B", "S"):
        return True
    if prefix in ("I", "E"):
        return previous_prefix in ("E", "S", OUTSIDE) or previous_type != entity_type
    return False


def chunks(tags):
    """The set of (type, first, last) chunks of one sentence's tags, IOB1, IOB2 or IOBES."""
    found, start, previous = set(), None, (OUTSIDE, "")
    for index, tag in enumerate(list(tags) + [OUTSIDE]):
        current = split_tag(tag)
        if start is not None and chunk_ends(previous, current):
            found.add((previous[1], start, index - 1))
            start = None
        if chunk_starts(previous, current):
            start = index
        previous = current
    return found


def entity_scores(gold_sentences, predicted_sentences):
    """conlleval's precision, recall and F1 over chunks: {"": overall, type: per type}, each
    (precision, recall, f1) as fractions (0 where undefined)."""
    correct, guessed, actual = (collections.Counter() for _ in range(3))
    for gold_tags, predicted in zip(gold_sentences, predicted_sentences):
        gold, guess = chunks(gold_tags), chunks(predicted)
        for counter, found in ((actual, gold), (guessed, guess), (correct, gold & guess)):
            for entity_type, _, _ in found:
                counter[entity_type] += 1
                counter[""] += 1

    def scores(key):
        precision = correct[key] / guessed[key] if guessed[key] else 0.0
        recall = correct[key] / actual[key] if actual[key] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return precision, recall, f1

    return {key: scores(key) for key in sorted(set(actual) | set(guessed) | {""})}


def write_conll_predictions(path, sentences, tags):
    lines = []
    for sentence, predicted in zip(sentences, tags):
        for word, gold, tag in zip(sentence.words, sentence.tags, predicted):
            lines.append(f"{word} {tag}\n" if gold is None else f"{word} {gold} {tag}\n")
        lines.append("\n")
    file_io.write_text_atomically(path, "".join(lines))


def main(argv):
    del argv
    splits = shared_flags.fine_tuning_splits("data_dir", "bert_config_file", "output_dir")

    # Data.
    strategy = training.create_strategy(**shared_flags.strategy_options())
    config = modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
    modeling.check_max_seq_length(FLAGS.max_seq_length, config, FLAGS.bert_config_file)
    tokenization.validate_case_matches_checkpoint(FLAGS.do_lower_case, FLAGS.init_checkpoint)
    tokenizer = tokenization.load_tokenizer(FLAGS.vocab_file, FLAGS.do_lower_case)
    paths = {split: split_file(FLAGS.data_dir, split) for split in splits}
    sentences = {
        split: read_conll(paths[split], split, needs_tags=split != "test") for split in splits
    }
    if FLAGS.label_list:
        labels = list(FLAGS.label_list)
    elif "train" in sentences:
        labels = sorted({tag for s in sentences["train"] for tag in s.tags})
    else:
        raise errors.InputError(
            "--label_list is required without --do_train (the labels are read from train.txt)"
        )
    for tag in labels:
        check_tag("--label_list", tag)
    for split in splits:
        check_known_tags(paths[split], sentences[split], labels)

    # Model (the engine prepares and locks --output_dir, where the records go).
    trainer = training.Trainer(
        functools.partial(modeling.BertTokenClassifierModel, config, len(labels)),
        strategy,
        eval_batch_size=FLAGS.eval_batch_size,
        predict_batch_size=FLAGS.predict_batch_size,
        **shared_flags.trainer_options(),
    )
    record_files, windows = {}, {}
    for split in splits:
        record_files[split] = training.split_record_file(FLAGS.output_dir, split)
        windows[split] = write_records(
            sentences[split],
            tokenizer,
            labels,
            FLAGS.max_seq_length,
            FLAGS.doc_stride,
            record_files[split],
        )
    parse_batch = training.parse_records(record_features(FLAGS.max_seq_length))

    # Loop.
    if FLAGS.do_train:
        num_train_steps, num_warmup_steps = training.steps_for_epochs(
            len(windows["train"]),
            FLAGS.train_batch_size,
            FLAGS.num_train_epochs,
            FLAGS.warmup_proportion,
        )
        logging.info(
            "Training on %d sentences (%d windows): %d steps of %d",
            len(sentences["train"]),
            len(windows["train"]),
            num_train_steps,
            FLAGS.train_batch_size,
        )
        trainer.train(
            [record_files["train"]],
            parse_batch,
            tagging_training_loss,
            ("accuracy",),
            num_train_steps,
            num_warmup_steps,
        )

    def predict(split):
        predictions = list(
            trainer.predict(
                [record_files[split]], parse_batch, tagging_outputs, for_eval=split == "dev"
            )
        )
        return predicted_tags(sentences[split], windows[split], predictions, labels)

    # Outputs.
    if FLAGS.do_eval:
        tags, loss = predict("dev")
        gold = [sentence.tags for sentence in sentences["dev"]]
        results = {}
        for entity_type, (precision, recall, f1) in entity_scores(gold, tags).items():
            suffix = f"_{entity_type}" if entity_type else ""
            results |= {
                f"eval_precision{suffix}": precision,
                f"eval_recall{suffix}": recall,
                f"eval_f1{suffix}": f1,
            }
        words = [(g, p) for gold_tags, p_tags in zip(gold, tags) for g, p in zip(gold_tags, p_tags)]
        results["eval_accuracy"] = float(np.mean([g == p for g, p in words]))
        results["eval_loss"] = loss
        results["global_step"] = int(trainer.global_step.numpy())
        results["eval_examples"] = len(sentences["dev"])
        training.write_results(os.path.join(FLAGS.output_dir, "eval_results.txt"), results)
        write_conll_predictions(
            os.path.join(FLAGS.output_dir, "eval_predictions.txt"), sentences["dev"], tags
        )
    if FLAGS.do_predict:
        tags, _ = predict("test")
        write_conll_predictions(
            os.path.join(FLAGS.output_dir, "test_predictions.txt"), sentences["test"], tags
        )
        logging.info("Wrote test_predictions.txt (%d sentences)", len(tags))


if __name__ == "__main__":
    errors.run_script(main)
