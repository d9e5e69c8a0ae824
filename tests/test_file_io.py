"""file_io.py: one I/O layer for every user path, local or any tf.io.gfile scheme.

The ram:// runs at the end carry every script end to end with all inputs and outputs on
TensorFlow's in-memory filesystem (the same tf.io.gfile calls as gs://) and compare the results
with the same run on local disk.
"""

import ast
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT, TINY_PRETRAINING_CONFIG
import errors
import file_io
import modeling

# os.path functions that only compute strings: they touch no filesystem.
STRING_ONLY_PATH_FUNCTIONS = {"join", "basename", "dirname", "split", "splitext", "isabs", "sep"}
FORBIDDEN_OS_CALLS = {
    "replace",
    "rename",
    "remove",
    "unlink",
    "makedirs",
    "mkdir",
    "rmdir",
    "listdir",
    "scandir",
    "walk",
    "stat",
}
FORBIDDEN_MODULES = {"glob", "shutil", "pathlib"}


def direct_file_access(source):
    """[(line, what)] for each use of open(), os.path's file queries, os's file calls, glob, shutil,
    pathlib or tf.io.gfile in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "open"
        ):
            found.append((node.lineno, "open()"))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            found += [
                (node.lineno, f"import {n}") for n in names if n.split(".")[0] in FORBIDDEN_MODULES
            ]
        elif isinstance(node, ast.Attribute):
            chain = ast.unparse(node)
            if chain.startswith("os.path.") and node.attr not in STRING_ONLY_PATH_FUNCTIONS:
                found.append((node.lineno, chain))
            elif (
                chain.startswith("os.")
                and chain.count(".") == 1
                and node.attr in FORBIDDEN_OS_CALLS
            ):
                found.append((node.lineno, chain))
            elif chain.endswith(".gfile") and chain.startswith("tf."):
                found.append((node.lineno, chain))
    return found


def test_direct_file_access_finder_finds_each_kind():
    source = (
        "import glob\nimport shutil\nimport os\nopen('x')\nos.path.exists('x')\nos.replace('a', 'b')\n"
        "tf.io.gfile.glob('x')\nos.path.join('a', 'b')\nos.getpid()\n"
    )
    assert [what for _, what in direct_file_access(source)] == [
        "import glob",
        "import shutil",
        "open()",
        "os.path.exists",
        "os.replace",
        "tf.io.gfile",
    ]


def test_no_module_but_file_io_touches_a_path_directly():
    modules = sorted(glob.glob(os.path.join(REPO_ROOT, "*.py")))
    offences = []
    for path in modules:
        if os.path.basename(path) == "file_io.py":
            continue
        with open(path, encoding="utf-8") as reader:
            source = reader.read()
        for line, what in direct_file_access(source):
            # The demo locates its own files (sample_text.txt) beside itself.
            if os.path.basename(path) == "run_demo.py" and what == "os.path.abspath":
                continue
            offences.append(f"{os.path.basename(path)}:{line}: {what}")
    assert len(modules) >= 14 and not offences, "\n".join(offences)


# Temporaries, patterns, stale files.


def test_temporaries_are_hidden_and_match_no_output_glob(tmp_path):
    target = str(tmp_path / "out-1.tfrecord")
    with file_io.atomic_output(target) as temporary:
        with open(temporary, "wb") as writer:
            writer.write(b"partial")
        assert os.path.basename(temporary).startswith(".")
        for pattern in ("out*", "*.tfrecord", "out-?.tfrecord"):
            assert glob.glob(str(tmp_path / pattern)) == []
            assert tf.io.gfile.glob(str(tmp_path / pattern)) == []
    assert os.listdir(tmp_path) == ["out-1.tfrecord"]


def test_a_failed_write_leaves_the_previous_output(tmp_path):
    target = tmp_path / "eval_results.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with file_io.atomic_output(str(target)) as temporary:
            with open(temporary, "w") as writer:
                writer.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["eval_results.txt"]


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    stale = file_io.temporary_path(str(tmp_path / "a.tfrecord")).replace(
        f"-{os.getpid()}", f"-{dead_pid}"
    )
    live = file_io.temporary_path(str(tmp_path / "b.tfrecord"))
    other_host = str(tmp_path / f".c.tfrecord{file_io.TEMPORARY_MARKER}otherhost-{dead_pid}")
    for path in (stale, stale + ".index", live, other_host, str(tmp_path / "kept.txt")):
        open(path, "w").close()
    file_io.remove_stale_temporaries(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted(
        os.path.basename(p) for p in (live, other_host, "kept.txt")
    )


def test_a_directory_with_glob_characters_is_listed_not_globbed(tmp_path):
    for directory in ("exp[1]", "exp1", "a*b", "ab"):
        (tmp_path / directory).mkdir()
        (tmp_path / directory / "model.ckpt-1.index").write_text(directory)
    for directory in ("exp[1]", "a*b"):
        found = file_io.files_starting_with(str(tmp_path / directory), "model.ckpt-1.")
        assert found == [str(tmp_path / directory / "model.ckpt-1.index")]
    literal = tmp_path / "exp[1]" / "model.ckpt-1.index"
    assert file_io.expand_input_files(str(literal), "input_file") == [str(literal)]


def test_checkpoints_resume_in_a_directory_named_like_a_glob(tmp_path):
    for name in ("exp[1]", "exp1"):
        directory = tmp_path / name
        directory.mkdir()
        modeling.save_checkpoint(str(directory / "model.ckpt-5"), {"w": tf.constant([1.0, 2.0])})
        (directory / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-5"\n')
    assert modeling.latest_checkpoint(str(tmp_path / "exp[1]")) == str(
        tmp_path / "exp[1]" / "model.ckpt-5"
    )
    assert sorted(os.listdir(tmp_path / "exp1")) == [
        "checkpoint",
        "model.ckpt-5.data-00000-of-00001",
        "model.ckpt-5.index",
    ]


def test_a_state_file_naming_deleted_files_falls_back_to_the_newest_complete_checkpoint(tmp_path):
    for step in (10, 20):
        modeling.save_checkpoint(
            str(tmp_path / f"model.ckpt-{step}"), {"w": tf.constant([float(step)])}
        )
    (tmp_path / "checkpoint").write_text(
        'model_checkpoint_path: "model.ckpt-20"\n'
        'all_model_checkpoint_paths: "model.ckpt-10"\n'
        'all_model_checkpoint_paths: "model.ckpt-20"\n'
    )
    os.remove(tmp_path / "model.ckpt-20.index")
    assert modeling.latest_checkpoint(str(tmp_path)) == str(tmp_path / "model.ckpt-10")


# Remote paths (ram:// here; gs:// on Cloud TPU).


def test_reads_and_writes_on_ram_filesystem():
    root = "ram://file_io_test"
    file_io.write_text_atomically(f"{root}/sub/a.txt", "één\ntwee\n")
    assert file_io.read_text(f"{root}/sub/a.txt") == "één\ntwee\n"
    assert list(file_io.read_lines(f"{root}/sub/a.txt")) == ["één\n".encode(), b"twee\n"]
    assert file_io.listdir(f"{root}/sub") == ["a.txt"]
    assert file_io.expand_input_files(f"{root}/sub/*.txt", "input_file") == [f"{root}/sub/a.txt"]
    with pytest.raises(
        errors.InputError, match=rf"--input_file: {root}/sub/\*.json matches no file"
    ):
        file_io.expand_input_files(f"{root}/sub/*.json", "input_file")
    with pytest.raises(errors.InputError, match=f"vocab file {root}/missing.txt: cannot be read"):
        file_io.read_bytes(f"{root}/missing.txt", "vocab file ")


def test_publish_directory_copies_saved_model_pb_last(monkeypatch):
    temporary, final = "ram://publish/.export.tmp", "ram://publish/export"
    for relative in (
        "saved_model.pb",
        "variables/variables.index",
        "assets/vocab.txt",
        "fingerprint.pb",
    ):
        file_io.makedirs(os.path.dirname(f"{temporary}/{relative}"))
        file_io.write_text_atomically(f"{temporary}/{relative}", relative)
    file_io.write_text_atomically(f"{final}/stale.txt", "an older export")
    copied = []
    real_copy = tf.io.gfile.copy
    monkeypatch.setattr(
        tf.io.gfile,
        "copy",
        lambda src, dst, overwrite=False: (copied.append(dst), real_copy(src, dst, overwrite)),
    )
    file_io.publish_directory(temporary, final)
    assert copied[-1] == f"{final}/saved_model.pb" and len(copied) == 4
    assert sorted(p[len(final) + 1 :] for p in copied) == sorted(
        ["saved_model.pb", "variables/variables.index", "assets/vocab.txt", "fingerprint.pb"]
    )
    assert not tf.io.gfile.exists(temporary) and not tf.io.gfile.exists(f"{final}/stale.txt")


def test_a_permission_failure_on_a_bucket_says_what_to_grant():
    with pytest.raises(errors.InputError) as raised:
        with file_io.reporting("gs://team-bucket/run1", " is not writable", "--output_dir: "):
            raise tf.errors.PermissionDeniedError(
                None,
                None,
                "403 Forbidden: caller does not have storage.objects.create access\nmore detail",
            )
    assert str(raised.value) == (
        "--output_dir: gs://team-bucket/run1 is not writable (403 Forbidden: caller does not have "
        "storage.objects.create access); grant the account this runs as (on a Cloud TPU, the TPU's service "
        "account) roles/storage.objectAdmin on gs://team-bucket"
    )
    with pytest.raises(errors.InputError, match="roles/storage.objectViewer on gs://data"):
        with file_io.reporting("gs://data/x.tfrecord", ": cannot be read", "--input_file: "):
            raise tf.errors.PermissionDeniedError(None, None, "403")


@pytest.mark.slow
@pytest.mark.parametrize(
    "flag",
    [
        "--output_dir=gs://bert-no-such-bucket-0/run",
        "--input_file=gs://bert-no-such-bucket-0/*.tfrecord",
    ],
)
def test_an_unreachable_bucket_is_one_line_before_any_training(pretraining_data, tmp_path, flag):
    from conftest import run_pretraining_command

    env = {**os.environ, "NO_GCE_CHECK": "true"}  # no wait for a metadata server that is not there
    result = run_pretraining_command(pretraining_data, tmp_path / "out", flag, env=env)
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert (
        last.startswith(f"error: {flag.split('=')[0]}: gs://bert-no-such-bucket-0/")
        and "Traceback" not in result.stderr
    )
    assert "step 1/" not in result.stderr and not (tmp_path / "out").exists()


# Every script on ram://, against the same run on local disk.


def _read_results(path):
    return {
        key: float(value)
        for key, value in (line.split(" = ") for line in open(path).read().splitlines())
    }


def _same_checkpoint(a, b):
    arrays_a, arrays_b = modeling.checkpoint_arrays(a), modeling.checkpoint_arrays(b)
    assert sorted(arrays_a) == sorted(arrays_b)
    for name in arrays_a:
        np.testing.assert_allclose(
            arrays_a[name], arrays_b[name], rtol=1e-6, atol=1e-7, err_msg=name
        )


def _same_bytes(local_out, ram_out, *names):
    for name in names:
        with (
            open(os.path.join(local_out, name), "rb") as a,
            open(os.path.join(ram_out, name), "rb") as b,
        ):
            assert a.read() == b.read(), name


def _same_records(local_out, ram_out, *names):
    """The same tf.Examples in the same order (their bytes may differ: protobuf writes a map's
    entries, here the features, in an order of its own)."""
    for name in names:
        local, ram = (
            list(tf.data.TFRecordDataset(os.path.join(out, name)).as_numpy_iterator())
            for out in (local_out, ram_out)
        )
        assert [tf.train.Example.FromString(r) for r in local] == [
            tf.train.Example.FromString(r) for r in ram
        ], name


def _files(directory):
    return sorted(
        os.path.relpath(os.path.join(d, n), directory)
        for d, _, names in os.walk(directory)
        for n in names
        if not n.startswith("events.out.tfevents")
    )


def _compare_pretraining(local, ram):
    assert _read_results(f"{local}/eval_results.txt") == pytest.approx(
        _read_results(f"{ram}/eval_results.txt"), rel=1e-6
    )
    _same_checkpoint(modeling.latest_checkpoint(local), modeling.latest_checkpoint(ram))


def _compare_classifier(local, ram):
    assert _read_results(f"{local}/eval_results.txt") == pytest.approx(
        _read_results(f"{ram}/eval_results.txt"), rel=1e-6
    )
    local_scores = np.loadtxt(f"{local}/test_results.tsv")
    np.testing.assert_allclose(local_scores, np.loadtxt(f"{ram}/test_results.tsv"), rtol=1e-6)
    _same_records(local, ram, "train.tf_record", "eval.tf_record", "predict.tf_record")


def _compare_squad(local, ram):
    _same_bytes(local, ram, "predictions.json")
    _same_records(local, ram, "train.tf_record", "eval.tf_record")
    _same_checkpoint(modeling.latest_checkpoint(local), modeling.latest_checkpoint(ram))


def _compare_export(local, ram):
    import tensorflow_text  # noqa: F401  (registers the preprocessing export's ops)

    inputs = {
        "input_word_ids": tf.constant([[2, 7, 9, 3, 0]]),
        "input_mask": tf.constant([[1, 1, 1, 1, 0]]),
        "input_type_ids": tf.zeros([1, 5], tf.int32),
    }
    outputs = [
        tf.saved_model.load(f"{root}/encoder")(inputs)["pooled_output"].numpy()
        for root in (local, ram)
    ]
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-6)
    texts = tf.constant(["Hello there, General Kenobi."])
    pieces = [
        tf.saved_model.load(f"{root}/preprocess").tokenize(texts).flat_values.numpy()
        for root in (local, ram)
    ]
    np.testing.assert_array_equal(pieces[0], pieces[1])


def _compare_to_reference(local, ram):
    _same_bytes(local, ram, "bert_config.json", "vocab.txt", "checkpoint")
    _same_checkpoint(f"{local}/bert_model.ckpt", f"{ram}/bert_model.ckpt")


TINY = [
    "--max_seq_length=32",
    "--train_batch_size=8",
    "--iterations_per_loop=3",
    "--learning_rate=1e-3",
]
MODEL = ["--bert_config_file={work}/in/bert_config.json", "--vocab_file={work}/in/vocab.txt"]
INIT = ["--init_checkpoint={work}/in/init/bert_model.ckpt"]
RUNS = {
    "prepare_pretraining_text": (
        ["--input_file={work}/in/sample_*.txt", "--output_file={work}/out/sentences.txt"],
        lambda local, ram: _same_bytes(local, ram, "sentences.txt"),
    ),
    "build_vocab": (
        [
            "--input_file={work}/in/sample_text.txt",
            "--output_file={work}/out/spm",
            "--vocab_size=120",
            "--model_type=sentencepiece",
        ],
        lambda local, ram: _same_bytes(local, ram, "spm.model", "spm.vocab"),
    ),
    "create_pretraining_data": (
        [
            "--input_file={work}/in/sample_text.txt",
            "--output_file={work}/out/a.tfrecord,{work}/out/b.tfrecord",
            "--vocab_file={work}/in/vocab.txt",
            "--max_seq_length=32",
            "--max_predictions_per_seq=5",
            "--dupe_factor=2",
        ],
        lambda local, ram: _same_bytes(local, ram, "a.tfrecord", "b.tfrecord"),
    ),
    "run_pretraining": (
        [
            "--input_file={work}/in/sample*.tfrecord",
            "--output_dir={work}/out",
            "--do_train",
            "--do_eval",
            "--num_train_steps=6",
            "--num_warmup_steps=1",
            "--save_checkpoints_steps=3",
            "--max_predictions_per_seq=5",
            "--max_eval_steps=2",
            *MODEL,
            *TINY,
        ],
        _compare_pretraining,
    ),
    "run_classifier": (
        [
            "--task_name=tsv",
            "--data_dir={work}/in/table",
            "--output_dir={work}/out",
            "--do_train",
            "--do_eval",
            "--do_predict",
            "--num_train_epochs=1",
            *MODEL,
            *INIT,
            *TINY,
        ],
        _compare_classifier,
    ),
    "run_squad": (
        [
            "--train_file={work}/in/squad.json",
            "--predict_file={work}/in/squad.json",
            "--do_train",
            "--do_predict",
            "--output_dir={work}/out",
            "--max_seq_length=48",
            "--doc_stride=16",
            "--max_query_length=12",
            "--train_batch_size=4",
            "--num_train_epochs=1",
            "--do_lower_case=True",
            *MODEL,
            *INIT,
        ],
        _compare_squad,
    ),
    "extract_features": (
        [
            "--input_file={work}/in/lines.txt",
            "--output_file={work}/out/features.jsonl",
            "--layers=-1,-2",
            "--max_seq_length=32",
            *MODEL,
            *INIT,
        ],
        lambda local, ram: _same_bytes(local, ram, "features.jsonl"),
    ),
    "export_model": (
        ["--export_dir={work}/out", "--max_seq_length=32", *MODEL, *INIT],
        _compare_export,
    ),
    "convert_checkpoint": (
        ["--hf_model_dir={work}/in/hf", "--output_dir={work}/out"],
        _compare_to_reference,
    ),
}


@pytest.fixture(scope="module")
def script_inputs(pretraining_data, tmp_path_factory):
    """The `in/` folder every run reads: text, a vocabulary, records, a tiny config and checkpoint,
    a table, a SQuAD file and a Hugging Face folder."""
    import convert_checkpoint

    inputs = tmp_path_factory.mktemp("script_inputs")
    sample = os.path.join(REPO_ROOT, "sample_text.txt")
    lines = [
        line for line in open(sample, encoding="utf-8").read().splitlines() if len(line.split()) > 3
    ]
    (inputs / "sample_text.txt").write_text(open(sample, encoding="utf-8").read(), encoding="utf-8")
    for name in ("vocab.txt", "sample.tfrecord"):
        (inputs / name).write_bytes((pretraining_data / name).read_bytes())
    vocab_size = len((inputs / "vocab.txt").read_text(encoding="utf-8").splitlines())
    config = modeling.BertConfig(
        vocab_size=vocab_size,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        **TINY_PRETRAINING_CONFIG,
    )
    (inputs / "bert_config.json").write_text(config.to_json_string())
    tf.random.set_seed(0)
    model = modeling.BertPretrainingModel(config)
    model(
        tf.zeros([1, 4], tf.int32),
        tf.ones([1, 4], tf.int32),
        tf.zeros([1, 4], tf.int32),
        tf.zeros([1, 1], tf.int32),
    )
    (inputs / "init").mkdir()
    modeling.save_checkpoint(
        str(inputs / "init" / "bert_model.ckpt"), modeling.variables_by_name(model)
    )
    (inputs / "table").mkdir()
    for split, part in (("train", lines[:16]), ("dev", lines[16:24]), ("test", lines[24:30])):
        rows = [f"{line}\t{int('the' in line.lower().split())}" for line in part]
        (inputs / "table" / f"{split}.tsv").write_text(
            "text\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8"
        )
    paragraphs = []
    for index, line in enumerate(lines[:6]):
        words = line.split()
        answer = {"text": words[2], "answer_start": len(" ".join(words[:2])) + 1}
        paragraphs.append(
            {
                "context": " ".join(words),
                "qas": [
                    {
                        "id": f"q{index}",
                        "question": f"what follows {words[1]}?",
                        "answers": [answer],
                    }
                ],
            }
        )
    (inputs / "squad.json").write_text(
        json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]})
    )
    (inputs / "lines.txt").write_text(
        "\n".join(lines[:5] + [f"{lines[5]} ||| {lines[6]}"]) + "\n", encoding="utf-8"
    )
    convert_checkpoint.reference_to_hf(
        str(inputs / "init" / "bert_model.ckpt"),
        str(inputs / "bert_config.json"),
        str(inputs / "vocab.txt"),
        str(inputs / "hf"),
    )
    return inputs


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(RUNS))
def test_script_on_ram_filesystem_matches_local_disk(script, script_inputs, tmp_path):
    flags, compare = RUNS[script]
    os.symlink(script_inputs, tmp_path / "in")
    (tmp_path / "out").mkdir()
    # The two runs at once: each process is mostly single-threaded start-up, and the machine has two cores.
    runs = [
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for command in (
            [
                sys.executable,
                os.path.join(REPO_ROOT, f"{script}.py"),
                *(flag.replace("{work}", str(tmp_path)) for flag in flags),
            ],
            [
                sys.executable,
                os.path.join(REPO_ROOT, "tests", "ram_runner.py"),
                str(tmp_path),
                f"{script}.py",
                *flags,
            ],
        )
    ]
    for run in runs:
        stderr = run.communicate()[1]
        assert run.returncode == 0, stderr[-3000:]
    assert _files(tmp_path / "out") == _files(tmp_path / "ram_out")
    compare(str(tmp_path / "out"), str(tmp_path / "ram_out"))
