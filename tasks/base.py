"""The interface every task implements (after the TF Model Garden's Task).

A task turns a backbone into a task model, examples into tf.data batches,
and predictions into its real metric. The runner (`tasks/run.py`) only
talks to this interface:

    task = catalog.task_class(name)(TaskConfig(..., options={...}))
    model = task.build_model(backbone)             # keras.Model, named outputs
    train = task.build_dataset("train", preprocessor, batch_size, training=True)
    model.compile(optimizer, loss=task.build_losses(), metrics=task.build_metrics())
    model.fit(train, ...)
    scores = task.evaluate(model, "validation", preprocessor, batch_size)

The task model is a plain functional keras.Model built from the backbone's
inputs and `kerasbert.layers` heads, so a saved one reloads with
`kerasbert` and `zoo` imported and nothing from `tasks`.
"""

import dataclasses
from typing import Optional

import numpy as np

from tasks import options as task_options
from tasks.data.bad_rows import BadExamples


@dataclasses.dataclass
class TaskConfig:
    """What a task needs to know beyond the model; the runner fills it from flags.

    data: a TFDS name ("glue/sst2"), a file or folder, or "" for the task's
        embedded default (no download).
    splits: names of the train and evaluation splits.
    sequence_length: packed length for text tasks (image tasks: image size).
    num_classes: for classification; None reads it from the data.
    text_fields / label_field: column or feature names in the data.
    skip_bad_examples: a bad example (a row without a label, a malformed
        line, an image that does not decode, ...) is skipped with a warning
        and counted in Task.skipped_examples, instead of stopping the run
        with an error naming it (tasks.data.bad_rows).
    seed: the run's seed (data order is seeded by build_dataset's `seed`;
        this one is for what a task draws itself, e.g. TinyBERT augmentation).
    options: the task's own settings, a dict or its `Options` dataclass
        (e.g. {"doc_stride": 64}); checked against `Options` (see tasks.options).
    """

    data: str = ""
    train_split: str = "train"
    eval_split: str = "validation"
    sequence_length: int = 128
    num_classes: Optional[int] = None
    text_fields: tuple = ("text",)
    label_field: str = "label"
    skip_bad_examples: bool = False
    seed: int = 0
    options: object = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class NoOptions:
    """The options of a task that has none."""


class Task:
    """Base class. Subclasses set `name` and implement the methods below.

    Options: a dataclass of `tasks.options.option` fields, the task's own
    settings with their defaults and help; each is a flag of tasks.run, and
    `self.options` holds the instance the task runs with.
    """

    name = None
    Options = NoOptions
    text = True  # False for image tasks: no tokenizer needed
    distills = False  # True: the runner loads a teacher and builds a student (prepare)
    # True: a distillation whose student is trained from scratch (a preset) unless
    # --student names a checkpoint, so the run takes the from-scratch learning
    # rate, epochs and weight decay (DeiT); False: it starts from its teacher or
    # a pretrained checkpoint and takes the fine-tuning ones.
    fresh_student = False
    primary_mode = "max"  # "min" for a primary metric that is a loss
    takes_sentence_encoder = False  # True: a loaded SentenceEncoder is passed whole,
    # not unwrapped to its backbone (the sentence_embedding task)
    labels_words = False  # True: labels sit on whitespace-separated words (tagging), so a
    # byte-level BPE tokenizer reads a text's first word as a word too (add_prefix_space)

    def __init__(self, config):
        self.config = config
        self.options = task_options.parse(type(self).Options, config.options,
                                          f"--task={self.name}")
        # {split: examples skipped as bad (--skip_bad_examples)}: the readers
        # count them, the training loop reports them in metrics.json.
        self.skipped_examples = {}

    def bad_examples(self, split):
        """What reading `split` does with a bad example: raise an error naming
        it, or (skip_bad_examples) warn and count it in skipped_examples."""
        return BadExamples(self.config.skip_bad_examples, self.skipped_examples, split)

    def examples(self, split):
        """Raw examples of a split as a list of dicts (or a tf.data.Dataset);
        also used to learn a vocabulary for a randomly initialised backbone."""
        raise NotImplementedError

    def training_texts(self):
        """Texts of the train split to learn a vocabulary from (a preset
        trained from scratch has none)."""
        rows = self.examples(self.config.train_split)
        return [str(row[f]) for row in rows for f in self.config.text_fields if f in row]

    def build_model(self, backbone):
        """The task model: the backbone's inputs -> {output name: tensor}."""
        raise NotImplementedError

    def build_dataset(self, split, preprocessor, batch_size, training, start_step=0, seed=0):
        """Batches of (features, labels[, sample weights]) for fit/evaluate.

        preprocessor: the text Preprocessor, or for image tasks the
        backbone's image shape. Training data repeats forever from batch
        `start_step` of the seeded stream (see tasks.data.pipeline).
        """
        raise NotImplementedError

    def build_losses(self):
        """A keras loss, or a dict of them keyed by output name."""
        raise NotImplementedError

    def build_metrics(self):
        """Keras metrics for the progress bar (keyed by output name if needed)."""
        return []

    def evaluate(self, model, split, preprocessor, batch_size):
        """The task's real metrics on `split` as {name: float}."""
        raise NotImplementedError

    @property
    def primary_metric(self):
        """The metric best-model tracking maximises (minimises: primary_mode "min")."""
        raise NotImplementedError

    def serving_spec(self, sequence_length, truncation):
        """How `export` serves the saved model (an export.ServingSpec), or None
        when the task's model has no serving kind yet."""
        return None

    def set_train_steps(self, steps):
        """The run's length, once known (a distillation's stage switch needs it)."""

    def trained_model(self, model):
        """The part of `model` that training changes, which checkpoints hold:
        the model itself, except for distillation (the student alone)."""
        return model

    def saved_model(self, model):
        """What model.keras and best_model.keras hold: the model itself, except
        for distillation (the student, as an ordinary task model or backbone)."""
        return model


def labels_and_predictions(model, dataset, output="logits"):
    """(labels, model output) over an evaluation dataset of (features, labels).

    The dataset is cached, so preprocessing (tokenization) runs once, not
    once for the labels and again for the predictions.
    """
    dataset = dataset.cache()
    labels = np.concatenate([np.asarray(y) for _, y in dataset])
    return labels, model.predict(dataset.map(lambda x, y: x), verbose=0)[output]
