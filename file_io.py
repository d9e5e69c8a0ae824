"""Input files and output files: globs that fail clearly, and writes that are never seen half done.

Paths with a scheme (gs://, hdfs://, ...) go through tf.io.gfile, as Cloud TPU users keep their
data and checkpoints in buckets; local paths need no TensorFlow.
"""

import contextlib
import glob
import os
import struct

from errors import InputError


def _is_remote(path):
    return "://" in path


def _gfile():
    import tensorflow as tf  # only for remote paths

    return tf.io.gfile


def expand_input_files(patterns, flag_name):
    """Comma-separated globs → their files, each pattern's sorted, in the order given.

    Raises InputError naming the flag when it is empty or a pattern matches nothing.
    """
    files = []
    for pattern in filter(None, (p.strip() for p in (patterns or "").split(","))):
        matched = sorted(_gfile().glob(pattern) if _is_remote(pattern) else glob.glob(pattern))
        if not matched:
            raise InputError(f"--{flag_name}: {pattern} matches no file")
        files.extend(matched)
    if not files:
        raise InputError(f"--{flag_name} is required")
    return files


@contextlib.contextmanager
def atomic_output(path):
    """Yields a temporary path beside `path`; renames it to `path` if the block completes, else removes it."""
    temporary = f"{path}.tmp-{os.getpid()}"
    gfile = _gfile() if _is_remote(path) else None
    try:
        yield temporary
        if gfile:
            gfile.rename(temporary, path, overwrite=True)
        else:
            os.replace(temporary, path)
    finally:
        if gfile and gfile.exists(temporary):
            gfile.remove(temporary)
        elif not gfile and os.path.exists(temporary):
            os.remove(temporary)


def write_text_atomically(path, text):
    """Writes `text` (UTF-8) to `path` through a temporary name."""
    with atomic_output(path) as temporary:
        if _is_remote(path):
            with _gfile().GFile(temporary, "w") as writer:
                writer.write(text)
        else:
            with open(temporary, "w", encoding="utf-8") as writer:
                writer.write(text)


def check_output_directory(path, flag_name):
    """InputError naming the flag when the directory that will hold `path` does not exist."""
    directory = os.path.dirname(path) if _is_remote(path) else os.path.dirname(os.path.abspath(path))
    exists = _gfile().isdir(directory) if _is_remote(path) else os.path.isdir(directory)
    if not exists:
        raise InputError(f"--{flag_name}: directory {directory} does not exist")


class TFRecordWriter:
    """Writes a TFRecord file (the format of tf.io.TFRecordWriter) without TensorFlow.

    Each record: its length (uint64), the masked CRC32C of the length, the data, the masked
    CRC32C of the data, all little-endian.
    """

    def __init__(self, path):
        self._file = open(path, "wb")

    @staticmethod
    def _masked_crc(data):
        import google_crc32c

        crc = google_crc32c.value(data)
        return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)

    def write(self, record):
        length = struct.pack("<Q", len(record))
        self._file.write(length + self._masked_crc(length) + record + self._masked_crc(record))

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
