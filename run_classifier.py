"""Fine-tunes BERT on a sentence or sentence-pair classification (or regression) task.

    python run_classifier.py --task_name=MRPC --do_train=true --do_eval=true --data_dir=$GLUE_DIR/MRPC \
        --vocab_file=$BERT_BASE_DIR/vocab.txt --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt --max_seq_length=128 --train_batch_size=32 \
        --learning_rate=2e-5 --num_train_epochs=3.0 --output_dir=/tmp/mrpc_output/

Tasks, in the GLUE download's layout under --data_dir: cola, mnli (matched), mnli-mm, mrpc, xnli
(--xnli_language, zh by default, as the reference), sst-2, qqp, qnli, rte, wnli, sts-b
(regression: one output, mean squared error), ax (the diagnostic set, predicted with a model
fine-tuned on MNLI). Your own table: --task_name=tsv or csv with --text_a_column,
--text_b_column, --label_column, --skip_header and --label_list; files train/dev/test.(tsv|csv).

--hub_module_handle=PATH_OR_URL fine-tunes a TF-Hub BERT encoder (export_model.py's, or a
published one) in place of --bert_config_file and --init_checkpoint; the vocabulary and casing
are the module's. Checkpoints keep the encoder's variable names (the reference's, for our exports).

Outputs in --output_dir: eval_results.txt (sorted `key = value`: eval_accuracy, eval_loss,
global_step, loss, the task's GLUE metric: f1 for MRPC and QQP, mcc for CoLA, pearson and
spearman for STS-B, and eval_examples, the count evaluated), test_results.tsv (one line per test example, class probabilities
tab-separated, or the predicted score for STS-B) and the GLUE submission file (e.g. MRPC.tsv:
index, prediction).
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
shared_flags.define_spm_model_file()
shared_flags.define_max_seq_length()
shared_flags.define_label_list("tsv/csv task: the labels (default: those found in train, sorted).")
shared_flags.define_data_dir()
flags.DEFINE_string("task_name", None, "The name of the task to train.")
flags.DEFINE_string("xnli_language", "zh", "XNLI: the language to fine-tune and evaluate on.")
flags.DEFINE_string(
    "text_a_column", "0", "tsv/csv task: the first text's column (index or header name)."
)
flags.DEFINE_string(
    "text_b_column", None, "tsv/csv task: the second text's column, for sentence pairs."
)
flags.DEFINE_string("label_column", "1", "tsv/csv task: the label's column (index or header name).")
flags.DEFINE_bool("skip_header", True, "tsv/csv task: the first row of each file is a header.")
flags.DEFINE_string(
    "hub_module_handle",
    None,
    "Fine-tune a TF-Hub BERT encoder (a local path or URL) instead of "
    "--init_checkpoint; its vocabulary and casing come with it.",
)

InputExample = collections.namedtuple("InputExample", ["guid", "text_a", "text_b", "label"])


# Reading tables.


def cell(path, line_number, row, index, what):
    if not -len(row) <= index < len(row):
        position = index + 1 if index >= 0 else f"{index} (from the end)"
        raise errors.InputError(
            f"{path}:{line_number}: has {len(row)} columns, {what} is column {position}"
        )
    return row[index]


class Task:
    """A processor: where a task's files are and which columns hold what.

    Args:
      files: {"train"|"dev"|"test": file name}.
      columns: {split: (text_a, text_b or None, label or None, guid or None)} column indexes.
      labels: the label list, or None for regression.
      header: whether the files start with a header row.
      submission_name: the GLUE submission file's name, without .tsv.
      row_filters: {split: row → whether to keep it}.
      label_map: label spellings to read as others.
    """

    def __init__(
        self,
        files,
        columns,
        labels,
        header,
        submission_name,
        delimiter="\t",
        row_filters=None,
        label_map=None,
    ):
        self.files, self.columns, self.labels = files, columns, labels
        self.header, self.submission_name, self.delimiter = header, submission_name, delimiter
        self.row_filters = row_filters or {}
        self.label_map = label_map or {}

    @property
    def is_regression(self):
        return self.labels is None

    def examples(self, data_dir, split):
        """InputExamples of one split; InputError naming the file and line for bad rows."""
        path = os.path.join(data_dir, self.files[split])
        text_a_index, text_b_index, label_index, guid_index = self.columns[split]
        examples = []
        header = self.header[split] if isinstance(self.header, dict) else self.header
        keep = self.row_filters.get(split, lambda row: True)
        for line_number, row in enumerate(file_io.read_table(path, self.delimiter), start=1):
            if (header and line_number == 1) or not row or not keep(row):
                continue
            text_a = cell(path, line_number, row, text_a_index, "text_a").strip()
            text_b = (
                cell(path, line_number, row, text_b_index, "text_b").strip()
                if text_b_index is not None
                else None
            )
            if not text_a or (text_b_index is not None and not text_b):
                raise errors.InputError(f"{path}:{line_number}: empty text")
            label = None
            if label_index is not None:
                label = cell(path, line_number, row, label_index, "the label").strip()
                label = self.label_map.get(label, label)
                if self.is_regression:
                    try:
                        label = float(label)
                    except ValueError:
                        raise errors.InputError(
                            f"{path}:{line_number}: label {label!r} is not a number"
                        ) from None
                elif label not in self.labels:
                    raise errors.InputError(
                        f"{path}:{line_number}: unknown label {label!r} (labels: {self.labels})"
                    )
            guid = (
                cell(path, line_number, row, guid_index, "the id")
                if guid_index is not None
                else str(len(examples))
            )
            examples.append(InputExample(f"{split}-{guid}", text_a, text_b, label))
        if not examples:
            raise errors.InputError(f"{path}: holds no examples")
        return examples


NLI_LABELS = ["contradiction", "entailment", "neutral"]
ENTAILMENT_LABELS = ["entailment", "not_entailment"]


def glue_tasks():
    """The GLUE tasks and XNLI, by --task_name (lower-cased)."""
    mnli_columns = {"train": (8, 9, -1, 0), "dev": (8, 9, -1, 0), "test": (8, 9, None, 0)}
    pair_columns = {"train": (1, 2, 3, 0), "dev": (1, 2, 3, 0), "test": (1, 2, None, 0)}
    return {
        "cola": Task(
            {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
            {"train": (3, None, 1, None), "dev": (3, None, 1, None), "test": (1, None, None, 0)},
            ["0", "1"],
            {"train": False, "dev": False, "test": True},
            "CoLA",
        ),
        "mnli": Task(
            {"train": "train.tsv", "dev": "dev_matched.tsv", "test": "test_matched.tsv"},
            mnli_columns,
            NLI_LABELS,
            True,
            "MNLI-m",
        ),
        "mnli-mm": Task(
            {"train": "train.tsv", "dev": "dev_mismatched.tsv", "test": "test_mismatched.tsv"},
            mnli_columns,
            NLI_LABELS,
            True,
            "MNLI-mm",
        ),
        "mrpc": Task(
            {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
            {"train": (3, 4, 0, None), "dev": (3, 4, 0, None), "test": (3, 4, None, 0)},
            ["0", "1"],
            True,
            "MRPC",
        ),
        "sst-2": Task(
            {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
            {"train": (0, None, 1, None), "dev": (0, None, 1, None), "test": (1, None, None, 0)},
            ["0", "1"],
            True,
            "SST-2",
        ),
        "qqp": Task(
            {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
            {"train": (3, 4, 5, 0), "dev": (3, 4, 5, 0), "test": (1, 2, None, 0)},
            ["0", "1"],
            True,
            "QQP",
        ),
        "qnli": Task(
            {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
            pair_columns,
            ENTAILMENT_LABELS,
            True,
            "QNLI",
        ),
        "rte": Task(
            {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
            pair_columns,
            ENTAILMENT_LABELS,
            True,
            "RTE",
        ),
        "wnli": Task(
            {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
            pair_columns,
            ["0", "1"],
            True,
            "WNLI",
        ),
        "sts-b": Task(
            {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
            {"train": (7, 8, 9, 0), "dev": (7, 8, 9, 0), "test": (7, 8, None, 0)},
            None,
            True,
            "STS-B",
        ),
        "ax": Task({"test": "AX.tsv"}, {"test": (1, 2, None, 0)}, NLI_LABELS, True, "AX"),
    }


def xnli_task(language):
    """XNLI as the reference: train from multinli/multinli.train.<language>.tsv, dev from the
    language's rows of xnli.dev.tsv; "contradictory" is read as "contradiction"."""
    return Task(
        {
            "train": os.path.join("multinli", f"multinli.train.{language}.tsv"),
            "dev": "xnli.dev.tsv",
            "test": "xnli.test.tsv",
        },
        {"train": (0, 1, 2, None), "dev": (6, 7, 1, None), "test": (6, 7, None, None)},
        NLI_LABELS,
        True,
        f"XNLI-{language}",
        label_map={"contradictory": "contradiction"},
        row_filters={"dev": lambda row: row[0] == language, "test": lambda row: row[0] == language},
    )


def table_task(task_name, data_dir):
    """--task_name=tsv|csv: columns and labels from flags."""
    delimiter = "\t" if task_name == "tsv" else ","
    extension = task_name
    train_path = os.path.join(data_dir, f"train.{extension}")
    header = (
        (file_io.read_table(train_path, delimiter) or [[]])[0]
        if FLAGS.skip_header and file_io.exists(train_path)
        else []
    )

    def column(flag, value):
        if value is None:
            return None
        if value.lstrip("-").isdigit():
            return int(value)
        if value not in header:
            raise errors.InputError(
                f"--{flag}={value} is neither a column index nor a header name of {train_path}"
            )
        return header.index(value)

    text_a, text_b = (
        column("text_a_column", FLAGS.text_a_column),
        column("text_b_column", FLAGS.text_b_column),
    )
    label = column("label_column", FLAGS.label_column)
    columns = {
        "train": (text_a, text_b, label, None),
        "dev": (text_a, text_b, label, None),
        "test": (text_a, text_b, None, None),
    }
    labels = FLAGS.label_list
    if labels is None:
        first = 2 if FLAGS.skip_header else 1
        rows = file_io.read_table(train_path, delimiter)[first - 1 :]
        labels = sorted(
            {
                cell(train_path, first + i, row, label, "the label").strip()
                for i, row in enumerate(rows)
                if row
            }
        )
    return Task(
        {split: f"{split}.{extension}" for split in ("train", "dev", "test")},
        columns,
        list(labels),
        FLAGS.skip_header,
        task_name.upper(),
        delimiter,
    )


def get_task(task_name, data_dir):
    name = task_name.lower()
    if name == "xnli":
        return xnli_task(FLAGS.xnli_language)
    if name in ("tsv", "csv"):
        return table_task(name, data_dir)
    tasks = glue_tasks()
    if name not in tasks:
        raise errors.InputError(
            f"--task_name={task_name} is not one of {sorted(tasks) + ['xnli', 'tsv', 'csv']}"
        )
    return tasks[name]


# Featurization.


def featurize(example, task, tokenizer, max_seq_length):
    """An InputExample → {input_ids, input_mask, segment_ids [max_seq_length], label_ids, tokens} as
    the reference (tokenization.pack_segments)."""
    tokens_b = tokenizer.tokenize(example.text_b) if example.text_b is not None else None
    features = tokenization.pack_segments(
        tokenizer, tokenizer.tokenize(example.text_a), tokens_b, max_seq_length
    )
    if example.label is None:
        label = 0.0 if task.is_regression else 0
    else:
        label = float(example.label) if task.is_regression else task.labels.index(example.label)
    return {
        "input_ids": features["input_ids"],
        "input_mask": features["input_mask"],
        "segment_ids": features["segment_ids"],
        "label_ids": label,
        "tokens": features["tokens"],
    }


def write_records(examples, task, tokenizer, max_seq_length, path):
    """Writes the examples as the reference's TFRecords (with is_real_example 1); logs the first five."""
    with file_io.atomic_output(path) as temporary, file_io.TFRecordWriter(temporary) as writer:
        for index, example in enumerate(examples):
            features = featurize(example, task, tokenizer, max_seq_length)
            if index < 5:
                logging.info(
                    "*** Example %s ***\ntokens: %s\ninput_ids: %s\nlabel: %s",
                    example.guid,
                    " ".join(features["tokens"]),
                    features["input_ids"],
                    example.label,
                )
            label = (
                float(features["label_ids"]) if task.is_regression else int(features["label_ids"])
            )
            writer.write(
                training.serialize_example(
                    {
                        "input_ids": features["input_ids"],
                        "input_mask": features["input_mask"],
                        "segment_ids": features["segment_ids"],
                        "label_ids": [label],
                        "is_real_example": [1],
                    }
                )
            )


def record_features(max_seq_length, is_regression):
    return {
        "input_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "input_mask": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "segment_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "label_ids": tf.io.FixedLenFeature([], tf.float32 if is_regression else tf.int64),
    }


# Loss and metrics.


def classifier_loss(model, features, is_regression, training):
    """Mean cross-entropy (or squared error for regression) and logits [B, L]."""
    logits = model(
        features["input_ids"], features["input_mask"], features["segment_ids"], training=training
    )
    if is_regression:
        losses = tf.square(logits[:, 0] - features["label_ids"])
    else:
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(features["label_ids"], logits)
    return losses, logits


def classifier_training_loss(model, features, is_regression):
    """The engine's compute_loss: the mean loss, and accuracy for classification."""
    losses, logits = classifier_loss(model, features, is_regression, training=True)
    metrics = {}
    if not is_regression:
        correct = tf.cast(
            tf.equal(tf.argmax(logits, -1, output_type=tf.int32), features["label_ids"]), tf.float32
        )
        metrics["accuracy"] = (tf.reduce_sum(correct), tf.cast(tf.size(correct), tf.float32))
    return tf.reduce_mean(losses), metrics


def classifier_outputs(model, features, is_regression):
    """The engine's predict_outputs: scores ([B, labels] probabilities, or [B] for regression),
    per-example loss [B] and label_ids [B]."""
    losses, logits = classifier_loss(model, features, is_regression, training=False)
    scores = logits[:, 0] if is_regression else tf.nn.softmax(logits, axis=-1)
    return {"scores": scores, "loss": losses, "label_ids": features["label_ids"]}


def matthews_correlation(labels, predictions):
    """Binary (or multi-class) Matthews correlation, as scikit-learn computes it."""
    classes = np.union1d(labels, predictions)
    confusion = np.array(
        [[np.sum((labels == a) & (predictions == b)) for b in classes] for a in classes], np.float64
    )
    samples, correct = confusion.sum(), np.trace(confusion)
    true_counts, predicted_counts = confusion.sum(1), confusion.sum(0)
    numerator = correct * samples - true_counts @ predicted_counts
    denominator = np.sqrt(
        (samples**2 - predicted_counts @ predicted_counts)
        * (samples**2 - true_counts @ true_counts)
    )
    return float(numerator / denominator) if denominator else 0.0


def f1_score(labels, predictions, positive=1):
    true_positive = np.sum((predictions == positive) & (labels == positive))
    predicted, actual = np.sum(predictions == positive), np.sum(labels == positive)
    return float(2 * true_positive / (predicted + actual)) if predicted + actual else 0.0


def pearson(x, y):
    x, y = np.asarray(x, np.float64) - np.mean(x), np.asarray(y, np.float64) - np.mean(y)
    return float(np.sum(x * y) / np.sqrt(np.sum(x * x) * np.sum(y * y)))


def spearman(x, y):
    def ranks(values):  # average ranks of ties, as scipy.stats.spearmanr
        values = np.asarray(values)
        order = np.argsort(values, kind="mergesort")
        ranked = np.empty(len(values))
        ranked[order] = np.arange(1, len(values) + 1)
        for value in np.unique(values):
            tied = values == value
            ranked[tied] = ranked[tied].mean()
        return ranked

    return pearson(ranks(x), ranks(y))


def task_metrics(task_name, task, labels, outputs):
    """GLUE's metrics from dev labels and model outputs (probabilities [N, L] or scores [N])."""
    if task.is_regression:
        return {
            "pearson": pearson(outputs, labels),
            "spearman": spearman(outputs, labels),
            "eval_mse": float(np.mean((np.asarray(outputs) - labels) ** 2)),
        }
    predictions = np.argmax(outputs, axis=1)
    metrics = {"eval_accuracy": float(np.mean(predictions == labels))}
    name = task_name.lower()
    if name in ("mrpc", "qqp"):
        metrics["f1"] = f1_score(labels, predictions)
    if name == "cola":
        metrics["mcc"] = matthews_correlation(labels, predictions)
    return metrics


def main(argv):
    del argv
    splits = shared_flags.fine_tuning_splits(
        "data_dir",
        "task_name",
        "output_dir",
        *(() if FLAGS.hub_module_handle else ("bert_config_file",)),
    )

    # Data.
    strategy = training.create_strategy(**shared_flags.strategy_options())
    if FLAGS.hub_module_handle:
        if FLAGS.init_checkpoint:
            raise errors.InputError(
                "--hub_module_handle and --init_checkpoint both give the initial weights: pass one"
            )
        with strategy.scope():
            encoder = modeling.HubEncoder(FLAGS.hub_module_handle)
        config, config_source = encoder.config, FLAGS.hub_module_handle
        vocab_file = FLAGS.vocab_file or encoder.vocab_file
        do_lower_case = (
            FLAGS.do_lower_case if encoder.do_lower_case is None else encoder.do_lower_case
        )
        if not vocab_file:
            raise errors.InputError(
                f"--hub_module_handle={FLAGS.hub_module_handle} has no vocab_file asset: "
                "pass --vocab_file"
            )
    else:
        encoder, config_source = None, FLAGS.bert_config_file
        config = modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
        vocab_file, do_lower_case = FLAGS.vocab_file, FLAGS.do_lower_case
        tokenization.validate_case_matches_checkpoint(do_lower_case, FLAGS.init_checkpoint)
    modeling.check_max_seq_length(FLAGS.max_seq_length, config, config_source)
    task = get_task(FLAGS.task_name, FLAGS.data_dir)
    tokenizer = tokenization.load_tokenizer(vocab_file, do_lower_case, FLAGS.spm_model_file)
    examples = {split: task.examples(FLAGS.data_dir, split) for split in splits}
    num_labels = 1 if task.is_regression else len(task.labels)

    # Model (the engine prepares and locks --output_dir, where the records go).
    trainer_options = shared_flags.trainer_options()
    if encoder is not None:
        # XLA takes a restored SavedModel's inputs and variables for compile-time constants and
        # compiles the step anew each time (MiniLM on CPU: 10 s a step, against 0.5 s without).
        if trainer_options["use_xla"]:
            logging.warning("--hub_module_handle: the training step runs without XLA (--use_xla)")
        trainer_options["use_xla"] = False
    trainer = training.Trainer(
        functools.partial(modeling.BertClassifierModel, config, num_labels, encoder=encoder),
        strategy,
        eval_batch_size=FLAGS.eval_batch_size,
        predict_batch_size=FLAGS.predict_batch_size,
        **trainer_options,
    )
    record_files = {}
    for split in splits:
        record_files[split] = training.split_record_file(FLAGS.output_dir, split)
        write_records(examples[split], task, tokenizer, FLAGS.max_seq_length, record_files[split])
    parse_batch = training.parse_records(record_features(FLAGS.max_seq_length, task.is_regression))

    # Loop.
    if FLAGS.do_train:
        num_train_steps, num_warmup_steps = training.steps_for_epochs(
            len(examples["train"]),
            FLAGS.train_batch_size,
            FLAGS.num_train_epochs,
            FLAGS.warmup_proportion,
        )
        logging.info(
            "Training on %d examples: %d steps of %d",
            len(examples["train"]),
            num_train_steps,
            FLAGS.train_batch_size,
        )
        trainer.train(
            [record_files["train"]],
            parse_batch,
            functools.partial(classifier_training_loss, is_regression=task.is_regression),
            () if task.is_regression else ("accuracy",),
            num_train_steps,
            num_warmup_steps,
        )

    def predict(split):
        return list(
            trainer.predict(
                [record_files[split]],
                parse_batch,
                functools.partial(classifier_outputs, is_regression=task.is_regression),
                for_eval=split == "dev",
            )
        )

    # Outputs.
    if FLAGS.do_eval:
        predictions = predict("dev")
        labels = np.array([p["label_ids"] for p in predictions])
        scores = np.array([p["scores"] for p in predictions])
        results = task_metrics(FLAGS.task_name, task, labels, scores)
        results["eval_loss"] = float(np.mean([p["loss"] for p in predictions]))
        results["loss"] = results["eval_loss"]
        results["global_step"] = int(trainer.global_step.numpy())
        results["eval_examples"] = len(predictions)
        training.write_results(os.path.join(FLAGS.output_dir, "eval_results.txt"), results)
    if FLAGS.do_predict:
        predictions = predict("test")
        if len(predictions) != len(examples["test"]):
            raise RuntimeError(
                f"predicted {len(predictions)} of {len(examples['test'])} test examples"
            )
        scores = [p["scores"] for p in predictions]
        lines = ["\t".join(f"{value}" for value in np.atleast_1d(score)) + "\n" for score in scores]
        file_io.write_text_atomically(
            os.path.join(FLAGS.output_dir, "test_results.tsv"), "".join(lines)
        )
        submission = ["index\tprediction\n"]
        for example, score in zip(examples["test"], scores):
            index = example.guid.split("-", 1)[1]
            prediction = (
                f"{float(score):.3f}" if task.is_regression else task.labels[int(np.argmax(score))]
            )
            submission.append(f"{index}\t{prediction}\n")
        file_io.write_text_atomically(
            os.path.join(FLAGS.output_dir, f"{task.submission_name}.tsv"), "".join(submission)
        )
        logging.info(
            "Wrote test_results.tsv and %s.tsv (%d examples)", task.submission_name, len(scores)
        )


if __name__ == "__main__":
    errors.run_script(main)
