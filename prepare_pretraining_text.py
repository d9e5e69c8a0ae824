"""Turns raw text into create_pretraining_data.py's input: one sentence per line, a blank line between documents.

    python prepare_pretraining_text.py --input_file='wiki/*.txt' --output_file=corpus.txt --document_boundary=blank_line

--document_boundary says where documents end in the input:
  blank_line  blank lines separate documents; every other line is a paragraph (or a title)
  line        every line is a whole document (one article or paragraph per line)
  file        every file is one document
Each paragraph is split into sentences after `.`, `!` or `?` (and any closing quotes or
brackets) followed by a space and a capital letter, digit or opening quote; not after common
abbreviations (Mr., Dr., e.g., U.S., ...) or single initials (J. R. R. Tolkien). Streams: memory
holds one paragraph at a time.
"""

import re

from absl import flags

import errors
import file_io
import shared_flags
import tokenization

FLAGS = flags.FLAGS

shared_flags.define_input_file("Raw text files: a comma-separated list of globs.")
shared_flags.define_output_file("The sentence-per-line file to write.")
flags.DEFINE_enum(
    "document_boundary", "blank_line", ["blank_line", "line", "file"], "Where documents end."
)

_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt vs etc e.g i.e cf al fig no vol pp ed eds approx ca c inc ltd co corp dept est "
    "jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k u.n a.d b.c gen col lt sgt capt rev gov sen rep".split()
)
_SENTENCE_END = re.compile(r"""[.!?]+["'”’)\]]*(?=\s+["'“‘(\[]?[A-Z0-9])""")


def split_sentences(paragraph):
    """A paragraph → its sentences, stripped; no sentence is empty."""
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(paragraph):
        end = match.end()
        words = paragraph[start : match.start() + 1].split()
        last_word = words[-1].rstrip(".").lower() if words else ""
        if match.group().startswith(".") and (
            last_word in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last_word)
        ):
            continue
        sentences.append(paragraph[start:end].strip())
        start = end
    sentences.append(paragraph[start:].strip())
    return [sentence for sentence in sentences if sentence]


def documents_of(paths, boundary):
    """Yields documents as lists of paragraphs, streaming the files."""
    for path in paths:
        document = []
        for line in tokenization.read_text_lines(path):
            line = line.strip()
            if boundary == "line":
                if line:
                    yield [line]
            elif line:
                document.append(line)
            elif boundary == "blank_line" and document:
                yield document
                document = []
        if document:
            yield document


def main(argv):
    del argv
    if not FLAGS.output_file:
        raise errors.InputError("--output_file is required")
    paths = file_io.expand_input_files(FLAGS.input_file, "input_file")
    file_io.check_output_directory(FLAGS.output_file, "output_file")
    documents = sentences = 0
    with (
        file_io.atomic_output(FLAGS.output_file) as temporary,
        file_io.open_file(temporary, "w") as writer,
    ):
        for document in documents_of(paths, FLAGS.document_boundary):
            lines = [sentence for paragraph in document for sentence in split_sentences(paragraph)]
            if documents:
                writer.write("\n")
            writer.write("".join(f"{line}\n" for line in lines))
            documents += 1
            sentences += len(lines)
        if not documents:  # inside the block: an existing output is left as it was
            raise errors.InputError(f"--input_file: {FLAGS.input_file} holds no text")
    print(f"Wrote {documents} documents, {sentences} sentences to {FLAGS.output_file}")


if __name__ == "__main__":
    errors.run_script(main)
