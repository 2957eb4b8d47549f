"""Extractive question answering, SQuAD v1.1 and v2.0 style.

Data -> features (in Python, before tf.data, as google-research/bert's
run_squad.py, the Model Garden and Hugging Face's run_qa.py do): the
context is split on whitespace into words and each word is tokenized on
its own (as it reads in running text), so every context token knows the
characters it covers. A question (its first `max_query_length` tokens) is
packed with windows of the context, `[CLS] question [SEP] window [SEP]`
(`<s> question </s></s> window </s>` for RoBERTa and XLM-R), consecutive windows
overlapping by `doc_stride` tokens (Hugging Face's meaning of the stride;
run_squad.py's is the step between window starts). A window's labels are
the positions of the answer's first and last tokens, or 0 ([CLS]) when the
answer is not wholly inside it or the question has none.

Model: the backbone's sequence output -> SpanHead -> start and end logits.
Loss: the mean of the start and end cross-entropies.

Decoding: per window, the n-best starts and ends make candidate spans
(start <= end, both in the context, at most `max_answer_length` tokens,
scored by start + end logit); an example takes its best candidate over all
windows and reads the answer from the original context through the
tokens' character spans. SQuAD v2.0: the null score is the lowest
start_logit[0] + end_logit[0] over the example's windows; the answer is ""
when null score - best span score > `null_score_threshold`.

Options: `QuestionAnsweringOptions`.
"""

import dataclasses
import re
import zlib
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from export.spec import ServingSpec
from kerasbert import models
from kerasbert.layers import SpanHead
from tasks.training import metrics
from tasks.base import Task
from tasks.data import squad
from tasks.data.pipeline import make_dataset
from tasks.options import option
from tasks.registry import register

SYNTHETIC_TRAIN_SIZE = 3000
SYNTHETIC_EVAL_SIZE = 300
SYNTHETIC_UNANSWERABLE_FRACTION = 1 / 3


@dataclasses.dataclass
class SquadFeatures:
    """The windows of a list of examples, and what maps them back to text.

    inputs: the three model inputs, int32 [windows, sequence_length].
    start_positions, end_positions: int32 [windows], 0 when no answer.
    example_index: [windows], the example each window comes from.
    context_start: [windows], sequence position of the window's first
        context token; context_length: how many context tokens it holds.
    doc_start: [windows], index of that first token among the example's
        context tokens.
    token_spans: per example, int [context tokens, 2], each token's
        characters [start, end) in the context.
    """

    inputs: dict
    start_positions: np.ndarray
    end_positions: np.ndarray
    example_index: np.ndarray
    context_start: np.ndarray
    context_length: np.ndarray
    doc_start: np.ndarray
    token_spans: list

    def __len__(self):
        return len(self.example_index)


def _token_lists(tokenize, strings, chunk=65536):
    """Token ids of each string, as a list of int32 arrays (tokenized in chunks)."""
    result = []
    for begin in range(0, len(strings), chunk):
        ragged = tokenize(tf.constant(strings[begin:begin + chunk], tf.string))
        splits = ragged.row_splits.numpy()
        values = ragged.flat_values.numpy()
        result += [values[splits[i]:splits[i + 1]] for i in range(len(splits) - 1)]
    return result


def _normalized(tokenizer, words, chunk=65536):
    """Words as the tokenizer sees them before splitting into pieces."""
    if hasattr(tokenizer, "normalize"):
        result = []
        for begin in range(0, len(words), chunk):
            values = tokenizer.normalize(tf.constant(words[begin:begin + chunk], tf.string))
            result += [value.decode("utf-8") for value in values.numpy()]
        return result
    return [word.lower() for word in words] if getattr(tokenizer, "lower_case", False) else words


def _surfaces(vocabulary):
    """The text each token id stands for ("##ing" -> "ing"); None for special tokens."""
    special = set(vocabulary.special_ids)
    surfaces = []
    for index, token in enumerate(vocabulary.tokens):
        for prefix in (vocabulary.continuation_prefix, vocabulary.word_prefix):
            if prefix and token.startswith(prefix):
                token = token[len(prefix):]
        surfaces.append(None if index in special else token)
    return surfaces


def _piece_spans(word, normalized, surfaces):
    """Characters [start, end) of each piece inside `word`.

    The pieces are found in order in the normalized word; where that fails
    ([UNK], or normalization changed the word's length) every piece spans
    the whole word, as run_squad.py's word-level mapping would.
    """
    normalized = normalized.replace(" ", "")  # spaces put around CJK characters
    spans, cursor = [], 0
    if len(normalized) == len(word):
        for surface in surfaces:
            found = -1 if surface is None else normalized.find(surface, cursor)
            if found < 0:
                break
            cursor = found + len(surface)
            spans.append((found, cursor))
    if len(spans) != len(surfaces):
        spans = [(0, len(word))] * len(surfaces)
    return spans


def tokenize_contexts(tokenizer, contexts):
    """Each context -> (token ids int32 [n], character spans int [n, 2])."""
    words = [[(m.start(), m.group()) for m in re.finditer(r"\S+", c)] for c in contexts]
    flat = [word for context_words in words for _, word in context_words]
    pieces = _token_lists(tokenizer.tokenize_words, flat)
    # A word that opens its context reads as the start of a text (byte-level
    # BPE marks the others with the space before them), as the served
    # context, packed whole, reads.
    at_start = [i for i, (offset, _) in enumerate(
        pair for context_words in words for pair in context_words) if offset == 0]
    for i, ids in zip(at_start, _token_lists(tokenizer.tokenize, [flat[i] for i in at_start])):
        pieces[i] = ids
    normalized = _normalized(tokenizer, flat)
    surfaces = _surfaces(tokenizer.vocabulary)
    result, index = [], 0
    for context_words in words:
        ids, spans = [], []
        for offset, word in context_words:
            word_ids = pieces[index]
            pieces_spans = _piece_spans(word, normalized[index],
                                        [surfaces[i] for i in word_ids])
            ids += list(word_ids)
            spans += [(offset + start, offset + end) for start, end in pieces_spans]
            index += 1
        result.append((np.array(ids, np.int32), np.array(spans, np.int64).reshape(-1, 2)))
    return result


def answer_token_span(spans, answer_start, answer_text):
    """First and last context token of an answer given in characters, or None."""
    answer_end = answer_start + len(answer_text)
    first = int(np.searchsorted(spans[:, 1], answer_start, side="right"))
    last = int(np.searchsorted(spans[:, 0], answer_end, side="left")) - 1
    return (first, last) if first <= last else None


def window_starts(num_tokens, window, doc_stride):
    """Start of each context window: `window` tokens, `doc_stride` of overlap."""
    if num_tokens > window and doc_stride >= window:
        raise ValueError(
            f"doc_stride={doc_stride} must be smaller than the {window} context tokens a "
            "window holds here; lower doc_stride or raise sequence_length.")
    starts = [0]
    while starts[-1] + window < num_tokens:
        starts.append(starts[-1] + window - doc_stride)
    return starts


def build_features(examples, tokenizer, sequence_length, doc_stride=128, max_query_length=64):
    """Examples -> SquadFeatures: one row per (question, context window).

    Labels use an example's first answer (SQuAD's training sets have one).
    """
    vocabulary = tokenizer.vocabulary
    cls_id, sep_id, pad_id = (vocabulary.id_of(role) for role in ("cls", "sep", "pad"))
    questions = _token_lists(tokenizer.tokenize, [example["question"] for example in examples])
    # fairseq pairs (RoBERTa, XLM-R) close the question with two separators.
    separators = getattr(tokenizer, "pair_separators", 1)
    contexts = tokenize_contexts(tokenizer, [example["context"] for example in examples])
    rows = []
    for index, (example, question, (ids, spans)) in enumerate(
            zip(examples, questions, contexts)):
        question = list(question[:max_query_length])
        window = sequence_length - len(question) - 2 - separators
        answer = None
        if example["answers"] and not example["is_impossible"]:
            answer = answer_token_span(spans, example["answer_starts"][0],
                                       example["answers"][0])
        for doc_start in window_starts(len(ids), window, doc_stride):
            doc = list(ids[doc_start:doc_start + window])
            context_start = len(question) + 1 + separators
            start = end = 0
            if answer and doc_start <= answer[0] and answer[1] < doc_start + len(doc):
                start = answer[0] - doc_start + context_start
                end = answer[1] - doc_start + context_start
            rows.append((index, [cls_id] + question + [sep_id] * separators + doc + [sep_id],
                         context_start, len(doc), doc_start, start, end))
    word_ids = np.full((len(rows), sequence_length), pad_id, np.int32)
    mask = np.zeros((len(rows), sequence_length), np.int32)
    type_ids = np.zeros((len(rows), sequence_length), np.int32)
    for row, (_, tokens, context_start, *_rest) in enumerate(rows):
        word_ids[row, :len(tokens)] = tokens
        mask[row, :len(tokens)] = 1
        type_ids[row, context_start:len(tokens)] = 1
    column = lambda k: np.array([row[k] for row in rows], np.int32)  # noqa: E731
    return SquadFeatures(
        inputs={"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids},
        start_positions=column(5), end_positions=column(6), example_index=column(0),
        context_start=column(2), context_length=column(3), doc_start=column(4),
        token_spans=[spans for _, spans in contexts])


def decode_answers(examples, features, start_logits, end_logits, n_best_size=20,
                   max_answer_length=30, version_2=False, null_score_threshold=0.0):
    """Start and end logits [windows, seq] -> {example id: answer text}."""
    best = {}  # example index -> (score, first char, end char)
    null = {}  # example index -> lowest null score over its windows
    for row in range(len(features)):
        index = int(features.example_index[row])
        start, end = start_logits[row], end_logits[row]
        null[index] = min(null.get(index, np.inf), start[0] + end[0])
        low = features.context_start[row]
        high = low + features.context_length[row]
        first = np.argsort(-start, kind="stable")[:n_best_size][:, None]
        last = np.argsort(-end, kind="stable")[:n_best_size][None, :]
        valid = (first >= low) & (last >= first) & (last < high) & (
            last - first < max_answer_length)
        scores = np.where(valid, start[first] + end[last], -np.inf)
        i, j = np.unravel_index(np.argmax(scores), scores.shape)
        if valid[i, j] and scores[i, j] > best.get(index, (-np.inf,))[0]:
            spans = features.token_spans[index]
            shift = features.doc_start[row] - low
            best[index] = (scores[i, j], spans[first[i, 0] + shift, 0],
                           spans[last[0, j] + shift, 1])
    answers = {}
    for index, example in enumerate(examples):
        if index not in best or (version_2 and null[index] - best[index][0]
                                 > null_score_threshold):
            answers[example["id"]] = ""
        else:
            _, first_char, end_char = best[index]
            answers[example["id"]] = example["context"][first_char:end_char]
    return answers


@dataclasses.dataclass
class QuestionAnsweringOptions:
    doc_stride: int = option(128, "question_answering: tokens between the starts of a long "
                             "context's windows.")
    max_query_length: int = option(64, "question_answering: question tokens kept.")
    n_best_size: int = option(20, "question_answering: start and end candidates per window "
                              "when reading the answer.")
    max_answer_length: int = option(30, "question_answering: longest answer, in tokens (also "
                                    "the export's).")
    null_score_threshold: float = option(0.0, "question_answering, SQuAD 2.0: answer \"\" when "
                                         "null score - best span score exceeds this.")
    version_2: Optional[bool] = option(None, "question_answering: SQuAD 2.0 scoring (no-answer "
                                       "questions); default: when the split has unanswerable "
                                       "questions.")
    tfds_data_dir: Optional[str] = option(None, "question_answering: TFDS data_dir of --data "
                                          "(a prepared squad dataset).")


@register
class QuestionAnsweringTask(Task):
    """SQuAD-style span extraction (v1.1, and v2.0 with unanswerable questions).

    data: "" for the synthetic task (`tasks.data.squad.synthetic_examples`,
    3000 training and 300 evaluation examples, a third unanswerable), a
    SQuAD JSON file or folder, or a TFDS name ("squad/v1.1", "squad/v2.0").
    """

    name = "question_answering"
    Options = QuestionAnsweringOptions

    def serving_spec(self, sequence_length, truncation):
        """`text` (the question), `text_b` (the context) -> the best span's
        `answer` text, its token positions and the start/end logits (one
        window: a context longer than the sequence is truncated)."""
        return ServingSpec(kind="span", text_inputs=("text", "text_b"),
                           sequence_length=sequence_length, truncation=truncation,
                           max_answer_length=self.options.max_answer_length)

    def __init__(self, config):
        super().__init__(config)
        self._examples = {}
        self._features = {}

    def examples(self, split):
        if split not in self._examples:
            if self.config.data:
                self._examples[split] = squad.load_squad(self.config.data, split,
                                                         self.options.tfds_data_dir)
            else:
                size = (SYNTHETIC_TRAIN_SIZE if split == self.config.train_split
                        else SYNTHETIC_EVAL_SIZE)
                self._examples[split] = squad.synthetic_examples(
                    size, seed=zlib.crc32(split.encode()),
                    unanswerable_fraction=SYNTHETIC_UNANSWERABLE_FRACTION)
        return self._examples[split]

    def training_texts(self):
        """Questions and (each once) contexts of the train split, for a learned vocabulary."""
        rows = self.examples(self.config.train_split)
        contexts = dict.fromkeys(row["context"] for row in rows)
        return [row["question"] for row in rows] + list(contexts)

    def features(self, split, preprocessor):
        """The split's windows for this preprocessor's tokenizer and length (cached)."""
        key = (split, preprocessor.sequence_length)
        cached = self._features.get(key)
        if cached is None or cached[0] is not preprocessor.tokenizer:
            features = build_features(
                self.examples(split), preprocessor.tokenizer, preprocessor.sequence_length,
                self.options.doc_stride, self.options.max_query_length)
            cached = self._features[key] = (preprocessor.tokenizer, features)
        return cached[1]

    def build_model(self, backbone):
        inputs = backbone.input
        sequence_output = backbone(inputs)["sequence_output"]
        start, end = SpanHead(dtype=backbone.dtype_policy, name="span_head")(
            sequence_output, inputs["input_mask"])
        return models.Model(inputs, {"start_logits": start, "end_logits": end},
                           name="question_answering")

    def build_dataset(self, split, preprocessor, batch_size, training, start_step=0, seed=0):
        """(inputs, {output: position}, {output: 0.5}) batches of the split's windows.

        The weights of 0.5 make Keras' sum of the two losses their mean
        while the losses stay built-in ones (a saved model reloads without
        `tasks`). Windows are built once in Python (see `build_features`).
        """
        features = self.features(split, preprocessor)
        columns = dict(features.inputs, start_positions=features.start_positions,
                       end_positions=features.end_positions)

        def split_columns(batch):
            inputs = {name: batch[name] for name in features.inputs}
            labels = {"start_logits": batch["start_positions"],
                      "end_logits": batch["end_positions"]}
            half = tf.fill(tf.shape(batch["start_positions"]), 0.5)
            return inputs, labels, {name: half for name in labels}

        return make_dataset(columns, batch_size, training, split_columns,
                            start_step=start_step, seed=seed)

    def build_losses(self):
        return {name: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                for name in ("start_logits", "end_logits")}

    def build_metrics(self):
        return {name: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
                for name in ("start_logits", "end_logits")}

    def predict_answers(self, model, split, preprocessor, batch_size):
        """{example id: predicted answer text} ("" for no answer)."""
        examples = self.examples(split)
        features = self.features(split, preprocessor)
        outputs = model.predict(features.inputs, batch_size=batch_size, verbose=0)
        version_2 = self.options.version_2
        if version_2 is None:
            version_2 = any(example["is_impossible"] for example in examples)
        return decode_answers(
            examples, features, np.asarray(outputs["start_logits"]),
            np.asarray(outputs["end_logits"]), self.options.n_best_size, self.options.max_answer_length,
            bool(version_2), self.options.null_score_threshold)

    def evaluate(self, model, split, preprocessor, batch_size):
        """SQuAD's exact match and F1 (percent) over the split's questions."""
        predictions = self.predict_answers(model, split, preprocessor, batch_size)
        references = {example["id"]: example["answers"] for example in self.examples(split)}
        return metrics.squad_scores(predictions, references)

    @property
    def primary_metric(self):
        return "f1"
