"""Multiple choice (SWAG style): pick the ending that follows a context.

Each (context, choice) pair is packed as `[CLS] context [SEP] choice [SEP]`,
so the inputs are [batch, choices, seq]. The model flattens them to
[batch * choices, seq], reads each pair's sentence vector (pooled output,
or [CLS] without a pooler), scores it with a dense layer and regroups the
scores as [batch, choices] logits; the loss is a softmax cross-entropy
over the choices, the metric accuracy (as BERT's SWAG fine-tuning).
Exported as the "choice" serving kind (export/choices.py): text and
choices in, the chosen choice out.

Data (TaskConfig.data):
  ""          a seeded synthetic set (`synthetic_examples`), no download.
  a file or folder  JSONL, CSV or TSV ({split}.jsonl etc. in a folder; a
              single file is every split). A row holds a context, its
              choices and the label (index of the right choice).
  a TFDS name e.g. "hellaswag" (context, endings, label); needs a network,
              tested only with stand-in rows. TFDS has no "swag"; Hugging
              Face's SWAG files (startphrase or sent1 + sent2, ending0..3,
              label) read as local files.

Options (`MultipleChoiceOptions`): context_field, choices_field (the
columns, and the fallbacks when a row lacks them), classifier_dropout.
TaskConfig.label_field names the label (default "label"). Every example
of a split must have the same number of choices.
"""

import dataclasses
import json
import random

import keras
import numpy as np

from export.choices import pack_choices
from export.spec import ServingSpec
from kerasbert import models
from kerasbert.layers.choices import FlattenChoices, MultipleChoiceHead
from tasks.training import metrics
from tasks.base import Task, labels_and_predictions
from zoo.backbone import sentence_features
from tasks.data import bad_rows
from tasks.data.pipeline import make_dataset
from tasks.data.sources import read_rows
from tasks.options import option
from tasks.registry import register

SYNTHETIC_TOPICS = (("cat", "dog", "cow", "horse", "pig"),
                    ("red", "green", "blue", "black", "white"),
                    ("one", "two", "three", "four", "five"),
                    ("apple", "bread", "cheese", "rice", "soup"))
SYNTHETIC_SIZES = {"train": 2000}  # any other split: 200


def synthetic_examples(count, seed, context_words=3, ending_words=2):
    """Contexts of words from one topic; the right ending continues that topic.

    Four topics of five words (animals, colors, numbers, food). Every
    example has one ending from each topic, in random order, so an ending
    alone says nothing: only its agreement with the context picks it
    (chance 1/4). "cat cow horse" -> "dog pig", not "red blue".
    """
    rng = random.Random(seed)
    examples = []
    for _ in range(count):
        topics = rng.sample(range(len(SYNTHETIC_TOPICS)), len(SYNTHETIC_TOPICS))
        context = rng.sample(SYNTHETIC_TOPICS[topics[0]], context_words)
        endings = [" ".join(rng.sample(SYNTHETIC_TOPICS[t], ending_words)) for t in topics]
        label = rng.randrange(len(endings))
        endings[0], endings[label] = endings[label], endings[0]
        examples.append({"context": " ".join(context), "choices": endings, "label": label})
    return examples


@dataclasses.dataclass
class MultipleChoiceOptions:
    context_field: str = option("context", "multiple_choice: the context column; rows without "
                                "it fall back to startphrase, ctx, then sent1 + sent2.")
    choices_field: str = option("choices", "multiple_choice: the choices column (a list, or a "
                                "JSON list in CSV/TSV); falls back to endings, then ending0, "
                                "ending1, ...")
    classifier_dropout: float = option(0.1, "Dropout before the task head.")


@register
class MultipleChoiceTask(Task):
    """Scores every (context, choice) pair; a softmax over an example's choices."""

    name = "multiple_choice"
    Options = MultipleChoiceOptions

    def serving_spec(self, sequence_length, truncation):
        """`text` (the context) and `choices` [batch, n] -> probabilities over
        the choices, label and label_text (the chosen choice)."""
        num_choices = len(self.examples(self.config.train_split)[0]["choices"])
        return ServingSpec(kind="choice", text_inputs=("text", "choices"),
                           sequence_length=sequence_length, truncation=truncation,
                           num_choices=num_choices)

    def __init__(self, config):
        super().__init__(config)
        self._examples = {}

    # ----------------------------------------------------------- data

    def examples(self, split):
        """[{"context": str, "choices": [str, ...], "label": int}] (read once, then kept)."""
        if split not in self._examples:
            bad = self.bad_examples(split)
            rows = read_rows(self.config.data, split, default=lambda split: synthetic_examples(
                SYNTHETIC_SIZES.get(split, 200), seed=0 if split == "train" else 1), bad=bad)
            examples = []
            for row in rows:  # a bad row (no choices, no valid label, ...): see bad_rows
                try:
                    examples.append(self._example(row))
                except bad_rows.BadRow as error:
                    bad.report(bad_rows.where(row, f"a {split!r} row"), error.problem, error.fix)
            self._examples[split] = examples
        return self._examples[split]

    def training_texts(self):
        """Contexts and every choice of the train split (for a learned vocabulary)."""
        return [text for row in self.examples(self.config.train_split)
                for text in [row["context"]] + row["choices"]]

    def _example(self, row):
        """A row in any of the supported layouts -> {"context", "choices", "label"}."""
        context_field = self.options.context_field
        choices_field = self.options.choices_field
        if context_field in row:
            context = row[context_field]
        elif "startphrase" in row or "ctx" in row:
            context = row.get("startphrase", row.get("ctx"))
        elif "sent1" in row:
            context = f"{row['sent1']} {row.get('sent2', '')}".strip()
        else:
            raise bad_rows.BadRow(f"no context field {context_field!r} (nor startphrase/ctx/"
                                  f"sent1); its fields are {sorted(row)}",
                                  "Set the context_field option or fix the row")
        if choices_field in row or "endings" in row:
            choices = row.get(choices_field, row.get("endings"))
            if isinstance(choices, str):  # a JSON list in a CSV/TSV cell
                try:
                    choices = json.loads(choices)
                except json.JSONDecodeError as error:
                    raise bad_rows.BadRow(f"the choices cell is not a JSON list ({error.msg} "
                                          f"at column {error.colno})") from None
            if not isinstance(choices, list):
                raise bad_rows.BadRow(f"the choices are a {type(choices).__name__}, not a list")
        elif "ending0" in row:
            choices = [row[f"ending{i}"] for i in range(len(row)) if f"ending{i}" in row]
        else:
            raise bad_rows.BadRow(f"no choices field {choices_field!r} (nor endings/ending0...); "
                                  f"its fields are {sorted(row)}",
                                  "Set the choices_field option or fix the row")
        label = _choice_index(row.get(self.config.label_field), self.config.label_field)
        if not 0 <= label < len(choices):
            raise bad_rows.BadRow(f"label {label} is not the index of one of the {len(choices)} "
                                  f"choices (0-{len(choices) - 1}; TFDS test splits have no "
                                  "labels)")
        return {"context": str(context), "choices": [str(c) for c in choices], "label": label}

    def _columns(self, split):
        rows = self.examples(split)
        if not rows:
            raise ValueError(f"Split {split!r} of {self.config.data or 'the synthetic set'} "
                             "is empty.")
        counts = {len(row["choices"]) for row in rows}
        if len(counts) != 1:
            raise ValueError(f"Split {split!r} mixes numbers of choices {sorted(counts)}; every "
                             "example needs the same number.")
        return {"context": [row["context"] for row in rows],
                "choices": [row["choices"] for row in rows],
                "label": np.array([row["label"] for row in rows], np.int32)}

    def build_dataset(self, split, preprocessor, batch_size, training, start_step=0, seed=0):
        """(inputs int32 [batch, choices, seq], labels int32 [batch]) batches."""

        def preprocess(batch):
            # The export's own packing (export.choices), so serving packs as training does.
            return pack_choices(preprocessor, batch["context"], batch["choices"]), batch["label"]

        return make_dataset(self._columns(split), batch_size, training, preprocess,
                            start_step=start_step, seed=seed)

    # ---------------------------------------------------------- model

    def build_model(self, backbone):
        """[batch, choices, seq] inputs -> {"logits": float32 [batch, choices]}."""
        inputs = {name: keras.Input(shape=(None,) + tuple(tensor.shape[1:]), dtype=tensor.dtype,
                                    name=name)
                  for name, tensor in backbone.input.items()}
        flatten = FlattenChoices(name="flatten_choices")
        features = sentence_features(
            backbone, backbone({name: flatten(x) for name, x in inputs.items()}))
        head = MultipleChoiceHead(dropout=self.options.classifier_dropout,
                                  dtype=backbone.dtype_policy, name="multiple_choice_head")
        logits = head(features, inputs["input_word_ids"])
        return models.Model(inputs, {"logits": logits}, name=f"{backbone.name}_{self.name}")

    def build_losses(self):
        return {"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}

    def build_metrics(self):
        return {"logits": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}

    # ----------------------------------------------------- evaluation

    def evaluate(self, model, split, preprocessor, batch_size):
        dataset = self.build_dataset(split, preprocessor, batch_size, training=False)
        labels, logits = labels_and_predictions(model, dataset)
        return {"accuracy": metrics.accuracy(labels, logits.argmax(-1))}

    primary_metric = "accuracy"


def _choice_index(value, field):
    """A label cell -> the index of the right choice (an int), or BadRow."""
    if bad_rows.is_missing(value):
        raise bad_rows.BadRow(bad_rows.no_label(field))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (bool, float)):
        raise bad_rows.BadRow(f"label {value!r} is not a choice index (0, 1, ...)")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_rows.BadRow(f"label {value!r} is not a choice index (0, 1, ...)") from None
