"""How bad input is reported: one line naming the file, flag or line, and a non-zero exit.

Modules raise InputError for what the user can fix (a missing file, a malformed line, a flag out
of range); scripts start through run_script, which prints such an error as one line and exits 2.
Anything else is a bug and keeps its traceback.
"""

import sys

from absl import app

EXIT_BAD_INPUT = 2


class InputError(ValueError):
    """Bad input: the message names the file, flag or line and says what is wrong."""


def run_script(main):
    """absl.app.run(main), with an InputError printed as `error: <message>` and exit status 2."""
    try:
        app.run(main)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
