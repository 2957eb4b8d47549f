"""The weight initializer every Transformer checkpoint here was trained with."""

import keras

INITIALIZER_RANGE = 0.02


def default_initializer(stddev=INITIALIZER_RANGE):
    """Truncated normal with stddev 0.02, as BERT, ALBERT and ViT use."""
    return keras.initializers.TruncatedNormal(stddev=stddev)


def fresh(initializer):
    """A new initializer with the same config: two weights never share a seed."""
    return keras.initializers.get(keras.initializers.serialize(initializer))
