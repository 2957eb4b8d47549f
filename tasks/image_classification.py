"""Image classification with ViT: the class token after the final LN -> dense.

Images are resized to the backbone's size and normalized with
(x - mean) / std in tf.data (the `mean`/`std` options, default 0.5/0.5:
pixels in [0, 1] map to [-1, 1], as the original ViT and Hugging Face's ViT
checkpoints expect); the `augment` option lists training augmentations
("flip": random horizontal flip; "crop": pad by 1/8 and crop back).
Grayscale images are repeated to the backbone's channel count.
"""

import dataclasses
import glob
import hashlib
import json
import os
import re

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from export.images import decode_image, normalize
from export.spec import ServingSpec
from kerasbert import models
from kerasbert.layers import ClassificationHead
from tasks.training import metrics
from tasks.base import Task, labels_and_predictions
from tasks.data import bad_rows, embedded
from tasks.data.bad_rows import BadExamples
from tasks.data.pipeline import make_dataset
from tasks.data.tfds_reader import is_tfds_name, load_tfds
from tasks.options import option
from tasks.registry import register
from zoo.hub.archives import cache_root

_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def read_image_folder(folder, bad=None):
    """(file paths, label names) of `folder/label/*.png` (jpg, bmp, gif too).

    Every image is decoded once here: a file that is no readable image goes
    to `bad` (a bad_rows.BadExamples; default: an error naming its path)
    rather than failing inside tf.data in the middle of training.
    """
    bad = bad or BadExamples()
    paths, names = [], []
    for label in sorted(os.listdir(folder)):
        for path in sorted(glob.glob(os.path.join(folder, label, "*"))):
            if path.lower().endswith(_IMAGE_EXTENSIONS):
                paths.append(path)
                names.append(label)
    if not paths:
        raise FileNotFoundError(f"No images in {folder}/<label>/*.png (or .jpg, ...).")
    unreadable = unreadable_images(paths)
    for index in sorted(unreadable):
        bad.report(paths[index], f"not a readable image ({unreadable[index]})",
                   fix="Replace or remove the file", what="images")
    return ([path for i, path in enumerate(paths) if i not in unreadable],
            [name for i, name in enumerate(names) if i not in unreadable])


def unreadable_images(paths):
    """{index: TensorFlow's error} of the `paths` whose file does not decode as
    an image.

    Decoding every image costs minutes on a large folder (about 1,500
    ImageNet JPEGs/s on 2 cores: 14 min for ImageNet), and a preempted run
    reads its folder again at every restart: the verdict on a list of files
    is kept in $KERASBERT_CACHE/image_checks, under a digest of their paths,
    sizes and modification times, and the same unchanged files are not
    decoded again."""
    digest = hashlib.sha256()
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{os.path.abspath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    record = os.path.join(cache_root(), "image_checks", digest.hexdigest() + ".json")
    if os.path.exists(record):
        with open(record) as file:
            return {int(index): error for index, error in json.load(file).items()}
    errors = _decode_failures(paths)
    try:  # a cache that cannot be written only costs the next run the check
        os.makedirs(os.path.dirname(record), exist_ok=True)
        with open(record + ".tmp", "w") as file:
            json.dump(errors, file)
        os.replace(record + ".tmp", record)
    except OSError as error:
        logging.warning("Could not keep the image check in %s (%s).", record, error)
    return errors


def _decode_failures(paths):
    """{index: TensorFlow's error} of the `paths` that do not decode. All are
    decoded in parallel in tf.data, the failures skipped (ignore_errors);
    only those are decoded again, eagerly, for the error."""

    def decode(index, path):
        return index, tf.shape(tf.io.decode_image(tf.io.read_file(path),
                                                  expand_animations=False))

    decoded = (tf.data.Dataset.from_tensor_slices((tf.range(len(paths)), paths))
               .map(decode, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors())
    readable = {int(index) for index, _ in decoded.as_numpy_iterator()}
    errors = {}
    for index in sorted(set(range(len(paths))) - readable):
        try:
            tf.io.decode_image(tf.io.read_file(paths[index]), expand_animations=False)
            errors[index] = "it did not decode in tf.data"
        except (tf.errors.OpError, ValueError) as error:
            # "{{function_node ...}} Unknown image file format. ... [Op:DecodeImage] name: "
            # -> "Unknown image file format. ..."
            message = getattr(error, "message", str(error))
            errors[index] = re.sub(r"^\{\{[^}]*\}\}\s*|\s*\[Op:\w+\].*$", "", message).strip()
    return errors


AUGMENTATIONS = ("flip", "crop")


@dataclasses.dataclass
class ImageClassificationOptions:
    labels: tuple[str, ...] = option((), "Label names in id order (default: the training "
                                     "labels, sorted; numbers numerically).")
    classifier_dropout: float = option(0.0, "Dropout before the task head.")
    mean: float = option(0.5, "image_classification: pixels in [0, 1] are normalized to "
                         "(x - mean) / std, in training and in the export (0.5/0.5: ViT's "
                         "[-1, 1]).")
    std: float = option(0.5, "image_classification: see --mean.")
    augment: tuple[str, ...] = option((), "image_classification: training augmentations, "
                                      "flip (random horizontal flip) and/or crop (reflect-pad "
                                      "by 1/8, random crop back).", choices=AUGMENTATIONS)


@register
class ImageClassificationTask(Task):
    """Top-1 / top-5 classification of images."""

    name = "image_classification"
    text = False
    primary_metric = "top1_accuracy"
    Options = ImageClassificationOptions

    def __init__(self, config):
        super().__init__(config)
        self._labels = None
        self._image_shape = None
        self._examples = {}

    def serving_spec(self, sequence_length, truncation):
        """`image_bytes` (JPEG/PNG) -> probabilities, label, label_name; decoded,
        resized and normalized as this task's tf.data pipeline does."""
        height, width, channels = self._image_shape
        return ServingSpec(kind="image_classifier", image_size=(height, width),
                           num_channels=channels, mean=self.options.mean, std=self.options.std,
                           label_names=tuple(map(str, self.labels())))

    def examples(self, split):
        """{"images" or "paths": ..., "labels": names or ids} of a split (read
        once, then kept). A bad example (an image file that does not decode, a
        label the task does not know) is an error naming it, or skipped with
        skip_bad_examples (tasks.data.bad_rows)."""
        if split in self._examples:
            return self._examples[split]
        data = self.config.data
        bad = self.bad_examples(split)
        if not data:
            images, labels = embedded.digits(split)
            examples = {"images": images, "labels": labels}
        elif is_tfds_name(data):
            rows = load_tfds(data, split)
            examples = {"images": np.stack([row["image"] for row in rows]),
                        "labels": np.array([row["label"] for row in rows])}
        else:
            paths, names = read_image_folder(os.path.join(data, split), bad)
            examples = {"paths": paths, "labels": names}
        self._examples[split] = self._checked(examples, split, bad)
        return self._examples[split]

    def _checked(self, examples, split, bad):
        """`examples` without those whose label is no class (see bad_rows.ClassLabels)."""
        values = [v.item() if hasattr(v, "item") else v for v in examples["labels"]]
        if self._labels is None and split == self.config.train_split:
            self._labels = list(self.options.labels) or sorted(set(values))
        check = bad_rows.ClassLabels(self.labels(), self.config.num_classes,
                                     bool(self.options.labels), "label",
                                     thing="example").check
        keep = []
        for number, value in enumerate(values):
            problem = check(value)
            if problem is not None:
                place = (examples["paths"][number] if "paths" in examples else
                         f"{self.config.data or 'the embedded digits'} ({split}), example "
                         f"{number + 1}")
                bad.report(place, *problem, what="images")
            keep.append(problem is None)
        if all(keep):
            return examples
        return {key: ([item for item, kept in zip(column, keep) if kept]
                      if isinstance(column, list) else np.asarray(column)[np.array(keep)])
                for key, column in examples.items()}

    def labels(self):
        if self._labels is None and self.options.labels:
            self._labels = list(self.options.labels)
        elif self._labels is None:
            self.examples(self.config.train_split)  # reading it names them (_checked)
        return self._labels

    @property
    def num_classes(self):
        return self.config.num_classes or len(self.labels())

    def _columns(self, split):
        examples = self.examples(split)
        index = {str(label): i for i, label in enumerate(self.labels())}
        labels = np.array([index[str(v.item() if hasattr(v, "item") else v)]
                           for v in examples["labels"]], np.int32)
        columns = {"label": labels}
        if "paths" in examples:
            columns["path"] = examples["paths"]
        else:
            images = np.asarray(examples["images"])
            if images.dtype == np.uint8:
                images = images.astype(np.float32) / 255.0
            columns["image"] = images.astype(np.float32)
        return columns

    def build_dataset(self, split, image_shape, batch_size, training, start_step=0, seed=0):
        """image_shape: the backbone's (height, width, channels)."""
        height, width, channels = image_shape
        mean = tf.constant(self.options.mean, tf.float32)
        std = tf.constant(self.options.std, tf.float32)
        augment = self.options.augment if training else ()

        def load(batch):
            if "path" in batch:
                images = tf.map_fn(
                    lambda path: decode_image(tf.io.read_file(path), height, width, channels),
                    batch["path"], fn_output_signature=tf.float32)
            else:
                images = tf.image.resize(batch["image"], (height, width))
            if images.shape[-1] == 1 and channels != 1:
                images = tf.repeat(images, channels, axis=-1)
            if "flip" in augment:
                images = tf.image.random_flip_left_right(images, seed=seed)
            if "crop" in augment:
                pad = max(1, height // 8)
                padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], "REFLECT")
                images = tf.image.random_crop(padded, tf.shape(images), seed=seed)
            return normalize(images, mean, std), batch["label"]

        return make_dataset(self._columns(split), batch_size, training, load,
                            start_step=start_step, seed=seed)

    def build_model(self, backbone):
        self._image_shape = tuple(backbone.image_size) + (backbone.num_channels,)
        pooled = backbone(backbone.input)["pooled_output"]
        logits = ClassificationHead(self.num_classes, dropout=self.options.classifier_dropout,
                                    dtype=backbone.dtype_policy, name="classifier")(pooled)
        return models.Model(backbone.input, {"logits": logits}, name=f"{backbone.name}_{self.name}")

    def build_losses(self):
        return {"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}

    def build_metrics(self):
        return {"logits": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}

    def evaluate(self, model, split, image_shape, batch_size):
        dataset = self.build_dataset(split, image_shape, batch_size, training=False)
        labels, logits = labels_and_predictions(model, dataset)
        scores = {"top1_accuracy": metrics.accuracy(labels, logits.argmax(-1))}
        if logits.shape[-1] > 5:
            scores["top5_accuracy"] = metrics.top_k_accuracy(labels, logits, 5)
        return scores
