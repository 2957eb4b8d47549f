"""Shared test setup: quiet TensorFlow, float32 policy, numpy references."""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# What kerasbert caches (archives, SentencePiece models rebuilt from
# tokenizer.json) goes to a fresh folder, not the user's ~/.cache.
os.environ.setdefault("KERASBERT_CACHE", tempfile.mkdtemp(prefix="kerasbert-cache-"))

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def float32_policy():
    """Every test starts and ends in float32, whatever it switched to."""
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")
