"""convert_checkpoint.py: names both ways, lossless round trips, transformers loads what we write."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import modeling

from conftest import REPO_ROOT
from test_modeling import (
    TINY_CONFIG,
    expected_reference_names,
    make_inputs,
    max_abs_diff,
    randomize,
    tiny_config,
)


import convert_checkpoint


def run_convert(*args):
    return subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "convert_checkpoint.py"), *args],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("heads", [(), ("pretraining",), ("classifier",), ("squad",)])
def test_name_maps_are_inverse_on_every_reference_name(heads):
    for name in expected_reference_names(3, heads):
        hf_name, transposed = convert_checkpoint.reference_to_hf_name(
            name, with_bert_prefix=bool(heads)
        )
        assert convert_checkpoint.hf_to_reference_name(hf_name) == (name, transposed)
    assert convert_checkpoint.reference_to_hf_name(
        "bert/encoder/layer_2/attention/self/query/kernel", False
    ) == ("encoder.layer.2.attention.self.query.weight", True)
    assert convert_checkpoint.hf_to_reference_name("bert.embeddings.LayerNorm.gamma") == (
        "bert/embeddings/LayerNorm/gamma",
        False,
    )
    assert convert_checkpoint.hf_to_reference_name("classifier.weight") == ("output_weights", False)


def test_safetensors_round_trip_reads_bfloat16(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([7, -1], np.int64)}
    path = str(tmp_path / "x.safetensors")
    convert_checkpoint.write_safetensors(path, arrays)
    back = convert_checkpoint.read_safetensors(path)
    assert set(back) == {"a", "b"} and all(np.array_equal(back[k], arrays[k]) for k in arrays)

    from safetensors.torch import save_file
    import torch

    values = torch.tensor([1.5, -2.25, 3e-3])
    save_file({"w": values.to(torch.bfloat16)}, str(tmp_path / "bf16.safetensors"))
    read = convert_checkpoint.read_safetensors(str(tmp_path / "bf16.safetensors"))["w"]
    np.testing.assert_array_equal(read, values.to(torch.bfloat16).float().numpy())


@pytest.mark.slow
def test_reference_checkpoint_to_transformers_loads_and_gives_the_same_logits(tmp_path):
    """model.safetensors written without torch; transformers' BertForPreTraining loads every weight."""
    import torch
    from transformers import BertForPreTraining

    config = tiny_config()
    ours = modeling.BertPretrainingModel(config)
    randomize(ours)
    checkpoint_dir = tmp_path / "reference"
    checkpoint_dir.mkdir()
    modeling.save_checkpoint(
        str(checkpoint_dir / "bert_model.ckpt"), modeling.variables_by_name(ours)
    )
    (checkpoint_dir / "bert_config.json").write_text(config.to_json_string())
    (checkpoint_dir / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nHello\n")
    hf_dir = tmp_path / "hf"
    result = run_convert(
        f"--init_checkpoint={checkpoint_dir}/bert_model.ckpt",
        f"--bert_config_file={checkpoint_dir}/bert_config.json",
        f"--vocab_file={checkpoint_dir}/vocab.txt",
        f"--output_dir={hf_dir}",
    )
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(hf_dir)) == [
        "config.json",
        "model.safetensors",
        "tokenizer_config.json",
        "vocab.txt",
    ]
    assert json.loads((hf_dir / "config.json").read_text())["architectures"] == [
        "BertForPreTraining"
    ]

    hf_model, loading = BertForPreTraining.from_pretrained(hf_dir, output_loading_info=True)
    assert not loading["missing_keys"]
    assert not loading["unexpected_keys"] and not loading["mismatched_keys"]
    input_ids, input_mask, token_type_ids = make_inputs()
    with torch.no_grad():
        theirs = hf_model.eval()(
            input_ids=torch.tensor(input_ids, dtype=torch.long),
            attention_mask=torch.tensor(input_mask, dtype=torch.long),
            token_type_ids=torch.tensor(token_type_ids, dtype=torch.long),
        )
    positions = np.tile(np.arange(input_ids.shape[1], dtype=np.int32), (input_ids.shape[0], 1))
    mlm_logits, nsp_logits = ours(input_ids, input_mask, token_type_ids, positions)
    assert max_abs_diff(mlm_logits, theirs.prediction_logits) < 1e-5
    assert max_abs_diff(nsp_logits, theirs.seq_relationship_logits) < 1e-5

    # tokenizer_config.json carries the casing (#11 of issue 15): AutoTokenizer lower-cases only an uncased model.
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(hf_dir).tokenize("Hello") == ["hello"]
    result = run_convert(
        f"--init_checkpoint={checkpoint_dir}/bert_model.ckpt",
        "--do_lower_case=False",
        f"--bert_config_file={checkpoint_dir}/bert_config.json",
        f"--vocab_file={checkpoint_dir}/vocab.txt",
        f"--output_dir={tmp_path}/hf_cased",
    )
    assert result.returncode == 0, result.stderr
    assert AutoTokenizer.from_pretrained(tmp_path / "hf_cased").tokenize("Hello") == ["Hello"]


@pytest.mark.slow
@pytest.mark.parametrize("safe_serialization", [True, False])
def test_transformers_to_reference_and_back_is_lossless(tmp_path, safe_serialization):
    import torch
    from transformers import BertConfig as HFBertConfig, BertForPreTraining

    torch.manual_seed(3)
    hf_model = BertForPreTraining(HFBertConfig(**TINY_CONFIG))
    hf_model.save_pretrained(tmp_path / "hf", safe_serialization=safe_serialization)
    assert (
        run_convert(
            f"--hf_model_dir={tmp_path}/hf", f"--output_dir={tmp_path}/reference"
        ).returncode
        == 0
    )
    assert (
        run_convert(
            f"--init_checkpoint={tmp_path}/reference",
            f"--bert_config_file={tmp_path}/reference/bert_config.json",
            f"--output_dir={tmp_path}/back",
        ).returncode
        == 0
    )
    back = convert_checkpoint.read_safetensors(str(tmp_path / "back" / "model.safetensors"))
    original = {
        name: tensor.numpy()
        for name, tensor in hf_model.state_dict().items()
        if not convert_checkpoint._SKIPPED_HF_NAMES.match(name)
    }
    assert set(back) == set(original)
    for name, array in original.items():
        np.testing.assert_array_equal(back[name], array, err_msg=name)
