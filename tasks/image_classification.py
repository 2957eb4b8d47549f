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
import os

import keras
import numpy as np
import tensorflow as tf

from export.images import decode_image, normalize
from export.spec import ServingSpec
from kerasbert import models
from kerasbert.layers import ClassificationHead
from tasks.training import metrics
from tasks.base import Task, labels_and_predictions
from tasks.data import embedded
from tasks.data.pipeline import make_dataset
from tasks.data.tfds_reader import is_tfds_name, load_tfds
from tasks.options import option
from tasks.registry import register

_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def read_image_folder(folder):
    """(file paths, label names) of `folder/label/*.png` (jpg, bmp, gif too)."""
    paths, names = [], []
    for label in sorted(os.listdir(folder)):
        for path in sorted(glob.glob(os.path.join(folder, label, "*"))):
            if path.lower().endswith(_IMAGE_EXTENSIONS):
                paths.append(path)
                names.append(label)
    if not paths:
        raise FileNotFoundError(f"No images in {folder}/<label>/*.png (or .jpg, ...).")
    return paths, names


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

    def serving_spec(self, sequence_length, truncation):
        """`image_bytes` (JPEG/PNG) -> probabilities, label, label_name; decoded,
        resized and normalized as this task's tf.data pipeline does."""
        height, width, channels = self._image_shape
        return ServingSpec(kind="image_classifier", image_size=(height, width),
                           num_channels=channels, mean=self.options.mean, std=self.options.std,
                           label_names=tuple(map(str, self.labels())))

    def examples(self, split):
        """{"images" or "paths": ..., "labels": names or ids} of a split."""
        data = self.config.data
        if not data:
            images, labels = embedded.digits(split)
            return {"images": images, "labels": labels}
        if is_tfds_name(data):
            rows = load_tfds(data, split)
            return {"images": np.stack([row["image"] for row in rows]),
                    "labels": np.array([row["label"] for row in rows])}
        paths, names = read_image_folder(os.path.join(data, split))
        return {"paths": paths, "labels": names}

    def labels(self):
        if self._labels is None:
            given = self.options.labels
            values = self.examples(self.config.train_split)["labels"]
            self._labels = list(given) if given else sorted({v.item() if hasattr(v, "item")
                                                             else v for v in values})
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
