"""optimization.py: the update rules against NumPy, the schedule, accumulation, distribution, loss scaling."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import optimization

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INIT_LR, TRAIN_STEPS, WARMUP_STEPS = 0.01, 20, 4
# (name, shape): one decayed kernel, and one of each exclusion pattern.
VARIABLES = [
    ("layer_0/dense/kernel", (3, 4)),
    ("layer_0/dense/bias", (4,)),
    ("layer_0/LayerNorm/gamma", (4,)),
    ("encoder/layer_norm/scale", (2,)),
]


def numpy_schedule(step):
    if step < WARMUP_STEPS:
        return INIT_LR * step / WARMUP_STEPS
    return INIT_LR * (1.0 - min(step, TRAIN_STEPS) / TRAIN_STEPS)


def numpy_steps(
    kind, params, gradients_per_step, weight_decay=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-6
):
    """Independent re-derivation of AdamWeightDecay / LAMB with global-norm clipping at 1.0."""
    params = [p.astype(np.float64) for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    decayed = [name == "layer_0/dense/kernel" for name, _ in VARIABLES]
    history = []
    for step, gradients in enumerate(gradients_per_step):
        norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in gradients))
        gradients = [g * (1.0 / max(norm, 1.0)) for g in gradients]
        lr = numpy_schedule(step)
        for i, g in enumerate(gradients):
            m[i] = beta_1 * m[i] + (1 - beta_1) * g
            v[i] = beta_2 * v[i] + (1 - beta_2) * g * g
            if kind == "adamw":
                update = m[i] / (np.sqrt(v[i]) + epsilon)
            else:
                m_hat, v_hat = m[i] / (1 - beta_1 ** (step + 1)), v[i] / (1 - beta_2 ** (step + 1))
                update = m_hat / (np.sqrt(v_hat) + epsilon)
            if decayed[i]:
                update = update + weight_decay * params[i]
                if kind == "lamb":
                    w_norm, u_norm = np.linalg.norm(params[i]), np.linalg.norm(update)
                    update = update * (w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0)
            params[i] = params[i] - lr * update
        history.append([p.copy() for p in params])
    return history


@pytest.mark.parametrize("kind", ["adamw", "lamb"])
@pytest.mark.parametrize(
    "jit_compile, norm_by_products", [(False, False), (True, False), (True, True)]
)
def test_update_rule_equals_numpy_over_12_steps(kind, jit_compile, norm_by_products):
    rng = np.random.RandomState(0)
    initial = [rng.normal(size=shape).astype(np.float32) for _, shape in VARIABLES]
    # Some steps' gradients have global norm above 1, so clipping is exercised too.
    gradients_per_step = [
        [
            (rng.normal(size=shape) * rng.choice([0.05, 2.0])).astype(np.float32)
            for _, shape in VARIABLES
        ]
        for _ in range(12)
    ]
    variables = [tf.Variable(value, name=name) for value, (name, _) in zip(initial, VARIABLES)]
    optimizer = optimization.create_optimizer(
        variables, INIT_LR, TRAIN_STEPS, WARMUP_STEPS, optimizer=kind
    )
    assert optimizer.decays == [True, False, False, False]
    apply = (
        tf.function(optimizer.apply_gradients, jit_compile=True)
        if jit_compile
        else optimizer.apply_gradients
    )
    expected = numpy_steps(kind, initial, gradients_per_step)
    for step, gradients in enumerate(gradients_per_step):
        apply(
            [tf.constant(g) for g in gradients],
            tf.constant(step, tf.int64),
            norm_by_products=norm_by_products,
        )
        for variable, want in zip(variables, expected[step]):
            np.testing.assert_allclose(
                variable.numpy(), want, rtol=1e-6, atol=1e-7, err_msg=f"{variable.name} step {step}"
            )
    assert sorted(optimizer.slot_variables()) == sorted(
        f"{name}/adam_{s}" for name, _ in VARIABLES for s in "mv"
    )


@pytest.mark.parametrize("by_products", [False, True])
def test_global_norm_equals_the_float64_norm_of_every_element(by_products):
    """A scalar, a vector, matrices (BERT-Base's intermediate kernel among them) and a rank-3
    tensor, compiled by XLA as the CPU update is; a non-finite element gives a non-finite norm,
    which makes tf.clip_by_global_norm's gradients NaN as without a given norm."""
    rng = np.random.RandomState(3)
    shapes = [(), (7,), (3, 5), (768, 3072), (2, 3, 4)]
    tensors = [rng.normal(size=shape).astype(np.float32) * 0.01 for shape in shapes]
    want = np.sqrt(sum(np.sum(t.astype(np.float64) ** 2) for t in tensors))

    @tf.function(jit_compile=True)
    def norm(*tensors):
        return optimization.global_norm(tensors, by_products)

    assert abs(float(norm(*tensors)) - want) / want < 1e-6
    tensors[2][1, 1] = np.inf
    assert float(norm(*tensors)) == np.inf
    tensors[2][1, 1] = np.nan
    assert np.isnan(float(norm(*tensors)))


def test_reference_sanity_case_reaches_the_target():
    """w from [0.1, -0.2, -0.1] minimising the mean squared error to [0.4, 0.2, -0.5], lr 0.2, no decay."""
    w = tf.Variable([0.1, -0.2, -0.1], name="w")
    target = tf.constant([0.4, 0.2, -0.5])
    optimizer = optimization.AdamWeightDecay([w], learning_rate=0.2, weight_decay_rate=0.0)

    @tf.function
    def step(index):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(target - w))
        optimizer.apply_gradients(tape.gradient(loss, [w]), index)

    for index in range(100):
        step(tf.constant(index))
    np.testing.assert_allclose(w.numpy(), target.numpy(), atol=1e-2)


def test_schedule_values():
    def at(step, warmup=10, total=100):
        return float(optimization.learning_rate_schedule(step, 1e-4, total, warmup))

    assert at(0) == 0.0
    assert at(9) == pytest.approx(9e-5, rel=1e-6)  # warmup − 1
    assert at(10) == pytest.approx(
        1e-4 * (1 - 10 / 100), rel=1e-6
    )  # warmup: decayed value, not renormalised
    assert at(11) == pytest.approx(1e-4 * (1 - 11 / 100), rel=1e-6)
    assert at(100) == 0.0 and at(150) == 0.0  # total and past it
    assert at(0, warmup=0) == pytest.approx(1e-4)


def test_four_accumulated_micro_batches_equal_one_four_times_larger_batch():
    """In float64, so that summing in another order (float32 rounding, ~1e-7 of the summands) does
    not hide what is compared: the update itself."""
    rng = np.random.RandomState(1)
    features = {
        "x": tf.constant(rng.normal(size=(16, 5)), tf.float64),
        "y": tf.constant(rng.normal(size=(16, 2)), tf.float64),
    }
    initial = rng.normal(size=(5, 2))

    def run(num_micro_batches):
        kernel = tf.Variable(initial, name="dense/kernel")
        bias = tf.Variable(tf.zeros([2], tf.float64), name="dense/bias")
        optimizer = optimization.create_optimizer([kernel, bias], 0.1, 10, 0)

        def compute_loss(batch):
            loss = tf.reduce_mean(tf.square(tf.matmul(batch["x"], kernel) + bias - batch["y"]))
            return loss, {"examples": tf.shape(batch["x"])[0]}

        @tf.function
        def step(index):
            loss, side, gradients = optimization.accumulate_gradients(
                compute_loss, [kernel, bias], features, num_micro_batches
            )
            tf.debugging.assert_equal(
                side["examples"], 16
            )  # side outputs are summed over micro-batches
            optimizer.apply_gradients(gradients, index)
            return loss, gradients

        losses = [step(tf.constant(i)) for i in range(3)]
        return losses, kernel.numpy(), bias.numpy()

    def relative_difference(a, b):
        return float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.abs(b)))

    (whole_losses, whole_kernel, whole_bias), (micro_losses, micro_kernel, micro_bias) = (
        run(1),
        run(4),
    )
    for (whole_loss, whole_gradients), (micro_loss, micro_gradients) in zip(
        whole_losses, micro_losses
    ):
        assert relative_difference(micro_loss, whole_loss) < 1e-6
        for whole, micro in zip(whole_gradients, micro_gradients):
            assert relative_difference(micro, whole) < 1e-6
    assert relative_difference(micro_kernel, whole_kernel) < 1e-6
    assert relative_difference(micro_bias, whole_bias) < 1e-6


def test_non_finite_fp16_gradient_skips_the_step_and_halves_the_scale():
    kernel = tf.Variable([[1.0, 2.0]], name="dense/kernel")
    bias = tf.Variable([0.5], name="dense/bias")
    optimizer = optimization.create_optimizer([kernel, bias], 0.1, 10, 0)
    loss_scale = optimization.DynamicLossScale(initial_scale=1024.0, growth_interval=2)
    before = [
        kernel.numpy(),
        bias.numpy(),
        *(s.numpy() for s in optimizer.slot_variables().values()),
    ]

    optimizer.apply_gradients(
        [tf.constant([[np.inf, 1.0]]), tf.constant([1.0])], 0, loss_scale=loss_scale
    )
    after = [
        kernel.numpy(),
        bias.numpy(),
        *(s.numpy() for s in optimizer.slot_variables().values()),
    ]
    for was, now in zip(before, after):
        np.testing.assert_array_equal(was, now)
    assert float(loss_scale.scale) == 512.0

    optimizer.apply_gradients(
        [tf.constant([[np.nan, 1.0]]), tf.constant([1.0])], 1, loss_scale=loss_scale
    )
    assert float(loss_scale.scale) == 256.0
    for step in (2, 3):
        optimizer.apply_gradients(
            [tf.constant([[256.0, 256.0]]), tf.constant([256.0])], step, loss_scale=loss_scale
        )
    assert (
        float(loss_scale.scale) == 512.0 and int(loss_scale.good_steps) == 0
    )  # grew after 2 good steps
    assert not np.array_equal(kernel.numpy(), before[0])
    # The update used the unscaled gradient (1.0 per entry): Adam's first step moves by lr · 1 / (1 + ε)·(1 − 0.1/10).
    assert kernel.numpy()[0, 0] < 1.0


def test_accumulated_gradients_of_a_scaled_loss_are_unscaled_by_the_optimizer():
    kernel = tf.Variable([[2.0]], name="dense/kernel")
    loss_scale = optimization.DynamicLossScale(initial_scale=8.0)
    features = {"x": tf.ones([4, 1])}
    loss, _, gradients = optimization.accumulate_gradients(
        lambda batch: (tf.reduce_mean(tf.matmul(batch["x"], kernel)), ()),
        [kernel],
        features,
        2,
        loss_scale=loss_scale,
    )
    assert float(loss) == 2.0 and float(gradients[0][0, 0]) == 8.0


MIRRORED_SCRIPT_ARG = "--mirrored-vs-one-device"


@pytest.mark.slow
def test_mirrored_strategy_over_two_cpus_gives_the_one_device_result():
    """A tiny BERT classifier, 3 steps of AdamWeightDecay on a global batch of 8: two replicas of 4
    end with the one-device weights within 1e-6 (absolute; the weights are of order 0.02 to 1 and
    move by up to ~0.08). Runs in its own process, since the logical devices must be configured
    before TensorFlow starts."""
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), MIRRORED_SCRIPT_ARG],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": REPO_ROOT},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["max_abs_difference"] < 1e-6
    assert report["moved"] > 1e-2  # the weights really changed


def _mirrored_vs_one_device():
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import modeling

    config = modeling.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=20,
        max_position_embeddings=16,
        type_vocab_size=2,
    )
    rng = np.random.RandomState(0)
    batches = [
        {
            "input_ids": rng.randint(1, 50, size=(8, 6)).astype(np.int32),
            "labels": rng.randint(0, 3, size=(8,)).astype(np.int32),
        }
        for _ in range(3)
    ]

    def train(strategy):
        with strategy.scope():
            tf.random.set_seed(0)
            model = modeling.BertClassifierModel(config, num_labels=3)
            optimizer = optimization.create_optimizer(model.trainable_variables, 1e-2, 10, 1)
        initial = {k: v.numpy() for k, v in modeling.variables_by_name(model).items()}

        def replica_step(features, step):
            def compute_loss(batch):
                logits = model(batch["input_ids"], None, None, training=False)
                return tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(batch["labels"], logits)
                ), ()

            _, _, gradients = optimization.accumulate_gradients(
                compute_loss, model.trainable_variables, features, 1
            )
            optimizer.apply_gradients(gradients, step)

        @tf.function
        def step(features, index):
            strategy.run(replica_step, args=(features, index))

        for index, batch in enumerate(batches):
            dataset = tf.data.Dataset.from_tensors(batch).unbatch().batch(8)
            features = next(iter(strategy.experimental_distribute_dataset(dataset)))
            step(features, tf.constant(index))
        return initial, {k: v.numpy() for k, v in modeling.variables_by_name(model).items()}

    initial, one_device = train(tf.distribute.OneDeviceStrategy("/cpu:0"))
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    mirrored_initial, two_replicas = train(mirrored)
    assert all(np.array_equal(initial[k], mirrored_initial[k]) for k in initial)
    difference = max(float(np.max(np.abs(two_replicas[k] - one_device[k]))) for k in one_device)
    moved = max(float(np.max(np.abs(one_device[k] - initial[k]))) for k in one_device)
    print(
        json.dumps(
            {
                "replicas": mirrored.num_replicas_in_sync,
                "max_abs_difference": difference,
                "moved": moved,
            }
        )
    )


if __name__ == "__main__" and MIRRORED_SCRIPT_ARG in sys.argv:
    _mirrored_vs_one_device()
