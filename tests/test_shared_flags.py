"""shared_flags.py: every script imports beside the others, each lists exactly the flags it reads,
and a shared flag is defined once in the repository."""

import importlib
import inspect
import os
import re
import subprocess
import sys

from absl import flags
import pytest

import shared_flags
from conftest import REPO_ROOT

SCRIPTS = (
    "build_vocab",
    "convert_checkpoint",
    "create_pretraining_data",
    "export_model",
    "extract_features",
    "prepare_pretraining_text",
    "run_classifier",
    "run_demo",
    "run_pretraining",
    "run_squad",
)
OPTION_FUNCTIONS = (shared_flags.strategy_options, shared_flags.trainer_options)


class RecordingFlags:
    """Stands for FLAGS: answers as FLAGS does, remembering every flag asked for."""

    def __init__(self):
        self.read = set()

    def __getattr__(self, name):
        self.read.add(name)
        return getattr(flags.FLAGS, name)

    def __getitem__(self, name):
        self.read.add(name)
        return flags.FLAGS[name]

    def __contains__(self, name):
        return name in flags.FLAGS


def flags_read_by(function, monkeypatch):
    recorder = RecordingFlags()
    monkeypatch.setattr(shared_flags, "FLAGS", recorder)
    function()
    return {name for name in recorder.read if name in flags.FLAGS}


def test_every_script_imports_together_and_lists_exactly_the_flags_it_reads(monkeypatch):
    modules = {name: importlib.import_module(name) for name in SCRIPTS}
    flags.FLAGS.mark_as_parsed()
    for name, module in modules.items():
        source = inspect.getsource(module)
        listed = {flag.name for flag in flags.FLAGS.get_key_flags_for_module(module)}
        read = {flag for flag in re.findall(r"\bFLAGS\.(\w+)", source) if flag in flags.FLAGS}
        for function in OPTION_FUNCTIONS:
            if f"shared_flags.{function.__name__}()" in source:
                read |= flags_read_by(function, monkeypatch)
        assert read <= listed, (
            f"{name}.py reads flags its --help does not list: {sorted(read - listed)}"
        )
        # Flags the script names only in a string (`for name in ("data_dir", ...): getattr(FLAGS, name)`).
        unread = {flag for flag in listed - read if f'"{flag}"' not in source}
        assert not unread, f"{name}.py lists flags it never reads: {sorted(unread)}"


def flag_definitions(directory):
    """{flag: [file, ...]} of the DEFINE_ calls in the .py files of `directory`."""
    definitions = {}
    for file_name in sorted(os.listdir(directory)):
        if file_name.endswith(".py"):
            with open(os.path.join(directory, file_name), encoding="utf-8") as reader:
                for flag in re.findall(r'DEFINE_\w+\(\s*"(\w+)"', reader.read()):
                    definitions.setdefault(flag, []).append(file_name)
    return definitions


def test_each_shared_flag_is_defined_once_in_the_repository():
    scripts = flag_definitions(REPO_ROOT)
    assert not {flag: files for flag, files in scripts.items() if len(files) > 1}
    with open(os.path.join(REPO_ROOT, "shared_flags.py"), encoding="utf-8") as reader:
        shared = set(re.findall(r'_define\(\s*flags\.DEFINE_\w+,\s*"(\w+)"', reader.read()))
    assert {
        "vocab_file",
        "do_lower_case",
        "max_seq_length",
        "input_file",
        "output_file",
        "init_checkpoint",
        "bert_config_file",
        "train_batch_size",
        "use_tpu",
    } <= shared
    benchmarks = flag_definitions(os.path.join(REPO_ROOT, "benchmarks"))
    assert not shared & (set(scripts) | set(benchmarks)), (
        "a shared flag is defined outside shared_flags.py"
    )


@pytest.mark.slow
def test_help_of_a_script_shows_its_flags_and_not_the_engines_others():
    """export_model.py once imported the engine's flags: its --help showed ~25 training flags."""
    result = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "export_model.py"), "--help"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr[-2000:]  # absl's --help exits with 1
    shown = set(re.findall(r"^  --(?:\[no\])?(\w+):", result.stdout, flags=re.M))
    assert shown == {
        "bert_config_file",
        "init_checkpoint",
        "vocab_file",
        "do_lower_case",
        "max_seq_length",
        "label_list",
        "random_seed",
        "export_dir",
    }
