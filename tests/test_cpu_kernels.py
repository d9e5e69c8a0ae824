"""cpu_kernels: TensorFlow's oneDNN kernels on in every script and core module, unless the
environment says otherwise."""

import ast
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

ONEDNN_ENABLED = (
    "import {module}\n"
    "from tensorflow.python.util import _pywrap_util_port\n"
    "print(_pywrap_util_port.IsMklEnabled())\n"
)


@pytest.mark.parametrize("setting, expected", [(None, "True"), ("1", "True"), ("0", "False")])
def test_importing_the_engine_turns_onednn_on_unless_the_environment_turns_it_off(
    setting, expected
):
    environment = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        environment["TF_ENABLE_ONEDNN_OPTS"] = setting
    result = subprocess.run(
        [sys.executable, "-c", ONEDNN_ENABLED.format(module="training")],
        cwd=REPO_ROOT,
        env={**environment, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == expected


def first_imports(path):
    """The top-level modules `path` imports, in order."""
    with open(path) as source:
        tree = ast.parse(source.read())
    names = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module.split(".")[0])
    return names


def test_every_module_that_imports_tensorflow_imports_cpu_kernels_first():
    checked = []
    for name in sorted(os.listdir(REPO_ROOT)):
        if not name.endswith(".py"):
            continue
        imports = first_imports(os.path.join(REPO_ROOT, name))
        if "tensorflow" in imports:
            assert imports[0] == "cpu_kernels", f"{name} imports {imports[0]} before cpu_kernels"
            checked.append(name)
    assert {"modeling.py", "training.py", "run_classifier.py", "run_squad.py"} <= set(checked)
