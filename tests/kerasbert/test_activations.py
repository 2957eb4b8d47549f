import keras
import numpy as np
import pytest

from kerasbert.layers import get_activation
from tests import reference

X = np.linspace(-6, 6, 241).astype("float32")


def test_gelu_is_exact_erf():
    np.testing.assert_allclose(get_activation("gelu")(X), reference.gelu_exact(X), atol=1e-6)


@pytest.mark.parametrize("name", ["gelu_new", "gelu_tanh", "gelu_pytorch_tanh"])
def test_tanh_names_are_the_tanh_approximation(name):
    np.testing.assert_allclose(get_activation(name)(X), reference.gelu_tanh(X), atol=1e-6)


def test_the_two_gelus_really_differ():
    difference = np.abs(reference.gelu_exact(X) - reference.gelu_tanh(X)).max()
    assert difference > 1e-4  # why checkpoints must say which one they mean


def test_unknown_activation_names_the_known_ones():
    with pytest.raises(ValueError, match="gelu_tanh"):
        get_activation("gelu2")


@pytest.mark.parametrize("name,exact", [("gelu", True), ("gelu_tanh", False)])
def test_low_precision_inputs_are_computed_in_float32(name, exact):
    """bfloat16 in, bfloat16 out, within one bfloat16 rounding of float32 GELU."""
    inputs = keras.ops.cast(X, "bfloat16")
    output = get_activation(name)(inputs)
    assert keras.backend.standardize_dtype(output.dtype) == "bfloat16"
    widened = np.asarray(keras.ops.cast(inputs, "float32"))
    expected = (reference.gelu_exact if exact else reference.gelu_tanh)(widened)
    expected = np.asarray(keras.ops.cast(keras.ops.cast(expected, "bfloat16"), "float32"))
    np.testing.assert_allclose(np.asarray(keras.ops.cast(output, "float32")), expected,
                               rtol=2 ** -7, atol=1e-3)
