"""Data that ships with the project or a registry package: the runner's defaults.

sentiment: 128 short movie-review sentences written for this project
  (positive/negative, balanced); the last 32 rows are the validation split.
digits: scikit-learn's 1,797 real 8x8 handwritten digits (UCI), the last
  20% the validation split.
"""

import csv
import os

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_VALIDATION_SENTENCES = 32
FAQ_FILE = os.path.join(_HERE, "faq.tsv")  # semantic search's default corpus


def sentiment(split):
    with open(os.path.join(_HERE, "sentiment.tsv"), encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file, delimiter="\t"))
    return rows[:-_VALIDATION_SENTENCES] if split == "train" else rows[-_VALIDATION_SENTENCES:]


def digits(split):
    """(images float32 [n, 8, 8, 1] in [0, 1], labels int32 [n])."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)[..., None]
    labels = data.target.astype(np.int32)
    cut = int(len(labels) * 0.8)
    return (images[:cut], labels[:cut]) if split == "train" else (images[cut:], labels[cut:])
