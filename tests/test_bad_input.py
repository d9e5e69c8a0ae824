"""Bad input, tried on every script as a careless or hostile user would (issue 15's sweep).

Each case runs the script's command line (tests/script_runner.py: `python SCRIPT.py FLAGS` in a
forked child, imports paid once per script) in its own copy of one work folder, and asserts the
exit status, that stderr ends in one line `error: ...` holding the expected words and shows no
traceback, that every file that was there before is byte-identical after (nothing lost), and
that no temporary or lock is left behind. Numbered comments (#7) are the issue's numbered cases.
"""

import collections
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

import file_io
from conftest import REPO_ROOT

pytestmark = pytest.mark.slow

Case = collections.namedtuple(
    "Case",
    ["name", "script", "argv", "expected", "setup", "exit_code", "absent", "changes", "present"],
)


def case(name, script, argv, expected, setup=None, exit_code=2, absent=(), changes=(), present=()):
    """expected: words the last stderr line holds (exit_code 2), or None for a run that must succeed.
    absent / present: files that must not / must exist after; changes: files (or name prefixes) that may
    change or go."""
    return Case(
        name,
        script,
        list(argv),
        expected,
        setup,
        exit_code,
        tuple(absent),
        tuple(changes),
        tuple(present),
    )


# Base command lines, every path relative to the case's work folder.
CPD = [
    "--input_file=corpus.txt",
    "--output_file=data.tfrecord",
    "--vocab_file=vocab.txt",
    "--max_seq_length=32",
    "--max_predictions_per_seq=5",
    "--dupe_factor=1",
]
RP = [
    "--input_file=sample.tfrecord",
    "--output_dir=run",
    "--bert_config_file=bert_config.json",
    "--max_seq_length=32",
    "--max_predictions_per_seq=5",
    "--train_batch_size=8",
    "--num_train_steps=3",
    "--num_warmup_steps=1",
    "--iterations_per_loop=1",
    "--do_train=True",
    "--use_xla=False",
]
RC = [
    "--task_name=SST-2",
    "--data_dir=glue",
    "--vocab_file=vocab.txt",
    "--bert_config_file=bert_config.json",
    "--output_dir=cls",
    "--do_train=True",
    "--max_seq_length=32",
    "--train_batch_size=4",
    "--use_xla=False",
]
RCSV = [
    "--task_name=csv",
    "--data_dir=table",
    "--skip_header=False",
    "--text_a_column=1",
    "--label_column=0",
    "--vocab_file=vocab.txt",
    "--bert_config_file=bert_config.json",
    "--output_dir=cls",
    "--do_train=True",
    "--max_seq_length=32",
    "--train_batch_size=4",
    "--use_xla=False",
]
RS = [
    "--vocab_file=vocab.txt",
    "--bert_config_file=bert_config.json",
    "--output_dir=sq",
    "--do_train=True",
    "--train_file=squad/train.json",
    "--max_seq_length=48",
    "--max_query_length=8",
    "--doc_stride=16",
    "--train_batch_size=4",
    "--use_xla=False",
]
EF = [
    "--input_file=lines.txt",
    "--output_file=features.jsonl",
    "--vocab_file=vocab.txt",
    "--bert_config_file=bert_config.json",
    "--init_checkpoint=trained/model.ckpt-3",
    "--layers=-1",
    "--max_seq_length=16",
]
BV = [
    "--input_file=corpus.txt",
    "--output_file=built_vocab.txt",
    "--vocab_size=100",
    "--min_frequency=1",
    "--num_unused_tokens=0",
]
PPT = ["--input_file=corpus.txt", "--output_file=sentences.txt"]
CC_TO_HF = [
    "--init_checkpoint=trained/model.ckpt-3",
    "--bert_config_file=bert_config.json",
    "--vocab_file=vocab.txt",
    "--output_dir=hf_out",
]
CC_TO_REF = ["--hf_model_dir=hf", "--output_dir=ref_out"]
EM = [
    "--init_checkpoint=trained/model.ckpt-3",
    "--bert_config_file=bert_config.json",
    "--vocab_file=vocab.txt",
    "--export_dir=export",
    "--max_seq_length=32",
]


def replaced(argv, **flags):
    """argv with --name=value set for each flag (added when absent); value None drops the flag."""
    result = [arg for arg in argv if arg.split("=")[0].lstrip("-") not in flags]
    return result + [f"--{name}={value}" for name, value in flags.items() if value is not None]


# Setups: each changes the case's work folder before the run.


def write(relative, content):
    def setup(work):
        path = os.path.join(work, relative)
        os.makedirs(os.path.dirname(path) or work, exist_ok=True)
        with open(path, "wb") as writer:
            writer.write(content.encode("utf-8") if isinstance(content, str) else content)

    return setup


def config_with(**changes):
    def setup(work):
        with open(os.path.join(work, "bert_config.json"), encoding="utf-8") as reader:
            config = json.load(reader)
        config.update(changes)
        for key in [k for k, v in changes.items() if v is None]:
            del config[key]
        write("bad_config.json", json.dumps(config))(work)

    return setup


def truncate(relative, keep_fraction):
    def setup(work):
        path = os.path.join(work, relative)
        with open(path, "rb") as reader:
            data = reader.read()
        with open(path, "wb") as writer:
            writer.write(data[: int(len(data) * keep_fraction)])

    return setup


def lock_held_by(pid_of):
    def setup(work):
        with open(
            os.path.join(work, "trained", file_io.LOCK_FILE), "w", encoding="utf-8"
        ) as writer:
            writer.write(f"{file_io._HOST} {pid_of()} 2026-01-01T00:00:00")

    return setup


def dead_pid():
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def squad_with(mutate, name="train.json"):
    def setup(work):
        with open(os.path.join(work, "squad", "train.json"), encoding="utf-8") as reader:
            data = json.load(reader)
        mutate(data)
        write(f"squad/{name}", json.dumps(data))(work)

    return setup


def drop_answer_text(data):
    del data["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["text"]


def empty_contexts(data):
    for paragraph in data["data"][0]["paragraphs"]:
        paragraph["context"] = ""
        for qa in paragraph["qas"]:
            qa.update(is_impossible=True, answers=[])


def duplicate_ids(data):
    qas = data["data"][0]["paragraphs"][0]["qas"]
    qas.append(dict(qas[0]))


def symlink(target, relative):
    """A link at `relative` to `target` (relative to the work folder, which may not exist)."""

    def setup(work):
        os.symlink(target, os.path.join(work, relative))

    return setup


def combined(*setups):
    def setup(work):
        for each in setups:
            each(work)

    return setup


SQUAD_TEST = write(
    "squad/test.json",
    json.dumps(
        {"data": [{"paragraphs": [{"context": "a b", "qas": [{"id": "1", "question": "?"}]}]}]}
    ),
)
NER = [
    "--data_dir=conll",
    "--vocab_file=vocab.txt",
    "--bert_config_file=bert_config.json",
    "--output_dir=ner",
    "--do_train=True",
    "--max_seq_length=32",
    "--train_batch_size=4",
    "--use_xla=False",
]
CONLL = "-DOCSTART- -X- -X- O\n\nthe DT B-NP B-PER\ncat NN I-NP I-PER\nsat VBD B-VP O\n\n"

SWAG = [
    "--data_dir=swag",
    "--vocab_file=vocab.txt",
    "--bert_config_file=bert_config.json",
    "--output_dir=mc",
    "--do_train=True",
    "--max_seq_length=32",
    "--train_batch_size=2",
    "--use_xla=False",
]
SWAG_HEADER = (
    "video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2,ending3"
)
SWAG_TRAIN = SWAG_HEADER + ",label\n" + "v,0,x,the cat sat.,it,gold,ran.,sat.,slept.,ate.,1\n" * 4

GLUE_TRAIN = "sentence\tlabel\n" + "".join(f"the cat sat number {i}\t{i % 2}\n" for i in range(8))

CASES = [
    # create_pretraining_data.py
    case(
        "cpd_no_input",
        "create_pretraining_data",
        replaced(CPD, input_file=None),
        "--input_file is required",
    ),
    case(
        "cpd_glob_matches_nothing",
        "create_pretraining_data",
        replaced(CPD, input_file="nothing*.txt"),
        "--input_file: nothing*.txt matches no file",
    ),
    case(
        "cpd_input_is_a_directory",
        "create_pretraining_data",
        replaced(CPD, input_file="glue"),
        "--input_file: glue is a directory",
    ),
    case(
        "cpd_vocab_missing",
        "create_pretraining_data",
        replaced(CPD, vocab_file="missing.txt"),
        "missing.txt",
    ),
    case(
        "cpd_vocab_without_unk",
        "create_pretraining_data",
        replaced(CPD, vocab_file="v.txt"),
        "has no [UNK] token",
        setup=write("v.txt", "[PAD]\n[CLS]\n[SEP]\nthe\n"),
    ),
    case(
        "cpd_binary_vocab",
        "create_pretraining_data",
        replaced(CPD, vocab_file="v.bin"),
        "has no [UNK] token",
        setup=write("v.bin", bytes(range(256)) * 4),
    ),
    case(
        "cpd_max_seq_length_too_small",
        "create_pretraining_data",
        replaced(CPD, max_seq_length=3),
        "--max_seq_length=3 leaves no room for two segments",
    ),
    case(
        "cpd_masked_lm_prob_above_1",
        "create_pretraining_data",
        replaced(CPD, masked_lm_prob=1.5),
        "flag --masked_lm_prob=1.5: 1.5 is not a number in the range [0.0, 1.0]",
    ),
    case(
        "cpd_short_seq_prob_negative",
        "create_pretraining_data",
        replaced(CPD, short_seq_prob=-0.1),
        "flag --short_seq_prob=-0.1",
    ),
    case(
        "cpd_dupe_factor_0",
        "create_pretraining_data",
        replaced(CPD, dupe_factor=0),
        "flag --dupe_factor=0: 0 is not a positive integer",
    ),
    case(
        "cpd_max_predictions_0",
        "create_pretraining_data",
        replaced(CPD, max_predictions_per_seq=0),
        "flag --max_predictions_per_seq=0",
    ),
    case(
        "cpd_num_workers_0",
        "create_pretraining_data",
        replaced(CPD, num_workers=0),
        "flag --num_workers=0",
    ),
    case(
        "cpd_documents_per_shard_0",
        "create_pretraining_data",
        replaced(CPD, documents_per_shard=0),
        "flag --documents_per_shard=0",
    ),
    case(
        "cpd_output_directory_missing",
        "create_pretraining_data",
        replaced(CPD, output_file="nowhere/data.tfrecord"),
        "--output_file: directory",
        absent=["nowhere"],
    ),
    # 12
    case(
        "cpd_output_named_twice",
        "create_pretraining_data",
        replaced(CPD, output_file="a.tfrecord,a.tfrecord"),
        "--output_file: a.tfrecord is named twice",
        absent=["a.tfrecord"],
    ),
    case(
        "cpd_output_is_the_input",
        "create_pretraining_data",
        replaced(CPD, output_file="corpus.txt"),
        "--output_file: corpus.txt is also an input file",
    ),
    case(
        "cpd_output_is_a_directory",
        "create_pretraining_data",
        replaced(CPD, output_file="glue"),
        "--output_file: glue is a directory",
    ),
    case(
        "cpd_empty_input_keeps_old_output",
        "create_pretraining_data",
        replaced(CPD, input_file="blank.txt"),
        "gave no instances",
        setup=combined(write("blank.txt", "\n\n  \n"), write("data.tfrecord", b"old output")),
    ),
    case(
        "cpd_misspelt_flag",
        "create_pretraining_data",
        CPD + ["--max_seq_lenght=64"],
        "Unknown command line flag 'max_seq_lenght'",
    ),
    case(
        "cpd_beam_glob_matches_nothing",
        "create_pretraining_data",
        replaced(CPD, input_file="nothing*.txt", runner="DirectRunner"),
        "--input_file: nothing*.txt matches no file",
    ),
    case(
        "cpd_beam_unreadable_input",
        "create_pretraining_data",
        replaced(CPD, input_file="corpus.txt,gone.txt", runner="DirectRunner"),
        "error: --input_file: gone.txt: cannot be read (No such file or directory)",
        setup=symlink("deleted.txt", "gone.txt"),
    ),
    case(
        "cpd_beam_misspelt_flag",
        "create_pretraining_data",
        CPD + ["--runner=DirectRunner", "--max_seq_lenght=64"],
        "error: --max_seq_lenght: neither a flag of this script nor a Beam pipeline option",
    ),
    case(
        "cpd_beam_unknown_runner",
        "create_pretraining_data",
        replaced(CPD, runner="NoSuchRunner"),
        "--runner=NoSuchRunner: Unexpected pipeline runner: NoSuchRunner",
    ),
    case(
        "cpd_beam_option_without_runner",
        "create_pretraining_data",
        CPD + ["--direct_num_workers=2"],
        "Unknown command line flag 'direct_num_workers'",
    ),
    case(
        "cpd_beam_empty_input_keeps_old_output",
        "create_pretraining_data",
        replaced(CPD, input_file="blank.txt", runner="DirectRunner"),
        "gave no instances",
        setup=combined(write("blank.txt", "\n\n  \n"), write("data.tfrecord", b"old output")),
    ),
    case(
        "cpd_flag_not_a_number",
        "create_pretraining_data",
        replaced(CPD, dupe_factor="ten"),
        "flag --dupe_factor=ten: invalid literal for int()",
    ),
    # run_pretraining.py
    case(
        "rp_neither_train_nor_eval",
        "run_pretraining",
        replaced(RP, do_train=False),
        "at least one of --do_train or --do_eval",
    ),
    case(
        "rp_no_config",
        "run_pretraining",
        replaced(RP, bert_config_file=None),
        "--bert_config_file is required",
    ),
    # 8
    case(
        "rp_config_misspelt_key",
        "run_pretraining",
        replaced(RP, bert_config_file="bad_config.json"),
        "unknown key 'num_hiden_layers' (did you mean num_hidden_layers?)",
        setup=config_with(num_hiden_layers=1, num_hidden_layers=None),
    ),
    case(
        "rp_config_not_json",
        "run_pretraining",
        replaced(RP, bert_config_file="bad_config.json"),
        "bad_config.json: not valid JSON",
        setup=write("bad_config.json", "{vocab_size: 3"),
    ),
    case(
        "rp_config_is_a_list",
        "run_pretraining",
        replaced(RP, bert_config_file="bad_config.json"),
        "not a JSON object",
        setup=write("bad_config.json", "[1, 2]"),
    ),
    case(
        "rp_config_heads_do_not_divide",
        "run_pretraining",
        replaced(RP, bert_config_file="bad_config.json"),
        "hidden_size 32 is not a multiple of num_attention_heads 3",
        setup=config_with(num_attention_heads=3),
    ),
    case(
        "rp_config_negative_layers",
        "run_pretraining",
        replaced(RP, bert_config_file="bad_config.json"),
        "num_hidden_layers must be a positive integer",
        setup=config_with(num_hidden_layers=-2),
    ),
    case(
        "rp_config_is_a_directory", "run_pretraining", replaced(RP, bert_config_file="glue"), "glue"
    ),
    # 9
    case(
        "rp_negative_learning_rate",
        "run_pretraining",
        replaced(RP, learning_rate=-1e-4),
        "flag --learning_rate=-0.0001: must be > 0",
    ),
    # 4
    case(
        "rp_keep_checkpoint_max_negative",
        "run_pretraining",
        replaced(RP, keep_checkpoint_max=-1),
        "flag --keep_checkpoint_max=-1: -1 is not a non-negative integer",
    ),
    case(
        "rp_train_batch_size_0",
        "run_pretraining",
        replaced(RP, train_batch_size=0),
        "flag --train_batch_size=0",
    ),
    case(
        "rp_eval_batch_size_negative",
        "run_pretraining",
        replaced(RP, eval_batch_size=-8),
        "flag --eval_batch_size=-8",
    ),
    case(
        "rp_iterations_per_loop_0",
        "run_pretraining",
        replaced(RP, iterations_per_loop=0),
        "flag --iterations_per_loop=0",
    ),
    case(
        "rp_save_checkpoints_steps_0",
        "run_pretraining",
        replaced(RP, save_checkpoints_steps=0),
        "flag --save_checkpoints_steps=0",
    ),
    case(
        "rp_accumulation_0",
        "run_pretraining",
        replaced(RP, gradient_accumulation_steps=0),
        "flag --gradient_accumulation_steps=0",
    ),
    case(
        "rp_accumulation_does_not_divide",
        "run_pretraining",
        replaced(RP, gradient_accumulation_steps=3),
        "--gradient_accumulation_steps=3 does not divide the per-replica batch",
    ),
    case(
        "rp_num_train_steps_0",
        "run_pretraining",
        replaced(RP, num_train_steps=0),
        "flag --num_train_steps=0",
    ),
    case(
        "rp_unknown_precision",
        "run_pretraining",
        replaced(RP, precision="fp64"),
        "flag --precision=fp64",
    ),
    case(
        "rp_seq_longer_than_positions",
        "run_pretraining",
        replaced(RP, max_seq_length=128),
        "--max_seq_length=128 exceeds max_position_embeddings 64",
    ),
    case(
        "rp_records_of_other_length",
        "run_pretraining",
        replaced(RP, max_predictions_per_seq=7),
        "feature masked_lm_positions has 5 values per record but --max_predictions_per_seq expects 7",
    ),
    case(
        "rp_truncated_records",
        "run_pretraining",
        replaced(RP, input_file="cut.tfrecord"),
        "cut.tfrecord: is not a complete TFRecord file (truncated record at",
        setup=combined(
            lambda work: shutil.copy(
                os.path.join(work, "sample.tfrecord"), os.path.join(work, "cut.tfrecord")
            ),
            truncate("cut.tfrecord", 0.5),
        ),
    ),
    case(
        "rp_text_file_as_records",
        "run_pretraining",
        replaced(RP, input_file="corpus.txt"),
        "corpus.txt: is not a complete TFRecord file (corrupted record at 0",
    ),
    case(
        "rp_init_checkpoint_missing",
        "run_pretraining",
        replaced(RP, init_checkpoint="none/bert_model.ckpt"),
        "none/bert_model.ckpt",
    ),
    case(
        "rp_truncated_init_checkpoint",
        "run_pretraining",
        replaced(RP, init_checkpoint="trained/model.ckpt-3"),
        "checkpoint trained/model.ckpt-3: cannot be read as a checkpoint",
        setup=truncate("trained/model.ckpt-3.data-00000-of-00001", 0.5),
    ),
    # 10
    case(
        "rp_resume_with_fewer_layers",
        "run_pretraining",
        replaced(RP, output_dir="trained", bert_config_file="bad_config.json"),
        "variables this model lacks, first bert/encoder/layer_1/",
        setup=config_with(num_hidden_layers=1),
    ),
    # 14
    case(
        "rp_output_dir_in_use",
        "run_pretraining",
        replaced(RP, output_dir="trained"),
        "is in use by process",
        setup=lock_held_by(os.getpid),
    ),
    case(
        "rp_stale_lock_is_taken_over",
        "run_pretraining",
        replaced(RP, output_dir="trained"),
        None,
        setup=lock_held_by(dead_pid),
        exit_code=0,
        absent=["trained/.lock"],
    ),
    # 1
    case(
        "rp_output_dir_with_glob_characters",
        "run_pretraining",
        replaced(
            RP,
            output_dir="exp[1]",
            num_train_steps=2,
            save_checkpoints_steps=1,
            keep_checkpoint_max=1,
        ),
        None,
        exit_code=0,
        setup=lambda work: shutil.copytree(
            os.path.join(work, "trained"), os.path.join(work, "exp1")
        ),
        present=["exp[1]/model.ckpt-2.index", "exp[1]/model.ckpt-2.data-00000-of-00001"],
        absent=["exp[1]/model.ckpt-1.index"],
    ),
    # 2
    case(
        "rp_state_names_a_deleted_checkpoint",
        "run_pretraining",
        replaced(RP, output_dir="trained"),
        None,
        exit_code=0,
        setup=write(
            "trained/checkpoint",
            'model_checkpoint_path: "model.ckpt-20"\n'
            'all_model_checkpoint_paths: "model.ckpt-3"\n'
            'all_model_checkpoint_paths: "model.ckpt-20"\n',
        ),
    ),
    # 3
    case(
        "rp_state_lists_a_pattern",
        "run_pretraining",
        replaced(RP, output_dir="trained", num_train_steps=4, keep_checkpoint_max=2),
        None,
        exit_code=0,
        setup=combined(
            write(
                "trained/checkpoint",
                'model_checkpoint_path: "model.ckpt-3"\n'
                'all_model_checkpoint_paths: "*"\n'
                'all_model_checkpoint_paths: "model.ckpt-3"\n',
            ),
            write("trained/notes.txt", "mine"),
        ),
        changes=["trained/checkpoint"],
        present=["trained/model.ckpt-4.index"],
    ),
    # 13
    case(
        "rp_stale_temporaries_are_removed",
        "run_pretraining",
        replaced(RP, output_dir="trained"),
        None,
        exit_code=0,
        setup=lambda work: write(
            f"trained/.model.ckpt-9.index.tmp-{file_io._HOST}-{dead_pid()}", b"half"
        )(work),
        changes=["trained/.model.ckpt-9.index.tmp-"],
    ),
    case(
        "rp_input_glob_matches_nothing",
        "run_pretraining",
        replaced(RP, input_file="missing*.tfrecord"),
        "error: --input_file: missing*.tfrecord matches no file",
    ),
    case(
        "rp_records_shorter_than_max_seq_length",
        "run_pretraining",
        replaced(RP, max_seq_length=64),
        "feature input_ids has 32 values per record but --max_seq_length expects 64",
    ),
    case(
        "rp_records_with_fewer_predictions",
        "run_pretraining",
        replaced(RP, max_predictions_per_seq=20),
        "feature masked_lm_positions has 5 values per record but --max_predictions_per_seq expects 20",
    ),
    case(
        "rp_batch_not_divisible_by_replicas",
        "run_pretraining",
        replaced(RP, cpu_replicas=2, train_batch_size=9),
        "--train_batch_size=9 is not divisible by the 2 replicas",
    ),
    case(
        "rp_init_checkpoint_of_another_config",
        "run_pretraining",
        replaced(RP, bert_config_file="bad_config.json", init_checkpoint="trained/model.ckpt-3"),
        "intermediate/dense/bias has shape [64] but the model's is [48]",
        setup=config_with(intermediate_size=48),
        absent=["run/checkpoint"],
    ),
    case(
        "rp_output_dir_is_a_file",
        "run_pretraining",
        replaced(RP, output_dir="corpus.txt/run"),
        "--output_dir: corpus.txt/run is not writable",
    ),
    # run_classifier.py
    case(
        "rc_no_action",
        "run_classifier",
        replaced(RC, do_train=False),
        "at least one of --do_train, --do_eval or --do_predict must be True",
    ),
    case(
        "rc_mrpc_train_file_missing",
        "run_classifier",
        replaced(RC, task_name="MRPC", data_dir="table"),
        "error: table/train.tsv: file not found",
    ),
    case(
        "rc_unknown_task",
        "run_classifier",
        replaced(RC, task_name="sst3"),
        "--task_name=sst3 is not one of",
    ),
    case(
        "rc_train_file_missing",
        "run_classifier",
        replaced(RC, data_dir="table"),
        "table/train.tsv: file not found",
    ),
    # 7
    case(
        "rc_unknown_label",
        "run_classifier",
        RC,
        "glue/train.tsv:3: unknown label '2'",
        setup=write("glue/train.tsv", "sentence\tlabel\nthe cat\t1\na dog\t2\n"),
    ),
    case(
        "rc_bom_label_of_glue_task",
        "run_classifier",
        RC,
        None,
        exit_code=0,
        setup=write("glue/train.tsv", "\ufeff" + GLUE_TRAIN),
    ),
    case(
        "rc_csv_unbalanced_quote",
        "run_classifier",
        RCSV,
        "table/train.csv:2: a quoted field runs on to line 4",
        setup=write("table/train.csv", '0,the cat\n1,"a dog\n0,a bird\n1,a fish\n'),
    ),
    case(
        "rc_missing_column",
        "run_classifier",
        RC,
        "glue/train.tsv:2: has 1 columns, the label is column 2",
        setup=write("glue/train.tsv", "sentence\tlabel\nno label here\n"),
    ),
    case(
        "rc_empty_text",
        "run_classifier",
        RC,
        "glue/train.tsv:2: empty text",
        setup=write("glue/train.tsv", "sentence\tlabel\n \t1\n"),
    ),
    case(
        "rc_empty_train_file",
        "run_classifier",
        RC,
        "glue/train.tsv: holds no examples",
        setup=write("glue/train.tsv", ""),
    ),
    case(
        "rc_regression_label_not_a_number",
        "run_classifier",
        replaced(RC, task_name="sts-b"),
        "label 'high' is not a number",
        setup=write(
            "glue/train.tsv",
            "i\tg\tf\ty\tgs\tid\tid2\ts1\ts2\tscore\n" + "0\ta\tb\t2015\t1\t1\t1\tone\ttwo\thigh\n",
        ),
    ),
    case(
        "rc_max_seq_length_2",
        "run_classifier",
        replaced(RC, max_seq_length=2),
        "--max_seq_length=2 leaves no room for [CLS], a token and [SEP]",
    ),
    case(
        "rc_seq_longer_than_positions",
        "run_classifier",
        replaced(RC, max_seq_length=100),
        "--max_seq_length=100 exceeds max_position_embeddings 64",
    ),
    case(
        "rc_zero_epochs",
        "run_classifier",
        replaced(RC, num_train_epochs=0),
        "flag --num_train_epochs=0.0: must be > 0",
    ),
    case(
        "rc_warmup_above_1",
        "run_classifier",
        replaced(RC, warmup_proportion=1.5),
        "flag --warmup_proportion=1.5",
    ),
    case(
        "rc_predict_batch_size_0",
        "run_classifier",
        replaced(RC, predict_batch_size=0),
        "flag --predict_batch_size=0",
    ),
    case(
        "rc_hub_and_checkpoint",
        "run_classifier",
        replaced(RC, hub_module_handle="hub", init_checkpoint="x"),
        "--hub_module_handle and --init_checkpoint both give the initial weights",
    ),
    case(
        "rc_case_contradicts_checkpoint",
        "run_classifier",
        replaced(RC, init_checkpoint="cased_L-12_H-768_A-12/bert_model.ckpt", do_lower_case=True),
        "cased_L-12_H-768_A-12 was trained on cased text",
    ),
    case("rc_vocab_missing", "run_classifier", replaced(RC, vocab_file="none.txt"), "none.txt"),
    case(
        "rc_column_name_unknown",
        "run_classifier",
        replaced(RCSV, text_a_column="sentence", skip_header=True),
        "--text_a_column=sentence is neither a column index nor a header name of table/train.csv",
    ),
    case(
        "rc_column_out_of_range",
        "run_classifier",
        replaced(RCSV, text_a_column=5),
        "table/train.csv:1: has 2 columns, text_a is column 6",
    ),
    # run_squad.py
    # 6
    case(
        "rs_doc_stride_0",
        "run_squad",
        replaced(RS, doc_stride=0),
        "flag --doc_stride=0: 0 is not a positive integer",
    ),
    case(
        "rs_doc_stride_negative", "run_squad", replaced(RS, doc_stride=-5), "flag --doc_stride=-5"
    ),
    case(
        "rs_query_fills_the_sequence",
        "run_squad",
        replaced(RS, max_query_length=45),
        "--max_seq_length=48 must exceed --max_query_length + 3 = 48",
    ),
    case(
        "rs_train_file_not_json",
        "run_squad",
        replaced(RS, train_file="corpus.txt"),
        "corpus.txt: not valid JSON",
    ),
    case(
        "rs_not_a_squad_file",
        "run_squad",
        replaced(RS, train_file="squad/bad.json"),
        'no "data" list',
        setup=write("squad/bad.json", '{"version": "1.1"}'),
    ),
    case(
        "rs_answer_without_text",
        "run_squad",
        RS,
        'question q0 answer has no "text"',
        setup=squad_with(drop_answer_text),
    ),
    case(
        "rs_gold_answer_without_text",
        "run_squad",
        replaced(
            RS,
            do_train=False,
            do_predict=True,
            predict_file="squad/dev.json",
            init_checkpoint="trained/model.ckpt-3",
        ),
        'question q0 answer 0 has no "text"',
        setup=squad_with(drop_answer_text, "dev.json"),
    ),
    case(
        "rs_v2_empty_contexts",
        "run_squad",
        replaced(RS, version_2_with_negative=True),
        "question q0: its context (article 0 paragraph 0) is empty",
        setup=squad_with(empty_contexts),
    ),
    case(
        "rs_duplicate_question_id",
        "run_squad",
        RS,
        "question q0: the id is used twice",
        setup=squad_with(duplicate_ids),
    ),
    case(
        "rs_train_file_cut_short",
        "run_squad",
        replaced(RS, train_file="squad/cut.json"),
        "error: squad/cut.json: not valid JSON (Expecting value: line 1 column 11 (char 10))",
        setup=write("squad/cut.json", '{"data": ['),
    ),
    case(
        "rs_predict_without_file",
        "run_squad",
        replaced(RS, do_train=False, do_predict=True),
        "error: --predict_file is required with --do_predict",
    ),
    case(
        "rs_null_threshold_not_a_number",
        "run_squad",
        replaced(
            RS,
            do_train=False,
            do_predict=True,
            predict_file="squad/test.json",
            null_score_diff_threshold="high",
        ),
        "error: --null_score_diff_threshold=high is neither a number nor best",
        setup=SQUAD_TEST,
    ),
    case(
        "rs_best_null_threshold_needs_v2",
        "run_squad",
        replaced(
            RS,
            do_train=False,
            do_predict=True,
            predict_file="squad/test.json",
            null_score_diff_threshold="best",
        ),
        "error: --null_score_diff_threshold=best needs --version_2_with_negative=True",
        setup=SQUAD_TEST,
    ),
    case(
        "rs_query_leaves_no_room",
        "run_squad",
        replaced(
            RS,
            do_train=False,
            do_predict=True,
            predict_file="squad/test.json",
            max_seq_length=60,
            max_query_length=64,
        ),
        "error: --max_seq_length=60 must exceed --max_query_length + 3 = 67",
        setup=SQUAD_TEST,
    ),
    case("rs_n_best_size_0", "run_squad", replaced(RS, n_best_size=0), "flag --n_best_size=0"),
    case(
        "rs_max_answer_length_0",
        "run_squad",
        replaced(RS, max_answer_length=0),
        "flag --max_answer_length=0",
    ),
    case(
        "rs_train_file_missing",
        "run_squad",
        replaced(RS, train_file="squad/none.json"),
        "squad/none.json: file not found",
    ),
    case(
        "rs_binary_train_file",
        "run_squad",
        replaced(RS, train_file="squad/bin.json"),
        "squad/bin.json: not valid JSON",
        setup=write("squad/bin.json", bytes(range(256))),
    ),
    # extract_features.py
    case(
        "ef_layer_out_of_range",
        "extract_features",
        replaced(EF, layers="5"),
        "--layers=5: layer 5 is out of range",
    ),
    case(
        "ef_layers_not_numbers",
        "extract_features",
        replaced(EF, layers="last"),
        "--layers=last: not a comma-separated list of integers",
    ),
    case("ef_batch_size_0", "extract_features", replaced(EF, batch_size=0), "flag --batch_size=0"),
    case("ef_input_missing", "extract_features", replaced(EF, input_file="none.txt"), "none.txt"),
    case(
        "ef_output_directory_missing",
        "extract_features",
        replaced(EF, output_file="nowhere/f.jsonl"),
        "--output_file: directory",
        absent=["nowhere"],
    ),
    case(
        "ef_max_seq_length_2",
        "extract_features",
        replaced(EF, max_seq_length=2),
        "--max_seq_length=2 leaves no room for [CLS], a token and [SEP]",
    ),
    # build_vocab.py
    case("bv_vocab_size_0", "build_vocab", replaced(BV, vocab_size=0), "flag --vocab_size=0"),
    case(
        "bv_no_room_for_specials",
        "build_vocab",
        replaced(BV, vocab_size=3),
        "--vocab_size=3 leaves no room",
    ),
    case(
        "bv_empty_input",
        "build_vocab",
        replaced(BV, input_file="blank.txt"),
        "holds no text",
        setup=write("blank.txt", "\n \n"),
    ),
    case(
        "bv_min_frequency_0", "build_vocab", replaced(BV, min_frequency=0), "flag --min_frequency=0"
    ),
    # prepare_pretraining_text.py
    # 5
    case(
        "ppt_empty_input_keeps_old_output",
        "prepare_pretraining_text",
        replaced(PPT, input_file="blank.txt"),
        "holds no text",
        setup=combined(write("blank.txt", "\n\n"), write("sentences.txt", "old sentences\n")),
    ),
    case(
        "ppt_no_output",
        "prepare_pretraining_text",
        replaced(PPT, output_file=None),
        "--output_file is required",
    ),
    case(
        "ppt_input_missing",
        "prepare_pretraining_text",
        replaced(PPT, input_file="none.txt"),
        "--input_file: none.txt matches no file",
    ),
    # convert_checkpoint.py
    case(
        "cc_both_directions",
        "convert_checkpoint",
        CC_TO_HF + ["--hf_model_dir=hf"],
        "give exactly one of",
    ),
    case(
        "cc_no_weights",
        "convert_checkpoint",
        CC_TO_REF,
        "has neither model.safetensors nor pytorch_model.bin",
        absent=["ref_out"],
    ),
    case(
        "cc_malformed_safetensors",
        "convert_checkpoint",
        CC_TO_REF,
        "hf/model.safetensors",
        setup=write("hf/model.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all"),
        absent=["ref_out"],
    ),
    case(
        "cc_not_a_bert_model",
        "convert_checkpoint",
        CC_TO_REF,
        "model_type 'gpt2' is not bert",
        setup=write("hf/config.json", json.dumps({"model_type": "gpt2", "vocab_size": 10})),
    ),
    # 11
    case(
        "cc_config_contradicts_weights",
        "convert_checkpoint",
        replaced(CC_TO_HF, bert_config_file="bad_config.json"),
        "bad_config.json does not match checkpoint trained/model.ckpt-3",
        setup=config_with(intermediate_size=48),
        absent=["hf_out/config.json", "hf_out/model.safetensors"],
    ),
    case(
        "cc_config_with_fewer_layers",
        "convert_checkpoint",
        replaced(CC_TO_HF, bert_config_file="bad_config.json"),
        "the checkpoint has",
        setup=config_with(num_hidden_layers=1),
        absent=["hf_out/config.json"],
    ),
    # 1
    case(
        "cc_output_dir_with_glob_characters",
        "convert_checkpoint",
        replaced(CC_TO_HF, output_dir="hf[1]"),
        None,
        exit_code=0,
        present=[
            "hf[1]/model.safetensors",
            "hf[1]/config.json",
            "hf[1]/tokenizer_config.json",
            "hf[1]/vocab.txt",
        ],
    ),
    case(
        "cc_hf_dir_without_config",
        "convert_checkpoint",
        replaced(CC_TO_REF, hf_model_dir="empty_hf"),
        "--hf_model_dir: empty_hf/config.json: cannot be read",
        setup=lambda work: os.makedirs(os.path.join(work, "empty_hf")),
    ),
    case(
        "cc_hf_relative_positions",
        "convert_checkpoint",
        CC_TO_REF,
        "is not the reference's absolute positions",
        setup=write(
            "hf/config.json",
            json.dumps(
                {
                    "vocab_size": 300,
                    "hidden_size": 32,
                    "num_attention_heads": 2,
                    "position_embedding_type": "relative_key",
                }
            ),
        ),
    ),
    case(
        "cc_neither_direction",
        "convert_checkpoint",
        ["--output_dir=hf_out"],
        "give exactly one of --hf_model_dir",
    ),
    case(
        "cc_hf_config_as_bert_config",
        "convert_checkpoint",
        replaced(CC_TO_HF, init_checkpoint="missing.ckpt", bert_config_file="hf/config.json"),
        "'model_type' is a key of a Hugging Face config.json",
    ),
    case(
        "cc_checkpoint_missing",
        "convert_checkpoint",
        replaced(CC_TO_HF, init_checkpoint="missing.ckpt"),
        "no such checkpoint",
    ),
    case(
        "cc_truncated_checkpoint",
        "convert_checkpoint",
        CC_TO_HF,
        "cannot be read as a checkpoint",
        setup=truncate("trained/model.ckpt-3.index", 0.3),
        absent=["hf_out/model.safetensors"],
    ),
    # export_model.py
    case(
        "em_no_export_dir",
        "export_model",
        replaced(EM, export_dir=None),
        "error: --export_dir is required",
    ),
    case(
        "em_checkpoint_missing",
        "export_model",
        replaced(EM, init_checkpoint="none"),
        "error: checkpoint none: no such checkpoint (none.index is missing)",
        absent=["export/encoder"],
    ),
    case(
        "em_vocab_does_not_fit_config",
        "export_model",
        replaced(EM, vocab_file="small_vocab.txt"),
        "error: --vocab_file=small_vocab.txt has 5 tokens but bert_config.json says vocab_size 300",
        absent=["export/encoder"],
        setup=write("small_vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"),
    ),
    case(
        "em_max_seq_length_0",
        "export_model",
        replaced(EM, max_seq_length=0),
        "flag --max_seq_length=0",
    ),
    # run_ner.py
    case(
        "ner_column_count",
        "run_ner",
        NER,
        "conll/train.txt:4: 2 columns, but the file's first token line has 4",
        setup=write("conll/train.txt", "the DT B-NP B-PER\ncat NN I-NP I-PER\n\nsat O\n"),
    ),
    case(
        "ner_tag_of_no_known_form",
        "run_ner",
        NER,
        "conll/train.txt:2: tag 'PER' is neither O nor B-, I-, E- or S- and a type",
        setup=write("conll/train.txt", "the DT B-NP O\ncat NN I-NP PER\n"),
    ),
    case(
        "ner_dev_tag_not_in_train",
        "run_ner",
        NER + ["--do_eval=True"],
        "conll/valid.txt:3: tag 'B-LOC' is not among the labels (B-PER, I-PER, O)",
        setup=write("conll/valid.txt", "-DOCSTART- -X- -X- O\n\nParis NNP B-NP B-LOC\n"),
    ),
    case(
        "ner_no_sentence",
        "run_ner",
        NER,
        "conll/train.txt: holds no sentence",
        setup=write("conll/train.txt", "-DOCSTART- -X- -X- O\n\n\n"),
    ),
    case(
        "ner_one_column_train",
        "run_ner",
        NER,
        "conll/train.txt:1: one column, but a train file needs the token and its tag",
        setup=write("conll/train.txt", "the\ncat\n"),
    ),
    case(
        "ner_no_dev_file",
        "run_ner",
        NER + ["--do_eval=True"],
        "--data_dir=conll: has no dev.txt or valid.txt",
    ),
    case(
        "ner_bad_label_list",
        "run_ner",
        NER + ["--label_list=O,PER"],
        "--label_list: tag 'PER' is neither O nor",
    ),
    case(
        "ner_doc_stride_0",
        "run_ner",
        NER + ["--doc_stride=0"],
        "flag --doc_stride=0: 0 is not a positive integer",
    ),
    # run_swag.py
    case(
        "swag_label_out_of_range",
        "run_swag",
        SWAG,
        "swag/train.csv:3: label '4' is not an ending's index (0 to 3)",
        setup=write(
            "swag/train.csv",
            SWAG_HEADER + ",label\nv,0,x,a.,b,g,c.,d.,e.,f.,1\nv,0,x,a.,b,g,c.,d.,e.,f.,4\n",
        ),
    ),
    case(
        "swag_column_count",
        "run_swag",
        SWAG,
        "swag/train.csv:2: 10 columns, but the header has 11",
        setup=write(
            "swag/train.csv", SWAG_HEADER + ",label\nv,0,x,the cat.,it,gold,ran.,sat.,slept.,1\n"
        ),
    ),
    case(
        "swag_no_endings",
        "run_swag",
        SWAG,
        "swag/train.csv:1: the header needs sent1, sent2 and ending0, ending1",
        setup=write("swag/train.csv", "sent1,sent2,label\nthe cat.,it,0\n"),
    ),
    case(
        "swag_empty_context",
        "run_swag",
        SWAG,
        "swag/train.csv:2: sent1, the context, is empty",
        setup=write(
            "swag/train.csv", SWAG_HEADER + ",label\nv,0,x, ,it,gold,ran.,sat.,slept.,ate.,0\n"
        ),
    ),
    case(
        "swag_unbalanced_quote",
        "run_swag",
        SWAG,
        "swag/train.csv:2: a quoted field runs on to line",
        setup=write(
            "swag/train.csv",
            SWAG_HEADER
            + ',label\nv,0,x,"the cat.,it,gold,ran.,sat.,slept.,ate.,0\nv,0,x,a,b,g,c,d,e,f,0\n',
        ),
    ),
    case(
        "swag_no_val_file",
        "run_swag",
        SWAG + ["--do_eval=True"],
        "swag/val.csv: file not found",
    ),
]


def write_work_folder(work, pretraining_data):
    """The files every case starts from: a 300-token vocabulary, a 2-layer config, pretraining
    records, a checkpoint with optimizer slots at step 3 in trained/, and task data."""
    import tensorflow as tf

    import modeling
    import optimization

    for name in ("vocab.txt", "bert_config.json", "sample.tfrecord"):
        shutil.copy(pretraining_data / name, work / name)
    with open(os.path.join(REPO_ROOT, "sample_text.txt"), encoding="utf-8") as reader:
        (work / "corpus.txt").write_text("".join(reader.readlines()[:40]), encoding="utf-8")
    (work / "lines.txt").write_text("the cat sat\nhello world ||| again\n", encoding="utf-8")

    config = modeling.BertConfig.from_json_file(str(work / "bert_config.json"))
    model = modeling.BertPretrainingModel(config)
    optimizer = optimization.create_optimizer(model.trainable_variables, 1e-4, 10, 1)
    tensors = {
        **modeling.variables_by_name(model),
        **optimizer.slot_variables(),
        modeling.GLOBAL_STEP_NAME: tf.constant(3, tf.int64),
    }
    (work / "trained").mkdir()
    modeling.save_checkpoint(str(work / "trained" / "model.ckpt-3"), tensors)
    (work / "trained" / "checkpoint").write_text(
        'model_checkpoint_path: "model.ckpt-3"\nall_model_checkpoint_paths: "model.ckpt-3"\n'
    )

    (work / "swag").mkdir()
    (work / "swag" / "train.csv").write_text(SWAG_TRAIN, encoding="utf-8")
    (work / "conll").mkdir()
    (work / "conll" / "train.txt").write_text(CONLL, encoding="utf-8")
    (work / "glue").mkdir()
    for split in ("train", "dev"):
        (work / "glue" / f"{split}.tsv").write_text(GLUE_TRAIN, encoding="utf-8")
    (work / "glue" / "test.tsv").write_text("index\tsentence\n0\tthe cat\n", encoding="utf-8")
    (work / "table").mkdir()
    (work / "table" / "train.csv").write_text("0,the cat\n1,a dog\n", encoding="utf-8")
    context = "the cat sat on the mat in the sun all day long ."
    squad = {
        "version": "1.1",
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": f"q{i}",
                                "question": "where did the cat sit ?",
                                "answers": [{"text": "the mat", "answer_start": 15}],
                            }
                            for i in range(3)
                        ],
                    }
                ],
            }
        ],
    }
    (work / "squad").mkdir()
    (work / "squad" / "train.json").write_text(json.dumps(squad), encoding="utf-8")
    (work / "squad" / "dev.json").write_text(json.dumps(squad), encoding="utf-8")
    (work / "hf").mkdir()
    (work / "hf" / "config.json").write_text(
        json.dumps(
            {"model_type": "bert", "vocab_size": 300, "hidden_size": 32, "num_attention_heads": 2}
        )
    )


def file_hashes(folder):
    hashes = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                hashes[os.path.relpath(path, folder)] = f"link to {os.readlink(path)}"
                continue
            with open(path, "rb") as reader:
                hashes[os.path.relpath(path, folder)] = hashlib.sha256(reader.read()).hexdigest()
    return hashes


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, pretraining_data):
    """{case name: (work folder, hashes before, exit code, stderr)}: every case, each script's
    cases in one script_runner process, two scripts at a time."""
    root = tmp_path_factory.mktemp("bad_input")
    base = root / "base"
    base.mkdir()
    write_work_folder(base, pretraining_data)
    by_script = collections.defaultdict(list)
    before = {}
    for each in CASES:
        work = root / each.name
        shutil.copytree(base, work)
        if each.setup:
            each.setup(str(work))
        before[each.name] = file_hashes(work)
        by_script[each.script].append(each)
    running = []
    results = {}

    def finish(process, script, results_path):
        _, stderr = process.communicate()
        assert process.returncode == 0, f"script_runner {script} failed:\n{stderr[-3000:]}"
        with open(results_path, encoding="utf-8") as reader:
            for each, result in zip(by_script[script], json.load(reader)):
                results[each.name] = (
                    root / each.name,
                    before[each.name],
                    result["exit_code"],
                    result["stderr"],
                )

    for script, cases in by_script.items():
        cases_path, results_path = root / f"{script}.cases.json", root / f"{script}.results.json"
        cases_path.write_text(
            json.dumps([{"argv": c.argv, "cwd": str(root / c.name)} for c in cases])
        )
        if len(running) == 2:
            finish(*running.pop(0))
        process = subprocess.Popen(
            [
                sys.executable,
                os.path.join(REPO_ROOT, "tests", "script_runner.py"),
                script,
                str(cases_path),
                str(results_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        running.append((process, script, results_path))
    for pending in running:
        finish(*pending)
    return results


def test_the_sweep_has_at_least_80_cases_over_every_script():
    scripts = {each.script for each in CASES}
    assert len(CASES) >= 80 and len({each.name for each in CASES}) == len(CASES)
    assert scripts == {
        "create_pretraining_data",
        "run_pretraining",
        "run_classifier",
        "run_squad",
        "extract_features",
        "build_vocab",
        "prepare_pretraining_text",
        "convert_checkpoint",
        "export_model",
        "run_ner",
        "run_swag",
    }


@pytest.mark.parametrize("each", CASES, ids=[each.name for each in CASES])
def test_bad_input(each, outcomes):
    work, before, exit_code, stderr = outcomes[each.name]
    assert exit_code == each.exit_code, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    if each.expected is not None:
        last_line = stderr.strip().splitlines()[-1]
        # A whole expected line ("error: ...") must be the line; words must be in it.
        if each.expected.startswith("error: "):
            assert last_line == each.expected, stderr[-1500:]
        assert last_line.startswith("error: ") and each.expected in last_line, stderr[-1500:]
    after = file_hashes(work)
    for name, digest in before.items():
        if name not in each.absent and not any(name.startswith(prefix) for prefix in each.changes):
            assert after.get(name) == digest, f"{name} was changed or removed"
    left = [
        name
        for name in after
        if ".tmp-" in name or (name not in before and os.path.basename(name) == ".lock")
    ]
    assert not left, f"left behind: {left}"
    for name in each.absent:
        assert not os.path.exists(work / name), f"{name} exists"
    for name in each.present:
        assert os.path.exists(work / name), f"{name} is missing"


def test_a_bom_does_not_make_a_label(tmp_path):
    """#7: a csv saved as utf-8-sig, labels first: the labels stay '0' and '1'."""
    (tmp_path / "train.csv").write_text("\ufeff1,the cat\n0,a dog\n", encoding="utf-8")
    rows = file_io.read_table(str(tmp_path / "train.csv"), ",")
    assert rows == [["1", "the cat"], ["0", "a dog"]]


def test_encode_batch_gives_line_number_ids_with_a_repeated_line_and_unk_for_a_lone_surrogate(
    tmp_path,
):
    """#15: ids are line numbers (a repeated token takes its last line, as the reference's
    load_vocab), in the graph too, plain text or not; a lone surrogate, which has no UTF-8 form,
    is [UNK] on both paths."""
    import tokenization

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "the", "##s", "a", "b", "sat", "cat"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = tokenization.FullTokenizer(str(tmp_path / "vocab.txt"))
    texts = ["the cats sat", "a\ud800b the", "the cat", "\ud800", "b a \udfff"]
    exact = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text)) for text in texts]
    assert exact[0] == [6, 11, 7, 10] and exact[1] == [1, 6]
    assert tokenizer.encode_batch(texts) == exact
    graph_tokenizer = tokenizer._graph_tokenizer
    assert graph_tokenizer.pieces(["the cats", "the cats\t"]).to_list() == [[6, 11, 7]] * 2
