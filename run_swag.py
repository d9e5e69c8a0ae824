"""Fine-tunes BERT on multiple choice: SWAG (Zellers et al. 2018) and any set in its CSV layout.

    python run_swag.py --do_train=true --do_eval=true --data_dir=$SWAG_DIR \
        --vocab_file=$BERT_BASE_DIR/vocab.txt --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt --max_seq_length=128 \
        --train_batch_size=16 --learning_rate=2e-5 --num_train_epochs=3.0 --output_dir=/tmp/swag/

--data_dir holds train.csv, val.csv and test.csv with SWAG's header row
(`video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2,ending3,label`);
test.csv has no label column. A set may have any number of endings: the columns ending0,
ending1, ... of its header.

The paper's recipe: each choice is `[CLS] sent1 [SEP] sent2 ending_i [SEP]` (a pair longer than
--max_seq_length cut from its longer side, as the reference cuts pairs), its pooled output scored
by one vector, and a softmax over the choices.

Outputs in --output_dir: eval_results.txt (sorted `key = value`: eval_accuracy, eval_loss,
global_step, loss, eval_examples) and test_results.tsv (one line per test example, the choices'
probabilities tab-separated).
"""

import cpu_kernels  # noqa: F401  (first: what TensorFlow reads when it is imported)
import collections
import functools
import os
import re

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
shared_flags.define_data_dir()

SwagExample = collections.namedtuple("SwagExample", ["guid", "sent1", "sent2", "endings", "label"])

SPLIT_FILES = {"train": "train.csv", "dev": "val.csv", "test": "test.csv"}
CONTEXT_COLUMNS = ("sent1", "sent2")
ENDING_COLUMN = re.compile(r"^ending(\d+)$")


# Reading SWAG files.


def read_swag(path, split):
    """The examples of a SWAG csv. InputError naming the file (and line) for a header without
    sent1, sent2 or ending0..., a row of another width than the header, an empty context, or a
    label that is not the index of one of the endings."""
    rows = file_io.read_table(path, ",")
    if not rows:
        raise errors.InputError(f"{path}: is empty (a header row, then one row per example)")
    header = [name.strip() for name in rows[0]]
    endings = sorted(
        (int(match.group(1)), index)
        for index, match in ((i, ENDING_COLUMN.match(name)) for i, name in enumerate(header))
        if match
    )
    missing = [name for name in CONTEXT_COLUMNS if name not in header]
    if (
        missing
        or [number for number, _ in endings] != list(range(len(endings)))
        or len(endings) < 2
    ):
        raise errors.InputError(
            f"{path}:1: the header needs sent1, sent2 and ending0, ending1, ... (at least two "
            f"endings, numbered from 0); it has {', '.join(header)}"
        )
    has_label = "label" in header
    if split != "test" and not has_label:
        raise errors.InputError(f"{path}:1: the header has no label column")
    examples = []
    for line_number, row in enumerate(rows[1:], start=2):
        if not any(field.strip() for field in row):
            continue
        if len(row) != len(header):
            raise errors.InputError(
                f"{path}:{line_number}: {len(row)} columns, but the header has {len(header)}"
            )
        fields = dict(zip(header, row))
        if not fields["sent1"].strip():
            raise errors.InputError(f"{path}:{line_number}: sent1, the context, is empty")
        label = None
        if has_label and split != "test":
            text = fields["label"].strip()
            if not text.isdigit() or int(text) >= len(endings):
                raise errors.InputError(
                    f"{path}:{line_number}: label {text!r} is not an ending's index "
                    f"(0 to {len(endings) - 1})"
                )
            label = int(text)
        examples.append(
            SwagExample(
                f"{split}-{len(examples)}",
                fields["sent1"],
                fields["sent2"],
                [row[index] for _, index in endings],
                label,
            )
        )
    if not examples:
        raise errors.InputError(f"{path}: holds no examples (rows after the header)")
    return examples


# Features.


def featurize(example, tokenizer, max_seq_length):
    """An example → {input_ids, input_mask, segment_ids [choices, max_seq_length], label}:
    per choice `[CLS] sent1 [SEP] sent2 ending [SEP]` (tokenization.pack_segments)."""
    context = tokenizer.tokenize(example.sent1)
    start = tokenizer.tokenize(example.sent2)
    choices = [
        tokenization.pack_segments(
            tokenizer, list(context), start + tokenizer.tokenize(ending), max_seq_length
        )
        for ending in example.endings
    ]
    return {
        name: [choice[name] for choice in choices]
        for name in ("input_ids", "input_mask", "segment_ids")
    } | {"label": example.label or 0}


def write_records(examples, tokenizer, max_seq_length, path):
    """Writes the examples, each choice's sequence after the other (input_ids [choices·S])."""
    with file_io.atomic_output(path) as temporary, file_io.TFRecordWriter(temporary) as writer:
        for example in examples:
            features = featurize(example, tokenizer, max_seq_length)
            writer.write(
                training.serialize_example(
                    {
                        name: [i for choice in features[name] for i in choice]
                        for name in ("input_ids", "input_mask", "segment_ids")
                    }
                    | {"label_ids": [features["label"]], "is_real_example": [1]}
                )
            )


def parse_records(num_choices, max_seq_length):
    """serialized records string [b] → {input_ids, input_mask, segment_ids [b, choices, S], label_ids [b]}."""
    length = num_choices * max_seq_length
    parse = training.parse_records(
        {
            "input_ids": tf.io.FixedLenFeature([length], tf.int64),
            "input_mask": tf.io.FixedLenFeature([length], tf.int64),
            "segment_ids": tf.io.FixedLenFeature([length], tf.int64),
            "label_ids": tf.io.FixedLenFeature([], tf.int64),
        }
    )

    def parse_batch(serialized):
        features = parse(serialized)
        for name in ("input_ids", "input_mask", "segment_ids"):
            features[name] = tf.reshape(features[name], [-1, num_choices, max_seq_length])
        return features

    return parse_batch


# Loss and outputs.


def choice_loss(model, features, training):
    """Cross-entropy over the choices [B] and logits [B, choices]."""
    logits = model(
        features["input_ids"], features["input_mask"], features["segment_ids"], training=training
    )
    return tf.nn.sparse_softmax_cross_entropy_with_logits(features["label_ids"], logits), logits


def choice_training_loss(model, features):
    """The engine's compute_loss: the mean loss and the accuracy."""
    losses, logits = choice_loss(model, features, training=True)
    correct = tf.cast(
        tf.equal(tf.argmax(logits, -1, output_type=tf.int32), features["label_ids"]), tf.float32
    )
    return tf.reduce_mean(losses), {
        "accuracy": (tf.reduce_sum(correct), tf.cast(tf.size(correct), tf.float32))
    }


def choice_outputs(model, features):
    """The engine's predict_outputs: probabilities [B, choices], loss [B], label_ids [B]."""
    losses, logits = choice_loss(model, features, training=False)
    return {
        "probabilities": tf.nn.softmax(logits, -1),
        "loss": losses,
        "label_ids": features["label_ids"],
    }


def main(argv):
    del argv
    splits = shared_flags.fine_tuning_splits("data_dir", "bert_config_file", "output_dir")

    # Data.
    strategy = training.create_strategy(**shared_flags.strategy_options())
    config = modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
    modeling.check_max_seq_length(FLAGS.max_seq_length, config, FLAGS.bert_config_file)
    tokenization.validate_case_matches_checkpoint(FLAGS.do_lower_case, FLAGS.init_checkpoint)
    tokenizer = tokenization.load_tokenizer(FLAGS.vocab_file, FLAGS.do_lower_case)
    paths = {split: os.path.join(FLAGS.data_dir, SPLIT_FILES[split]) for split in splits}
    examples = {split: read_swag(paths[split], split) for split in splits}
    choice_counts = {len(e.endings) for split in splits for e in examples[split]}
    if len(choice_counts) != 1:
        raise errors.InputError(
            f"--data_dir={FLAGS.data_dir}: the files have different numbers of endings "
            f"({', '.join(f'{paths[s]}: {len(examples[s][0].endings)}' for s in splits)})"
        )
    (num_choices,) = choice_counts

    # Model (the engine prepares and locks --output_dir, where the records go).
    trainer = training.Trainer(
        functools.partial(modeling.BertMultipleChoiceModel, config),
        strategy,
        eval_batch_size=FLAGS.eval_batch_size,
        predict_batch_size=FLAGS.predict_batch_size,
        **shared_flags.trainer_options(),
    )
    record_files = {}
    for split in splits:
        record_files[split] = training.split_record_file(FLAGS.output_dir, split)
        write_records(examples[split], tokenizer, FLAGS.max_seq_length, record_files[split])
    parse_batch = parse_records(num_choices, FLAGS.max_seq_length)

    # Loop.
    if FLAGS.do_train:
        num_train_steps, num_warmup_steps = training.steps_for_epochs(
            len(examples["train"]),
            FLAGS.train_batch_size,
            FLAGS.num_train_epochs,
            FLAGS.warmup_proportion,
        )
        logging.info(
            "Training on %d examples of %d choices: %d steps of %d",
            len(examples["train"]),
            num_choices,
            num_train_steps,
            FLAGS.train_batch_size,
        )
        trainer.train(
            [record_files["train"]],
            parse_batch,
            choice_training_loss,
            ("accuracy",),
            num_train_steps,
            num_warmup_steps,
        )

    def predict(split):
        return list(
            trainer.predict(
                [record_files[split]], parse_batch, choice_outputs, for_eval=split == "dev"
            )
        )

    # Outputs.
    if FLAGS.do_eval:
        predictions = predict("dev")
        labels = np.array([p["label_ids"] for p in predictions])
        probabilities = np.array([p["probabilities"] for p in predictions])
        loss = float(np.mean([p["loss"] for p in predictions]))
        training.write_results(
            os.path.join(FLAGS.output_dir, "eval_results.txt"),
            {
                "eval_accuracy": float(np.mean(np.argmax(probabilities, 1) == labels)),
                "eval_loss": loss,
                "loss": loss,
                "global_step": int(trainer.global_step.numpy()),
                "eval_examples": len(predictions),
            },
        )
    if FLAGS.do_predict:
        predictions = predict("test")
        if len(predictions) != len(examples["test"]):
            raise RuntimeError(
                f"predicted {len(predictions)} of {len(examples['test'])} test examples"
            )
        lines = ["\t".join(f"{value}" for value in p["probabilities"]) + "\n" for p in predictions]
        file_io.write_text_atomically(
            os.path.join(FLAGS.output_dir, "test_results.tsv"), "".join(lines)
        )
        logging.info("Wrote test_results.tsv (%d examples)", len(lines))


if __name__ == "__main__":
    errors.run_script(main)
