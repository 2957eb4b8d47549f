"""Activation functions by the names checkpoints use.

Checkpoints disagree on what "gelu" means: Hugging Face configs mean the exact
erf form, google-research/bert's modeling.py means the tanh approximation.
Getting it wrong costs ~2e-4 of output error, so the name is resolved here,
in one place, and the converters translate each source's name into ours.
"""

import keras

EXACT_GELU = "gelu"
TANH_GELU_NAMES = ("gelu_new", "gelu_tanh", "gelu_pytorch_tanh", "gelu_fast")


def _in_float32(function):
    """Runs `function` in float32 and casts back to the input's dtype.

    Under mixed precision the feed-forward's GELU gets bfloat16/float16
    inputs, and the CPU's erf/tanh kernels for those types are scalar
    emulation: BERT-base's 12 GELUs cost 8.6 ms each in bfloat16 here, 4.6
    ms computed in float32 with the casts (and float32 is more accurate).
    Float32 inputs are untouched.
    """

    def wrapped(x):
        dtype = keras.backend.standardize_dtype(x.dtype)
        if dtype == "float32":
            return function(x)
        return keras.ops.cast(function(keras.ops.cast(x, "float32")), dtype)

    return wrapped


@_in_float32
def _exact_gelu(x):
    return keras.activations.gelu(x, approximate=False)


@_in_float32
def _tanh_gelu(x):
    return keras.activations.gelu(x, approximate=True)


_ACTIVATIONS = {
    EXACT_GELU: _exact_gelu,
    **{name: _tanh_gelu for name in TANH_GELU_NAMES},
    "relu": keras.activations.relu,
    "tanh": keras.activations.tanh,
    "silu": keras.activations.silu,
    "swish": keras.activations.silu,
    "linear": keras.activations.linear,
}


def get_activation(name):
    """Returns the activation function called `name` ("gelu" is exact erf)."""
    if callable(name):
        return name
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"Unknown activation {name!r}. Known: {sorted(_ACTIVATIONS)}. "
            '"gelu" is the exact erf GELU; use "gelu_tanh" (or "gelu_new") '
            "for the tanh approximation of google-research/bert."
        ) from None
