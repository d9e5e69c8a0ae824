"""How bad input is reported: one line naming the file, flag or line, and a non-zero exit.

Modules raise InputError for what the user can fix (a missing file, a malformed line, a flag out
of range); scripts start through run_script, which prints such an error as one line and exits 2.
A flag that does not parse or is out of its bounds, and an operating-system or storage failure
that escaped the code that names its file (disk full, a truncated or corrupt file), are printed
the same way. Anything else is a bug and keeps its traceback.
"""

import re
import sys

from absl import app
from absl import flags

EXIT_BAD_INPUT = 2


class InputError(ValueError):
    """Bad input: the message names the file, flag or line and says what is wrong."""


def _storage_errors():
    """OSError, and TensorFlow's errors of data and storage when TensorFlow is loaded (this module
    does not import it: the data workers run without it)."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return (OSError,)
    return (
        OSError,
        tf.errors.DataLossError,
        tf.errors.NotFoundError,
        tf.errors.PermissionDeniedError,
        tf.errors.ResourceExhaustedError,
        tf.errors.OutOfRangeError,
    )


def describe(error, with_file=True):
    """The reason of an OSError, a tf.errors.OpError or a flag error, on one line (an OSError's file
    first, with_file). From a compiled function TensorFlow's message opens with `Graph execution
    error:` and the Python stack of the failing op; the reason is the line after that stack."""
    if isinstance(error, OSError) and error.strerror:
        return (
            f"{error.filename}: {error.strerror}"
            if with_file and error.filename
            else error.strerror
        )
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    lines = message.strip().splitlines() or [type(error).__name__]
    if lines[0].strip() == "Graph execution error:":
        stackless = [
            line
            for line in lines[1:]
            if line.strip()
            and not line.startswith((" ", "\t", "[["))
            and not line.startswith("Detected at node")
        ]
        lines = stackless[-1:] or lines
    return re.sub(r"\{\{[^}]*\}\}\s*", "", lines[0].strip()).split(" [Op:")[0]


def parse_flags(argv, known_only=False):
    """absl's parse of argv; a flag that does not parse is `error: <message>`, exit 2.

    Returns the arguments left: the positional ones, and with known_only the flags no module
    defines (create_pretraining_data hands those to Apache Beam).
    """
    try:
        return flags.FLAGS(argv, known_only=known_only)
    except flags.Error as error:
        print(f"error: {describe(error)}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def run_script(main, flags_parser=parse_flags):
    """absl.app.run(main), with an InputError, a bad flag or a storage failure printed as
    `error: <message>` and exit status 2. A script with its own flags_parser builds it on
    parse_flags."""
    try:
        app.run(main, flags_parser=flags_parser)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except _storage_errors() as error:
        print(f"error: {describe(error)}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
