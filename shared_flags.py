"""The flags several scripts share, each defined once, here, with the reference's name, default and help.

A script calls the definers of the flags it reads, at its top, and sets its own defaults:

    shared_flags.define_vocab_flags()
    shared_flags.define_max_seq_length()
    flags.FLAGS.set_default("max_seq_length", 384)

A definer's flags count as the calling script's own (absl's key flags), so `--help` of each script
lists exactly the flags it reads; calling a definer again, from a second script imported into the
same process, only declares its flags for that script. The engine takes arguments, not flags:
its flags are turned into them here, at the edge,

    strategy = training.create_strategy(**shared_flags.strategy_options())
    trainer = training.Trainer(build_model, strategy, **shared_flags.trainer_options())

This module imports no TensorFlow: create_pretraining_data's workers import it.
"""

from absl import flags

from errors import InputError

FLAGS = flags.FLAGS

# Flags defined below belong to the module that called the definer, not to this one.
flags.disclaim_key_flags()


def _define(define, name, default, help_text, validator=None, **bounds):
    """define(name, default, help=help_text, **bounds) once per process; the caller's key flag always."""
    if name in FLAGS:
        flags.declare_key_flag(name)
        return
    define(name, default, help=help_text, **bounds)
    if validator is not None:
        flags.register_validator(name, validator[0], message=validator[1])


_POSITIVE = (lambda value: value > 0, "must be > 0")


# Files.


def define_input_file(help_text):
    _define(flags.DEFINE_string, "input_file", None, help_text)


def define_output_file(help_text):
    _define(flags.DEFINE_string, "output_file", None, help_text)


def define_output_dir(
    help_text="The output directory where the model checkpoints will be written.",
):
    _define(flags.DEFINE_string, "output_dir", None, help_text)


# The model and its vocabulary.


def define_model_flags():
    """--bert_config_file and --init_checkpoint."""
    _define(
        flags.DEFINE_string,
        "bert_config_file",
        None,
        "The config json file corresponding to the pre-trained BERT model. This specifies the model architecture.",
    )
    _define(
        flags.DEFINE_string,
        "init_checkpoint",
        None,
        "Initial checkpoint (usually from a pre-trained BERT model).",
    )


def define_vocab_file(help_text="The vocabulary file that the BERT model was trained on."):
    _define(flags.DEFINE_string, "vocab_file", None, help_text)


def define_do_lower_case(
    help_text="Whether to lower case the input text. Should be True for uncased models and "
    "False for cased models.",
    default=True,
):
    _define(flags.DEFINE_bool, "do_lower_case", default, help_text)


def define_vocab_flags():
    """--vocab_file and --do_lower_case."""
    define_vocab_file()
    define_do_lower_case()


def define_spm_model_file():
    _define(
        flags.DEFINE_string,
        "spm_model_file",
        None,
        "A SentencePiece model to tokenize with instead of --vocab_file.",
    )


def define_max_seq_length():
    _define(
        flags.DEFINE_integer,
        "max_seq_length",
        128,
        "The maximum total input sequence length after WordPiece tokenization. Sequences longer than this "
        "will be truncated, and sequences shorter than this will be padded.",
        lower_bound=1,
    )


def define_data_dir():
    _define(
        flags.DEFINE_string,
        "data_dir",
        None,
        "The input data dir. Should contain the .tsv files (or other data files) for the task.",
    )


def define_doc_stride():
    _define(
        flags.DEFINE_integer,
        "doc_stride",
        128,
        "When splitting up a long document into chunks, how much stride to take between chunks.",
        lower_bound=1,
    )


def define_label_list(help_text):
    _define(flags.DEFINE_list, "label_list", None, help_text)


# Pretraining data.


def define_masking_flags():
    """--max_predictions_per_seq and --masked_lm_prob."""
    _define(
        flags.DEFINE_integer,
        "max_predictions_per_seq",
        20,
        "Maximum number of masked LM predictions per sequence.",
        lower_bound=1,
    )
    _define(
        flags.DEFINE_float,
        "masked_lm_prob",
        0.15,
        "Masked LM probability.",
        lower_bound=0.0,
        upper_bound=1.0,
    )


def define_random_seed(
    help_text="Random seed: of the initial weights, dropout and the input shuffle when training; "
    "of the masks and pairs when creating data.",
):
    _define(flags.DEFINE_integer, "random_seed", 12345, help_text)


# Fine-tuning.


def define_num_train_epochs(help_text="Total number of training epochs to perform."):
    _define(flags.DEFINE_float, "num_train_epochs", 3.0, help_text, validator=_POSITIVE)


def define_fine_tuning_flags():
    """--num_train_epochs and --warmup_proportion."""
    define_num_train_epochs()
    _define(
        flags.DEFINE_float,
        "warmup_proportion",
        0.1,
        "Proportion of training to perform linear learning rate warmup for. E.g., 0.1 = 10% of training.",
        lower_bound=0.0,
        upper_bound=1.0,
    )


# The engine.


def define_strategy_flags():
    """Where the job runs: a Cloud TPU, several machines (TF_CONFIG), several GPUs, or one device."""
    _define(flags.DEFINE_bool, "use_tpu", False, "Whether to use TPU or GPU/CPU.")
    _define(
        flags.DEFINE_string,
        "tpu_name",
        None,
        "The Cloud TPU to use for training: a name, or a grpc:// address.",
    )
    _define(
        flags.DEFINE_string, "tpu_zone", None, "GCE zone of the Cloud TPU (detected when omitted)."
    )
    _define(
        flags.DEFINE_string,
        "gcp_project",
        None,
        "Project of the Cloud TPU (detected when omitted).",
    )
    _define(
        flags.DEFINE_string, "master", None, "TensorFlow master URL (an alternative to --tpu_name)."
    )
    _define(
        flags.DEFINE_integer,
        "num_tpu_cores",
        8,
        "Only used if `use_tpu` is True: total number of TPU cores "
        "(TPUStrategy uses every core the TPU has; a different count "
        "is logged).",
        lower_bound=1,
    )
    _define(
        flags.DEFINE_integer,
        "cpu_replicas",
        1,
        "Split the CPU into this many devices and mirror over them "
        "(distribution without accelerators, for testing).",
        lower_bound=1,
    )


def fine_tuning_splits(*required):
    """The splits --do_train, --do_eval and --do_predict ask for ("train", "dev", "test"), in that
    order. InputError when none is asked for, or when a flag of `required` is empty."""
    splits = [
        split
        for split, wanted in (
            ("train", FLAGS.do_train),
            ("dev", FLAGS.do_eval),
            ("test", FLAGS.do_predict),
        )
        if wanted
    ]
    if not splits:
        raise InputError("at least one of --do_train, --do_eval or --do_predict must be True")
    for name in required:
        if not getattr(FLAGS, name):
            raise InputError(f"--{name} is required")
    return splits


def strategy_options():
    """Keyword arguments of training.create_strategy from the strategy flags."""
    return {
        "use_tpu": FLAGS.use_tpu,
        "tpu_name": FLAGS.tpu_name or FLAGS.master,
        "tpu_zone": FLAGS.tpu_zone,
        "gcp_project": FLAGS.gcp_project,
        "num_tpu_cores": FLAGS.num_tpu_cores,
        "cpu_replicas": FLAGS.cpu_replicas,
    }


def define_training_flags():
    """What run_pretraining, run_classifier and run_squad share: the model, the output directory,
    training, the optimizer and its schedule, loop and checkpoint cadence, precision, the
    strategy. Evaluation and prediction are define_eval_flags and define_prediction_flags."""
    define_model_flags()
    define_output_dir()
    define_strategy_flags()
    define_random_seed()
    _define(flags.DEFINE_bool, "do_train", False, "Whether to run training.")
    _define(
        flags.DEFINE_integer,
        "train_batch_size",
        32,
        "Total batch size for training.",
        lower_bound=1,
    )
    _define(
        flags.DEFINE_float,
        "learning_rate",
        5e-5,
        "The initial learning rate for Adam.",
        validator=_POSITIVE,
    )
    _define(
        flags.DEFINE_enum,
        "optimizer",
        "adamw",
        "AdamWeightDecay (the reference's) or LAMB.",
        enum_values=["adamw", "lamb"],
    )
    _define(
        flags.DEFINE_integer,
        "save_checkpoints_steps",
        1000,
        "How often to save the model checkpoint.",
        lower_bound=1,
    )
    _define(
        flags.DEFINE_integer,
        "keep_checkpoint_max",
        5,
        "How many recent checkpoints to keep (0: all of them).",
        lower_bound=0,
    )
    _define(
        flags.DEFINE_integer,
        "iterations_per_loop",
        1000,
        "How many steps to make in each estimator call.",
        lower_bound=1,
    )
    _define(
        flags.DEFINE_integer,
        "gradient_accumulation_steps",
        1,
        "Micro-batches per update; each is train_batch_size / this.",
        lower_bound=1,
    )
    _define(
        flags.DEFINE_enum,
        "precision",
        "fp32",
        "Compute precision (variables stay fp32).",
        enum_values=["fp32", "bf16", "fp16"],
    )
    _define(
        flags.DEFINE_bool,
        "use_xla",
        None,
        "Compile the training step with XLA, or run it on TensorFlow's kernels, which with "
        "--dynamic_padding skip the padding in the dense layers. Default: XLA when training "
        "batches are at least 75% real tokens (estimated from the first records; pretraining "
        "data is), else the kernels (short sentences). Evaluation and prediction run the "
        "kernels, faster on CPU; on TPU everything is compiled.",
    )
    define_dynamic_padding()
    _define(
        flags.DEFINE_bool,
        "group_by_length",
        True,
        "Where TensorFlow's kernels run the training step (see --use_xla) with "
        "--dynamic_padding: sort each window of 16 shuffled batches by length before cutting it "
        "into batches (then shuffle those), so that a batch's examples are of about one length "
        "and carry little padding. False: every batch a uniform draw of the shuffled records.",
    )


def define_dynamic_padding():
    """--dynamic_padding: batches padded to their longest example (XLA training: a bucket above it)."""
    _define(
        flags.DEFINE_bool,
        "dynamic_padding",
        True,
        "Pad each batch only to its longest example, not to --max_seq_length (records stay "
        "padded to it); training batches compiled by XLA to the first of 16, 24, 32, 48, 64, "
        "96, 128, ... --max_seq_length that holds it (a compiled step per length). Ignored on "
        "TPU, which keeps the static shape.",
    )


def define_eval_flags():
    """--do_eval and --eval_batch_size."""
    _define(flags.DEFINE_bool, "do_eval", False, "Whether to run eval on the dev set.")
    _define(flags.DEFINE_integer, "eval_batch_size", 8, "Total batch size for eval.", lower_bound=1)


def define_prediction_flags():
    """--do_predict and --predict_batch_size."""
    _define(
        flags.DEFINE_bool,
        "do_predict",
        False,
        "Whether to run the model in inference mode on the test set.",
    )
    _define(
        flags.DEFINE_integer,
        "predict_batch_size",
        8,
        "Total batch size for predict.",
        lower_bound=1,
    )


def trainer_options():
    """Keyword arguments of training.Trainer from the training flags (a script that evaluates or
    predicts adds eval_batch_size=FLAGS.eval_batch_size, predict_batch_size=FLAGS.predict_batch_size)."""
    return {
        name: FLAGS[name].value
        for name in (
            "output_dir",
            "init_checkpoint",
            "train_batch_size",
            "learning_rate",
            "optimizer",
            "save_checkpoints_steps",
            "keep_checkpoint_max",
            "iterations_per_loop",
            "gradient_accumulation_steps",
            "precision",
            "use_xla",
            "dynamic_padding",
            "group_by_length",
            "random_seed",
        )
    }
