"""training.py, the engine, through run_pretraining.py: resume after kill -9, strategies, XLA and
precision, and evaluation and prediction that drop no example."""

import collections
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT, run_pretraining_command, summary_values

CURVE = (
    "--num_train_steps=8",
    "--iterations_per_loop=1",
    "--save_checkpoints_steps=8",
    "--train_batch_size=8",
)


def loss_curve(output_dir):
    return np.array([value for _, value in summary_values(output_dir, "loss")])


@pytest.mark.slow
def test_kill_9_then_the_same_command_finishes_from_the_last_checkpoint(pretraining_data, tmp_path):
    """Also: a second run started meanwhile is refused (the lock), and the killed run's stale lock
    does not stop the rerun."""
    flags = [
        f"--input_file={pretraining_data}/sample.tfrecord",
        f"--output_dir={tmp_path}",
        f"--bert_config_file={pretraining_data}/bert_config.json",
        "--max_seq_length=32",
        "--max_predictions_per_seq=5",
        "--train_batch_size=8",
        "--num_train_steps=3000",
        "--num_warmup_steps=10",
        "--iterations_per_loop=10",
        "--save_checkpoints_steps=20",
        "--do_train=True",
    ]
    command = [sys.executable, os.path.join(REPO_ROOT, "run_pretraining.py"), *flags]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (tmp_path / "model.ckpt-40.index").exists():
        assert process.poll() is None and time.time() < deadline, "no second checkpoint appeared"
        time.sleep(0.05)
    # A second run on the same output_dir while the first runs is refused, naming the first.
    second = subprocess.run(command, capture_output=True, text=True)
    assert second.returncode == 2 and "Traceback" not in second.stderr, second.stderr[-3000:]
    assert (
        second.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: --output_dir: {tmp_path} is in use by process {process.pid} on ")
    )
    process.send_signal(signal.SIGKILL)
    process.wait()
    # Whatever was being written at the kill, `checkpoint` names only complete checkpoints.
    state = tf.train.get_checkpoint_state(str(tmp_path))
    for path in state.all_model_checkpoint_paths:
        assert os.path.exists(os.path.join(tmp_path, os.path.basename(path)) + ".index")
        tf.train.list_variables(os.path.join(tmp_path, os.path.basename(path)))
    killed_at = int(state.model_checkpoint_path.split("-")[-1])
    assert 40 <= killed_at < 3000

    result = subprocess.run(
        command[:8] + ["--num_train_steps=3000"] + command[9:], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Resumed from {tmp_path}/model.ckpt-{killed_at} at step {killed_at}" in result.stderr
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("model.ckpt-3000")
    reader = tf.train.load_checkpoint(str(tmp_path / "model.ckpt-3000"))
    assert reader.get_tensor("global_step") == 3000
    assert not [name for name in os.listdir(tmp_path) if ".tmp-" in name]
    # The resumed run re-logs no step before the checkpoint it resumed from: its first call is
    # one step (it compiles), the next is sized by its pace, then calls end on multiples of
    # --iterations_per_loop.
    steps = [step for step, _ in summary_values(tmp_path, "loss") if step > killed_at]
    first_multiple = (killed_at // 10 + 1) * 10
    assert steps[0] == killed_at + 1 and steps[-1] == 3000
    assert [step for step in steps if step >= first_multiple] == list(
        range(first_multiple, 3001, 10)
    )


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def one_device_curve(pretraining_data, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("one_device")
    result = run_pretraining_command(
        pretraining_data, output_dir, *CURVE, "--use_xla=True", config="bert_config_no_dropout.json"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return loss_curve(output_dir)


@pytest.mark.slow
def test_mirrored_strategy_over_two_cpus_follows_the_one_device_curve(
    pretraining_data, tmp_path, one_device_curve
):
    """Same seed, same global batch of 8 (two replicas of 4), no dropout: the loss curves agree
    within 1e-3 relative (seen: 4e-7). Each replica normalises its masked-LM loss by its own count of
    masked tokens, as TPU cores did in the reference, so batches whose halves hold different
    counts may differ by more than rounding."""
    result = run_pretraining_command(
        pretraining_data, tmp_path, *CURVE, "--cpu_replicas=2", config="bert_config_no_dropout.json"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Strategy MirroredStrategy with 2 replicas" in result.stderr
    mirrored = loss_curve(tmp_path)
    print(f"one device {one_device_curve}\nmirrored   {mirrored}")
    assert len(mirrored) == len(one_device_curve) == 8
    np.testing.assert_allclose(mirrored, one_device_curve, rtol=1e-3)
    assert one_device_curve[-1] < one_device_curve[0]


@pytest.mark.slow
def test_multi_worker_mirrored_strategy_with_two_processes_follows_the_one_device_curve(
    pretraining_data, tmp_path, one_device_curve
):
    """Two worker processes on localhost joined by TF_CONFIG, 4 sequences each: within 1e-3 relative
    of the one-device curve (seen: 4e-7; per-worker masked-LM normalisation, as above)."""
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    processes = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
        }
        flags = [
            f"--input_file={pretraining_data}/sample.tfrecord",
            f"--output_dir={tmp_path}",
            f"--bert_config_file={pretraining_data}/bert_config_no_dropout.json",
            "--max_seq_length=32",
            "--max_predictions_per_seq=5",
            "--num_warmup_steps=2",
            "--learning_rate=1e-3",
            "--do_train=True",
            *CURVE,
        ]
        processes.append(
            subprocess.Popen(
                [sys.executable, os.path.join(REPO_ROOT, "run_pretraining.py"), *flags],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [process.communicate(timeout=400) for process in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    assert "Strategy MultiWorkerMirroredStrategy with 2 replicas" in outputs[0][1]
    multi_worker = loss_curve(tmp_path)
    print(f"one device   {one_device_curve}\nmulti-worker {multi_worker}")
    np.testing.assert_allclose(multi_worker, one_device_curve, rtol=1e-3)
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("model.ckpt-8")


@pytest.mark.slow
@pytest.mark.parametrize(
    "variant,flags,tolerance",
    [
        # Where the kernels run, batches are grouped by length by default: other batches.
        ("no_xla", ("--use_xla=False", "--group_by_length=False"), 1e-4),
        ("bf16", ("--precision=bf16",), 5e-3),
        ("fp16", ("--precision=fp16",), 1e-3),
    ],
)
def test_xla_and_precision_follow_the_fp32_xla_curve(
    pretraining_data, tmp_path, one_device_curve, variant, flags, tolerance
):
    """Same seed and data. Without XLA only float32 rounding differs (1e-4 relative; seen 1e-7).
    bf16 keeps 8 mantissa bits, fp16 11 (its loss scaled): 5e-3 and 1e-3 relative (seen 3e-5 and
    1e-5 on this tiny model, whose activations stay small)."""
    result = run_pretraining_command(
        pretraining_data, tmp_path, *CURVE, *flags, config="bert_config_no_dropout.json"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    curve = loss_curve(tmp_path)
    print(f"{variant}: {curve}\nfp32 xla: {one_device_curve}")
    np.testing.assert_allclose(curve, one_device_curve, rtol=tolerance)


@pytest.mark.slow
def test_gradient_accumulation_and_lamb_run_and_learn(pretraining_data, tmp_path, one_device_curve):
    result = run_pretraining_command(
        pretraining_data,
        tmp_path,
        *CURVE,
        "--gradient_accumulation_steps=2",
        config="bert_config_no_dropout.json",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Two micro-batches of 4 normalise their masked-LM losses separately, as replicas do (see above).
    np.testing.assert_allclose(loss_curve(tmp_path), one_device_curve, rtol=1e-3)
    result = run_pretraining_command(
        pretraining_data,
        tmp_path / "lamb",
        "--optimizer=lamb",
        "--num_train_steps=40",
        "--iterations_per_loop=20",
        "--learning_rate=1e-2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lamb = loss_curve(tmp_path / "lamb")
    assert lamb[-1] < lamb[0]


def test_evaluate_and_predict_drop_no_example(tmp_path):
    """37 records, batches of 8 over 2 replicas: every record is evaluated and predicted exactly
    once, in order, and the 3 padding examples of the last batch weigh nothing."""
    import file_io
    import modeling
    import training

    path = str(tmp_path / "records.tfrecord")
    with file_io.TFRecordWriter(path) as writer:
        for index in range(37):
            writer.write(
                tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            "index": tf.train.Feature(int64_list=tf.train.Int64List(value=[index])),
                            "value": tf.train.Feature(
                                float_list=tf.train.FloatList(value=[float(index)])
                            ),
                        }
                    )
                ).SerializeToString()
            )
    config = modeling.BertConfig(
        vocab_size=10,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=8,
    )
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    trainer = training.Trainer(
        functools.partial(modeling.BertModel, config),
        strategy,
        str(tmp_path),
        eval_batch_size=8,
        predict_batch_size=8,
    )
    modeling.save_checkpoint(
        str(tmp_path / "model.ckpt-0"), modeling.variables_by_name(trainer.model)
    )
    parse = training.parse_records(
        {
            "index": tf.io.FixedLenFeature([1], tf.int64),
            "value": tf.io.FixedLenFeature([1], tf.float32),
        }
    )

    def metrics(model, features):
        real = tf.cast(features["is_real_example"], tf.float32)
        return {
            "mean_value": (tf.reduce_sum(features["value"][:, 0] * real), tf.reduce_sum(real)),
            "count": (tf.reduce_sum(real), tf.constant(1.0)),
        }

    results = trainer.evaluate(
        [path], parse, metrics, ("mean_value", "count"), checkpoint=str(tmp_path / "model.ckpt-0")
    )
    assert results["mean_value"] == pytest.approx(18.0)  # the mean of 0..36
    assert results["count"] == pytest.approx(37 / 5)  # 37 real examples over 5 batches
    predictions = list(
        trainer.predict(
            [path],
            parse,
            lambda model, features: {"index": features["index"][:, 0]},
            checkpoint=str(tmp_path / "model.ckpt-0"),
        )
    )
    assert [int(p["index"]) for p in predictions] == list(range(37))


def write_token_records(path, lengths, max_length=128):
    """Records of input_ids / input_mask / segment_ids padded to max_length, one per length."""
    import file_io
    import training

    rng = np.random.RandomState(0)
    with file_io.TFRecordWriter(path) as writer:
        for length in lengths:
            ids = list(rng.randint(5, 99, length)) + [0] * (max_length - length)
            mask = [1] * length + [0] * (max_length - length)
            writer.write(
                training.serialize_example(
                    {"input_ids": ids, "input_mask": mask, "segment_ids": [0] * max_length}
                )
            )


def token_trainer(tmp_path, **options):
    import modeling
    import training

    config = modeling.BertConfig(
        vocab_size=100,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return training.Trainer(
        functools.partial(modeling.BertModel, config), output_dir=str(tmp_path), **options
    )


TOKEN_FEATURES = {
    name: tf.io.FixedLenFeature([128], tf.int64)
    for name in ("input_ids", "input_mask", "segment_ids")
}


def test_length_buckets_grow_by_half_or_a_third_and_end_at_max_length():
    import training

    assert training.length_buckets(128) == [16, 24, 32, 48, 64, 96, 128]
    assert training.length_buckets(384) == [16, 24, 32, 48, 64, 96, 128, 192, 256, 384]
    assert training.length_buckets(100) == [16, 24, 32, 48, 64, 96, 100]
    assert training.length_buckets(8) == [8]


def test_dynamic_padding_cuts_each_batch_and_changes_no_output(tmp_path, monkeypatch):
    """33 records of lengths 3..100 in batches of 8, sorted by length in windows of 2 batches:
    with dynamic padding each prediction batch's length is the longest of its window's share
    (each training batch's, the bucket above its longest), predictions come back in the records'
    order, and every example's outputs at its own positions equal those of batches padded to 128
    (1e-5)."""
    import training

    monkeypatch.setattr(training, "LENGTH_SORT_WINDOW_BATCHES", 2)

    lengths = [3 + (i * 37) % 98 for i in range(33)]
    path = str(tmp_path / "records.tfrecord")
    write_token_records(path, lengths)
    outputs, traces = {}, []

    def predict_outputs(model, features):
        traces.append(features["input_ids"].shape)
        return {
            "sequence_output": model(
                features["input_ids"], features["input_mask"], features["segment_ids"]
            ).sequence_output,
            "batch_length": tf.fill(
                tf.shape(features["input_ids"])[:1], tf.shape(features["input_ids"])[1]
            ),
        }

    for dynamic in (True, False):
        trainer = token_trainer(
            tmp_path / str(dynamic), predict_batch_size=8, dynamic_padding=dynamic
        )
        if dynamic:
            import modeling

            checkpoint = str(tmp_path / "model.ckpt-0")
            modeling.save_checkpoint(checkpoint, modeling.variables_by_name(trainer.model))
        outputs[dynamic] = list(
            trainer.predict(
                [path],
                training.parse_records(TOKEN_FEATURES),
                predict_outputs,
                checkpoint=checkpoint,
            )
        )
    # One trace each, the cut one for any length: five batches of other lengths, no retrace.
    assert [shape.as_list() for shape in traces] == [[8, None], [8, 128]]
    assert len(outputs[True]) == len(outputs[False]) == 33
    # Windows of 16 records, each sorted shortest first (ties in order), cut into batches of 8.
    batch_lengths = []
    for start in range(0, 33, 16):
        window = sorted(lengths[start : start + 16])
        order = sorted(range(len(window)), key=lambda i: lengths[start + i])
        rank = {index: position for position, index in enumerate(order)}
        batch_lengths += [
            window[min(rank[i] // 8 * 8 + 7, len(window) - 1)] for i in range(len(window))
        ]
    assert len(set(batch_lengths)) > 3
    for index, (cut, padded) in enumerate(zip(outputs[True], outputs[False])):
        assert cut["batch_length"] == batch_lengths[index] and padded["batch_length"] == 128
        length = lengths[index]
        np.testing.assert_allclose(
            cut["sequence_output"][:length], padded["sequence_output"][:length], atol=1e-5
        )
        # Prediction skipped the padding (modeling.skipping_padding): zeros past the length.
        assert not np.any(cut["sequence_output"][length:])

    training_batches = training.record_dataset_fn(
        [path],
        training.parse_records(TOKEN_FEATURES),
        8,
        is_training=True,
        dynamic_padding=True,
    )(tf.distribute.InputContext())
    for batch in training_batches.take(20):
        longest = int(tf.reduce_max(tf.reduce_sum(batch["input_mask"], axis=1)))
        bucket = min(b for b in training.length_buckets(128) if b >= longest)
        assert batch["input_ids"].shape == (8, bucket)


def test_training_batches_for_kernels_are_cut_to_their_longest_and_grouped_by_length(
    tmp_path, monkeypatch
):
    """Training batches that TensorFlow's kernels run (not compiled): each cut to its longest
    example, not to a bucket; grouped by length (windows of 2 batches of 8 sorted, then the
    batches shuffled), they are the records of the uniform draws of the same seed, with far
    less padding."""
    import training

    monkeypatch.setattr(training, "LENGTH_SORT_WINDOW_BATCHES", 2)
    lengths = [3 + (i * 37) % 98 for i in range(33)]
    path = str(tmp_path / "records.tfrecord")
    write_token_records(path, lengths)
    batches = {
        grouped: list(
            training.record_dataset_fn(
                [path],
                training.parse_records(TOKEN_FEATURES),
                8,
                is_training=True,
                dynamic_padding=True,
                compiled=False,
                group_by_length=grouped,
            )(tf.distribute.InputContext()).take(40)
        )
        for grouped in (False, True)
    }
    shares = {}
    for grouped, cut in batches.items():
        real = [tf.reduce_sum(batch["input_mask"], axis=1).numpy() for batch in cut]
        assert all(batch["input_ids"].shape == (8, max(r)) for batch, r in zip(cut, real))
        shares[grouped] = sum(r.sum() for r in real) / sum(
            b["input_mask"].numpy().size for b in cut
        )
    assert shares[True] > shares[False] + 0.15, shares

    def records(cut):  # Counter of (ids, length) over the batches
        return collections.Counter(
            (tuple(ids[:length]), int(length))
            for batch in cut
            for ids, length in zip(
                batch["input_ids"].numpy(), tf.reduce_sum(batch["input_mask"], axis=1).numpy()
            )
        )

    # The shuffle of 2 batches after sorting holds back at most one batch past its window.
    assert not records(batches[True][:38]) - records(batches[False][:40])


def test_xla_compiles_training_unless_batches_are_mostly_padding(tmp_path, caplog):
    """use_xla's default: the real tokens' share of training batches as dynamic padding cuts
    them (per-replica batch, bucketed lengths) decides; static shapes and TPU always compile."""
    import training

    parse = training.parse_records(TOKEN_FEATURES)
    paths = {name: str(tmp_path / f"{name}.tfrecord") for name in ("short", "mixed", "long")}
    write_token_records(paths["short"], [10] * 20)  # bucket 16
    write_token_records(paths["mixed"], [20] * 19 + [128])  # 1 of 5 batches padded to 128
    write_token_records(paths["long"], [30] * 20)  # bucket 32
    share = {name: training.real_token_share([path], parse, 4) for name, path in paths.items()}
    assert share["short"] == pytest.approx(10 / 16)
    assert share["mixed"] == pytest.approx((19 * 20 + 128) / (4 * 4 * 24 + 4 * 128))
    assert share["long"] == pytest.approx(30 / 32)
    no_mask = training.parse_records({"input_ids": TOKEN_FEATURES["input_ids"]})
    assert training.real_token_share([paths["short"]], no_mask, 4) == 1.0

    trainer = token_trainer(tmp_path / "run", train_batch_size=4)
    caplog.set_level("INFO", logger="absl")
    assert not trainer.choose_xla([paths["short"]], parse)
    assert "62% real tokens" in caplog.text and "--use_xla=True says otherwise" in caplog.text
    assert not trainer.choose_xla([paths["mixed"]], parse)
    assert trainer.choose_xla([paths["long"]], parse)
    static = token_trainer(tmp_path / "static", train_batch_size=4, dynamic_padding=False)
    assert static.choose_xla([paths["short"]], parse)


# Trains 8 steps on TensorFlow's kernels (--use_xla=False), batches of 4 of 6 lengths; prints
# each batch's length. Run in a process of its own: XLA reads XLA_FLAGS once per process.
KERNELS_TRAINING = """
import sys
import tensorflow as tf
import training
from test_training import TOKEN_FEATURES, token_trainer, write_token_records

records, output_dir = sys.argv[1:]
write_token_records(records, [4 * (1 + i % 6) for i in range(48)])
trainer = token_trainer(output_dir, train_batch_size=4, use_xla=False, iterations_per_loop=1)


def compute_loss(model, features):
    tf.print("batch length", tf.shape(features["input_ids"])[1], output_stream=sys.stdout)
    output = model(
        features["input_ids"], features["input_mask"], features["segment_ids"], training=True
    ).sequence_output
    return tf.reduce_mean(tf.square(output)), {}


trainer.train([records], training.parse_records(TOKEN_FEATURES), compute_loss, (), 8, 1)
"""


def test_kernels_training_compiles_its_update_once_whatever_the_batch_length(tmp_path):
    """On one device with --use_xla=False, XLA compiles the optimizer update alone, and once:
    the step's batches of other lengths reuse it (each new shape would compile anew)."""
    dump = tmp_path / "xla"
    tests = os.path.join(REPO_ROOT, "tests")
    result = subprocess.run(
        [sys.executable, "-c", KERNELS_TRAINING, str(tmp_path / "r.tfrecord"), str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([REPO_ROOT, tests]),
            "XLA_FLAGS": f"--xla_dump_to={dump}",
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lengths = [line.split()[-1] for line in result.stdout.splitlines() if "batch length" in line]
    assert len(lengths) == 8 and len(set(lengths)) >= 3, lengths
    compiled = [name for name in os.listdir(dump) if name.endswith(".before_optimizations.txt")]
    assert len(compiled) == 1 and "apply_gradients" in compiled[0], compiled


def test_cut_padding_keeps_one_position_of_a_batch_made_only_of_padding():
    """A replica's share of the last prediction batch can be all padding examples (input_mask 0):
    the cut keeps one position for the [CLS] gather, or the smallest bucket when training."""
    import training

    padding = {
        "input_ids": tf.zeros([2, 128], tf.int32),
        "input_mask": tf.zeros([2, 128], tf.int32),
        "label_ids": tf.zeros([2], tf.int32),
    }
    cut = training.cut_padding(padding, to_bucket=False)
    assert cut["input_ids"].shape == cut["input_mask"].shape == (2, 1)
    assert cut["label_ids"].shape == (2,)
    assert training.cut_padding(padding, to_bucket=True)["input_ids"].shape == (2, 16)


def test_evaluation_of_max_steps_batches_reads_the_first_records_before_sorting(tmp_path):
    """max_steps=2 batches of 8 evaluate the first 16 records, though a sorted window of the
    33 (lengths falling from 100) would put the 16 shortest first."""
    import modeling
    import training

    lengths = list(range(100, 67, -1))
    path = str(tmp_path / "records.tfrecord")
    write_token_records(path, lengths)
    trainer = token_trainer(tmp_path / "run", eval_batch_size=8)
    checkpoint = str(tmp_path / "model.ckpt-0")
    modeling.save_checkpoint(checkpoint, modeling.variables_by_name(trainer.model))

    def metrics(model, features):
        real = tf.cast(features["is_real_example"], tf.float32)
        length = tf.cast(tf.reduce_sum(features["input_mask"], axis=1), tf.float32)
        return {"mean_length": (tf.reduce_sum(length * real), tf.reduce_sum(real))}

    parse = training.parse_records(TOKEN_FEATURES)
    first = trainer.evaluate([path], parse, metrics, ("mean_length",), 2, checkpoint)
    assert first["mean_length"] == pytest.approx(np.mean(lengths[:16]))
    whole = trainer.evaluate([path], parse, metrics, ("mean_length",), None, checkpoint)
    assert whole["mean_length"] == pytest.approx(np.mean(lengths))


def test_prediction_windows_hold_at_most_sort_window_examples(monkeypatch):
    """Batches of 4 with SORT_WINDOW_EXAMPLES 8: windows of 2 batches, each sorted by length, every
    example with its input position; 12 examples and 16 batches of window would sort all 12."""
    import training

    monkeypatch.setattr(training, "SORT_WINDOW_EXAMPLES", 8)
    lengths = [5, 4, 3, 2, 1, 6, 8, 7, 6, 3, 2, 1]
    examples = tf.data.Dataset.from_tensor_slices(
        {"input_mask": tf.constant([[1] * n + [0] * (8 - n) for n in lengths])}
    )
    batches = list(training.batch_every_example(examples, 4, dynamic_padding=True))
    order = [int(i) for batch in batches for i in batch[training.INPUT_ORDER]]
    assert order == [4, 3, 2, 1, 0, 5, 7, 6, 11, 10, 9, 8]
    assert [batch["input_mask"].shape[1] for batch in batches] == [4, 8, 6]


def test_sorted_by_length_sorts_each_window_shortest_first_and_multiple_choice_by_its_longest():
    import training

    masks = [
        [[1] * n + [0] * (6 - n), [1] * m + [0] * (6 - m)]
        for n, m in [(2, 5), (6, 1), (3, 3), (4, 4), (1, 2)]
    ]
    examples = tf.data.Dataset.from_tensor_slices(
        {"input_mask": tf.constant(masks), "id": tf.range(5)}
    )
    ids = [int(e["id"]) for e in training.sorted_by_length(examples, window=3)]
    assert ids == [2, 0, 1, 4, 3]  # window [5, 6, 3] → 2, 0, 1; window [4, 2] → 4, 3
    no_mask = tf.data.Dataset.from_tensor_slices({"id": tf.range(4)})
    assert [int(e["id"]) for e in training.sorted_by_length(no_mask, window=2)] == [0, 1, 2, 3]


def test_concat_replicas_pads_the_shorter_lengths():
    import training

    joined = training.concat_replicas([tf.ones([2, 3, 4]), tf.ones([2, 5, 4]) * 2])
    assert joined.shape == (4, 5, 4)
    np.testing.assert_array_equal(joined[:2, 3:], 0)
    np.testing.assert_array_equal(joined[2:], 2)
    assert training.concat_replicas([tf.ones([2]), tf.zeros([2])]).shape == (4,)


def test_steps_per_call_keeps_progress_within_the_interval_off_tpu(tmp_path):
    import training

    trainer = token_trainer(tmp_path, iterations_per_loop=1000)
    assert trainer.steps_per_call(None) == 1  # the first call compiles: its pace is unknown
    assert trainer.steps_per_call(0.5) == int(training.PROGRESS_SECONDS / 0.5)
    assert trainer.steps_per_call(100.0) == 1
    assert trainer.steps_per_call(1e-6) == 1000
    trainer.for_tpu = True
    assert trainer.steps_per_call(None) == trainer.steps_per_call(100.0) == 1000


def test_training_and_prediction_log_progress_whatever_iterations_per_loop_is(
    tmp_path, monkeypatch, caplog
):
    """iterations_per_loop=1000 above a 6-step run: with a 0 s interval every call is logged with
    its rate and ETA; prediction logs examples done, the rate and an ETA."""
    import training

    monkeypatch.setattr(training, "PROGRESS_SECONDS", 0.0)
    path = str(tmp_path / "records.tfrecord")
    write_token_records(path, [5 + i for i in range(40)])
    trainer = token_trainer(tmp_path / "run", train_batch_size=4, predict_batch_size=4)

    def compute_loss(model, features):
        outputs = model(
            features["input_ids"], features["input_mask"], features["segment_ids"], training=True
        )
        return tf.reduce_mean(tf.square(outputs.pooled_output)), {}

    # On absl's own logger: TensorFlow's SavedModel writing sets it to WARNING in-process.
    caplog.set_level("INFO", logger="absl")
    trainer.train([path], training.parse_records(TOKEN_FEATURES), compute_loss, (), 6, 1)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert [line.split()[1] for line in lines] == [f"{k}/6" for k in range(1, 7)]
    assert all("examples_per_second" in line and " eta " in line for line in lines)
    caplog.clear()
    list(
        trainer.predict(
            [path],
            training.parse_records(TOKEN_FEATURES),
            lambda model, features: {"pooled": model(features["input_ids"]).pooled_output},
        )
    )
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("prediction: ")]
    assert progress[0].startswith("prediction: 8/40 examples,") and "eta" in progress[0]
    assert progress[-1].startswith("prediction: 40 examples in ")


# The TPU step, compiled here. What TPUStrategy runs on each core is the engine's train_step,
# eval_step and predict_step of a Trainer built for_tpu, fed batches of record_dataset_fn. Each is
# compiled below as XLA compiles it for a TPU (jit_compile, fully static shapes) and run once on
# the CPU. Not covered here: the TPU's own XLA backend (its op set is a superset of the CPU's for
# these models, but memory layout and bf16 matmul numerics are its own), TPUStrategy's
# replication and infeed, and host-to-TPU transfer: those need a TPU.


def write_zero_records(path, name_to_features, count):
    """`count` tf.Examples whose every feature is zeros of its FixedLenFeature shape."""
    import file_io

    def feature(spec):
        values = [0] * int(np.prod(spec.shape))
        if spec.dtype == tf.float32:
            return tf.train.Feature(float_list=tf.train.FloatList(value=values))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    example = tf.train.Example(
        features=tf.train.Features(
            feature={name: feature(spec) for name, spec in name_to_features.items()}
        )
    ).SerializeToString()
    with file_io.TFRecordWriter(path) as writer:
        for _ in range(count):
            writer.write(example)


def compile_as_on_tpu(step, files, parse_batch, batch_size, is_training):
    """Compiles `step` with XLA for the static batches record_dataset_fn gives, runs it once on
    one batch, and returns the optimised HLO; fails on an op XLA cannot compile (a host-side op
    such as tf.print or py_function) or a dynamic dimension."""
    import training

    dataset = training.record_dataset_fn(files, parse_batch, batch_size, is_training)(
        tf.distribute.InputContext()
    )
    for name, spec in dataset.element_spec.items():
        assert spec.shape.is_fully_defined(), f"{name} has a dynamic shape {spec.shape}"
    features = next(iter(dataset))
    compiled = tf.function(step, jit_compile=True)
    hlo = compiled.experimental_get_compiler_ir(features)(stage="optimized_hlo")
    assert "<=" not in hlo, "the compiled step has a bounded dynamic dimension"
    compiled(features)
    return hlo


@pytest.fixture
def tpu_trainer_factory(tmp_path):
    import modeling
    import training

    config = modeling.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )

    def make(model_class, *args):
        trainer = training.Trainer(
            functools.partial(model_class, config, *args),
            tf.distribute.get_strategy(),
            str(tmp_path / "output"),
            for_tpu=True,
        )
        embeddings = [m for m in trainer.model.submodules if hasattr(m, "use_one_hot_embeddings")]
        assert embeddings and all(m.use_one_hot_embeddings for m in embeddings)
        return trainer

    return make


def test_pretraining_steps_compile_as_on_tpu(tpu_trainer_factory, tmp_path):
    import modeling
    import training

    import run_pretraining

    path = str(tmp_path / "records.tfrecord")
    write_zero_records(path, run_pretraining.record_features(16, 4, with_masks=True), 20)
    parse = training.parse_records(run_pretraining.record_features(16, 4, with_masks=True))
    trainer = tpu_trainer_factory(modeling.BertPretrainingModel)
    metrics = trainer.create_optimizer(
        run_pretraining.METRIC_NAMES, num_train_steps=10, num_warmup_steps=1
    )
    compile_as_on_tpu(
        trainer.train_step(run_pretraining.pretraining_training_loss, metrics),
        [path],
        parse,
        8,
        True,
    )
    assert int(trainer.global_step.numpy()) == 1
    sums = training.MetricSums(run_pretraining.METRIC_NAMES + ("loss",))
    compile_as_on_tpu(
        trainer.eval_step(run_pretraining.pretraining_eval_metrics, sums), [path], parse, 8, False
    )
    assert sums.results()["loss"] > 0


def test_classifier_steps_compile_as_on_tpu(tpu_trainer_factory, tmp_path):
    import modeling
    import training

    import run_classifier

    path = str(tmp_path / "records.tfrecord")
    write_zero_records(
        path,
        {
            **run_classifier.record_features(16, False),
            "is_real_example": tf.io.FixedLenFeature([], tf.int64),
        },
        11,
    )
    parse = training.parse_records(run_classifier.record_features(16, False))
    trainer = tpu_trainer_factory(modeling.BertClassifierModel, 3)
    metrics = trainer.create_optimizer(("accuracy",), num_train_steps=10, num_warmup_steps=1)
    loss = functools.partial(run_classifier.classifier_training_loss, is_regression=False)
    compile_as_on_tpu(trainer.train_step(loss, metrics), [path], parse, 8, True)
    outputs = functools.partial(run_classifier.classifier_outputs, is_regression=False)
    compile_as_on_tpu(trainer.predict_step(outputs), [path], parse, 8, False)


def test_squad_steps_compile_as_on_tpu(tpu_trainer_factory, tmp_path):
    import modeling
    import training

    import run_squad

    paths = {}
    for is_training in (True, False):
        paths[is_training] = str(tmp_path / f"records-{is_training}.tfrecord")
        write_zero_records(paths[is_training], run_squad.record_features(16, is_training), 9)
    trainer = tpu_trainer_factory(modeling.BertSquadModel)
    metrics = trainer.create_optimizer((), num_train_steps=10, num_warmup_steps=1)
    compile_as_on_tpu(
        trainer.train_step(run_squad.squad_training_loss, metrics),
        [paths[True]],
        training.parse_records(run_squad.record_features(16, True)),
        4,
        True,
    )
    compile_as_on_tpu(
        trainer.predict_step(run_squad.squad_outputs),
        [paths[False]],
        training.parse_records(run_squad.record_features(16, False)),
        4,
        False,
    )


def test_every_replica_gets_a_whole_batch_of_every_evaluation_example_in_order():
    """12 examples, batches of 4, two replicas on the pipeline: four batches (the last all
    padding), so no replica is left with an empty batch; the real examples in order."""
    import training

    examples = tf.data.Dataset.from_tensor_slices({"input_ids": tf.range(1, 13)[:, None]})
    batches = list(training.batch_every_example(examples, 4, replicas=2))
    assert len(batches) == 4
    ids = [
        int(i)
        for b in batches
        for i, real in zip(b["input_ids"][:, 0], b["is_real_example"])
        if real
    ]
    assert ids == list(range(1, 13))
    assert [int(b["is_real_example"].numpy().sum()) for b in batches] == [4, 4, 4, 0]
