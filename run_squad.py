"""Fine-tunes BERT for extractive question answering on SQuAD 1.1 or 2.0, predicts and scores.

    python run_squad.py --vocab_file=$BERT_BASE_DIR/vocab.txt --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt --do_train=True --train_file=$SQUAD_DIR/train-v1.1.json \
        --do_predict=True --predict_file=$SQUAD_DIR/dev-v1.1.json --train_batch_size=12 --learning_rate=3e-5 \
        --num_train_epochs=2.0 --max_seq_length=384 --doc_stride=128 --output_dir=/tmp/squad_base/

SQuAD 2.0: add --version_2_with_negative=True, and --null_score_diff_threshold=<t> (or `best`).

Reading and features as the reference: the context is split on whitespace, with a word index for
every character; a training answer is located from answer_start and its text (answers whose
text is not at that place are skipped and counted); the question is cut to --max_query_length
word pieces; the context's word pieces are cut into spans of at most max_seq_length - query - 3
pieces, each starting --doc_stride pieces after the previous one; a piece seen by several spans
is answered from the span where it has most context on both sides. Each feature is
`[CLS] question [SEP] span [SEP]`. A training answer that lies outside a span (and every
unanswerable question) points that span's targets at [CLS], position 0, as the reference does.

Outputs in --output_dir: predictions.json ({id: answer text}), nbest_predictions.json ({id:
[{text, probability, start_logit, end_logit}]}), with 2.0 null_odds.json ({id: null score minus
the best answer's score}). Answers are mapped back onto the original context text, so case,
accents and punctuation are the context's.

When every question of --predict_file carries answers, the predictions are scored as the
official evaluate-v1.1.py (exact_match, f1) and evaluate-v2.0.py (exact, f1, total, the HasAns_
and NoAns_ splits, and the best threshold found from the null odds: best_exact, best_f1 and
their thresholds) score them; the scores go to eval_results.txt and stdout. For 2.0 the
official --na-prob-thresh is set to the threshold the predictions were made with, so the
figures are those of predictions.json. --null_score_diff_threshold=best searches the threshold
on the best non-null answers and predicts with the one that maximises F1.

Beyond the reference: a question for which no answer span survives the filters (all candidates
too long, or outside the max-context pieces) gets the empty answer (the reference crashed on
2.0 and answered the text "empty" on 1.1); its null odds are the largest float.
"""

import cpu_kernels  # noqa: F401  (first: what TensorFlow reads when it is imported)
import collections
import functools
import json
import os
import random
import re
import string
import sys

from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

import errors
import file_io
import modeling
import shared_flags
import tokenization
import training

FLAGS = flags.FLAGS

shared_flags.define_training_flags()
shared_flags.define_prediction_flags()
shared_flags.define_fine_tuning_flags()
shared_flags.define_vocab_flags()
shared_flags.define_max_seq_length()
FLAGS.set_default("max_seq_length", 384)
flags.DEFINE_string("train_file", None, "SQuAD json for training. E.g., train-v1.1.json")
flags.DEFINE_string(
    "predict_file", None, "SQuAD json for predictions. E.g., dev-v1.1.json or test-v1.1.json"
)
shared_flags.define_doc_stride()
flags.DEFINE_integer(
    "max_query_length",
    64,
    "The maximum number of tokens for the question. Longer questions are truncated.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "n_best_size",
    20,
    "The total number of n-best predictions to generate in the nbest_predictions.json output file.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "max_answer_length",
    30,
    "The maximum length of an answer that can be generated, in word pieces.",
    lower_bound=1,
)
flags.DEFINE_bool(
    "verbose_logging",
    False,
    "Log (at debug level) each training answer not found at its "
    "answer_start and each answer not mapped back onto the context.",
)
flags.DEFINE_bool(
    "version_2_with_negative", False, "The SQuAD examples contain some that do not have an answer."
)
flags.DEFINE_string(
    "null_score_diff_threshold",
    "0.0",
    "If null_score - best_non_null is greater than the threshold "
    "predict null; `best` finds the threshold on --predict_file.",
)

SquadExample = collections.namedtuple(
    "SquadExample",
    [
        "qas_id",
        "question_text",
        "doc_tokens",
        "orig_answer_text",
        "start_position",
        "end_position",
        "is_impossible",
    ],
)
FIRST_UNIQUE_ID = 1000000000


# Reading.


def is_context_whitespace(char):
    """The reference's whitespace for splitting contexts: space, tab, CR, LF and U+202F."""
    return char in " \t\r\n" or ord(char) == 0x202F


def split_context(context):
    """(words, word index of every character of `context`); whitespace belongs to the word before it."""
    words, char_to_word_offset, previous_is_whitespace = [], [], True
    for char in context:
        if is_context_whitespace(char):
            previous_is_whitespace = True
        else:
            if previous_is_whitespace:
                words.append(char)
            else:
                words[-1] += char
            previous_is_whitespace = False
        char_to_word_offset.append(len(words) - 1)
    return words, char_to_word_offset


def load_squad_json(path):
    """The `data` list of a SQuAD json file; InputError naming the file when it is not one."""
    if not file_io.exists(path):
        raise errors.InputError(f"{path}: file not found")
    try:
        dataset = json.loads(file_io.read_bytes(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise errors.InputError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
        raise errors.InputError(f'{path}: not a SQuAD file (no "data" list at the top)')
    return dataset["data"]


def field(path, where, record, name, kind):
    if not isinstance(record, dict) or name not in record:
        raise errors.InputError(f'{path}: {where} has no "{name}"')
    if not isinstance(record[name], kind):
        raise errors.InputError(f'{path}: {where}: "{name}" is not a {kind.__name__}')
    return record[name]


def questions(path, data):
    """Yields (where, context, qa) for every question of a SQuAD `data` list, checking the layout."""
    for article_index, article in enumerate(data):
        for paragraph_index, paragraph in enumerate(
            field(path, f"article {article_index}", article, "paragraphs", list)
        ):
            where = f"article {article_index} paragraph {paragraph_index}"
            context = field(path, where, paragraph, "context", str)
            for qa_index, qa in enumerate(field(path, where, paragraph, "qas", list)):
                qa_where = f"{where} question {qa_index}"
                qas_id = str(field(path, qa_where, qa, "id", (str, int)))
                field(path, f"question {qas_id}", qa, "question", str)
                if not context.strip():
                    raise errors.InputError(
                        f"{path}: question {qas_id}: its context ({where}) is empty"
                    )
                yield f"question {qas_id}", context, qa


def read_squad_examples(path, data, is_training, version_2_with_negative):
    """SquadExamples of every question; for training, the answer's word positions.

    Returns:
      (examples, Counter of training questions: "answer_not_found", skipped because the answer's
      text is not at its answer_start, as the reference; "several_answers", trained on their first
      answer, where the reference stopped).
    """
    examples, counts, seen_ids = [], collections.Counter(), set()
    split_cache = {}
    for where, context, qa in questions(path, data):
        if context not in split_cache:
            split_cache = {context: split_context(context)}
        doc_tokens, char_to_word_offset = split_cache[context]
        qas_id = str(qa["id"])
        if qas_id in seen_ids:
            raise errors.InputError(f"{path}: {where}: the id is used twice")
        seen_ids.add(qas_id)
        start_position = end_position = -1
        orig_answer_text = ""
        is_impossible = False
        if is_training:
            if version_2_with_negative:
                is_impossible = bool(qa.get("is_impossible", False))
            answers = field(path, where, qa, "answers", list)
            if not is_impossible:
                if not answers:
                    raise errors.InputError(
                        f"{path}: {where}: has no answer (and is not marked is_impossible)"
                    )
                counts["several_answers"] += len(answers) > 1
                orig_answer_text = field(path, f"{where} answer", answers[0], "text", str)
                answer_start = field(path, f"{where} answer", answers[0], "answer_start", int)
                answer_end = answer_start + len(orig_answer_text) - 1
                if not orig_answer_text or answer_start < 0 or answer_end >= len(context):
                    found = False
                else:
                    start_position = char_to_word_offset[answer_start]
                    end_position = char_to_word_offset[answer_end]
                    # The words at the answer's place must contain its text (modulo whitespace).
                    found = " ".join(orig_answer_text.split()) in " ".join(
                        doc_tokens[start_position : end_position + 1]
                    )
                if not found:
                    counts["answer_not_found"] += 1
                    logging.debug(
                        "%s: %s: answer %r is not at character %d",
                        path,
                        where,
                        orig_answer_text,
                        answer_start,
                    )
                    continue
        examples.append(
            SquadExample(
                qas_id,
                qa["question"],
                doc_tokens,
                orig_answer_text,
                start_position,
                end_position,
                is_impossible,
            )
        )
    if not examples:
        raise errors.InputError(f"{path}: holds no usable questions")
    return examples, counts


def has_gold_answers(path, data, version_2_with_negative):
    """Whether every question carries answers, so that predictions can be scored."""
    for where, _, qa in questions(path, data):
        answers = qa.get("answers")
        if not isinstance(answers, list) or (not answers and not version_2_with_negative):
            return False
        for index, answer in enumerate(answers):
            field(path, f"{where} answer {index}", answer, "text", str)
    return True


# Features.


def improve_answer_span(doc_pieces, start, end, tokenizer, orig_answer_text):
    """The tightest piece span inside [start, end] whose pieces are the answer's own pieces.

    The answer "1895" in the word "(1895-1943)." covers all the word's pieces; this narrows it
    to the piece "1895" when the word splits so.
    """
    answer_pieces = " ".join(tokenizer.tokenize(orig_answer_text))
    for new_start in range(start, end + 1):
        for new_end in range(end, new_start - 1, -1):
            if " ".join(doc_pieces[new_start : new_end + 1]) == answer_pieces:
                return new_start, new_end
    return start, end


def featurize_example(
    example, tokenizer, max_seq_length, doc_stride, max_query_length, is_training
):
    """The features of one example, one per document span.

    Returns a list of dicts: tokens, token_to_orig_map {feature position: word index},
    token_is_max_context {feature position: bool}, input_ids, input_mask, segment_ids
    [max_seq_length], and for training start_position, end_position (feature positions, 0 =
    [CLS] when the answer is outside the span or there is none) and is_impossible.
    """
    query_pieces = tokenizer.tokenize(example.question_text)[:max_query_length]
    piece_to_word, word_to_first_piece, doc_pieces = [], [], []
    for word_index, word in enumerate(example.doc_tokens):
        word_to_first_piece.append(len(doc_pieces))
        for piece in tokenizer.tokenize(word):
            piece_to_word.append(word_index)
            doc_pieces.append(piece)

    answer_start = answer_end = None
    if is_training and not example.is_impossible:
        answer_start = word_to_first_piece[example.start_position]
        if example.end_position < len(example.doc_tokens) - 1:
            answer_end = word_to_first_piece[example.end_position + 1] - 1
        else:
            answer_end = len(doc_pieces) - 1
        answer_start, answer_end = improve_answer_span(
            doc_pieces, answer_start, answer_end, tokenizer, example.orig_answer_text
        )

    max_tokens_for_doc = max_seq_length - len(query_pieces) - 3
    if max_tokens_for_doc <= 0:
        raise errors.InputError(
            f"--max_seq_length={max_seq_length} leaves no room for the context after a "
            f"question of {len(query_pieces)} pieces: lower --max_query_length"
        )
    spans = tokenization.doc_spans(len(doc_pieces), max_tokens_for_doc, doc_stride)
    features = []
    for span_index, (span_start, span_length) in enumerate(spans):
        tokens = ["[CLS]"] + query_pieces + ["[SEP]"]
        segment_ids = [0] * len(tokens)
        token_to_orig_map, token_is_max_context = {}, {}
        for piece_index in range(span_start, span_start + span_length):
            token_to_orig_map[len(tokens)] = piece_to_word[piece_index]
            token_is_max_context[len(tokens)] = tokenization.is_max_context(
                spans, span_index, piece_index
            )
            tokens.append(doc_pieces[piece_index])
        tokens.append("[SEP]")
        segment_ids += [1] * (span_length + 1)
        input_ids = tokenizer.convert_tokens_to_ids(tokens)
        padding = [0] * (max_seq_length - len(input_ids))
        feature = {
            "tokens": tokens,
            "token_to_orig_map": token_to_orig_map,
            "token_is_max_context": token_is_max_context,
            "input_ids": input_ids + padding,
            "input_mask": [1] * len(input_ids) + padding,
            "segment_ids": segment_ids + padding,
        }
        if is_training:
            start_position = end_position = 0
            if (
                answer_start is not None
                and span_start <= answer_start
                and answer_end < span_start + span_length
            ):
                offset = len(query_pieces) + 2 - span_start
                start_position, end_position = answer_start + offset, answer_end + offset
            feature.update(
                start_position=start_position,
                end_position=end_position,
                is_impossible=int(example.is_impossible),
            )
        features.append(feature)
    return features


def write_features(examples, tokenizer, path, is_training):
    """Featurizes `examples` into the reference's TFRecords at `path` (atomically).

    Returns the features (without their ids, for training, to keep memory flat) in record order,
    each with its unique_id (from 1000000000, as the reference) and example_index.
    """
    kept, unique_id = [], FIRST_UNIQUE_ID
    with file_io.atomic_output(path) as temporary, file_io.TFRecordWriter(temporary) as writer:
        for example_index, example in enumerate(examples):
            for feature in featurize_example(
                example,
                tokenizer,
                FLAGS.max_seq_length,
                FLAGS.doc_stride,
                FLAGS.max_query_length,
                is_training,
            ):
                if unique_id < FIRST_UNIQUE_ID + 3:
                    logging.info(
                        "*** Example %d, unique_id %d ***\ntokens: %s",
                        example_index,
                        unique_id,
                        " ".join(feature["tokens"]),
                    )
                record = {
                    "unique_ids": [unique_id],
                    "input_ids": feature["input_ids"],
                    "input_mask": feature["input_mask"],
                    "segment_ids": feature["segment_ids"],
                }
                if is_training:
                    record.update(
                        start_positions=[feature["start_position"]],
                        end_positions=[feature["end_position"]],
                        is_impossible=[feature["is_impossible"]],
                    )
                    feature = {}
                else:
                    del feature["input_ids"], feature["input_mask"], feature["segment_ids"]
                writer.write(training.serialize_example(record))
                kept.append({**feature, "unique_id": unique_id, "example_index": example_index})
                unique_id += 1
    return kept


def record_features(max_seq_length, is_training):
    features = {
        "unique_ids": tf.io.FixedLenFeature([], tf.int64),
        "input_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "input_mask": tf.io.FixedLenFeature([max_seq_length], tf.int64),
        "segment_ids": tf.io.FixedLenFeature([max_seq_length], tf.int64),
    }
    if is_training:
        features.update(
            start_positions=tf.io.FixedLenFeature([], tf.int64),
            end_positions=tf.io.FixedLenFeature([], tf.int64),
        )
    return features


# Answers.


def best_indexes(logits, n_best_size):
    """Positions of the n_best_size largest logits, largest first (ties: earlier position first)."""
    return [int(i) for i in np.argsort(-np.asarray(logits), kind="stable")[:n_best_size]]


def strip_spaces_with_map(text):
    """(text without spaces, {index there: index in text})."""
    kept, index_map = [], {}
    for index, char in enumerate(text):
        if char != " ":
            index_map[len(kept)] = index
            kept.append(char)
    return "".join(kept), index_map


def project_onto_original(pred_text, orig_text, do_lower_case):
    """The part of orig_text (original words) that the normalised pred_text (joined pieces) covers.

    "Steve Smith's" tokenised is "steve smith ' s"; a predicted "smith" maps back to "Smith".
    Both texts are compared with spaces removed, after the BasicTokenizer normalisation of
    orig_text; when they cannot be aligned (normalisation changed the length), orig_text whole.
    """
    normalized = " ".join(
        tokenization.BasicTokenizer(do_lower_case=do_lower_case).tokenize(orig_text)
    )
    start = normalized.find(pred_text)
    if start == -1:
        logging.debug("Could not find %r in %r", pred_text, orig_text)
        return orig_text
    end = start + len(pred_text) - 1
    orig_stripped, orig_map = strip_spaces_with_map(orig_text)
    normalized_stripped, normalized_map = strip_spaces_with_map(normalized)
    if len(orig_stripped) != len(normalized_stripped):
        logging.debug(
            "Length not equal after stripping spaces: %r vs %r", orig_stripped, normalized_stripped
        )
        return orig_text
    to_stripped = {index: stripped for stripped, index in normalized_map.items()}
    if start not in to_stripped or end not in to_stripped:
        return orig_text
    return orig_text[orig_map[to_stripped[start]] : orig_map[to_stripped[end]] + 1]


def softmax(scores):
    scores = np.asarray(scores, np.float64)
    exponentials = np.exp(scores - scores.max())
    return exponentials / exponentials.sum()


Candidate = collections.namedtuple(
    "Candidate", ["feature", "start", "end", "start_logit", "end_logit"]
)


def predict_answers(
    examples,
    features,
    results,
    n_best_size,
    max_answer_length,
    do_lower_case,
    version_2_with_negative,
):
    """Decodes every example's answers from its features' logits, as the reference.

    Args:
      features: from write_features, each with tokens, token_to_orig_map, token_is_max_context,
        example_index, unique_id.
      results: {unique_id: (start logits [S], end logits [S])}.
    Returns:
      {qas_id: n-best [{text, probability, start_logit, end_logit}]}, {qas_id: null score minus
      the best non-null score, or None without a non-null answer} (2.0 only, else empty).
    """
    features_by_example = collections.defaultdict(list)
    for feature in features:
        features_by_example[feature["example_index"]].append(feature)
    all_nbest, all_null_odds = {}, {}
    for example_index, example in enumerate(examples):
        candidates, null = [], None
        for feature in features_by_example[example_index]:
            start_logits, end_logits = results[feature["unique_id"]]
            if version_2_with_negative:
                null_score = start_logits[0] + end_logits[0]
                if null is None or null_score < null.start_logit + null.end_logit:
                    null = Candidate(feature, 0, 0, float(start_logits[0]), float(end_logits[0]))
            for start in best_indexes(start_logits, n_best_size):
                for end in best_indexes(end_logits, n_best_size):
                    if (
                        start not in feature["token_to_orig_map"]
                        or end not in feature["token_to_orig_map"]
                        or not feature["token_is_max_context"].get(start, False)
                        or end < start
                        or end - start + 1 > max_answer_length
                    ):
                        continue
                    candidates.append(
                        Candidate(
                            feature, start, end, float(start_logits[start]), float(end_logits[end])
                        )
                    )
        if null is not None:
            candidates.append(null)
        candidates.sort(key=lambda c: c.start_logit + c.end_logit, reverse=True)

        nbest, seen = [], set()
        for candidate in candidates:
            if len(nbest) >= n_best_size:
                break
            if candidate.start > 0:
                feature = candidate.feature
                pieces = " ".join(feature["tokens"][candidate.start : candidate.end + 1])
                pred_text = " ".join(pieces.replace(" ##", "").replace("##", "").split())
                words = example.doc_tokens[
                    feature["token_to_orig_map"][candidate.start] : feature["token_to_orig_map"][
                        candidate.end
                    ]
                    + 1
                ]
                text = project_onto_original(pred_text, " ".join(words), do_lower_case)
            else:
                text = ""
            if text in seen:
                continue
            seen.add(text)
            nbest.append((text, candidate.start_logit, candidate.end_logit))
        if version_2_with_negative and "" not in seen:
            nbest.append(("", null.start_logit, null.end_logit))
        if not nbest:
            nbest.append(("", 0.0, 0.0))
        probabilities = softmax([start + end for _, start, end in nbest])
        all_nbest[example.qas_id] = [
            {"text": text, "probability": float(p), "start_logit": start, "end_logit": end}
            for (text, start, end), p in zip(nbest, probabilities)
        ]
        if version_2_with_negative:
            best_non_null = next((entry for entry in nbest if entry[0]), None)
            all_null_odds[example.qas_id] = (
                None
                if best_non_null is None
                else null.start_logit + null.end_logit - best_non_null[1] - best_non_null[2]
            )
    return all_nbest, all_null_odds


def best_non_null_answers(nbest):
    """{qas_id: the most likely non-empty answer text, or "" when there is none}."""
    return {
        qas_id: next((entry["text"] for entry in entries if entry["text"]), "")
        for qas_id, entries in nbest.items()
    }


def choose_answers(nbest, null_odds, threshold):
    """{qas_id: answer}: 1.1 the first n-best text; 2.0 the best non-null text unless its null odds
    exceed `threshold` (or there is no non-null answer), then ""."""
    if not null_odds:
        return {qas_id: entries[0]["text"] for qas_id, entries in nbest.items()}
    non_null = best_non_null_answers(nbest)
    return {
        qas_id: "" if odds is None or odds > threshold else non_null[qas_id]
        for qas_id, odds in null_odds.items()
    }


# Official scoring (evaluate-v1.1.py and evaluate-v2.0.py).

ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text):
    """Lower-cases, removes punctuation and the articles a/an/the, and collapses whitespace."""
    text = "".join(char for char in text.lower() if char not in PUNCTUATION)
    return " ".join(ARTICLES.sub(" ", text).split())


def exact_match_score(prediction, gold):
    return int(normalize_answer(prediction) == normalize_answer(gold))


def token_f1_score(prediction, gold, empty_matches_empty):
    """Token-overlap F1 of the normalised texts. evaluate-v2.0 scores an empty prediction against
    an empty gold as 1 (empty_matches_empty); evaluate-v1.1 scores every empty side as 0."""
    prediction_tokens, gold_tokens = (
        normalize_answer(prediction).split(),
        normalize_answer(gold).split(),
    )
    if empty_matches_empty and (not prediction_tokens or not gold_tokens):
        return float(prediction_tokens == gold_tokens)
    common = collections.Counter(prediction_tokens) & collections.Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision, recall = num_same / len(prediction_tokens), num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def evaluate_v1(path, data, predictions):
    """evaluate-v1.1.py: {exact_match, f1} in percent, best over each question's gold answers;
    a question without a prediction scores 0."""
    exact, f1, total = 0.0, 0.0, 0
    for _, _, qa in questions(path, data):
        total += 1
        if str(qa["id"]) not in predictions:
            logging.warning("Unanswered question %s will receive score 0.", qa["id"])
            continue
        prediction = predictions[str(qa["id"])]
        golds = [answer["text"] for answer in qa["answers"]]
        exact += max(exact_match_score(prediction, gold) for gold in golds)
        f1 += max(token_f1_score(prediction, gold, empty_matches_empty=False) for gold in golds)
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total}


def raw_scores_v2(path, data, predictions):
    """({qid: exact}, {qid: f1}, {qid: has answer}); gold answers that normalise to nothing are
    dropped, and a question left without any is scored against the empty answer."""
    exact, f1, has_answer = {}, {}, {}
    for _, _, qa in questions(path, data):
        qid = str(qa["id"])
        has_answer[qid] = bool(qa["answers"])
        golds = [
            answer["text"] for answer in qa["answers"] if normalize_answer(answer["text"])
        ] or [""]
        if qid not in predictions:
            logging.warning("Missing prediction for %s", qid)
            continue
        exact[qid] = max(exact_match_score(predictions[qid], gold) for gold in golds)
        f1[qid] = max(
            token_f1_score(predictions[qid], gold, empty_matches_empty=True) for gold in golds
        )
    return exact, f1, has_answer


def find_best_threshold(predictions, scores, null_odds, has_answer):
    """evaluate-v2.0.py's search: going through questions by increasing null odds, answer those up
    to the threshold and abstain on the rest. Returns (best score in percent, its threshold)."""
    current = best = sum(1 for qid in has_answer if not has_answer[qid])
    best_threshold = 0.0
    for qid in sorted(null_odds, key=lambda k: null_odds[k]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            difference = scores[qid]
        else:
            difference = -1 if predictions[qid] else 0
        current += difference
        if current > best:
            best, best_threshold = current, null_odds[qid]
    return 100.0 * best / len(scores), best_threshold


def evaluate_v2(path, data, predictions, null_odds, null_threshold):
    """evaluate-v2.0.py with --na-prob-file (null_odds) and --na-prob-thresh=null_threshold."""
    exact_raw, f1_raw, has_answer = raw_scores_v2(path, data, predictions)

    def thresholded(scores):
        return {
            qid: float(not has_answer[qid]) if null_odds[qid] > null_threshold else score
            for qid, score in scores.items()
        }

    exact, f1 = thresholded(exact_raw), thresholded(f1_raw)
    results = {
        "exact": 100.0 * sum(exact.values()) / len(exact),
        "f1": 100.0 * sum(f1.values()) / len(f1),
        "total": len(exact),
    }
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid in has_answer if has_answer[qid] == wanted]
        if qids:
            results[f"{prefix}_exact"] = 100.0 * sum(exact[q] for q in qids) / len(qids)
            results[f"{prefix}_f1"] = 100.0 * sum(f1[q] for q in qids) / len(qids)
            results[f"{prefix}_total"] = len(qids)
    results["best_exact"], results["best_exact_thresh"] = find_best_threshold(
        predictions, exact_raw, null_odds, has_answer
    )
    results["best_f1"], results["best_f1_thresh"] = find_best_threshold(
        predictions, f1_raw, null_odds, has_answer
    )
    return results


def parse_null_threshold(value, version_2_with_negative):
    if value == "best":
        if not version_2_with_negative:
            raise errors.InputError(
                "--null_score_diff_threshold=best needs --version_2_with_negative=True"
            )
        return value
    try:
        return float(value)
    except ValueError:
        raise errors.InputError(
            f"--null_score_diff_threshold={value} is neither a number nor best"
        ) from None


def squad_training_loss(model, features):
    """The engine's compute_loss: the mean of the start and end cross-entropies, no metrics."""
    start_logits, end_logits = model(
        features["input_ids"], features["input_mask"], features["segment_ids"], training=True
    )  # [B, S] each
    start_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
        features["start_positions"], start_logits
    )
    end_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(features["end_positions"], end_logits)
    return tf.reduce_mean(start_loss + end_loss) / 2.0, {}


def squad_outputs(model, features):
    """The engine's predict_outputs: unique_ids [B], start_logits and end_logits [B, S], and
    real_lengths [B], the real tokens of each feature (input_mask 1), all that the answer
    search reads: past them are padding positions, whose vectors are zeros where the engine
    skips the padding and whatever attention made of them elsewhere."""
    start_logits, end_logits = model(
        features["input_ids"], features["input_mask"], features["segment_ids"]
    )
    return {
        "unique_ids": features["unique_ids"],
        "start_logits": start_logits,
        "end_logits": end_logits,
        "real_lengths": tf.reduce_sum(tf.cast(features["input_mask"], tf.int32), axis=-1),
    }


def main(argv):
    del argv
    if not (FLAGS.do_train or FLAGS.do_predict):
        raise errors.InputError("at least one of --do_train or --do_predict must be True")
    for name, needed in (
        ("train_file", FLAGS.do_train),
        ("predict_file", FLAGS.do_predict),
        ("vocab_file", True),
        ("bert_config_file", True),
        ("output_dir", True),
    ):
        if needed and not getattr(FLAGS, name):
            raise errors.InputError(
                f"--{name} is required"
                + (
                    " with --do_train"
                    if name == "train_file"
                    else " with --do_predict"
                    if name == "predict_file"
                    else ""
                )
            )
    null_threshold = parse_null_threshold(
        FLAGS.null_score_diff_threshold, FLAGS.version_2_with_negative
    )
    if FLAGS.verbose_logging:
        logging.set_verbosity(logging.DEBUG)

    # Data.
    strategy = training.create_strategy(**shared_flags.strategy_options())
    tokenization.validate_case_matches_checkpoint(FLAGS.do_lower_case, FLAGS.init_checkpoint)
    config = modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
    modeling.check_max_seq_length(FLAGS.max_seq_length, config, FLAGS.bert_config_file)
    if FLAGS.max_seq_length <= FLAGS.max_query_length + 3:
        raise errors.InputError(
            f"--max_seq_length={FLAGS.max_seq_length} must exceed --max_query_length + 3 "
            f"= {FLAGS.max_query_length + 3}"
        )
    tokenizer = tokenization.FullTokenizer(FLAGS.vocab_file, FLAGS.do_lower_case)
    if FLAGS.do_train:
        train_data = load_squad_json(FLAGS.train_file)
        train_examples, counts = read_squad_examples(
            FLAGS.train_file, train_data, True, FLAGS.version_2_with_negative
        )
        if counts["answer_not_found"]:
            logging.warning(
                "%s: skipped %d training questions whose answer text is not at its answer_start "
                "(--verbose_logging lists them)",
                FLAGS.train_file,
                counts["answer_not_found"],
            )
        if counts["several_answers"]:
            logging.warning(
                "%s: %d training questions have several answers: trained on the first of each",
                FLAGS.train_file,
                counts["several_answers"],
            )
        # Records in random order, as the reference: the input shuffle buffer is smaller than SQuAD.
        random.Random(FLAGS.random_seed).shuffle(train_examples)
    if FLAGS.do_predict:
        predict_data = load_squad_json(FLAGS.predict_file)
        predict_examples, _ = read_squad_examples(
            FLAGS.predict_file, predict_data, False, FLAGS.version_2_with_negative
        )
        scorable = has_gold_answers(FLAGS.predict_file, predict_data, FLAGS.version_2_with_negative)
        if null_threshold == "best" and not scorable:
            raise errors.InputError(
                f"--null_score_diff_threshold=best needs answers in --predict_file="
                f"{FLAGS.predict_file}"
            )

    # Model (the engine prepares and locks --output_dir, where the records go).
    trainer = training.Trainer(
        functools.partial(modeling.BertSquadModel, config),
        strategy,
        predict_batch_size=FLAGS.predict_batch_size,
        **shared_flags.trainer_options(),
    )
    if FLAGS.do_train:
        train_record_file = os.path.join(FLAGS.output_dir, "train.tf_record")
        num_train_features = len(
            write_features(train_examples, tokenizer, train_record_file, is_training=True)
        )
    if FLAGS.do_predict:
        predict_record_file = os.path.join(FLAGS.output_dir, "eval.tf_record")
        predict_features = write_features(
            predict_examples, tokenizer, predict_record_file, is_training=False
        )

    # Loop.
    if FLAGS.do_train:
        num_train_steps, num_warmup_steps = training.steps_for_epochs(
            len(train_examples),
            FLAGS.train_batch_size,
            FLAGS.num_train_epochs,
            FLAGS.warmup_proportion,
        )
        logging.info(
            "Training on %d questions (%d features): %d steps of %d",
            len(train_examples),
            num_train_features,
            num_train_steps,
            FLAGS.train_batch_size,
        )
        trainer.train(
            [train_record_file],
            training.parse_records(record_features(FLAGS.max_seq_length, True)),
            squad_training_loss,
            (),
            num_train_steps,
            num_warmup_steps,
        )

    if not FLAGS.do_predict:
        return

    logging.info(
        "Predicting %d questions (%d features)", len(predict_examples), len(predict_features)
    )
    results = {}
    for output in trainer.predict(
        [predict_record_file],
        training.parse_records(record_features(FLAGS.max_seq_length, False)),
        squad_outputs,
    ):
        # Only the real tokens' logits: padding positions would crowd real ones out of the
        # n_best_size largest (replicas' outputs are padded with zero logits, too).
        length = int(output["real_lengths"])
        results[int(output["unique_ids"])] = (
            output["start_logits"][:length],
            output["end_logits"][:length],
        )
    if len(results) != len(predict_features):
        raise RuntimeError(f"predicted {len(results)} of {len(predict_features)} features")

    # Outputs.
    nbest, null_odds = predict_answers(
        predict_examples,
        predict_features,
        results,
        FLAGS.n_best_size,
        FLAGS.max_answer_length,
        FLAGS.do_lower_case,
        FLAGS.version_2_with_negative,
    )
    # Questions without any non-null candidate are always null: odds above every threshold.
    null_odds = {
        qid: sys.float_info.max if odds is None else odds for qid, odds in null_odds.items()
    }
    if null_threshold == "best":
        non_null = best_non_null_answers(nbest)
        _, f1_non_null, has_answer = raw_scores_v2(FLAGS.predict_file, predict_data, non_null)
        _, null_threshold = find_best_threshold(non_null, f1_non_null, null_odds, has_answer)
        logging.info("Best null score threshold (F1) on %s: %g", FLAGS.predict_file, null_threshold)
    predictions = choose_answers(nbest, null_odds, null_threshold)
    outputs = {"predictions.json": predictions, "nbest_predictions.json": nbest}
    if FLAGS.version_2_with_negative:
        outputs["null_odds.json"] = null_odds
    for name, value in outputs.items():
        file_io.write_text_atomically(
            os.path.join(FLAGS.output_dir, name), json.dumps(value, indent=4) + "\n"
        )
    logging.info("Wrote %s to %s", ", ".join(outputs), FLAGS.output_dir)
    if scorable:
        if FLAGS.version_2_with_negative:
            scores = evaluate_v2(
                FLAGS.predict_file, predict_data, predictions, null_odds, null_threshold
            )
            scores["null_score_diff_threshold"] = null_threshold
        else:
            scores = evaluate_v1(FLAGS.predict_file, predict_data, predictions)
        scores["global_step"] = int(trainer.global_step.numpy())
        training.write_results(os.path.join(FLAGS.output_dir, "eval_results.txt"), scores)
        print(json.dumps(scores))


if __name__ == "__main__":
    errors.run_script(main)
