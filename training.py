"""The engine: what TPUEstimator did for the reference scripts, on tf.distribute.

An entry point builds its task (model, loss and metrics, dataset parsing) and hands it here, with
the run's options as arguments (shared_flags turns the reference's flags into them):

    strategy = training.create_strategy(use_tpu=True, tpu_name="local")
    trainer = training.Trainer(functools.partial(modeling.BertPretrainingModel, config), strategy,
                               "gs://bucket/run", train_batch_size=1024, learning_rate=1e-4)
    trainer.train(files, parse_batch, compute_loss, metric_names, num_train_steps, num_warmup_steps)
    results = trainer.evaluate(files, parse_batch, compute_metrics, metric_names, max_steps)
    for example in trainer.predict(files, parse_batch, predict_outputs): ...

It owns the strategy (TPU, several GPUs, several machines, or one device) and what it implies
(one-hot embeddings on TPU), the output directory (prepared and locked once), the host loop
(`iterations_per_loop` steps per compiled call, then logs, summaries and checkpoints), input
distribution, the evaluate and predict loops (the last batch is padded with examples of weight
0, so none is dropped), and checkpoints in the reference format, resumed after preemption. The
data position is not restored on resume: the input shuffle is re-seeded with the resumed step,
so a restarted job reads a fresh order rather than repeating its start. It reads no flags.
"""

import cpu_kernels  # first: what TensorFlow reads when it is imported
import contextlib
import json
import os
import threading
import time

from absl import logging
import numpy as np
import tensorflow as tf

import errors
from errors import InputError
import file_io
import modeling
import optimization

PRECISION_DTYPES = {"fp32": tf.float32, "bf16": tf.bfloat16, "fp16": tf.float16}
SHUFFLE_BUFFER = 100
CHECKPOINT_PREFIX = "model.ckpt"
# A progress line at least this often (seconds), whatever iterations_per_loop is, off TPU.
PROGRESS_SECONDS = 30.0
# The features of every BERT task that are [batch, max_seq_length]: dynamic padding cuts them.
# The features with a position axis (the last), which dynamic padding cuts.
SEQUENCE_FEATURES = (
    "input_ids",
    "input_mask",
    "segment_ids",
    "token_label_ids",
    "token_label_mask",
)
# Unless --use_xla says, the training step is compiled by XLA when its batches are at least this
# share real tokens, and run by TensorFlow's kernels, which skip the padding, when fewer: on CPU
# the kernels fine-tuned MiniLM on polarity sentences (43% real tokens) twice as fast as XLA's
# bucket-padded step, and XLA pretrained BERT-Base (no padding) 1.2 times as fast as the kernels.
XLA_REAL_TOKEN_SHARE = 0.75
# The records real_token_share reads to estimate the share.
SHARE_SAMPLE_RECORDS = 2048
# With dynamic padding, evaluation and prediction sort each window of this many batches by length
# before batching it, so that a batch's examples are of about one length: attention's scores
# ([B, N, S, S] at the batch's longest example) were half of a SQuAD prediction's time in file
# order. Predictions come back in the input's order all the same: the host holds a window of
# them, so a window is at most SORT_WINDOW_EXAMPLES examples (or one batch, if that is more;
# features of every layer can take megabytes an example). Training sorts windows of this many
# batches too (group_by_length).
LENGTH_SORT_WINDOW_BATCHES = 16
SORT_WINDOW_EXAMPLES = 512
# The feature that carries an example's position in its input pipeline through a sorted window.
INPUT_ORDER = "input_order"


def create_strategy(
    use_tpu=False,
    tpu_name=None,
    tpu_zone=None,
    gcp_project=None,
    num_tpu_cores=None,
    cpu_replicas=1,
):
    """The tf.distribute strategy asked for (shared_flags.strategy_options() gives the flags'); logs the choice.

    A Cloud TPU with use_tpu (tpu_name: a name or grpc:// address, "" or None for the TPU VM's
    own; num_tpu_cores is only compared with what the TPU has); else several machines when
    TF_CONFIG lists several workers; else cpu_replicas CPU devices when above 1; else every GPU
    when there are several; else the one device. Must run before any other TensorFlow work:
    joining several machines and splitting the CPU both have to happen at program start.
    """
    if use_tpu:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=tpu_name or "", zone=tpu_zone, project=gcp_project
        )
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        name, strategy = "TPUStrategy", tf.distribute.TPUStrategy(resolver)
        if num_tpu_cores and num_tpu_cores != strategy.num_replicas_in_sync:
            logging.warning(
                "--num_tpu_cores=%d, but the TPU has %d cores: using them all",
                num_tpu_cores,
                strategy.num_replicas_in_sync,
            )
    elif (
        len(json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {}).get("worker", [])) > 1
    ):
        name, strategy = "MultiWorkerMirroredStrategy", tf.distribute.MultiWorkerMirroredStrategy()
    elif cpu_replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas
        )
        name = "MirroredStrategy"
        strategy = tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(cpu_replicas)])
    elif len(tf.config.list_physical_devices("GPU")) > 1:
        name, strategy = "MirroredStrategy", tf.distribute.MirroredStrategy()
    else:
        name, strategy = "the default strategy (one device)", tf.distribute.get_strategy()
    logging.info("Strategy %s with %d replicas", name, strategy.num_replicas_in_sync)
    return strategy


def is_chief(strategy):
    """Whether this process writes checkpoints, summaries and results (worker 0 of several)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
    )


def check_record_lengths(path, expected_lengths):
    """InputError when the first record of `path` has other feature lengths than the flags expect."""
    with reading_records([path]):
        first = list(tf.data.TFRecordDataset(path).take(1))
    for raw in first:
        features = tf.train.Example.FromString(raw.numpy()).features.feature
        for name, (length, flag) in expected_lengths.items():
            if name not in features:
                raise InputError(f"{path}: records have no feature {name}")
            kind = features[name].WhichOneof("kind")
            actual = len(getattr(features[name], kind).value)
            if actual != length:
                raise InputError(
                    f"{path}: feature {name} has {actual} values per record but {flag} "
                    f"expects {length}: were the records written with other flags?"
                )
        return
    raise InputError(f"{path}: holds no records")


@contextlib.contextmanager
def reading_records(files):
    """Turns a corrupt or truncated record met inside the block into an InputError naming its file
    (found by reading the files again, which only a failing run pays for)."""
    try:
        yield
    except tf.errors.DataLossError as error:
        for path in files:
            try:
                for _ in tf.data.TFRecordDataset(path):
                    pass
            except tf.errors.DataLossError as file_error:
                raise InputError(
                    f"{path}: is not a complete TFRecord file ({errors.describe(file_error)})"
                ) from None
        raise InputError(
            f"{', '.join(files)}: a record cannot be read ({errors.describe(error)})"
        ) from None


def length_buckets(max_length):
    """The lengths dynamic padding pads a batch to: 16, 24, 32, 48, 64, 96, 128, 192, ... (powers of
    two and 1.5 times them) below max_length, then max_length. A batch wastes under a third of its
    positions on padding beyond its longest example, and an XLA step compiles for at most
    2·log2(max_length / 16) + 1 shapes (9 for 384)."""
    lengths = {size * factor // 2 for size in (2**k for k in range(4, 16)) for factor in (2, 3)}
    return sorted(length for length in lengths if length < max_length) + [max_length]


def cut_padding(features, to_bucket):
    """A batch {name: [b, ..., S]} with its sequence features cut on their last axis to its
    longest sequence (the most ones of a row of input_mask; [b, S], or [b, choices, S] for
    multiple choice), or with to_bucket to the smallest of length_buckets(S) that holds it.

    A training step compiled by XLA cuts to buckets: it compiles once per shape. TensorFlow's
    kernels (evaluation, prediction, training without XLA) compile nothing per shape: there the
    cut is to the longest sequence.
    What the cut removes is padding: positions past every example's length, which attention
    masks out and no label points at, so the model's outputs at the kept positions are unchanged.
    A batch made only of padding examples (a replica's share of the last batch can be) keeps one
    position, which the model's [CLS] gather reads. A batch without input_mask is left as it is.
    """
    if "input_mask" not in features:
        return features
    length = tf.reduce_max(tf.reduce_sum(tf.cast(features["input_mask"], tf.int32), axis=-1))
    length = tf.maximum(length, 1)
    if to_bucket:
        buckets = tf.constant(length_buckets(features["input_mask"].shape[-1]), tf.int32)
        length = buckets[tf.searchsorted(buckets, length[tf.newaxis])[0]]
    return {
        name: tensor[..., :length] if name in SEQUENCE_FEATURES else tensor
        for name, tensor in features.items()
    }


def record_dataset_fn(
    files,
    parse_batch,
    global_batch_size,
    is_training,
    seed=0,
    dynamic_padding=False,
    compiled=True,
    group_by_length=False,
    max_records=None,
):
    """A dataset function for strategy.distribute_datasets_from_function over TFRecord files.

    Training: files shuffled, read interleaved in parallel, records shuffled and repeated, each
    input pipeline (one per machine) reading its share of the files, or of the records when
    there are fewer files than machines. Batches are static-shaped, as the TPU needs.
    Evaluation and prediction: records in file order, each pipeline its share of the records,
    the last batch padded with examples whose `is_real_example` is 0. With dynamic_padding, each
    batch is cut (cut_padding): in training to its length bucket when the step is `compiled` by
    XLA, else to its longest example; in evaluation and prediction to its longest example, their
    windows of batches sorted by length first (batch_every_example); static batch size, dynamic
    length.

    Args:
      parse_batch: serialized records string [b] → {name: tensor [b, ...]}.
      group_by_length: training batches drawn from windows of LENGTH_SORT_WINDOW_BATCHES
        shuffled batches sorted by length, then shuffled among that window's batches: a batch's
        examples are of about one length, and its padding mostly gone.
      max_records: evaluation and prediction of only the first max_records records (taken
        before any sorting).
    """

    def dataset_fn(input_context):
        batch_size = input_context.get_per_replica_batch_size(global_batch_size)
        pipelines, index = input_context.num_input_pipelines, input_context.input_pipeline_id
        if not is_training:
            dataset = tf.data.TFRecordDataset(files)
            if max_records is not None:
                dataset = dataset.take(max_records)
            dataset = dataset.shard(pipelines, index)
            return batch_every_example(
                dataset.batch(256).map(parse_batch).unbatch(),
                batch_size,
                dynamic_padding,
                input_context.num_replicas_in_sync // pipelines,
            )
        by_file = len(files) >= pipelines
        dataset = tf.data.Dataset.from_tensor_slices(files)
        if by_file:
            dataset = dataset.shard(pipelines, index)
        dataset = dataset.shuffle(len(files), seed=seed).repeat()
        dataset = dataset.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(len(files), 8),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        # Sized by the global batch: every strategy then draws the same records into each global batch.
        dataset = dataset.shuffle(SHUFFLE_BUFFER * global_batch_size, seed=seed)
        if not by_file:
            dataset = dataset.shard(pipelines, index)
        if group_by_length:
            dataset = (
                dataset.batch(LENGTH_SORT_WINDOW_BATCHES * batch_size, drop_remainder=True)
                .map(parse_batch, num_parallel_calls=tf.data.AUTOTUNE)
                .map(sort_by_length)
                .unbatch()
                .batch(batch_size, drop_remainder=True)
                .shuffle(LENGTH_SORT_WINDOW_BATCHES, seed=seed)
            )
        else:
            dataset = dataset.batch(batch_size, drop_remainder=True).map(
                parse_batch, num_parallel_calls=tf.data.AUTOTUNE
            )
        if dynamic_padding:
            dataset = dataset.map(lambda features: cut_padding(features, to_bucket=compiled))
        return dataset.prefetch(tf.data.AUTOTUNE)

    return dataset_fn


def real_token_share(files, parse_batch, batch_size):
    """The share of real tokens (input_mask 1) among the positions of training batches of
    batch_size (per replica), as record_dataset_fn pads them: estimated from the first
    SHARE_SAMPLE_RECORDS records, grouped in a shuffled order. 1.0 without an input_mask."""
    masks = [
        batch["input_mask"].numpy()
        for batch in tf.data.TFRecordDataset(files)
        .take(SHARE_SAMPLE_RECORDS)
        .batch(256)
        .map(parse_batch)
        if "input_mask" in batch
    ]
    if not masks:
        return 1.0
    masks = np.concatenate(masks)  # [n, S], or [n, choices, S]
    max_length = masks.shape[-1]
    lengths = masks.reshape(len(masks), -1, max_length).sum(-1)  # [n, choices]
    np.random.RandomState(0).shuffle(lengths)
    buckets = np.array(length_buckets(max_length))
    real = positions = 0
    for start in range(0, len(lengths), batch_size):
        batch = lengths[start : start + batch_size]
        length = buckets[np.searchsorted(buckets, max(batch.max(), 1))]
        real, positions = real + batch.sum(), positions + batch.size * length
    return real / positions


def sort_by_length(features):
    """A window of examples {name: [w, ...]} (with an input_mask [w, S], or [w, choices, S])
    sorted by length, shortest first, ties in their order; as it is without input_mask."""
    if "input_mask" not in features:
        return features
    lengths = tf.reduce_sum(tf.cast(features["input_mask"], tf.int32), axis=-1)  # [w(, C)]
    if lengths.shape.rank > 1:
        lengths = tf.reduce_max(lengths, axis=1)
    order = tf.argsort(lengths, stable=True)
    return {name: tf.gather(tensor, order) for name, tensor in features.items()}


def sorted_by_length(dataset, window):
    """`dataset`'s examples in windows of `window`, each sorted by length (sort_by_length)."""
    return dataset.batch(window).map(sort_by_length).unbatch()


def batch_every_example(dataset, batch_size, dynamic_padding=False, replicas=1):
    """Batches of every example of `dataset`, with `is_real_example` 1, padded with all-zero
    examples whose is_real_example is 0 to a whole number of batches for each of the pipeline's
    `replicas` (a replica left without a batch would get an empty one, whose unknown length
    dynamic padding cannot trace). Static-shaped and in order; or, with dynamic_padding, each
    window of LENGTH_SORT_WINDOW_BATCHES batches (at most SORT_WINDOW_EXAMPLES examples, or one
    batch) sorted by length (sorted_by_length), every example carrying its position in
    `dataset` as INPUT_ORDER (int64 []), and each batch cut to its longest example."""
    dataset = dataset.map(
        lambda features: {**features, "is_real_example": tf.constant(1, tf.int32)}
    )
    if dynamic_padding:
        pipeline_batch = batch_size * replicas
        window_batches = min(LENGTH_SORT_WINDOW_BATCHES, SORT_WINDOW_EXAMPLES // pipeline_batch)
        dataset = sorted_by_length(
            dataset.enumerate().map(lambda index, features: {**features, INPUT_ORDER: index}),
            max(window_batches, 1) * pipeline_batch,
        )
    # Made from the element spec, not from the data: a generator's examples are read once.
    padding = tf.data.Dataset.from_tensors(
        tf.nest.map_structure(lambda spec: tf.zeros(spec.shape, spec.dtype), dataset.element_spec)
    )
    dataset = (
        dataset.concatenate(padding.repeat(batch_size * replicas - 1))
        .batch(batch_size * replicas, drop_remainder=True)
        .unbatch()
        .batch(batch_size, drop_remainder=True)  # drops nothing: static-shaped, as the TPU needs
    )
    if dynamic_padding:
        dataset = dataset.map(lambda features: cut_padding(features, to_bucket=False))
    return dataset.prefetch(tf.data.AUTOTUNE)


def each_batch(distributed_dataset):
    """Iterates a distributed dataset's batches, and lets its iterator go on a thread of its own:
    deleting it at the end of the data, as a `for` loop does, waited idle for its background
    thread (TensorFlow 2.21, MirroredStrategy on CPU) 0.1 to 7 s in most runs, half the time of
    a short prediction."""
    iterator = iter(distributed_dataset)
    try:
        while True:
            batch = iterator.get_next_as_optional()
            if not batch.has_value():
                return
            yield batch.get_value()
    finally:
        held, iterator, batch = [iterator], None, None
        threading.Thread(target=held.clear, name="iterator-deletion").start()


class ProgressLog:
    """Logs `<what>: done/total examples, rate examples/s, eta` at most every PROGRESS_SECONDS; the
    rate leaves out the first batch, which compiles."""

    def __init__(self, what, total=None):
        self.what, self.total = what, total
        self.first_done, self.first_time = None, None
        self.started = self.last_line = time.time()

    def update(self, done):
        now = time.time()
        if self.first_done is None:
            self.first_done, self.first_time = done, now
            return
        if now - self.last_line < PROGRESS_SECONDS:
            return
        self.last_line = now
        rate = (done - self.first_done) / max(now - self.first_time, 1e-9)
        line = f"{self.what}: {done}"
        if self.total and rate > 0:
            eta = time.strftime("%H:%M:%S", time.gmtime(max(self.total - done, 0) / rate))
            line += f"/{self.total} examples, {rate:.1f} examples/s, eta {eta}"
        else:
            line += f" examples, {rate:.1f} examples/s"
        logging.info("%s", line)

    def finish(self, done):
        """Logs the whole run: `<what>: N examples in T s, R examples/s after the first batch`."""
        now = time.time()
        rate = ""
        if self.first_done is not None and now > self.first_time and done > self.first_done:
            rate = f", {(done - self.first_done) / (now - self.first_time):.1f} examples/s after the first batch"
        logging.info("%s: %d examples in %.1f s%s", self.what, done, now - self.started, rate)


def count_records(files, limit=None):
    """The number of records in TFRecord `files`, or `limit` when they hold more (a pass over
    them, stopping there)."""
    dataset = tf.data.TFRecordDataset(files)
    if limit is not None:
        dataset = dataset.take(limit)
    with reading_records(files):
        return int(dataset.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


class MetricSums(tf.Module):
    """Per-replica running sums of (numerator, denominator) pairs, summed across replicas on read."""

    def __init__(self, names):
        super().__init__()
        self.names = tuple(names)
        self.sums = {
            name: tuple(
                tf.Variable(
                    0.0,
                    trainable=False,
                    synchronization=tf.VariableSynchronization.ON_READ,
                    aggregation=tf.VariableAggregation.SUM,
                )
                for _ in range(2)
            )
            for name in self.names
        }

    def add(self, pairs):
        for name in self.names:
            numerator, denominator = pairs[name]
            self.sums[name][0].assign_add(tf.cast(numerator, tf.float32))
            self.sums[name][1].assign_add(tf.cast(denominator, tf.float32))

    def results(self):
        """{name: numerator / denominator} over everything added since the last reset."""
        values = {}
        for name, (numerator, denominator) in self.sums.items():
            total = float(denominator.read_value())
            values[name] = float(numerator.read_value()) / total if total else 0.0
        return values

    def reset(self):
        for pair in self.sums.values():
            for variable in pair:
                variable.assign(tf.zeros_like(variable))


class Trainer:
    """One run's strategy, model, optimizer, checkpoints and loops.

    Args:
      build_model: (compute_dtype=, use_one_hot_embeddings=) → tf.Module with reference-named
        variables, e.g. functools.partial(modeling.BertPretrainingModel, config); called under
        the strategy's scope, with the dtype of `precision` and one-hot embeddings on TPU.
      strategy: from create_strategy(), which must run before any other TensorFlow work (several
        machines and split CPUs are set up at program start); the one device when not given.
      output_dir: checkpoints, summaries and results; prepared (and locked) here, before any work.
      init_checkpoint: warm-starts training that has no checkpoint in output_dir to resume, and
        is what evaluation and prediction use when output_dir holds none.
      train_batch_size, eval_batch_size, predict_batch_size: global batch sizes.
      learning_rate, optimizer ("adamw" or "lamb"): the peak rate of the reference's schedule.
      iterations_per_loop: steps per compiled call of the host loop (a TPU's unit of work).
      save_checkpoints_steps, keep_checkpoint_max: cadence, and how many to keep (0: all).
      gradient_accumulation_steps: micro-batches per update.
      precision: "fp32", "bf16" or "fp16" compute (variables stay float32; fp16 scales the loss).
      use_xla: compile the training step (on one device with its update, else the forward and
        backward pass), or run it on TensorFlow's kernels, which with dynamic_padding skip the
        padding in the dense layers (modeling.skipping_padding); None: compile it when its
        batches are at least XLA_REAL_TOKEN_SHARE real tokens (real_token_share of the
        training records, in train()). On TPU everything is compiled.
      dynamic_padding: pad each batch only to its longest example (training compiled by XLA: to
        that length's bucket; cut_padding) instead of max_seq_length; ignored on TPU, whose
        compiled program keeps the static shape.
      group_by_length: where TensorFlow's kernels run the training step with dynamic_padding,
        draw its batches from windows sorted by length (record_dataset_fn), so that they carry
        little padding.
      random_seed: of the initial weights, dropout and the input shuffle.
      use_one_hot_embeddings: one-hot embedding lookups; default: on TPU.
      for_tpu: build the steps as TPUStrategy runs them (one-hot embedding lookups, the whole step
        compiled by XLA, static shapes); default: whether the strategy is a TPUStrategy.
      lock_output_dir: hold output_dir for this run (file_io.lock_directory), so that a second run
        on it stops; off for a run that only reads checkpoints there and writes elsewhere.
    """

    def __init__(
        self,
        build_model,
        strategy=None,
        output_dir=None,
        *,
        init_checkpoint=None,
        train_batch_size=32,
        eval_batch_size=8,
        predict_batch_size=8,
        learning_rate=5e-5,
        optimizer="adamw",
        iterations_per_loop=1000,
        save_checkpoints_steps=1000,
        keep_checkpoint_max=5,
        gradient_accumulation_steps=1,
        precision="fp32",
        use_xla=None,
        dynamic_padding=True,
        group_by_length=True,
        random_seed=12345,
        use_one_hot_embeddings=None,
        for_tpu=None,
        lock_output_dir=True,
    ):
        if not output_dir:
            raise InputError("--output_dir is required")
        self.output_dir = output_dir
        self.init_checkpoint = init_checkpoint
        self.train_batch_size, self.eval_batch_size = train_batch_size, eval_batch_size
        self.predict_batch_size = predict_batch_size
        self.learning_rate, self.optimizer_name = learning_rate, optimizer
        self.iterations_per_loop = iterations_per_loop
        self.save_checkpoints_steps, self.keep_checkpoint_max = (
            save_checkpoints_steps,
            keep_checkpoint_max,
        )
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.precision, self.use_xla, self.random_seed = precision, use_xla, random_seed
        self.strategy = strategy or tf.distribute.get_strategy()
        self.for_tpu = (
            isinstance(self.strategy, tf.distribute.TPUStrategy) if for_tpu is None else for_tpu
        )
        self.dynamic_padding = dynamic_padding and not self.for_tpu
        # Steps run on the host's CPU: no TPU, and no GPU for TensorFlow to place them on.
        self.on_cpu = not self.for_tpu and not tf.config.list_logical_devices("GPU")
        self.fuse_layer_norm = cpu_kernels.onednn_on() and self.on_cpu
        self.group_by_length = group_by_length
        self.chief = is_chief(self.strategy)
        file_io.prepare_output_dir(self.output_dir, lock=lock_output_dir and self.chief)
        self.compute_dtype = PRECISION_DTYPES[precision]
        # The same seed gives the same initial weights, whatever the strategy or precision.
        tf.random.set_seed(random_seed)
        one_hot = self.for_tpu if use_one_hot_embeddings is None else use_one_hot_embeddings
        with self.strategy.scope():
            self.model = build_model(
                compute_dtype=self.compute_dtype, use_one_hot_embeddings=one_hot
            )
            self.global_step = tf.Variable(
                0,
                dtype=tf.int64,
                trainable=False,
                name=modeling.GLOBAL_STEP_NAME,
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
        self.optimizer = None
        self.loss_scale = None

    def check_batch_size(self, batch_size, flag):
        replicas = self.strategy.num_replicas_in_sync
        if batch_size % replicas:
            raise InputError(f"{flag}={batch_size} is not divisible by the {replicas} replicas")

    # Checkpoints.

    def _training_state(self):
        tensors = modeling.variables_by_name(self.model)
        if self.optimizer is not None:
            tensors.update(self.optimizer.slot_variables())
        tensors[modeling.GLOBAL_STEP_NAME] = self.global_step
        return tensors

    def restore(self):
        """Resumes from the newest checkpoint in output_dir, else warm-starts from init_checkpoint.

        Returns the step training continues from.
        """
        latest = modeling.latest_checkpoint(self.output_dir)
        if latest:
            report = modeling.load_checkpoint(latest, self._training_state())
            if report.unused:
                # Resuming must continue the same model: dropping weights would change it silently.
                raise InputError(
                    f"--output_dir: {latest} holds {len(report.unused)} variables this model lacks, "
                    f"first {report.unused[0]}: does --bert_config_file match the run that wrote it?"
                )
            logging.info("Resumed from %s at step %d", latest, int(self.global_step.numpy()))
        elif self.init_checkpoint:
            report = modeling.load_checkpoint(
                self.init_checkpoint, modeling.variables_by_name(self.model), allow_missing=True
            )
            logging.info(
                "Warm-started %d variables from %s", len(report.loaded), self.init_checkpoint
            )
            for name in report.missing:
                logging.info("  not in the checkpoint, initialised fresh: %s", name)
            for name in report.unused:
                logging.info("  in the checkpoint, unused by this model: %s", name)
        return int(self.global_step.numpy())

    def save_checkpoint(self):
        """Writes model.ckpt-<step> atomically, then points `checkpoint` at it; keeps the newest few."""
        if not self.chief:
            return
        step = int(self.global_step.numpy())
        prefix = os.path.join(self.output_dir, f"{CHECKPOINT_PREFIX}-{step}")
        modeling.save_checkpoint(
            prefix, {name: v.read_value() for name, v in self._training_state().items()}
        )
        _, listed = modeling.checkpoint_state(self.output_dir)
        kept = [
            os.path.basename(p) for p in listed if os.path.basename(p) != os.path.basename(prefix)
        ]
        kept.append(os.path.basename(prefix))
        for old in kept[: -self.keep_checkpoint_max]:
            # Only the files a checkpoint of this name has: names read from the state file are never patterns.
            for path in file_io.files_starting_with(self.output_dir, old + "."):
                suffix = os.path.basename(path)[len(old) :]
                if suffix == ".index" or suffix.startswith(".data-"):
                    file_io.remove(path)
        kept = kept[-self.keep_checkpoint_max :]
        lines = [f'model_checkpoint_path: "{os.path.basename(prefix)}"']
        lines += [f'all_model_checkpoint_paths: "{name}"' for name in kept]
        file_io.write_text_atomically(
            os.path.join(self.output_dir, modeling.CHECKPOINT_STATE_FILE), "\n".join(lines) + "\n"
        )
        logging.info("Saved %s", prefix)

    # Training.

    def create_optimizer(self, metric_names, num_train_steps, num_warmup_steps):
        """Creates the optimizer (and the fp16 loss scale); returns the MetricSums of the loss and metric_names."""
        with self.strategy.scope():
            self.optimizer = optimization.create_optimizer(
                self.model.trainable_variables,
                self.learning_rate,
                num_train_steps,
                num_warmup_steps,
                self.optimizer_name,
            )
            if self.precision == "fp16":
                self.loss_scale = optimization.DynamicLossScale()
            return MetricSums(("loss",) + tuple(metric_names))

    def train_step(self, compute_loss, metrics, accumulation=1):
        """The step strategy.run runs on each replica's batch (features {name: [b, ...]}): gradients
        of compute_loss over `accumulation` micro-batches, one optimizer update, metric sums.

        On TPU the whole step is compiled by XLA, as part of the host loop. Elsewhere, with
        --use_xla, the step and its update on one device, the forward and backward pass alone on
        several (their all-reduce runs between); on TensorFlow's kernels, the update alone on one.
        """
        variables = self.model.trainable_variables
        compiled = self.use_xla or self.for_tpu
        one_device = self.strategy.num_replicas_in_sync == 1

        def loss_with_metrics(features):
            loss, pairs = compute_loss(self.model, features)
            return loss, {**pairs, "loss": (loss, tf.constant(1.0))}

        def compute_gradients(features):
            with modeling.compiled_by_xla() if compiled else self.tracing_for_kernels():
                return optimization.accumulate_gradients(
                    loss_with_metrics, variables, features, accumulation, self.loss_scale
                )

        # On one device XLA compiles the update (below).
        update_compiled_for_cpu = self.on_cpu and one_device

        def apply_gradients(gradients):
            self.optimizer.apply_gradients(
                gradients, self.global_step, self.loss_scale, update_compiled_for_cpu
            )

        if not compiled and one_device:
            # Compiled, the update is one fused pass per variable: op by op, AdamW reads and
            # writes every weight a dozen times (MiniLM's update: 105-120 ms op by op, 44 ms
            # compiled). The gradients are dense, of the variables' shapes: one compilation for
            # every batch.
            apply_gradients = tf.function(apply_gradients, jit_compile=True)

        def replica_step(features):
            _, pairs, gradients = compute_gradients(features)
            apply_gradients(gradients)
            self.global_step.assign_add(1)
            metrics.add(pairs)

        if self.for_tpu or not self.use_xla:  # TPUStrategy compiles the whole loop itself
            return replica_step
        if one_device:
            return tf.function(replica_step, jit_compile=True)
        # Several replicas: the gradients' all-reduce happens between the two.
        compute_gradients = tf.function(compute_gradients, jit_compile=True)
        return replica_step

    def steps_per_call(self, seconds_per_step):
        """Steps of the host loop's next compiled call: iterations_per_loop on TPU, whose loop is the
        unit of work (a line per loop); elsewhere no more than fit in PROGRESS_SECONDS at the last
        call's pace (one step first: it compiles), so progress shows whatever iterations_per_loop is.
        """
        if self.for_tpu:
            return self.iterations_per_loop
        if seconds_per_step is None:
            return 1
        return max(1, min(self.iterations_per_loop, int(PROGRESS_SECONDS / seconds_per_step)))

    def choose_xla(self, files, parse_batch):
        """use_xla's default for training on `files`: whether XLA compiles the step (logged)."""
        if self.for_tpu or not self.dynamic_padding:
            return True
        replica_batch = self.train_batch_size // self.strategy.num_replicas_in_sync
        with reading_records(files):
            share = real_token_share(files, parse_batch, replica_batch)
        compiled = share >= XLA_REAL_TOKEN_SHARE
        logging.info(
            "Training batches are %.0f%% real tokens (of at most the first %d records): %s "
            "(--use_xla=%s says otherwise)",
            100 * share,
            SHARE_SAMPLE_RECORDS,
            "XLA compiles the step"
            if compiled
            else "TensorFlow's kernels run the step, skipping the padding"
            + (", batches grouped by length" if self.group_by_length else ""),
            not compiled,
        )
        return compiled

    def train(
        self, files, parse_batch, compute_loss, metric_names, num_train_steps, num_warmup_steps
    ):
        """Trains to num_train_steps, resuming where a previous run of the same output_dir stopped.

        Args:
          files: TFRecord files; parse_batch: serialized records [b] → {name: tensor [b, ...]}.
          compute_loss: (model, features) → (float32 scalar loss, {metric: (numerator, denominator)}).
          metric_names: the metrics compute_loss returns, logged and summarised with the loss.
        """
        accumulation = self.gradient_accumulation_steps
        self.check_batch_size(self.train_batch_size, "--train_batch_size")
        if (self.train_batch_size // self.strategy.num_replicas_in_sync) % accumulation:
            raise InputError(
                f"--gradient_accumulation_steps={accumulation} does not divide the per-replica batch "
                f"of --train_batch_size={self.train_batch_size}"
            )
        metrics = self.create_optimizer(metric_names, num_train_steps, num_warmup_steps)
        start_step = self.restore()
        if start_step >= num_train_steps:
            logging.info("Already trained to step %d", start_step)
            return
        if self.use_xla is None:
            self.use_xla = self.choose_xla(files, parse_batch)
        compiled = self.use_xla or self.for_tpu
        replica_step = self.train_step(compute_loss, metrics, accumulation)

        @tf.function
        def train_loop(iterator, steps):
            for _ in tf.range(steps):
                self.strategy.run(replica_step, args=(next(iterator),))

        dataset = self.strategy.distribute_datasets_from_function(
            record_dataset_fn(
                files,
                parse_batch,
                self.train_batch_size,
                is_training=True,
                seed=self.random_seed + start_step,
                dynamic_padding=self.dynamic_padding,
                compiled=compiled,
                group_by_length=self.group_by_length and self.dynamic_padding and not compiled,
            )
        )
        iterator = iter(dataset)
        writer = (
            tf.summary.create_file_writer(self.output_dir)
            if self.chief
            else tf.summary.create_noop_writer()
        )
        step, last_save, seconds_per_step = start_step, start_step, None
        while step < num_train_steps:
            steps = min(
                self.steps_per_call(seconds_per_step),
                # Calls end on multiples of iterations_per_loop, where the reference logged.
                self.iterations_per_loop - step % self.iterations_per_loop,
                num_train_steps - step,
                self.save_checkpoints_steps - (step - last_save),
            )
            loop_started = time.time()
            with reading_records(files):
                train_loop(iterator, tf.constant(steps))
            step = int(self.global_step.numpy())
            seconds_per_step = (time.time() - loop_started) / steps
            values = metrics.results()
            metrics.reset()
            values["learning_rate"] = float(self.optimizer.learning_rate(step - 1))
            values["examples_per_second"] = self.train_batch_size / seconds_per_step
            with writer.as_default():
                for name, value in values.items():
                    tf.summary.scalar(name, value, step=step)
            logging.info(
                "step %d/%d  %s  eta %s",
                step,
                num_train_steps,
                "  ".join(f"{k} {v:.4g}" for k, v in values.items()),
                time.strftime("%H:%M:%S", time.gmtime(seconds_per_step * (num_train_steps - step))),
            )
            if step - last_save >= self.save_checkpoints_steps or step >= num_train_steps:
                self.save_checkpoint()
                last_save = step
        writer.flush()

    # Evaluation and prediction.

    def restore_for_inference(self, checkpoint=None):
        """Loads `checkpoint`, else the newest one in output_dir, else init_checkpoint; returns its step."""
        path = checkpoint or modeling.latest_checkpoint(self.output_dir) or self.init_checkpoint
        if not path:
            raise InputError(
                f"--output_dir: {self.output_dir} holds no checkpoint to evaluate or predict with, "
                "and no --init_checkpoint is given"
            )
        path = modeling.resolve_checkpoint(path)
        has_step = modeling.GLOBAL_STEP_NAME in modeling.checkpoint_shapes(path)
        modeling.load_checkpoint(
            path,
            {**modeling.variables_by_name(self.model), modeling.GLOBAL_STEP_NAME: self.global_step},
            allow_missing=not has_step,
        )
        return int(self.global_step.numpy())

    def tracing_for_kernels(self):
        """The context a step TensorFlow's kernels run is traced in: with dynamic padding (never
        on TPU, which compiles every step), the model's dense layers skip the padding positions
        (modeling.skipping_padding)."""
        return modeling.skipping_padding() if self.dynamic_padding else contextlib.nullcontext()

    @contextlib.contextmanager
    def tracing_for_inference(self):
        """The context an evaluation or prediction step is traced in: tracing_for_kernels, and
        on oneDNN's CPU kernels (no GPU, not TPU) LayerNorm in the form TensorFlow fuses
        (modeling.fusing_layer_norm)."""
        fusing = modeling.fusing_layer_norm() if self.fuse_layer_norm else contextlib.nullcontext()
        with self.tracing_for_kernels(), fusing:
            yield

    def eval_step(self, compute_metrics, sums):
        """The step strategy.run runs on each replica's batch: adds compute_metrics to `sums`."""

        def replica_step(features):
            with self.tracing_for_inference():
                sums.add(compute_metrics(self.model, features))

        return replica_step

    def predict_step(self, predict_outputs):
        """The step strategy.run runs on each replica's batch: predict_outputs, with is_real_example.

        Not compiled by XLA off TPU: on CPU, TensorFlow's kernels run a BERT-Base forward pass at
        batch 32 twice as fast as XLA's (benchmarks/bench_vs_reference.py, inference row).
        """

        def replica_step(features):
            with self.tracing_for_inference():
                outputs = predict_outputs(self.model, features)
            kept = ("is_real_example", INPUT_ORDER)
            return {**outputs, **{name: features[name] for name in kept if name in features}}

        return replica_step

    def evaluate(
        self, files, parse_batch, compute_metrics, metric_names, max_steps=None, checkpoint=None
    ):
        """Runs compute_metrics over every record of `files` (or the first max_steps batches).

        Args:
          compute_metrics: (model, features) → {metric: (numerator, denominator)}; features carry
            `is_real_example`, 0 for the padding of the last batch, which must weigh nothing.
          metric_names: the metrics compute_metrics returns.
        Returns:
          {metric: value, "global_step": step}.
        """
        self.check_batch_size(self.eval_batch_size, "--eval_batch_size")
        step = self.restore_for_inference(checkpoint)
        with self.strategy.scope():
            sums = MetricSums(metric_names)
        max_records = None if max_steps is None else max_steps * self.eval_batch_size
        dataset = self.strategy.distribute_datasets_from_function(
            record_dataset_fn(
                files,
                parse_batch,
                self.eval_batch_size,
                is_training=False,
                dynamic_padding=self.dynamic_padding,
                max_records=max_records,
            )
        )

        replica_step = self.eval_step(compute_metrics, sums)

        # Lengths vary batch to batch: one trace, for the dataset's unknown length (traced for
        # the first batch's shape, a function would trace again for the second).
        @tf.function(input_signature=[dataset.element_spec])
        def eval_step(features):
            self.strategy.run(replica_step, args=(features,))

        total = count_records(files, max_records)
        progress, batches = ProgressLog("evaluation", total), 0
        with reading_records(files):
            for features in each_batch(dataset):
                eval_step(features)
                batches += 1
                progress.update(min(batches * self.eval_batch_size, total))
        progress.finish(min(batches * self.eval_batch_size, total))
        results = sums.results()
        results["global_step"] = step
        logging.info("Evaluated %d batches at step %d", batches, step)
        return results

    def predict(self, files, parse_batch, predict_outputs, checkpoint=None, for_eval=False):
        """Yields {name: numpy value} for every record of `files`, in order.

        Args:
          predict_outputs: (model, features) → {name: tensor [b, ...]}.
          for_eval: batches of eval_batch_size (a dev set scored from its predictions), not
            predict_batch_size.
        """
        batch_size, flag = (
            (self.eval_batch_size, "--eval_batch_size")
            if for_eval
            else (self.predict_batch_size, "--predict_batch_size")
        )
        with reading_records(files):
            yield from self._predict(
                record_dataset_fn(
                    files,
                    parse_batch,
                    batch_size,
                    is_training=False,
                    dynamic_padding=self.dynamic_padding,
                ),
                predict_outputs,
                checkpoint,
                batch_size,
                flag,
                count_records(files),
            )

    def predict_stream(
        self,
        make_examples,
        example_signature,
        predict_outputs,
        checkpoint=None,
        num_examples=None,
    ):
        """Yields {name: numpy value} for every example make_examples() yields, in order, reading
        them only as batches need them (neither inputs nor outputs are held whole).

        Args:
          make_examples: () → iterator of {name: array}, one example each (called once per input pipeline).
          example_signature: {name: tf.TensorSpec} of one example.
          predict_outputs: (model, features) → {name: tensor [b, ...]}.
          num_examples: how many make_examples yields, for the progress lines' ETA (without it,
            they give the rate only).
        """

        def dataset_fn(input_context):
            batch_size = input_context.get_per_replica_batch_size(self.predict_batch_size)
            dataset = tf.data.Dataset.from_generator(
                make_examples, output_signature=example_signature
            )
            return batch_every_example(
                dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id),
                batch_size,
                self.dynamic_padding,
                input_context.num_replicas_in_sync // input_context.num_input_pipelines,
            )

        yield from self._predict(
            dataset_fn,
            predict_outputs,
            checkpoint,
            self.predict_batch_size,
            "--predict_batch_size",
            num_examples,
        )

    def _predict(self, dataset_fn, predict_outputs, checkpoint, batch_size, flag, num_examples):
        self.check_batch_size(batch_size, flag)
        self.restore_for_inference(checkpoint)
        dataset = self.strategy.distribute_datasets_from_function(dataset_fn)

        replica_step = self.predict_step(predict_outputs)

        # Lengths vary batch to batch: one trace, for the dataset's unknown length (traced for
        # the first batch's shape, a function would trace again for the second).
        @tf.function(input_signature=[dataset.element_spec])
        def predict_step(features):
            outputs = self.strategy.run(replica_step, args=(features,))
            return tf.nest.map_structure(
                lambda t: concat_replicas(self.strategy.experimental_local_results(t)), outputs
            )

        progress, done = ProgressLog("prediction", num_examples), 0
        # Sorted windows (dynamic padding) come back as {input order: outputs} until their turn.
        waiting, next_in_order = {}, 0
        for features in each_batch(dataset):
            outputs = {name: value.numpy() for name, value in predict_step(features).items()}
            real = outputs.pop("is_real_example")
            order = outputs.pop(INPUT_ORDER, None)
            for index in np.flatnonzero(real):
                example = {name: value[index] for name, value in outputs.items()}
                if order is None:
                    yield example
                else:
                    waiting[int(order[index])] = example
            while next_in_order in waiting:
                yield waiting.pop(next_in_order)
                next_in_order += 1
            done += int(np.count_nonzero(real))
            progress.update(done)
        progress.finish(done)


def concat_replicas(tensors):
    """The replicas' outputs [b, ...] as one [replicas·b, ...]; with dynamic padding their lengths
    can differ, and the shorter ones are padded with zeros (past every example's length)."""
    if len(tensors) == 1:
        return tensors[0]
    if tensors[0].shape.rank < 2:
        return tf.concat(tensors, 0)
    longest = tf.reduce_max(tf.stack([tf.shape(t) for t in tensors]), axis=0)
    return tf.concat(
        [
            tf.pad(t, tf.stack([tf.zeros_like(longest), longest - tf.shape(t)], axis=1))
            for t in tensors
        ],
        0,
    )


def write_results(path, results):
    """Writes {key: value} as sorted `key = value` lines (eval_results.txt), atomically."""
    file_io.write_text_atomically(
        path, "".join(f"{key} = {results[key]}\n" for key in sorted(results))
    )
    for key in sorted(results):
        logging.info("  %s = %s", key, results[key])


# The reference's names for a fine-tuning split's records in --output_dir.
SPLIT_RECORD_NAMES = {
    "train": "train.tf_record",
    "dev": "eval.tf_record",
    "test": "predict.tf_record",
}


def split_record_file(output_dir, split):
    """Where a fine-tuning script writes the records of `split` ("train", "dev" or "test")."""
    return os.path.join(output_dir, SPLIT_RECORD_NAMES[split])


def steps_for_epochs(num_examples, train_batch_size, num_train_epochs, warmup_proportion):
    """(num_train_steps, num_warmup_steps) of a fine-tuning run, as the reference counts them (at least one step)."""
    num_train_steps = max(int(num_examples / train_batch_size * num_train_epochs), 1)
    return num_train_steps, int(num_train_steps * warmup_proportion)


def serialize_example(features):
    """{name: list of ints, or of floats} → a serialized tf.Example, int64_list or float_list each:
    the records parse_records reads."""

    def feature(values):
        if values and isinstance(values[0], float):
            return tf.train.Feature(float_list=tf.train.FloatList(value=values))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    return tf.train.Example(
        features=tf.train.Features(
            feature={name: feature(list(values)) for name, values in features.items()}
        )
    ).SerializeToString()


def parse_records(name_to_features):
    """A parse_batch for record_dataset_fn: tf.Example strings [b] → {name: tensor [b, ...]}, int64 → int32."""

    def parse_batch(serialized):
        features = tf.io.parse_example(serialized, name_to_features)
        return {
            name: tf.cast(t, tf.int32) if t.dtype == tf.int64 else t for name, t in features.items()
        }

    return parse_batch
