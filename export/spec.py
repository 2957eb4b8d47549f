"""The serving spec: what `export` needs to know beyond the model.

A trained model folder (tasks.run's model_dir) holds model.keras, its
tokenizer files and `serving.json`: the output kind, label names, the
text inputs and how they are packed (or, for images, size and
normalization). `export` reads nothing about how the model was trained.
"""

import dataclasses
import json
import os
from typing import Optional

KINDS = ("classifier", "regression", "multilabel", "tagger", "span", "backbone",
         "embedding", "image_classifier", "choice")
SPEC_FILE = "serving.json"


@dataclasses.dataclass
class ServingSpec:
    """kind: one of KINDS.
    text_inputs: ("text",) or ("text", "text_b") (span: question, context).
    sequence_length, truncation: how raw text is packed (the model's own).
    label_names: class, label or tag names in id order.
    max_answer_length: longest decoded answer, in tokens (span).
    num_choices: choices per example in training (choice; the model takes any
        number, clients and warm-up requests send this many).
    doc_stride, max_query_length, n_best_size, version_2,
        null_score_threshold: how a span model windows a long context and
        decodes its answer (the question-answering task's options).
    image_size, num_channels, mean, std: image decoding (image_classifier).
    """

    kind: str
    text_inputs: tuple = ("text",)
    sequence_length: int = 128
    truncation: str = "longest_first"
    label_names: tuple = ()
    max_answer_length: int = 30
    num_choices: int = 4
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    version_2: bool = False
    null_score_threshold: float = 0.0
    image_size: Optional[tuple] = None
    num_channels: int = 3
    mean: float = 0.5
    std: float = 0.5

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Unknown serving kind {self.kind!r}; one of {KINDS}.")
        self.text_inputs = tuple(self.text_inputs)
        self.label_names = tuple(str(name) for name in self.label_names)
        if self.image_size is not None:
            self.image_size = tuple(self.image_size)

    @property
    def is_image(self):
        return self.kind == "image_classifier"

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        values = json.loads(text)
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in values.items() if name in known})


def write_spec(spec, folder):
    """Writes serving.json into `folder` (whole or not at all)."""
    path = os.path.join(folder, SPEC_FILE)
    with open(path + ".tmp", "w") as file:
        file.write(spec.to_json())
    os.replace(path + ".tmp", path)
    return path


def read_spec(folder):
    """The ServingSpec in `folder`, or None when it has none."""
    path = os.path.join(folder, SPEC_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as file:
        return ServingSpec.from_json(file.read())
