"""Runs one of the scripts in this process with every path on TensorFlow's in-memory ram://
filesystem, which goes through the same tf.io.gfile calls as gs://.

    python tests/ram_runner.py LOCAL_WORK SCRIPT.py --flag={work}/in/x ... --output_dir={work}/out

LOCAL_WORK/in is copied to ram://work/in, the script runs with {work} standing for ram://work,
and ram://work/out is copied back to LOCAL_WORK/ram_out. The same flags with {work} standing for
LOCAL_WORK write LOCAL_WORK/out on local disk, for comparison.
"""

import atexit
import os
import runpy
import sys

import tensorflow as tf

RAM_ROOT = "ram://work"


def copy_tree(source, target):
    for directory, _, names in tf.io.gfile.walk(source):
        relative = directory[len(source) :].lstrip("/")
        tf.io.gfile.makedirs(os.path.join(target, relative))
        for name in names:
            tf.io.gfile.copy(
                os.path.join(directory, name), os.path.join(target, relative, name), overwrite=True
            )


def main():
    local_work, script, *flags = sys.argv[1:]
    copy_tree(os.path.join(local_work, "in"), f"{RAM_ROOT}/in")
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, repo_root)
    sys.argv = [script] + [flag.replace("{work}", RAM_ROOT) for flag in flags]
    try:
        runpy.run_path(os.path.join(repo_root, script), run_name="__main__")
        status = 0
    except SystemExit as exit_request:
        status = exit_request.code or 0
    atexit._run_exitfuncs()  # what the script does at exit (releasing its output_dir's lock) happens before the copy
    if tf.io.gfile.exists(f"{RAM_ROOT}/out"):
        copy_tree(f"{RAM_ROOT}/out", os.path.join(local_work, "ram_out"))
    sys.exit(status)


if __name__ == "__main__":
    main()
