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
