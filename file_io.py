"""Every path a user gives, local or on any tf.io.gfile scheme (gs://, ram://, hdfs://, s3://, ...).

Cloud TPU users keep vocabularies, configs, checkpoints, data and outputs in buckets, so every
read, write, listing and rename of a user path goes through this module; no other module calls
open(), os.path's file queries, glob, shutil or os.replace on one (tests/test_file_io.py checks).
Local paths take a TensorFlow-free path (create_pretraining_data's workers never import it);
paths with a scheme go through tf.io.gfile.

Patterns: a user path is never used as a pattern. expand_input_files takes globs where the flag
says so (--input_file), and even there a path that names an existing file is taken literally;
everything else lists a directory and compares names.

Never half-written. An output is written under a temporary name beside it, then renamed:
  - the temporary name is hidden and ends in `.tmp-<host>-<pid>`: `.eval.tf_record.tmp-h-12`.
    No glob whose name part starts with a letter or ends in an extension (`out*`, `*.tfrecord`)
    matches it, and remove_stale_temporaries removes those a killed run of this host left.
  - Local disk: os.replace, atomic, so the final name holds the old file or the whole new one.
  - Object stores (gs://): there is no atomic rename, and gfile.rename is a copy then a delete.
    A bucket object becomes visible only once its upload completes, so the final name still
    appears whole or not at all; what can be left behind by a kill between the copy and the
    delete is the hidden temporary, which no output glob matches.
  - Several files that belong together (a checkpoint's data and index, a SavedModel folder)
    are published file by file with the file readers look for written last: a checkpoint's
    `.index`, then the `checkpoint` state file (training.py), a SavedModel's saved_model.pb
    (publish_directory). A reader that finds that file finds the rest complete.
"""

import atexit
import contextlib
import csv
import glob
import io
import os
import socket
import struct
import sys
import time

import errors
from errors import InputError

TEMPORARY_MARKER = ".tmp-"
LOCK_FILE = ".lock"
# What a reader of a SavedModel looks for first: copied last, so a visible one means a complete export.
SAVED_MODEL_COMPLETION_FILES = ("saved_model.pb", "saved_model.pbtxt")
# Dots would end the host part of a temporary's name.
_HOST = socket.gethostname().replace(".", "_")
# Enough to learn whether a bucket grants reading, without downloading the file.
_PROBE_BYTES = 1
# Locks this process holds, released at exit.
_held_locks = set()


def is_local(path):
    return "://" not in path


def _gfile():
    import tensorflow as tf  # only for paths with a scheme

    return tf.io.gfile


def _bucket(path):
    """`gs://bucket` of `gs://bucket/a/b`; the scheme and authority of any remote path."""
    scheme, rest = path.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _io_errors():
    tf = sys.modules.get("tensorflow")
    return (OSError, tf.errors.OpError) if tf is not None else (OSError,)


def _is_permission_error(error):
    tf = sys.modules.get("tensorflow")
    return isinstance(error, PermissionError) or (
        tf is not None and isinstance(error, tf.errors.PermissionDeniedError)
    )


@contextlib.contextmanager
def reporting(path, failure, prefix=""):
    """Turns an I/O failure inside the block into one InputError, `<prefix><path><failure>
    (<reason>)`, e.g. reporting(path, ": cannot be read", "--vocab_file: ") or reporting(path,
    " is not writable", "--output_dir: "); a permission failure on a bucket also says what to grant."""
    try:
        yield
    except InputError:
        raise
    except _io_errors() as error:
        message = f"{prefix}{path}{failure} ({errors.describe(error, with_file=False)})"
        if _is_permission_error(error) and not is_local(path):
            role = (
                "roles/storage.objectViewer"
                if "read" in failure or "listed" in failure
                else "roles/storage.objectAdmin"
            )
            message += (
                f"; grant the account this runs as (on a Cloud TPU, the TPU's service account) {role} "
                f"on {_bucket(path)}"
            )
        raise InputError(message) from None


# Queries.


def exists(path):
    return os.path.exists(path) if is_local(path) else _gfile().exists(path)


def isdir(path):
    return os.path.isdir(path) if is_local(path) else _gfile().isdir(path)


def listdir(path):
    """Names in directory `path`, sorted."""
    return sorted(
        os.listdir(path)
        if is_local(path)
        else (name.rstrip("/") for name in _gfile().listdir(path))
    )


def files_starting_with(directory, name_prefix):
    """Paths of the entries of `directory` whose names start with `name_prefix`, sorted. The
    directory is listed, never globbed: a directory named `exp[1]` or `a*b` is only itself."""
    if not isdir(directory):
        return []
    return [
        os.path.join(directory, name) for name in listdir(directory) if name.startswith(name_prefix)
    ]


def expand_input_files(patterns, flag_name):
    """Comma-separated globs → their files, each pattern's sorted, in the order given.

    A pattern that names an existing file is that file, even if it holds glob characters. Remote
    inputs are probed for read access, one file per bucket, so a permission failure is reported
    before any work. Raises InputError naming the flag when it is empty or a pattern matches nothing.
    """
    files, probed = [], set()
    for pattern in filter(None, (p.strip() for p in (patterns or "").split(","))):
        with reporting(pattern, ": cannot be listed", f"--{flag_name}: "):
            if exists(pattern) and not isdir(pattern):
                matched = [pattern]
            else:
                matched = sorted(
                    glob.glob(pattern) if is_local(pattern) else _gfile().glob(pattern)
                )
        # A killed run's temporaries are hidden, but a bucket's glob matches hidden names too.
        matched = [path for path in matched if not _is_temporary_name(os.path.basename(path))]
        if not matched:
            raise InputError(f"--{flag_name}: {pattern} matches no file")
        for path in matched:
            if is_local(path) and os.path.isdir(path):
                raise InputError(f"--{flag_name}: {path} is a directory, not a file")
        for path in matched:
            if not is_local(path) and _bucket(path) not in probed:
                probed.add(_bucket(path))
                with (
                    reporting(path, ": cannot be read", f"--{flag_name}: "),
                    open_file(path, "rb") as reader,
                ):
                    reader.read(_PROBE_BYTES)
        files.extend(matched)
    if not files:
        raise InputError(f"--{flag_name} is required")
    return files


# Reading.


def open_file(path, mode="rb"):
    """A file object for `path`; text modes read and write UTF-8."""
    if not is_local(path):
        return _gfile().GFile(path, mode)
    if "b" in mode:
        return open(path, mode)
    return open(path, mode, encoding="utf-8", newline="")


def read_bytes(path, prefix=""):
    """The whole of `path`; an InputError `<prefix><path>: cannot be read (...)` when it cannot be."""
    with reporting(path, ": cannot be read", prefix), open_file(path, "rb") as reader:
        return reader.read()


def read_text(path, prefix=""):
    """The whole of `path` decoded as UTF-8 without a leading byte-order mark (which would stick to
    the first word or label), undecodable bytes replaced (U+FFFD)."""
    return read_bytes(path, prefix).decode("utf-8-sig", errors="replace")


def read_lines(path, prefix=""):
    """Yields the lines of `path` as bytes, line ends kept, streaming (never the whole file)."""
    with reporting(path, ": cannot be read", prefix), open_file(path, "rb") as reader:
        yield from reader


# Writing.


def _makedirs(path):
    if is_local(path):
        os.makedirs(path, exist_ok=True)
    else:
        _gfile().makedirs(path)


def makedirs(path, prefix=""):
    with reporting(path, ": cannot be created", prefix):
        _makedirs(path)


def remove(path):
    if is_local(path):
        os.remove(path)
    else:
        _gfile().remove(path)


def rmtree(path):
    """Removes directory `path` and everything in it."""
    if is_local(path):
        import shutil

        shutil.rmtree(path)
        return
    gfile = _gfile()
    # File by file, as every object store allows (ram:// has no recursive delete), then what is left.
    for directory, _, names in list(gfile.walk(path)):
        for name in names:
            gfile.remove(os.path.join(directory, name))
    try:
        gfile.rmtree(path)
    except sys.modules["tensorflow"].errors.NotFoundError:
        pass  # nothing was left: ram:// and buckets have no directories of their own


def temporary_path(path):
    """The hidden name `path` is written under before it is renamed into place."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}{TEMPORARY_MARKER}{_HOST}-{os.getpid()}")


def rename(source, target):
    """Renames a file, replacing `target` (copy then delete on object stores)."""
    if is_local(source):
        os.replace(source, target)
    else:
        _gfile().rename(source, target, overwrite=True)


@contextlib.contextmanager
def atomic_output(path):
    """Yields a temporary path beside `path`; renames it to `path` if the block completes, else removes it."""
    temporary = temporary_path(path)
    try:
        yield temporary
        with reporting(path, ": cannot be written"):
            rename(temporary, path)
    finally:
        if exists(temporary):
            remove(temporary)


def write_bytes_atomically(path, data):
    with (
        atomic_output(path) as temporary,
        reporting(path, ": cannot be written"),
        open_file(temporary, "wb") as writer,
    ):
        writer.write(data)


def write_text_atomically(path, text):
    """Writes `text` (UTF-8) to `path` through a temporary name."""
    write_bytes_atomically(path, text.encode("utf-8"))


def copy_file(source, target):
    """Copies `source` to `target` through a temporary name."""
    write_bytes_atomically(target, read_bytes(source))


def check_output_directory(path, flag_name):
    """Before any work: InputError naming the flag when the local directory that will hold `path`
    does not exist or `path` is a directory. Buckets have no real directories, so a remote one is
    created, which also fails (one line) for a bucket that does not exist or denies writing. What
    killed runs of this host left of `path` is removed."""
    check_output_files([path], flag_name)


def check_output_files(paths, flag_name, input_paths=()):
    """check_output_directory for each of `paths`, and an InputError for a path named twice or also
    among `input_paths`; each directory is checked and listed once, however many outputs it holds."""
    inputs, seen, by_directory = set(input_paths), set(), {}
    for path in paths:
        if path in seen:
            raise InputError(f"--{flag_name}: {path} is named twice")
        if path in inputs:
            raise InputError(f"--{flag_name}: {path} is also an input file")
        if is_local(path) and os.path.isdir(path):
            raise InputError(f"--{flag_name}: {path} is a directory")
        seen.add(path)
        by_directory.setdefault(os.path.dirname(path) or ".", []).append(os.path.basename(path))
    for directory, names in by_directory.items():
        if not is_local(directory):
            makedirs(directory, f"--{flag_name}: directory ")
        elif not os.path.isdir(directory):
            raise InputError(
                f"--{flag_name}: directory {os.path.abspath(directory)} does not exist"
            )
        remove_stale_temporaries(directory, names)


def prepare_output_dir(path, flag_name="output_dir", lock=True):
    """Creates directory `path`, proves it writable by writing and removing a probe file (a bucket
    that denies writing fails here, before any work), takes its lock (see lock_directory; pass
    lock=False on the workers of a job whose chief holds it) and removes what killed runs left."""
    probe = temporary_path(os.path.join(path, "write-probe"))
    with reporting(path, " is not writable", f"--{flag_name}: "):
        _makedirs(path)
        with open_file(probe, "wb") as writer:
            writer.write(b"")
        remove(probe)
    if lock:
        lock_directory(path, flag_name)
    remove_stale_temporaries(path)


def lock_directory(path, flag_name="output_dir"):
    """Holds directory `path` for this process until it exits: a second run on it stops with one
    line naming the holder; a lock a dead process of this host left is taken over.

    The lock is the file `.lock` (`<host> <pid> <start time>`), created exclusively on a local
    disk. Object stores have no exclusive create through tf.io.gfile: there the lock is written
    and read back, which refuses every run but one that starts the same second.
    """
    lock = os.path.join(path, LOCK_FILE)
    if lock in _held_locks:
        return
    owner = f"{_HOST} {os.getpid()} {time.strftime('%Y-%m-%dT%H:%M:%S')}"
    with reporting(lock, ": cannot be taken", f"--{flag_name}: lock "):
        for _ in range(2):
            if _create_exclusively(lock, owner):
                _held_locks.add(lock)
                atexit.register(_release_lock, lock, owner)
                return
            holder = read_text(lock).split()
            if len(holder) >= 2 and _is_dead_local_process(holder[0], holder[1]):
                remove(lock)
                continue
            since = f" since {holder[2]}" if len(holder) >= 3 else ""
            who = f"process {holder[1]} on {holder[0]}" if len(holder) >= 2 else "another run"
            raise InputError(
                f"--{flag_name}: {path} is in use by {who}{since}; if that run is gone, "
                f"delete {lock}"
            )
    raise InputError(f"--{flag_name}: lock {lock} cannot be taken: another run keeps taking it")


def _create_exclusively(path, text):
    if is_local(path):
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w", encoding="utf-8") as writer:
            writer.write(text)
        return True
    if exists(path):
        return False
    with open_file(path, "wb") as writer:
        writer.write(text.encode("utf-8"))
    return read_text(path) == text


def _release_lock(path, owner):
    try:
        if read_text(path) == owner:
            remove(path)
    except InputError:
        pass  # gone already; at exit there is nobody left to tell


def _is_temporary_name(name):
    return name.startswith(".") and TEMPORARY_MARKER in name


def _is_dead_local_process(host, pid):
    """Whether `pid` on `host` names a process of this host that no longer runs (False for other hosts)."""
    if host != _HOST or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


def _is_stale_temporary(name):
    if not _is_temporary_name(name):
        return False
    host_pid = name.rsplit(TEMPORARY_MARKER, 1)[1].split(".", 1)[0]
    host, _, pid = host_pid.rpartition("-")
    # Another machine's may still be being written.
    return _is_dead_local_process(host, pid)


def remove_stale_temporaries(directory, of_names=("",)):
    """Removes the temporaries that dead processes of this host left in `directory` (only those of
    the files `of_names`, when given)."""
    prefixes = tuple(f".{name}" for name in of_names)
    for name in listdir(directory):
        if name.startswith(prefixes) and _is_stale_temporary(name):
            path = os.path.join(directory, name)
            if isdir(path):
                rmtree(path)
            else:
                remove(path)


def publish_directory(temporary, final):
    """Moves the finished directory `temporary` to `final`, replacing what was there.

    Local: one rename (the old directory is moved aside first, then removed). Object stores: file
    by file, the SavedModel's saved_model.pb last, then the temporary is removed.
    """
    if is_local(final):
        previous = temporary_path(final) + ".previous"
        if os.path.exists(final):
            os.replace(final, previous)
        os.replace(temporary, final)
        if os.path.exists(previous):
            rmtree(previous)
        return
    gfile = _gfile()
    if gfile.exists(final):
        rmtree(final)
    files, last = [], []
    for directory, _, names in gfile.walk(temporary):
        for name in names:
            source = os.path.join(directory, name)
            relative = source[len(temporary) :].lstrip("/")
            (last if relative in SAVED_MODEL_COMPLETION_FILES else files).append(relative)
    for relative in files + last:
        target = os.path.join(final, relative)
        gfile.makedirs(os.path.dirname(target))
        gfile.copy(os.path.join(temporary, relative), target, overwrite=True)
    rmtree(temporary)


def _masked_crc(data):
    import google_crc32c

    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def tfrecord(record):
    """`record` framed as in a TFRecord file, which is such framed records one after another: its
    length (uint64), the masked CRC32C of the length, the data, the masked CRC32C of the data, all
    little-endian."""
    length = struct.pack("<Q", len(record))
    return length + _masked_crc(length) + record + _masked_crc(record)


class TFRecordWriter:
    """Writes a TFRecord file (the format of tf.io.TFRecordWriter); on local disk without TensorFlow."""

    def __init__(self, path):
        self._file = open_file(path, "wb")

    def write(self, record):
        self._file.write(tfrecord(record))

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def read_table(path, delimiter="\t"):
    """Rows of a tsv/csv file as lists of strings, row i on line i + 1 (the GLUE files quote nothing:
    QUOTE_NONE for tsv). A csv record that quoting carries over several lines is an InputError:
    it is almost always an unbalanced quote that would swallow rows."""
    if not exists(path):
        raise InputError(f"{path}: file not found")
    text = read_text(path)
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quotechar=None if delimiter == "\t" else '"',
        quoting=quoting,
    )
    rows = []
    try:
        for row in reader:
            if reader.line_num != len(rows) + 1:
                raise InputError(
                    f"{path}:{len(rows) + 1}: a quoted field runs on to line {reader.line_num} "
                    "(an unbalanced quote? fields holding line breaks are not supported)"
                )
            rows.append(row)
    except csv.Error as error:
        raise InputError(f"{path}:{reader.line_num}: {error}") from None
    return rows
