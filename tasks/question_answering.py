"""Extractive question answering, SQuAD v1.1 and v2.0 style.

Data -> features, once before tf.data (as google-research/bert's
run_squad.py, the Model Garden and Hugging Face's run_qa.py do), by
`kerasbert.text.windows`, the graph functions the export's span signature
also calls on raw strings (so a served answer is this task's answer): the
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
when null score - best span score > `null_score_threshold`
(`kerasbert.text.windows.best_answers`, also what the export runs).

Options: `QuestionAnsweringOptions`.
"""

import dataclasses
import zlib
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from export.spec import ServingSpec
from kerasbert import models
from kerasbert.layers import SpanHead
from kerasbert.text import windows
from tasks.training import metrics
from tasks.base import Task
from tasks.data import squad
from tasks.data.pipeline import make_dataset
from tasks.options import option
from tasks.registry import register

TEXT_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")
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


CHUNK = 512  # examples tokenized and windowed per graph call (bounds memory on SQuAD)


def tokenize_contexts(tokenizer, contexts):
    """Each context -> (token ids int32 [n], character spans int64 [n, 2]),
    as `kerasbert.text.windows.context_tokens` reads it."""
    result = []
    for begin in range(0, len(contexts), CHUNK):
        ids, spans = windows.context_tokens(tokenizer, contexts[begin:begin + CHUNK])
        result += list(zip(_rows(ids), _rows(spans)))
    return result


def _rows(ragged):
    """A ragged tensor -> its rows as numpy arrays."""
    splits = ragged.row_splits.numpy()
    values = ragged.flat_values.numpy()
    return [values[splits[i]:splits[i + 1]] for i in range(len(splits) - 1)]


def answer_token_span(spans, answer_start, answer_text):
    """First and last context token of an answer given in characters, or None."""
    answer_end = answer_start + len(answer_text)
    first = int(np.searchsorted(spans[:, 1], answer_start, side="right"))
    last = int(np.searchsorted(spans[:, 0], answer_end, side="left")) - 1
    return (first, last) if first <= last else None


def build_features(examples, tokenizer, sequence_length, doc_stride=None, max_query_length=64):
    """Examples -> SquadFeatures: one row per (question, context window), packed
    by `kerasbert.text.windows.pack_windows` (what the export serves).

    Labels use an example's first answer (SQuAD's training sets have one).
    """
    if not examples:
        raise ValueError("No question-answering examples: an empty split or file?")
    if doc_stride is None:
        doc_stride = windows.default_doc_stride(sequence_length)
    separators = tokenizer.pair_separators
    parts, token_spans = [], []
    for begin in range(0, len(examples), CHUNK):
        chunk = examples[begin:begin + CHUNK]
        questions = tokenizer.tokenize(tf.constant([example["question"] for example in chunk]))
        context_ids, spans = windows.context_tokens(
            tokenizer, tf.constant([example["context"] for example in chunk]))
        try:
            packed = windows.pack_windows(questions, context_ids, sequence_length, doc_stride,
                                          max_query_length, tokenizer.vocabulary, separators)
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(error.message.split("\n")[0]) from None
        packed = {name: value.numpy() for name, value in packed.items()}
        packed["example_index"] += begin
        parts.append(packed)
        token_spans += _rows(spans)
    columns = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    starts = np.zeros(len(columns["example_index"]), np.int32)
    ends = starts.copy()
    for row, index in enumerate(columns["example_index"]):
        example = examples[index]
        if not example.get("answers") or example.get("is_impossible"):
            continue
        answer = answer_token_span(token_spans[index], example["answer_starts"][0],
                                   example["answers"][0])
        doc_start = columns["doc_start"][row]
        if answer and doc_start <= answer[0] and answer[1] < (
                doc_start + columns["context_length"][row]):
            shift = columns["context_start"][row] - doc_start
            starts[row], ends[row] = answer[0] + shift, answer[1] + shift
    return SquadFeatures(
        inputs={name: columns[name] for name in TEXT_INPUTS},
        start_positions=starts, end_positions=ends, example_index=columns["example_index"],
        context_start=columns["context_start"], context_length=columns["context_length"],
        doc_start=columns["doc_start"], token_spans=token_spans)


def decode_answers(examples, features, start_logits, end_logits, n_best_size=20,
                   max_answer_length=30, version_2=False, null_score_threshold=0.0):
    """Start and end logits [windows, seq] -> {example id: answer text}."""
    answers = decode_predictions(examples, features, start_logits, end_logits, n_best_size,
                                 max_answer_length, version_2, null_score_threshold)["answer"]
    return {example["id"]: answer for example, answer in zip(examples, answers)}


def decode_predictions(examples, features, start_logits, end_logits, n_best_size=20,
                       max_answer_length=30, version_2=False, null_score_threshold=0.0):
    """Start and end logits [windows, seq] -> per example (numpy, in example
    order): `answer` (str), `answer_char_start`, `answer_char_end`, `score`,
    `null_score`, by `kerasbert.text.windows.best_answers` (what the export
    serves)."""
    bookkeeping = {name: tf.constant(getattr(features, name)) for name in
                   ("example_index", "context_start", "context_length", "doc_start")}
    spans = tf.RaggedTensor.from_row_lengths(
        np.concatenate(features.token_spans + [np.zeros((0, 2), np.int64)]).astype(np.int64),
        [len(spans) for spans in features.token_spans])
    decoded = windows.best_answers(
        bookkeeping, tf.constant(start_logits, tf.float32), tf.constant(end_logits, tf.float32),
        spans, [example["context"] for example in examples], n_best_size, max_answer_length,
        version_2, null_score_threshold)
    decoded = {name: value.numpy() for name, value in decoded.items()}
    decoded["answer"] = np.array([answer.decode("utf-8") for answer in decoded["answer"]],
                                 dtype=object)
    return decoded


@dataclasses.dataclass
class QuestionAnsweringOptions:
    doc_stride: Optional[int] = option(None, "question_answering: tokens two consecutive "
                                       "windows of a long context share; default: a third "
                                       "of --sequence_length, at most 128.")
    max_query_length: int = option(64, "question_answering: question tokens kept.")
    n_best_size: int = option(20, "question_answering: start and end candidates per window "
                              "when reading the answer.")
    max_answer_length: int = option(30, "question_answering: longest answer, in tokens (also "
                                    "the export's).")
    null_score_threshold: float = option(0.0, "question_answering, SQuAD 2.0: answer \"\" when "
                                         "null score - best span score exceeds this.")
    version_2: Optional[bool] = option(None, "question_answering: SQuAD 2.0 decoding and "
                                       "scoring (no-answer questions); default: when the "
                                       "training split has unanswerable questions.")
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
        """`text` (the question), `text_b` (the context) -> the `answer` the
        task decodes: every window of the context, read from its text (see
        export/spans.py)."""
        options = self.options
        return ServingSpec(kind="span", text_inputs=("text", "text_b"),
                           sequence_length=sequence_length, truncation=truncation,
                           max_answer_length=options.max_answer_length,
                           doc_stride=self.doc_stride(sequence_length),
                           max_query_length=options.max_query_length,
                           n_best_size=options.n_best_size,
                           version_2=self.version_2(),
                           null_score_threshold=options.null_score_threshold)

    def version_2(self):
        """SQuAD 2.0 decoding and scoring: the option, or whether the training
        split has unanswerable questions (the export decodes the same way)."""
        if self.options.version_2 is not None:
            return bool(self.options.version_2)
        return any(example["is_impossible"]
                   for example in self.examples(self.config.train_split))

    def doc_stride(self, sequence_length):
        """--doc_stride, or its default for this sequence length."""
        if self.options.doc_stride is None:
            return windows.default_doc_stride(sequence_length)
        return self.options.doc_stride

    def __init__(self, config):
        super().__init__(config)
        self._examples = {}
        self._features = {}
        # A stride no window can take fails now, not at the first long context.
        windows.check_windowing(config.sequence_length, self.doc_stride(config.sequence_length),
                                self.options.max_query_length)

    def examples(self, split):
        """The split's questions (read once, then kept). A bad one (a missing
        field, an answer not in its context) is an error naming its line, or
        skipped with skip_bad_examples (tasks.data.bad_rows)."""
        if split not in self._examples:
            if self.config.data:
                self._examples[split] = squad.load_squad(self.config.data, split,
                                                         self.options.tfds_data_dir,
                                                         self.bad_examples(split))
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
            features = self.windows_of(self.examples(split), preprocessor)
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
        answers = self.answer(model, examples, preprocessor, batch_size,
                              version_2=self.version_2(),
                              features=self.features(split, preprocessor))["answer"]
        return {example["id"]: answer for example, answer in zip(examples, answers)}

    def windows_of(self, examples, preprocessor):
        """`examples`' SquadFeatures with this run's windowing options."""
        return build_features(examples, preprocessor.tokenizer, preprocessor.sequence_length,
                              self.doc_stride(preprocessor.sequence_length),
                              self.options.max_query_length)

    def answer(self, model, examples, preprocessor, batch_size, version_2, features=None):
        """The task's decoding of `examples` (question, context dicts): see
        `decode_predictions` (answer, character offsets, score, null score)."""
        if features is None:
            features = self.windows_of(examples, preprocessor)
        outputs = model.predict(features.inputs, batch_size=batch_size, verbose=0)
        return decode_predictions(
            examples, features, np.asarray(outputs["start_logits"]),
            np.asarray(outputs["end_logits"]), self.options.n_best_size,
            self.options.max_answer_length, version_2, self.options.null_score_threshold)

    def evaluate(self, model, split, preprocessor, batch_size):
        """SQuAD's exact match and F1 (percent) over the split's questions."""
        predictions = self.predict_answers(model, split, preprocessor, batch_size)
        references = {example["id"]: example["answers"] for example in self.examples(split)}
        return metrics.squad_scores(predictions, references)

    @property
    def primary_metric(self):
        return "f1"
