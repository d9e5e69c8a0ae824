"""Converts between Hugging Face BERT folders and reference-format BERT checkpoints.

    # Hugging Face (config.json + model.safetensors or pytorch_model.bin + vocab.txt) → reference
    python convert_checkpoint.py --hf_model_dir=all-MiniLM-L6-v2 --output_dir=minilm
    #   writes minilm/bert_model.ckpt.{index,data-00000-of-00001}, bert_config.json, vocab.txt

    # reference → Hugging Face (model.safetensors, written without torch)
    python convert_checkpoint.py --init_checkpoint=uncased_L-12_H-768_A-12/bert_model.ckpt \
        --bert_config_file=uncased_L-12_H-768_A-12/bert_config.json \
        --vocab_file=uncased_L-12_H-768_A-12/vocab.txt --output_dir=bert-base-hf

Names map one to one (`encoder.layer.3.attention.self.query.weight` ↔
`bert/encoder/layer_3/attention/self/query/kernel`); dense kernels are transposed (torch stores
[out, in], the reference [in, out]); embedding tables and the heads' `output_weights` are not.
The masked-LM decoder is tied to the word embeddings on both sides, so it is not stored twice.
The heads convert too: BertForPreTraining's `cls.*`, a sequence classifier's `classifier.*`
(the reference's root `output_weights` / `output_bias`), and a QA model's `qa_outputs.*`
(`cls/squad/...`). Every array is float32 in a reference checkpoint.
"""

import io
import json
import os
import re
import struct

from absl import flags
from absl import logging
import numpy as np

import errors
import file_io
import modeling
import shared_flags
import tokenization

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "hf_model_dir", None, "A Hugging Face BERT folder to convert to the reference format."
)
shared_flags.define_model_flags()
shared_flags.define_vocab_file("With --init_checkpoint: its vocab.txt (copied beside the output).")
shared_flags.define_do_lower_case(
    "With --init_checkpoint: whether its vocabulary is lower-cased, written to "
    "tokenizer_config.json (default: known for the released checkpoints, else True).",
    default=None,
)
shared_flags.define_output_dir("Folder to write the converted model into (created if absent).")

# Hugging Face names that differ from the rule in hf_to_reference_name, both ways.
_SPECIAL_NAMES = {
    "cls.predictions.bias": "cls/predictions/output_bias",
    "cls.seq_relationship.weight": "cls/seq_relationship/output_weights",
    "cls.seq_relationship.bias": "cls/seq_relationship/output_bias",
    "classifier.weight": "output_weights",
    "classifier.bias": "output_bias",
    "qa_outputs.weight": "cls/squad/output_weights",
    "qa_outputs.bias": "cls/squad/output_bias",
}
# Hugging Face tensors that carry nothing of their own: a buffer and the tied decoder.
_SKIPPED_HF_NAMES = re.compile(
    r"^(bert\.)?embeddings\.position_ids$|^cls\.predictions\.decoder\.(weight|bias)$"
)

# hidden_act spellings: Hugging Face → ours are the same except the tanh GELU, written as HF knows it.
_HF_HIDDEN_ACT = {"gelu_tanh": "gelu_new"}
BERT_CONFIG_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "initializer_range",
)


def hf_to_reference_name(hf_name):
    """Hugging Face parameter name → (reference name, whether the array is transposed)."""
    if hf_name in _SPECIAL_NAMES:
        return _SPECIAL_NAMES[hf_name], False
    name = hf_name[len("bert.") :] if hf_name.startswith("bert.") else hf_name
    if not name.startswith("cls."):
        name = "bert." + name
    name = re.sub(r"\.layer\.(\d+)\.", r".layer_\1.", name).replace(".", "/")
    name = re.sub(r"LayerNorm/(weight|gamma)$", "LayerNorm/gamma", name)
    name = re.sub(r"LayerNorm/(bias|beta)$", "LayerNorm/beta", name)
    if re.search(r"_embeddings/weight$", name):
        return name[: -len("/weight")], False
    if name.endswith("/weight"):
        return name[: -len("weight")] + "kernel", True
    return name, False


def reference_to_hf_name(reference_name, with_bert_prefix):
    """Reference name → (Hugging Face name, whether the array is transposed); the inverse of the above."""
    for hf_name, special in _SPECIAL_NAMES.items():
        if special == reference_name:
            return hf_name, False
    name = reference_name
    transposed = name.endswith("/kernel")
    name = re.sub(r"/kernel$", "/weight", name)
    name = re.sub(r"LayerNorm/gamma$", "LayerNorm/weight", name)
    name = re.sub(r"LayerNorm/beta$", "LayerNorm/bias", name)
    name = re.sub(r"_embeddings$", "_embeddings/weight", name)
    name = re.sub(r"/layer_(\d+)/", r"/layer/\1/", name).replace("/", ".")
    if name.startswith("bert.") and not with_bert_prefix:
        name = name[len("bert.") :]
    return name, transposed


# safetensors: an 8-byte little-endian header length, a JSON header, then the raw arrays.

_SAFETENSORS_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


def read_safetensors(path):
    """{name: numpy array} from a .safetensors file; bfloat16 arrays come back as float32."""
    raw_file = file_io.read_bytes(path)
    malformed = f"{path}: not a safetensors file"
    if len(raw_file) < 8:
        raise errors.InputError(f"{malformed} (only {len(raw_file)} bytes)")
    (header_size,) = struct.unpack("<Q", raw_file[:8])
    if header_size > len(raw_file) - 8:
        raise errors.InputError(
            f"{malformed} (its header of {header_size} bytes runs past the end: truncated?)"
        )
    try:
        header = json.loads(raw_file[8 : 8 + header_size])
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise errors.InputError(f"{malformed} (its header is not JSON: {error})") from None
    if not isinstance(header, dict):
        raise errors.InputError(f"{malformed} (its header is not a JSON object)")
    data = memoryview(raw_file)[8 + header_size :]
    arrays = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            start, end = entry["data_offsets"]
            dtype, shape = entry["dtype"], [int(size) for size in entry["shape"]]
        except (TypeError, KeyError, ValueError):
            raise errors.InputError(
                f"{malformed} (tensor {name} lacks dtype, shape or data_offsets)"
            ) from None
        if not 0 <= start <= end <= len(data):
            raise errors.InputError(
                f"{malformed} (tensor {name} lies past the end of the file: truncated?)"
            )
        raw = data[start:end]
        if dtype == "BF16":
            # bfloat16 is the top half of a float32.
            array = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dtype in _SAFETENSORS_DTYPES:
            array = np.frombuffer(raw, dtype=np.dtype(_SAFETENSORS_DTYPES[dtype]).newbyteorder("<"))
        else:
            raise errors.InputError(f"{path}: tensor {name} has unsupported dtype {dtype}")
        if array.size != int(np.prod(shape)):
            raise errors.InputError(
                f"{malformed} (tensor {name} has {array.size} values for shape {shape})"
            )
        arrays[name] = array.reshape(shape)
    return arrays


def write_safetensors(path, arrays):
    """Writes {name: numpy array} (float32 or int64) as .safetensors, through a temporary name."""
    names = sorted(arrays)
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name in names:
        array = np.ascontiguousarray(arrays[name])
        dtype = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[array.dtype]
        header[name] = {
            "dtype": dtype,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)  # the data starts 8-byte aligned
    with file_io.atomic_output(path) as temporary, file_io.open_file(temporary, "wb") as writer:
        writer.write(struct.pack("<Q", len(header_bytes)))
        writer.write(header_bytes)
        for name in names:
            writer.write(
                np.ascontiguousarray(arrays[name])
                .astype(arrays[name].dtype.newbyteorder("<"))
                .tobytes()
            )


def read_hf_weights(model_dir):
    """{HF name: numpy array} from model.safetensors, or pytorch_model.bin when torch is installed."""
    safetensors_path = os.path.join(model_dir, "model.safetensors")
    if file_io.exists(safetensors_path):
        return read_safetensors(safetensors_path)
    bin_path = os.path.join(model_dir, "pytorch_model.bin")
    if not file_io.exists(bin_path):
        raise errors.InputError(
            f"--hf_model_dir: {model_dir} has neither model.safetensors nor pytorch_model.bin"
        )
    try:
        import torch
    except ImportError:
        raise errors.InputError(
            f"{bin_path}: reading pytorch_model.bin needs torch installed "
            "(or convert the folder to model.safetensors)"
        ) from None
    state = torch.load(
        io.BytesIO(file_io.read_bytes(bin_path)), map_location="cpu", weights_only=True
    )
    return {
        name: tensor.float().numpy() if tensor.is_floating_point() else tensor.numpy()
        for name, tensor in state.items()
    }


def bert_config_from_hf(hf_config, config_path):
    """A BertConfig from a Hugging Face config.json dict; InputError for what the reference cannot run."""
    if hf_config.get("model_type", "bert") != "bert":
        raise errors.InputError(
            f"{config_path}: model_type {hf_config['model_type']!r} is not bert"
        )
    if hf_config.get("position_embedding_type", "absolute") != "absolute":
        raise errors.InputError(
            f"{config_path}: position_embedding_type {hf_config['position_embedding_type']!r} "
            "is not the reference's absolute positions"
        )
    if hf_config.get("layer_norm_eps", modeling.LAYER_NORM_EPSILON) != modeling.LAYER_NORM_EPSILON:
        raise errors.InputError(
            f"{config_path}: layer_norm_eps {hf_config['layer_norm_eps']} differs from the "
            f"reference's {modeling.LAYER_NORM_EPSILON}"
        )
    try:
        config = modeling.BertConfig.from_dict(
            {key: hf_config[key] for key in BERT_CONFIG_KEYS if key in hf_config}
        )
        config.validate()
        return config
    except errors.InputError as error:
        raise errors.InputError(f"{config_path}: {error}") from None


def hf_to_reference(model_dir, output_dir):
    """Converts a Hugging Face BERT folder; returns the written checkpoint prefix."""
    config_path = os.path.join(model_dir, "config.json")
    raw_config = file_io.read_bytes(config_path, "--hf_model_dir: ")
    try:
        hf_config = json.loads(raw_config)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise errors.InputError(f"--hf_model_dir: {config_path} cannot be read ({error})") from None
    config = bert_config_from_hf(hf_config, config_path)
    tensors = {}
    for hf_name, array in read_hf_weights(model_dir).items():
        if _SKIPPED_HF_NAMES.match(hf_name):
            continue
        name, transposed = hf_to_reference_name(hf_name)
        tensors[name] = np.asarray(array.T if transposed else array, dtype=np.float32)
    if "bert/embeddings/word_embeddings" not in tensors:
        raise errors.InputError(
            f"--hf_model_dir: {model_dir} holds no BERT embeddings: is it a BERT model?"
        )

    file_io.makedirs(output_dir, "--output_dir: ")
    prefix = os.path.join(output_dir, "bert_model.ckpt")
    modeling.save_checkpoint(prefix, tensors)
    file_io.write_text_atomically(
        os.path.join(output_dir, "checkpoint"), 'model_checkpoint_path: "bert_model.ckpt"\n'
    )
    file_io.write_text_atomically(
        os.path.join(output_dir, "bert_config.json"), config.to_json_string()
    )
    vocab_path = os.path.join(model_dir, "vocab.txt")
    if file_io.exists(vocab_path):
        file_io.copy_file(vocab_path, os.path.join(output_dir, "vocab.txt"))
    else:
        logging.warning(
            "%s has no vocab.txt: supply one with --vocab_file when using the checkpoint", model_dir
        )
    return prefix


def check_config_matches(config, bert_config_file, arrays, checkpoint):
    """InputError when the encoder arrays {name: array} of a checkpoint are not what `config` builds."""
    expected = {
        name: variable.shape.as_list()
        for name, variable in modeling.variables_by_name(modeling.BertModel(config)).items()
    }
    mismatch = f"--bert_config_file: {bert_config_file} does not match checkpoint {checkpoint}"
    for name, shape in expected.items():
        if name not in arrays:
            raise errors.InputError(
                f"{mismatch}: the config's model has {name}, the checkpoint does not"
            )
        if list(arrays[name].shape) != shape:
            raise errors.InputError(
                f"{mismatch}: {name} has shape {list(arrays[name].shape)} in the checkpoint, "
                f"{shape} by the config"
            )
    extra = sorted(name for name in arrays if name.startswith("bert/") and name not in expected)
    if extra:
        raise errors.InputError(
            f"{mismatch}: the checkpoint has {len(extra)} encoder arrays the config's model "
            f"lacks, first {extra[0]}"
        )


def reference_to_hf(checkpoint, bert_config_file, vocab_file, output_dir, do_lower_case=True):
    """Converts a reference-format checkpoint to a Hugging Face folder (config.json, model.safetensors,
    tokenizer_config.json, and vocab.txt when given)."""
    config = modeling.BertConfig.from_json_file(bert_config_file)
    arrays = {
        name: array
        for name, array in modeling.checkpoint_arrays(checkpoint).items()
        if not modeling.is_training_state(name)
    }
    check_config_matches(config, bert_config_file, arrays, checkpoint)
    with_heads = any(not name.startswith("bert/") for name in arrays)
    hf_arrays = {}
    for name, array in arrays.items():
        hf_name, transposed = reference_to_hf_name(name, with_bert_prefix=with_heads)
        hf_arrays[hf_name] = np.ascontiguousarray(array.T if transposed else array)
    if "cls/predictions/output_bias" in arrays:
        architecture = "BertForPreTraining"
    elif "output_weights" in arrays:
        architecture = "BertForSequenceClassification"
    elif "cls/squad/output_weights" in arrays:
        architecture = "BertForQuestionAnswering"
    else:
        architecture = "BertModel"
    hf_config = {key: getattr(config, key) for key in BERT_CONFIG_KEYS}
    hf_config["hidden_act"] = _HF_HIDDEN_ACT.get(config.hidden_act, config.hidden_act)
    hf_config.update(
        model_type="bert",
        architectures=[architecture],
        layer_norm_eps=modeling.LAYER_NORM_EPSILON,
        pad_token_id=0,
        position_embedding_type="absolute",
        tie_word_embeddings=True,
    )
    if "output_weights" in arrays:
        hf_config["num_labels"] = int(arrays["output_weights"].shape[0])

    file_io.makedirs(output_dir, "--output_dir: ")
    write_safetensors(os.path.join(output_dir, "model.safetensors"), hf_arrays)
    file_io.write_text_atomically(
        os.path.join(output_dir, "config.json"),
        json.dumps(hf_config, indent=2, sort_keys=True) + "\n",
    )
    # Without it AutoTokenizer lower-cases every model, cased ones included.
    tokenizer_config = {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": do_lower_case,
        "model_max_length": config.max_position_embeddings,
    }
    file_io.write_text_atomically(
        os.path.join(output_dir, "tokenizer_config.json"),
        json.dumps(tokenizer_config, indent=2, sort_keys=True) + "\n",
    )
    if vocab_file:
        file_io.copy_file(vocab_file, os.path.join(output_dir, "vocab.txt"))


def main(argv):
    del argv
    if not FLAGS.output_dir:
        raise errors.InputError("--output_dir is required")
    if bool(FLAGS.hf_model_dir) == bool(FLAGS.init_checkpoint):
        raise errors.InputError(
            "give exactly one of --hf_model_dir (to reference) or --init_checkpoint (to HF)"
        )
    if FLAGS.hf_model_dir:
        prefix = hf_to_reference(FLAGS.hf_model_dir, FLAGS.output_dir)
        logging.info("Wrote %s, bert_config.json and vocab.txt", prefix)
        return
    if not FLAGS.bert_config_file:
        raise errors.InputError("--bert_config_file is required with --init_checkpoint")
    do_lower_case = FLAGS.do_lower_case
    if do_lower_case is None:
        do_lower_case = tokenization.released_checkpoint_case(FLAGS.init_checkpoint)
        if do_lower_case is None:
            logging.warning(
                "tokenizer_config.json: do_lower_case=True (the reference's default); pass "
                "--do_lower_case=False for a cased vocabulary"
            )
            do_lower_case = True
    tokenization.validate_case_matches_checkpoint(do_lower_case, FLAGS.init_checkpoint)
    reference_to_hf(
        FLAGS.init_checkpoint,
        FLAGS.bert_config_file,
        FLAGS.vocab_file,
        FLAGS.output_dir,
        do_lower_case,
    )
    logging.info("Wrote model.safetensors and config.json to %s", FLAGS.output_dir)


if __name__ == "__main__":
    errors.run_script(main)
