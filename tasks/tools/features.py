"""Feature extraction (`--task=extract_features`): a text backbone's pooled
hidden states for every text of a file, written to .npy or TFRecord. No training.

    texts (one per line, or --text_fields of a .tsv/.csv/.jsonl; two = pairs)
      -> preprocessor, a batch at a time -> backbone -> FeaturePooling
      -> features.npy (+ features.mask.npy) or features.tfrecord

Poolings (kerasbert.layers.FeaturePooling): `cls`, `mean` and `max` give one
[H] vector per text; `last4_sum`, `last4_concat` ([seq, 4H]) and `weighted`
give one vector per token, zero at padding. Without training, `weighted` is
an equal mix of the backbone's layer outputs (its logits start at zero, its
scale at one): the plain average of the layers.

Texts are never skipped: an empty line or field is an error naming it, so
row i of the output is always text i of the input. Texts longer than
sequence_length are cut by the preprocessor's truncation policy.

Outputs are written to a temporary name and renamed when complete, so a
failed or interrupted run leaves the previous output (or none), never a
partial one. The .npy is filled through a memory map, a batch at a time:
the features are never all in memory.
"""

import dataclasses
import os
import time
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from kerasbert import models
from kerasbert.layers import FeaturePooling
from kerasbert.layers.pooling import POOLINGS, TOKEN_POOLINGS
from tasks.base import Task
from tasks.data import embedded
from tasks.data.text_files import read_lines, read_text_file
from tasks.options import option
from tasks.registry import register

FORMATS = (".npy", ".tfrecord")
TABLE_EXTENSIONS = (".csv", ".tsv", ".jsonl")


# ------------------------------------------------------------------ inputs

def read_texts(data, text_fields=("text",)):
    """The texts to extract features from: a list of columns, one per text
    field (two for pairs), each a list of strings in file order.

    data: a .csv/.tsv/.jsonl file (`text_fields` name its columns), any
        other file (one text per line; one text field), or "" for the
        embedded sentiment sentences (their `text` column, all 128).
    An empty or blank text is a ValueError naming its line (row, record).
    """
    text_fields = tuple(text_fields or ("text",))
    if len(text_fields) not in (1, 2):
        raise ValueError(f"--text_fields: one field for single texts or two for pairs, "
                         f"got {list(text_fields)}.")
    if not data:
        if text_fields != ("text",):
            raise ValueError("The embedded default (bundled sentiment sentences) has one text "
                             f"column, `text`; got --text_fields={','.join(text_fields)}.")
        rows = embedded.sentiment("train") + embedded.sentiment("validation")
        return [[row["text"] for row in rows]]
    if os.path.isdir(data):
        raise ValueError(f"--data={data} is a folder; extract_features reads one file: a text "
                         "per line, or a .csv/.tsv/.jsonl with --text_fields.")
    if not os.path.exists(data):
        raise FileNotFoundError(f"--data: no file {data!r} (extract_features reads a local "
                                "file; TFDS names are not supported).")
    extension = os.path.splitext(data)[1].lower()
    if extension in TABLE_EXTENSIONS:
        rows = read_text_file(data, list(text_fields))
        # Data rows are numbered from 1; a .csv/.tsv header is not counted, and
        # neither are a .jsonl's blank lines.
        where = "record" if extension == ".jsonl" else "row"
        columns = []
        for field in text_fields:
            column = []
            for number, row in enumerate(rows, 1):
                value = row[field]
                _check_text(value, f"{data}: {where} {number}, field {field!r}")
                column.append(str(value))
            columns.append(column)
        return columns
    if len(text_fields) != 1:
        raise ValueError(f"{data} holds one text per line; pairs need a .tsv/.csv/.jsonl "
                         f"file with --text_fields={','.join(text_fields)}.")
    texts = read_lines(data)
    for number, line in enumerate(texts, 1):
        _check_text(line, f"{data}: line {number}")
    return [texts]


def _check_text(value, where):
    if value is None or not str(value).strip():
        raise ValueError(f"{where} is empty. Every text gets a row of features (row i is "
                         "text i), so an empty text is an error: remove it or give it text.")


def output_format(path):
    """".npy" or ".tfrecord", from the output file's extension."""
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension not in FORMATS:
        raise ValueError(f"Cannot tell the features format of {path!r}: name the output "
                         f"file .npy (numpy arrays) or .tfrecord (tf.train.Example per text).")
    return extension


def mask_path(path):
    """`<stem>.mask.npy` beside a per-token `<stem>.npy`."""
    return os.path.splitext(os.fspath(path))[0] + ".mask.npy"


# ------------------------------------------------------------------ model

def feature_model(backbone, pooling="mean"):
    """The backbone's inputs -> {"features": pooled hidden states}: [b, H] for
    cls/mean/max, [b, seq, H or 4H] (zero at padding) for the per-token poolings,
    [b, seq, layers, H] for all_layers."""
    inputs = backbone.input
    outputs = backbone(inputs)
    features = FeaturePooling(pooling, dtype=backbone.dtype_policy, name="feature_pooling")(
        outputs["encoder_outputs"], input_mask=inputs["input_mask"])
    return models.Model(inputs, {"features": features}, name=f"{backbone.name}_features")


@dataclasses.dataclass
class FeatureOptions:
    pooling: str = option("mean", "Pooling of the token vectors: cls/mean/max give one vector "
                          "per text; last4_sum, last4_concat and weighted (untrained: the plain "
                          "average of the layers) one per token, zero at padding; all_layers "
                          "every layer per token [seq, layers, H] (extract_features).",
                          choices=POOLINGS)
    features_output: Optional[str] = option(None, "extract_features: the output file, .npy "
                                            "(per-token poolings add <stem>.mask.npy) or "
                                            ".tfrecord (a tf.train.Example per text). Default: "
                                            "<model_dir>/features.npy.")


@register
class FeatureExtractionTask(Task):
    """Features of every text of `config.data`; the runner extracts, never trains.

    examples(split) is the whole file (extraction has no splits), so a preset
    can learn its vocabulary from the very texts it encodes.
    Options: FeatureOptions.
    """

    name = "extract_features"
    Options = FeatureOptions

    def __init__(self, config):
        super().__init__(config)
        self._columns = None

    @property
    def pooling(self):
        return self.options.pooling

    def columns(self):
        """read_texts(config.data, config.text_fields), read once."""
        if self._columns is None:
            self._columns = read_texts(self.config.data, self.config.text_fields)
        return self._columns

    def examples(self, split):
        fields = tuple(self.config.text_fields or ("text",))
        columns = self.columns()
        return [dict(zip(fields, texts)) for texts in zip(*columns)]


# ------------------------------------------------------------------ extraction

def extract(backbone, preprocessor, columns, output, pooling="mean", batch_size=32,
            verbose=False, log_every=100):
    """Writes the features of `columns` (from read_texts) to `output`.

    backbone: a zoo text backbone; preprocessor: its kerasbert Preprocessor.
    output: a .npy path ([n, H], or [n, seq, D] plus `<stem>.mask.npy`, int8
        [n, seq], 1 at real tokens) or a .tfrecord path (one tf.train.Example
        per text: `text` (and `text_b`), `features` flattened, `shape`, and
        for per-token poolings `input_mask` and `tokens`, the real tokens).
    verbose: a keras Progbar over texts; otherwise an absl log line every
        `log_every` batches.
    Returns {"output", "mask", "format", "count", "shape", "pooling", "seconds"}.
    """
    start = time.time()
    output = os.fspath(output)
    kind = output_format(output)
    if pooling not in POOLINGS:
        raise ValueError(f"Unknown pooling {pooling!r}; choose one of {POOLINGS}.")
    count = len(columns[0])
    if count == 0:
        raise ValueError("No texts to extract features from.")
    if any(len(column) != count for column in columns):
        raise ValueError(f"Text columns differ in length: {[len(c) for c in columns]}.")
    batch_size = max(1, min(int(batch_size), count))
    sequence_length = preprocessor.sequence_length
    model = feature_model(backbone, pooling)
    per_token = pooling not in TOKEN_POOLINGS
    # [H], or per token [seq, D] ([seq, layers, H] for all_layers).
    shape = model.outputs[0].shape  # the sequence axis is None: the model takes any length
    row_shape = ((sequence_length, *map(int, shape[2:])) if per_token else (int(shape[1]),))

    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    writer = (_NumpyWriter if kind == ".npy" else _TFRecordWriter)(
        output, count, row_shape, per_token, preprocessor.vocabulary)
    progress = keras.utils.Progbar(count, unit_name="text") if verbose else None
    batches = -(-count // batch_size)
    try:
        for step, (texts, inputs) in enumerate(
                _encoded_batches(preprocessor, columns, batch_size)):
            # kerasbert's Model.predict pads a short last batch to batch_size
            # itself: one shape, one compiled program.
            features = model.predict(inputs, batch_size=batch_size, verbose=0)["features"]
            writer.write(texts, features, inputs)
            done = min((step + 1) * batch_size, count)
            if progress is not None:
                progress.update(done)
            elif (step + 1) % log_every == 0 or step + 1 == batches:
                logging.info("Features: %d/%d texts (%.0f s).", done, count, time.time() - start)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    seconds = time.time() - start
    logging.info("Wrote %s features of %d texts to %s in %.1f s.", pooling, count, output,
                 seconds)
    return {"output": output, "mask": writer.mask_output, "format": kind[1:], "count": count,
            "shape": [count, *row_shape], "pooling": pooling, "seconds": round(seconds, 3)}


def _encoded_batches(preprocessor, columns, batch_size):
    """(texts: list of numpy string arrays, numpy model inputs) per batch;
    tokenization runs in tf.data, ahead of the model."""
    dataset = tf.data.Dataset.from_tensor_slices(tuple(tf.constant(c, tf.string)
                                                       for c in columns))
    sequence_length = preprocessor.sequence_length

    def encode(*texts):
        return texts, preprocessor(*texts, length=sequence_length)

    dataset = dataset.batch(batch_size).map(encode).prefetch(2)
    for texts, inputs in dataset.as_numpy_iterator():
        yield list(texts), inputs


class _NumpyWriter:
    """Fills `<output>.tmp` (and the mask's) through memory maps; commit renames."""

    def __init__(self, output, count, row_shape, per_token, vocabulary):
        self.output = output
        self.mask_output = mask_path(output) if per_token else None
        self.position = 0
        self._temporary = [output + ".tmp"]
        self.features = np.lib.format.open_memmap(output + ".tmp", mode="w+", dtype=np.float32,
                                                  shape=(count, *row_shape))
        self.mask = None
        if per_token:
            self._temporary.append(self.mask_output + ".tmp")
            self.mask = np.lib.format.open_memmap(self.mask_output + ".tmp", mode="w+",
                                                  dtype=np.int8, shape=(count, row_shape[0]))

    def write(self, texts, features, inputs):
        stop = self.position + len(features)
        self.features[self.position:stop] = features
        if self.mask is not None:
            self.mask[self.position:stop] = inputs["input_mask"]
        self.position = stop

    def _close(self):
        for array in (self.features, self.mask):
            if array is not None:
                array.flush()
        self.features = self.mask = None  # the last references: the maps close

    def commit(self):
        self._close()
        # The features file last: once it exists, its mask is complete too.
        if self.mask_output is not None:
            os.replace(self.mask_output + ".tmp", self.mask_output)
        os.replace(self.output + ".tmp", self.output)
        stale = mask_path(self.output)
        if self.mask_output is None and os.path.exists(stale):
            os.remove(stale)  # a per-token run's mask, which these features do not have
            logging.info("Removed %s: %s now holds one vector per text.", stale, self.output)

    def abort(self):
        try:
            self._close()
        finally:
            _remove(self._temporary)


class _TFRecordWriter:
    """One tf.train.Example per text into `<output>.tmp`; commit renames."""

    def __init__(self, output, count, row_shape, per_token, vocabulary):
        self.output = output
        self.mask_output = None
        self.row_shape = list(row_shape)
        self.per_token = per_token
        self.tokens = np.array([t.encode("utf-8") for t in vocabulary.tokens], dtype=object)
        self.writer = tf.io.TFRecordWriter(output + ".tmp")

    def write(self, texts, features, inputs):
        for row in range(len(features)):
            feature = {
                "text": _bytes([texts[0][row]]),
                "features": tf.train.Feature(float_list=tf.train.FloatList(
                    value=features[row].reshape(-1))),
                "shape": _int64(self.row_shape),
            }
            if len(texts) > 1:
                feature["text_b"] = _bytes([texts[1][row]])
            if self.per_token:
                mask = inputs["input_mask"][row]
                feature["input_mask"] = _int64(mask)
                feature["tokens"] = _bytes(self.tokens[inputs["input_word_ids"][row][mask > 0]])
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            self.writer.write(example.SerializeToString())

    def commit(self):
        self.writer.close()
        os.replace(self.output + ".tmp", self.output)

    def abort(self):
        try:
            self.writer.close()
        finally:
            _remove([self.output + ".tmp"])


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _int64(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _remove(paths):
    for path in paths:
        if os.path.exists(path):
            os.remove(path)


def parse_tfrecord(path):
    """The examples of a features .tfrecord as dicts of numpy values, features
    reshaped to `shape` (a reader for tests and users)."""
    examples = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        example = tf.train.Example.FromString(record).features.feature
        row = {"text": example["text"].bytes_list.value[0].decode("utf-8"),
               "features": np.asarray(example["features"].float_list.value, np.float32)
               .reshape(list(example["shape"].int64_list.value))}
        if "text_b" in example:
            row["text_b"] = example["text_b"].bytes_list.value[0].decode("utf-8")
        if "input_mask" in example:
            row["input_mask"] = np.asarray(example["input_mask"].int64_list.value, np.int64)
            row["tokens"] = [t.decode("utf-8") for t in example["tokens"].bytes_list.value]
        examples.append(row)
    return examples
