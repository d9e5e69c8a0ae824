"""run_pretraining.py: learning on sample data, eval_results.txt, dynamic masking, bad input."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_pretraining_command, summary_values

import run_pretraining

EVAL_KEYS = [
    "global_step",
    "loss",
    "masked_lm_accuracy",
    "masked_lm_loss",
    "next_sentence_accuracy",
    "next_sentence_loss",
]


@pytest.mark.slow
def test_masked_lm_accuracy_climbs_and_eval_results_has_the_reference_format(
    pretraining_data, tmp_path
):
    """1,000 steps of a 2-layer, 32-wide BERT on the sample text's records: masked-LM accuracy climbs
    from about 0.07 (frequent tokens) over the first 100 steps to above 0.35, and the loss falls by
    more than 1.5 (seen: 0.49 and 4.3 → 1.9)."""
    result = run_pretraining_command(
        pretraining_data,
        tmp_path,
        "--num_train_steps=1000",
        "--num_warmup_steps=50",
        "--learning_rate=2e-3",
        "--train_batch_size=32",
        "--iterations_per_loop=100",
        "--save_checkpoints_steps=500",
        "--do_eval=True",
        "--max_eval_steps=20",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy = summary_values(tmp_path, "masked_lm_accuracy")
    loss = summary_values(tmp_path, "loss")
    print(f"masked_lm_accuracy by step: {accuracy}\nloss by step: {loss}")
    # Step 1 is a call of its own (it compiles), the next one is sized by its pace (a few steps),
    # then calls end on multiples of --iterations_per_loop.
    steps = [step for step, _ in accuracy]
    assert steps[0] == 1 and len(steps) <= 13
    assert [step for step in steps if step >= 100] == list(range(100, 1001, 100))
    at_100 = {name: dict(values)[100] for name, values in (("accuracy", accuracy), ("loss", loss))}
    assert accuracy[-1][1] > 0.35 and accuracy[-1][1] > 3 * at_100["accuracy"]
    assert loss[-1][1] < at_100["loss"] - 1.5
    assert dict(summary_values(tmp_path, "learning_rate"))[100] > 0 and summary_values(
        tmp_path, "examples_per_second"
    )

    lines = (tmp_path / "eval_results.txt").read_text().splitlines()
    assert [line.split(" = ")[0] for line in lines] == EVAL_KEYS
    results = {key: float(value) for key, value in (line.split(" = ") for line in lines)}
    assert results["global_step"] == 1000 and results["masked_lm_accuracy"] > 0.35
    assert abs(results["loss"] - results["masked_lm_loss"] - results["next_sentence_loss"]) < 0.1
    checkpoint_state = (tmp_path / "checkpoint").read_text()
    assert 'model_checkpoint_path: "model.ckpt-1000"' in checkpoint_state
    names = dict(tf.train.list_variables(str(tmp_path / "model.ckpt-1000")))
    assert names["global_step"] == [] and "bert/embeddings/word_embeddings/adam_m" in names
    assert (
        "cls/predictions/output_bias" in names
        and "cls/seq_relationship/output_weights/adam_v" in names
    )


def test_dynamic_masking_draws_the_reference_distribution():
    rng = np.random.RandomState(0)
    batch, seq = 400, 32
    lengths = rng.randint(10, seq + 1, size=batch)
    input_ids = rng.randint(10, 300, size=(batch, seq)).astype(np.int32)
    input_mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    input_ids = np.where(input_mask == 1, input_ids, 0)
    input_ids[:, 0] = 2
    input_ids[np.arange(batch), lengths - 1] = 3
    features = {"input_ids": tf.constant(input_ids), "input_mask": tf.constant(input_mask)}
    masked = run_pretraining.dynamic_masking(
        features,
        special_ids=(2, 3),
        mask_id=4,
        vocab_size=300,
        max_predictions_per_seq=5,
        masked_lm_prob=0.15,
    )
    positions = masked["masked_lm_positions"].numpy()
    weights = masked["masked_lm_weights"].numpy()
    labels = masked["masked_lm_ids"].numpy()
    new_ids = masked["input_ids"].numpy()
    expected_counts = np.minimum(5, np.maximum(1, np.round(lengths * 0.15))).astype(int)
    np.testing.assert_array_equal(weights.sum(1), expected_counts)
    as_mask = kept = total = 0
    for row in range(batch):
        chosen = positions[row, : expected_counts[row]]
        assert list(chosen) == sorted(set(chosen)) and all(0 < p < lengths[row] - 1 for p in chosen)
        np.testing.assert_array_equal(labels[row, : expected_counts[row]], input_ids[row, chosen])
        unchosen = [p for p in range(seq) if p not in set(chosen)]
        np.testing.assert_array_equal(new_ids[row, unchosen], input_ids[row, unchosen])
        as_mask += int(np.sum(new_ids[row, chosen] == 4))
        kept += int(np.sum(new_ids[row, chosen] == input_ids[row, chosen]))
        total += len(chosen)
    assert abs(as_mask / total - 0.8) < 0.05 and abs(kept / total - 0.1) < 0.04


@pytest.mark.slow
def test_dynamic_masking_trains(pretraining_data, tmp_path):
    result = run_pretraining_command(
        pretraining_data,
        tmp_path,
        "--dynamic_masking=True",
        f"--vocab_file={pretraining_data}/vocab.txt",
        "--do_eval=True",
        "--max_eval_steps=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "masked_lm_accuracy" in (tmp_path / "eval_results.txt").read_text()
