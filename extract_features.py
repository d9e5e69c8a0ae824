"""Writes BERT's contextual token vectors (or one vector per sentence) for each line of a text file.

    python extract_features.py --input_file=/tmp/input.txt --output_file=/tmp/output.jsonl \
        --vocab_file=$BERT_BASE_DIR/vocab.txt --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt --layers=-1,-2,-3,-4 --max_seq_length=128 --batch_size=8

Each input line is a text, or a pair written `text_a ||| text_b`. Each output line is the
reference's JSON, in input order:

    {"linex_index": 0, "features": [{"token": "[CLS]", "layers": [{"index": -1, "values": [0.1, ...]}, ...]}, ...]}

one entry per word piece ([CLS] and [SEP] included), values rounded to 6 decimals; layer -1 is the
last encoder layer. The reference's spelling `linex_index` is kept.

--pooling=cls or mean writes one vector per line instead, from the first layer of --layers:
{"linex_index": 0, "values": [...]}: the [CLS] vector, or the mean over the line's word pieces
(special tokens included, as sentence-transformers pools); --normalize scales it to unit length.

Streams: input lines are read, and output lines written, a batch at a time. An empty line gives
the features of `[CLS] [SEP]`; a line longer than --max_seq_length is cut as the reference cuts
it (a pair from its longer side); both are counted and warned about.
"""

import cpu_kernels  # noqa: F401  (first: what TensorFlow reads when it is imported)
import functools
import json
import os
import re

from absl import flags
from absl import logging
import tensorflow as tf

import errors
import file_io
import modeling
import shared_flags
import tokenization
import training

FLAGS = flags.FLAGS

shared_flags.define_model_flags()
shared_flags.define_strategy_flags()
shared_flags.define_vocab_flags()
shared_flags.define_max_seq_length()
shared_flags.define_dynamic_padding()
shared_flags.define_input_file(
    "Text to extract features of: one text (or `text_a ||| text_b`) a line."
)
shared_flags.define_output_file("The JSON lines file to write.")
flags.DEFINE_string(
    "layers", "-1,-2,-3,-4", "Comma-separated encoder layer indexes (negative from the last)."
)
flags.DEFINE_integer("batch_size", 32, "Batch size for predictions.", lower_bound=1)
flags.DEFINE_bool(
    "use_one_hot_embeddings",
    False,
    "Look embeddings up by a one-hot matmul (faster on TPU, where it is always done).",
)
flags.DEFINE_enum(
    "pooling",
    "none",
    ["none", "cls", "mean"],
    "none: every token's vectors (the reference); cls or mean: one vector per line.",
)
flags.DEFINE_bool("normalize", False, "With --pooling: L2-normalise each line's vector.")

PAIR_PATTERN = re.compile(r"^(.*) \|\|\| (.*)$")


def parse_layers(value, num_hidden_layers):
    """--layers → list of ints, each in [-num_hidden_layers, num_hidden_layers); InputError otherwise."""
    try:
        layers = [int(part) for part in value.split(",")]
    except ValueError:
        raise errors.InputError(
            f"--layers={value}: not a comma-separated list of integers"
        ) from None
    for layer in layers:
        if not -num_hidden_layers <= layer < num_hidden_layers:
            raise errors.InputError(
                f"--layers={value}: layer {layer} is out of range: the model has "
                f"{num_hidden_layers} encoder layers (indexes {-num_hidden_layers}..."
                f"{num_hidden_layers - 1})"
            )
    return layers


def featurize_line(line, tokenizer, max_seq_length):
    """A line → (input_ids, input_mask, segment_ids [max_seq_length], whether it was truncated),
    packed by tokenization.pack_segments: a pair is cut from the end of its longer side."""
    match = PAIR_PATTERN.match(line)
    text_a, text_b = (match.group(1), match.group(2)) if match else (line, None)
    tokens_b = tokenizer.tokenize(text_b) if text_b is not None else None
    features = tokenization.pack_segments(
        tokenizer, tokenizer.tokenize(text_a), tokens_b, max_seq_length
    )
    return (
        features["input_ids"],
        features["input_mask"],
        features["segment_ids"],
        features["truncated"],
    )


def read_examples(path, tokenizer, max_seq_length, counts):
    """Yields one featurized example per line of `path`, counting empty and truncated lines in `counts`."""
    for index, line in enumerate(tokenization.read_text_lines(path)):
        line = line.strip()
        if not line:
            counts["empty"] += 1
            if counts["empty"] == 1:
                logging.warning(
                    "%s:%d: empty line: its features are those of [CLS] [SEP]", path, index + 1
                )
        input_ids, input_mask, segment_ids, truncated = featurize_line(
            line, tokenizer, max_seq_length
        )
        if truncated:
            counts["truncated"] += 1
            if counts["truncated"] == 1:
                logging.warning(
                    "%s:%d: longer than --max_seq_length=%d word pieces: truncated",
                    path,
                    index + 1,
                    max_seq_length,
                )
        yield {
            "linex_index": index,
            "input_ids": input_ids,
            "input_mask": input_mask,
            "segment_ids": segment_ids,
        }


def example_signature(max_seq_length):
    sequence = tf.TensorSpec([max_seq_length], tf.int32)
    return {
        "linex_index": tf.TensorSpec([], tf.int64),
        "input_ids": sequence,
        "input_mask": sequence,
        "segment_ids": sequence,
    }


def token_features_json(index, tokens, layer_values, layers):
    """The reference's JSON line: layer_values float [len(layers), tokens, H]."""
    features = [
        {
            "token": token,
            "layers": [
                {"index": layer, "values": [round(float(x), 6) for x in values[position]]}
                for layer, values in zip(layers, layer_values)
            ],
        }
        for position, token in enumerate(tokens)
    ]
    return json.dumps({"linex_index": int(index), "features": features})


def main(argv):
    del argv
    for name in ("input_file", "output_file", "vocab_file", "bert_config_file", "init_checkpoint"):
        if not getattr(FLAGS, name):
            raise errors.InputError(f"--{name} is required")

    # Data.
    strategy = training.create_strategy(**shared_flags.strategy_options())
    config = modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
    modeling.check_max_seq_length(FLAGS.max_seq_length, config, FLAGS.bert_config_file)
    layers = parse_layers(FLAGS.layers, config.num_hidden_layers)
    tokenization.validate_case_matches_checkpoint(FLAGS.do_lower_case, FLAGS.init_checkpoint)
    tokenizer = tokenization.FullTokenizer(FLAGS.vocab_file, FLAGS.do_lower_case)
    if not file_io.exists(FLAGS.input_file) or file_io.isdir(FLAGS.input_file):
        raise errors.InputError(f"--input_file={FLAGS.input_file}: file not found")
    file_io.check_output_directory(FLAGS.output_file, "output_file")
    counts = {"empty": 0, "truncated": 0}

    # Model. It reads the checkpoint and writes beside --output_file: nothing of that folder to lock.
    trainer = training.Trainer(
        functools.partial(modeling.BertModel, config),
        strategy,
        os.path.dirname(FLAGS.output_file) or ".",
        init_checkpoint=FLAGS.init_checkpoint,
        predict_batch_size=FLAGS.batch_size,
        use_one_hot_embeddings=FLAGS.use_one_hot_embeddings or None,
        dynamic_padding=FLAGS.dynamic_padding,
        lock_output_dir=False,
    )

    def predict_outputs(model, features):
        outputs = model(features["input_ids"], features["input_mask"], features["segment_ids"])
        chosen = [tf.cast(outputs.all_encoder_layers[layer], tf.float32) for layer in layers]
        result = {
            "linex_index": features["linex_index"],
            "input_ids": features["input_ids"],
            "input_mask": features["input_mask"],
        }
        if FLAGS.pooling == "none":
            result["layers"] = tf.stack(chosen, axis=1)  # [B, len(layers), S, H]
            return result
        if FLAGS.pooling == "cls":
            vectors = chosen[0][:, 0]
        else:
            mask = tf.cast(features["input_mask"], tf.float32)[:, :, tf.newaxis]  # [B, S, 1]
            vectors = tf.reduce_sum(chosen[0] * mask, axis=1) / tf.reduce_sum(mask, axis=1)
        result["vector"] = tf.math.l2_normalize(vectors, axis=-1) if FLAGS.normalize else vectors
        return result

    # Loop and outputs.
    written = 0
    with (
        file_io.atomic_output(FLAGS.output_file) as temporary,
        file_io.open_file(temporary, "w") as writer,
    ):
        outputs = trainer.predict_stream(
            lambda: read_examples(FLAGS.input_file, tokenizer, FLAGS.max_seq_length, counts),
            example_signature(FLAGS.max_seq_length),
            predict_outputs,
            checkpoint=FLAGS.init_checkpoint,
            # One pass to count the lines (cheap beside the model) gives the progress an ETA.
            num_examples=sum(1 for _ in file_io.read_lines(FLAGS.input_file)),
        )
        for output in outputs:
            if FLAGS.pooling == "none":
                length = int(output["input_mask"].sum())
                tokens = tokenizer.convert_ids_to_tokens(output["input_ids"][:length].tolist())
                writer.write(
                    token_features_json(
                        output["linex_index"], tokens, output["layers"][:, :length], layers
                    )
                    + "\n"
                )
            else:
                writer.write(
                    json.dumps(
                        {
                            "linex_index": int(output["linex_index"]),
                            "values": [round(float(x), 6) for x in output["vector"]],
                        }
                    )
                    + "\n"
                )
            written += 1
            if written % 10000 == 0:
                logging.info("%d lines written", written)
    for what, count in counts.items():
        if count:
            logging.warning("%s: %d %s lines", FLAGS.input_file, count, what)
    logging.info("Wrote %d lines to %s", written, FLAGS.output_file)


if __name__ == "__main__":
    errors.run_script(main)
