"""FeaturePooling against numpy on padded batches; padding never changes a result."""

import keras
import numpy as np
import pytest

from kerasbert.layers import FeaturePooling
from kerasbert.layers.pooling import POOLINGS, TOKEN_POOLINGS

LAYERS, BATCH, SEQ, HIDDEN = 5, 3, 7, 4
LENGTHS = [7, 3, 1]  # one full row, one padded row, one [CLS]-only row


def batch(seed=0):
    rng = np.random.default_rng(seed)
    states = [rng.normal(size=(BATCH, SEQ, HIDDEN)).astype("float32") - 0.5 * i
              for i in range(LAYERS)]
    mask = (np.arange(SEQ)[None, :] < np.array(LENGTHS)[:, None]).astype("int32")
    return states, mask


def numpy_pooling(pooling, states, mask, logits=None, scale=1.0):
    """One row at a time, on its real tokens only (no padding involved)."""
    rows = []
    for row, length in enumerate(mask.sum(1)):
        real = [s[row, :length] for s in states]
        if pooling == "cls":
            rows.append(real[-1][0])
        elif pooling == "mean":
            rows.append(real[-1].mean(0))
        elif pooling == "max":
            rows.append(real[-1].max(0))
        else:
            if pooling == "last4_sum":
                tokens = sum(real[-4:])
            elif pooling == "last4_concat":
                tokens = np.concatenate(real[-4:], -1)
            elif pooling == "all_layers":
                padded = np.zeros((SEQ, len(real), HIDDEN), "float32")
                padded[:length] = np.stack(real, axis=1)
                rows.append(padded)
                continue
            else:
                weights = np.exp(logits) / np.exp(logits).sum()
                tokens = scale * sum(w * s for w, s in zip(weights, real))
            padded = np.zeros((SEQ, tokens.shape[-1]), "float32")
            padded[:length] = tokens
            rows.append(padded)
    return np.stack(rows)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_pooling_equals_numpy_on_a_padded_batch(pooling):
    states, mask = batch()
    layer = FeaturePooling(pooling)
    result = np.asarray(layer(states, mask))
    logits = scale = None
    if pooling == "weighted":
        logits, scale = np.array([0.3, -1.0, 0.5, 2.0, 0.0], "float32"), 1.7
        layer.layer_logits.assign(logits)
        layer.scale.assign(scale)
        result = np.asarray(layer(states, mask))
    np.testing.assert_allclose(result, numpy_pooling(pooling, states, mask, logits, scale),
                               atol=1e-5)
    assert result.shape == tuple(layer.compute_output_shape([s.shape for s in states]))


@pytest.mark.parametrize("pooling", POOLINGS)
def test_padding_values_never_change_a_result(pooling):
    states, mask = batch()
    rng = np.random.default_rng(1)
    noisy = [np.where(mask[..., None] > 0, s, rng.normal(size=s.shape) * 100).astype("float32")
             for s in states]
    layer = FeaturePooling(pooling)
    np.testing.assert_allclose(np.asarray(layer(noisy, mask)), np.asarray(layer(states, mask)),
                               atol=1e-5)


def test_no_mask_means_every_token_is_real():
    states, _ = batch()
    full = np.ones((BATCH, SEQ), "int32")
    for pooling in TOKEN_POOLINGS:
        layer = FeaturePooling(pooling)
        np.testing.assert_allclose(np.asarray(layer(states)),
                                   np.asarray(layer(states, full)), atol=1e-6)


def test_weighted_mix_learns_and_round_trips():
    states, mask = batch()
    inputs = [keras.Input((SEQ, HIDDEN)) for _ in range(LAYERS)]
    mask_input = keras.Input((SEQ,), dtype="int32")
    pooled = FeaturePooling("weighted", name="mix")(inputs, mask_input)
    model = keras.Model(inputs + [mask_input], keras.ops.sum(pooled, axis=(1, 2)))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = model.get_layer("mix").get_weights()
    model.fit(states + [mask], np.full((BATCH,), 10.0), epochs=2, verbose=0)
    after = model.get_layer("mix").get_weights()
    assert all(np.abs(b - a).max() > 0 for b, a in zip(before, after))
    restored = keras.layers.deserialize(keras.layers.serialize(model.get_layer("mix")))
    assert restored.pooling == "weighted"


def test_bad_configurations_name_the_fix():
    with pytest.raises(ValueError, match="choose one of"):
        FeaturePooling("average")
    states, mask = batch()
    with pytest.raises(ValueError, match="at least 4 hidden states"):
        FeaturePooling("last4_concat")(states[:2], mask)


def test_mixed_precision_pools_in_float32():
    states, mask = batch()
    layer = FeaturePooling("mean", dtype="mixed_bfloat16")
    result = layer([keras.ops.cast(s, "bfloat16") for s in states], mask)
    assert keras.backend.standardize_dtype(result.dtype) == "float32"
    widened = [np.asarray(keras.ops.cast(keras.ops.cast(s, "bfloat16"), "float32"))
               for s in states]
    np.testing.assert_allclose(np.asarray(result), numpy_pooling("mean", widened, mask),
                               atol=1e-5)
