"""Keras internals live in one module that refuses an untested Keras by name."""

import pathlib
import re

import pytest

from kerasbert import keras_internals

ROOT = pathlib.Path(__file__).parents[2]
PRIVATE = re.compile(r"_keras_history|_distribute_strategy|_jit_compile|"
                     r"_aggregate_additional_loss|_maybe_symbolic_build|_get_variable_index|"
                     r"_momentums|_velocities|_use_weight_decay|_flatten_layers")


def test_only_keras_internals_names_keras_privates():
    users = sorted(str(path.relative_to(ROOT)) for package in ("kerasbert", "zoo", "tasks",
                                                                "export")
                   for path in (ROOT / package).rglob("*.py") if PRIVATE.search(path.read_text()))
    assert users == ["kerasbert/keras_internals.py"]


def test_an_untested_keras_fails_with_the_versions(monkeypatch):
    keras_internals.check_keras()  # the installed Keras is a tested one
    monkeypatch.setattr(keras_internals.keras, "__version__", "3.99.0")
    with pytest.raises(RuntimeError, match=r"tested with Keras 3\.15\.x; this is Keras 3\.99\.0"):
        keras_internals.jit_compile(object())
