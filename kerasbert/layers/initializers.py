"""The weight initializer every Transformer checkpoint here was trained with."""

import keras

INITIALIZER_RANGE = 0.02


def default_initializer(stddev=INITIALIZER_RANGE):
    """Truncated normal with stddev 0.02, as BERT, ALBERT and ViT use."""
    return keras.initializers.TruncatedNormal(stddev=stddev)
