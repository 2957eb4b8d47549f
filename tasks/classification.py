"""Text classification: single texts and pairs (GLUE-style), regression (STS-B
style) and multi-label. One head on the pooled output (the first token for
families without a trained pooler: zoo.backbone.sentence_features); the label kind decides the loss and the metrics.
"""

import dataclasses

import keras
import numpy as np

from export.spec import ServingSpec

from kerasbert import models
from kerasbert.layers import ClassificationHead
from tasks.training import metrics
from tasks.base import Task, labels_and_predictions
from tasks.data import bad_rows, embedded
from tasks.data.pipeline import Bucketing, bucket_lengths_option, make_dataset
from tasks.data.sources import read_rows
from tasks.options import option
from tasks.registry import register
from zoo.backbone import sentence_features


@dataclasses.dataclass
class TextHeadOptions:
    """A head on the pooled output, trained on (optionally bucketed) text batches."""

    classifier_dropout: float = option(0.1, "Dropout before the task head.")
    bucket: bool = option(False, "Pad each training batch to the smallest of 16, 32, 64, ... "
                          "sequence_length that holds it, batching similar lengths together "
                          "(evaluation keeps fixed padding; see tasks.data.pipeline).")
    bucket_lengths: tuple[int, ...] = option((), "Bucketing with these lengths instead (e.g. "
                                             "24,48,96; sequence_length is added).")
    bucket_window: int = option(64, "Bucketing: batches grouped by length at a time.")


@dataclasses.dataclass
class ClassificationOptions(TextHeadOptions):
    labels: tuple[str, ...] = option((), "Label names in id order (default: the training "
                                     "labels, sorted; numbers numerically).")


@register
class TextClassificationTask(Task):
    """Single-label classification of one text or a pair of texts."""

    name = "classification"
    serving_kind = "classifier"
    Options = ClassificationOptions

    def serving_spec(self, sequence_length, truncation):
        """`text` (and `text_b` for pairs) -> probabilities, label, label_name."""
        names = () if self.serving_kind == "regression" else tuple(map(str, self.labels()))
        names = names[:self.num_outputs]  # labels past --num_classes had their rows refused
        # --num_classes may exceed the labels seen: the others are named by id.
        names += tuple(str(i) for i in range(len(names), self.num_outputs)) if names else ()
        return ServingSpec(kind=self.serving_kind,
                           text_inputs=("text", "text_b")[:len(self.config.text_fields)],
                           sequence_length=sequence_length, truncation=truncation,
                           label_names=names)

    def __init__(self, config):
        super().__init__(config)
        self._labels = None
        self._examples = {}

    # ----------------------------------------------------------- data

    def examples(self, split):
        """The split's rows (read once, then kept). A bad row (a malformed line,
        no label, an unknown one) is an error naming its line, or skipped with
        skip_bad_examples (tasks.data.bad_rows)."""
        if split not in self._examples:
            bad = self.bad_examples(split)
            fields = list(self.config.text_fields) + [self.config.label_field]
            rows = read_rows(self.config.data, split, fields, default=embedded.sentiment,
                             bad=bad)
            self._examples[split] = self._checked(rows, split, bad)
        return self._examples[split]

    def _checked(self, rows, split, bad):
        """The rows whose label this task can train on; the others go to `bad`.

        Rows without a label go first, so the training split's other rows
        can name the labels (when the `labels` option does not) before each
        label is checked against them.
        """
        field = self.config.label_field

        def kept(row, problem):
            if problem is not None:
                bad.report(bad_rows.where(row, f"a {split!r} row"), *problem)
            return problem is None

        rows = [row for row in rows if kept(row, self.missing_label(row[field]))]
        if self._labels is None and split == self.config.train_split:
            self._labels = self.labels_from(rows)
        check = self.label_check()
        return [row for row in rows if kept(row, check(row[field]))]

    def missing_label(self, value):
        """(problem, fix) when the label cell holds nothing, else None."""
        if bad_rows.is_missing(value):
            return bad_rows.no_label(self.config.label_field), "Fix the row"
        return None

    def label_check(self):
        """check(label) -> (problem, fix) when the label is no class of this
        task (unknown, or past --num_classes), else None."""
        return bad_rows.ClassLabels(
            self.labels(), self.config.num_classes,
            bool(self.options.labels), self.config.label_field).check

    def labels_from(self, rows):
        """Class names: the `labels` option, else those of these training rows
        (sorted, numbers numerically)."""
        if self.options.labels:
            return list(self.options.labels)
        return sorted({row[self.config.label_field] for row in rows}, key=_label_sort_key)

    def labels(self):
        """Class names, from the `labels` option or the train split (sorted)."""
        if self._labels is None and self.options.labels:
            self._labels = list(self.options.labels)
        elif self._labels is None:
            self.examples(self.config.train_split)  # reading it names them (_checked)
        return self._labels

    def encode_labels(self, values):
        index = {str(label): i for i, label in enumerate(self.labels())}
        try:
            return np.array([index[str(value)] for value in values], np.int32)
        except KeyError as error:
            raise ValueError(f"Label {error.args[0]!r} is not one of {self.labels()}.") from None

    def _columns(self, split):
        rows = self.examples(split)
        if not rows:
            raise ValueError(f"Split {split!r} of {self.config.data or 'the embedded set'} is empty.")
        columns = {f"text_{i}": [str(row[f]) for row in rows]
                   for i, f in enumerate(self.config.text_fields)}
        columns["label"] = self.encode_labels([row[self.config.label_field] for row in rows])
        return columns

    def build_dataset(self, split, preprocessor, batch_size, training, start_step=0, seed=0):
        """See Task.build_dataset. The `bucket` or `bucket_lengths` option pads
        each training batch to the smallest bucket length holding its longest
        example, with examples of similar length batched together
        (`bucket_window` batches at a time). Evaluation keeps fixed padding.
        See tasks.data.pipeline."""
        texts = len(self.config.text_fields)

        def preprocess(batch):
            inputs = preprocessor(*[batch[f"text_{i}"] for i in range(texts)])
            return inputs, batch["label"]

        bucketing = None
        lengths = bucket_lengths_option(self.options, preprocessor.sequence_length)
        if training and lengths:

            def tokenize(batch):
                ids = preprocessor.tokenize(*[batch[f"text_{i}"] for i in range(texts)])
                return (tuple(ids), batch["label"]), preprocessor.packed_lengths(*ids)

            def pack(tokenized, width):
                ids, labels = tokenized
                return preprocessor.pack(*ids, length=width), labels

            bucketing = Bucketing(lengths, tokenize, pack,
                                  window=self.options.bucket_window)
        return make_dataset(self._columns(split), batch_size, training, preprocess,
                            start_step=start_step, seed=seed, bucketing=bucketing)

    # ---------------------------------------------------------- model

    @property
    def num_outputs(self):
        return self.config.num_classes or len(self.labels())

    def build_model(self, backbone):
        features = sentence_features(backbone, backbone(backbone.input))
        logits = ClassificationHead(self.num_outputs, dropout=self.options.classifier_dropout,
                                    dtype=backbone.dtype_policy, name="classifier")(features)
        return models.Model(backbone.input, {"logits": logits}, name=f"{backbone.name}_{self.name}")

    def build_losses(self):
        return {"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}

    def build_metrics(self):
        return {"logits": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}

    # ----------------------------------------------------- evaluation

    def predict(self, model, split, preprocessor, batch_size):
        dataset = self.build_dataset(split, preprocessor, batch_size, training=False)
        labels, logits = labels_and_predictions(model, dataset)
        return labels, logits

    def evaluate(self, model, split, preprocessor, batch_size):
        labels, logits = self.predict(model, split, preprocessor, batch_size)
        predictions = logits.argmax(-1)
        scores = {"accuracy": metrics.accuracy(labels, predictions),
                  "matthews_corrcoef": metrics.matthews_corrcoef(labels, predictions)}
        average = "binary" if self.num_outputs == 2 else "macro"
        scores["f1"] = metrics.f1(labels, predictions, average=average)
        return scores

    primary_metric = "accuracy"


@register
class RegressionTask(TextClassificationTask):
    """One real-valued score per text or pair (STS-B): mean squared error."""

    name = "regression"
    serving_kind = "regression"
    primary_metric = "pearson"
    Options = TextHeadOptions  # a score has no label names

    def labels(self):
        return []

    def labels_from(self, rows):
        return []

    def label_check(self):
        return lambda value: bad_rows.number_problem(value, self.config.label_field)

    def encode_labels(self, values):
        return np.array([float(value) for value in values], np.float32)

    @property
    def num_outputs(self):
        return 1

    def build_losses(self):
        return {"logits": keras.losses.MeanSquaredError()}

    def build_metrics(self):
        return {"logits": [keras.metrics.MeanAbsoluteError(name="mae")]}

    def evaluate(self, model, split, preprocessor, batch_size):
        labels, predictions = self.predict(model, split, preprocessor, batch_size)
        predictions = predictions[:, 0]
        return {"pearson": metrics.pearson(labels, predictions),
                "spearman": metrics.spearman(labels, predictions),
                "mse": float(np.mean((labels - predictions) ** 2))}


@dataclasses.dataclass
class MultiLabelOptions(ClassificationOptions):
    label_separator: str = option(",", "multilabel: what separates the label names in a "
                                  "text label field (a list field needs none).")


@register
class MultiLabelTask(TextClassificationTask):
    """Any number of labels per text: a sigmoid per label.

    The label field holds a list of names or a string of names separated by
    the `label_separator` option (default ",").
    """

    name = "multilabel"
    Options = MultiLabelOptions
    serving_kind = "multilabel"
    primary_metric = "micro_f1"

    def _names(self, value):
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
        separator = self.options.label_separator
        return [v.strip() for v in str(value).split(separator) if v.strip()]

    def labels_from(self, rows):
        if self.options.labels:
            return list(self.options.labels)
        field = self.config.label_field
        return sorted({name for row in rows for name in self._names(row[field])})

    def missing_label(self, value):
        """None (JSON null) only: an empty cell or list is a text with no label."""
        if value is None:
            return bad_rows.no_label(self.config.label_field), "Fix the row"
        return None

    def label_check(self):
        """Every name of a row's labels must be a class."""
        classes = bad_rows.ClassLabels(self.labels(), None, bool(self.options.labels),
                                       self.config.label_field)
        return lambda value: next(filter(None, map(classes.check, self._names(value))), None)

    def encode_labels(self, values):
        index = {label: i for i, label in enumerate(self.labels())}
        multi_hot = np.zeros((len(values), len(index)), np.float32)
        for row, value in enumerate(values):
            for name in self._names(value):
                if name not in index:
                    raise ValueError(f"Label {name!r} is not one of {self.labels()}.")
                multi_hot[row, index[name]] = 1.0
        return multi_hot

    def build_losses(self):
        return {"logits": keras.losses.BinaryCrossentropy(from_logits=True)}

    def build_metrics(self):
        return {"logits": [keras.metrics.BinaryAccuracy(name="binary_accuracy", threshold=0.0)]}

    def evaluate(self, model, split, preprocessor, batch_size):
        labels, logits = self.predict(model, split, preprocessor, batch_size)
        predictions = (logits > 0).astype(np.int32)
        return {"micro_f1": metrics.multilabel_f1(labels, predictions, average="micro"),
                "macro_f1": metrics.multilabel_f1(labels, predictions, average="macro")}


def _label_sort_key(value):
    """Numbers sort numerically ("2" < "10"), names alphabetically, numbers first."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))
