"""Runs many command lines of one script, each in its own process, paying its imports once.

    python tests/script_runner.py SCRIPT CASES_JSON RESULTS_JSON

CASES_JSON holds [{"argv": [...], "cwd": DIR}, ...]. The script (and TensorFlow with it) is
imported once; each case then runs in a forked child exactly as `python SCRIPT.py ARGV` runs it
from DIR (errors.run_script(main[, parse_flags]), the scripts' `__main__` line), with its stdout and stderr in
DIR/stdout.txt and DIR/stderr.txt. An exception that escapes prints its traceback and exits 1,
as Python does. RESULTS_JSON gets [{"exit_code": int, "stderr": str}, ...] in the cases' order.
TensorFlow's runtime starts in each child, never in this parent, so forking it is safe.
"""

import atexit
import importlib
import json
import os
import sys
import traceback

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_case(module, argv, cwd):
    """In the child: runs the script's entry point; returns its exit status."""
    import errors

    os.chdir(cwd)
    for stream, name in ((1, "stdout.txt"), (2, "stderr.txt")):
        descriptor = os.open(os.path.join(cwd, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(descriptor, stream)
        os.close(descriptor)
    sys.argv = [f"{module.__name__}.py"] + argv
    try:
        errors.run_script(module.main, getattr(module, "parse_flags", errors.parse_flags))
        return 0
    except SystemExit as exit_request:
        code = exit_request.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except BaseException:
        traceback.print_exc()
        return 1


def main():
    script, cases_path, results_path = sys.argv[1:]
    sys.path.insert(0, REPO_ROOT)
    module = importlib.import_module(script)
    with open(cases_path, encoding="utf-8") as reader:
        cases = json.load(reader)
    results = []
    for case in cases:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            status = run_case(module, case["argv"], case["cwd"])
            atexit._run_exitfuncs()  # as at a normal exit: the scripts release their locks there
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
        _, wait_status = os.waitpid(pid, 0)
        with open(
            os.path.join(case["cwd"], "stderr.txt"), encoding="utf-8", errors="replace"
        ) as reader:
            stderr = reader.read()
        results.append({"exit_code": os.waitstatus_to_exitcode(wait_status), "stderr": stderr})
    with open(results_path, "w", encoding="utf-8") as writer:
        json.dump(results, writer)


if __name__ == "__main__":
    main()
