import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasbert.layers import MultiHeadAttention
from tests import reference

BATCH, LENGTH, HIDDEN, HEADS = 2, 6, 8, 2


@pytest.fixture(scope="module")
def attention():
    layer = MultiHeadAttention(HEADS)
    layer(np.zeros((1, LENGTH, HIDDEN), "float32"))
    for weight in layer.weights:  # non-zero biases so they are tested too
        weight.assign(np.random.default_rng(0).normal(0, 0.3, weight.shape))
    return layer


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(1).normal(size=(BATCH, LENGTH, HIDDEN)).astype("float32")


PADDING = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], "int32")


def test_unmasked_matches_numpy(attention, inputs):
    output, scores, probabilities = attention(inputs, return_attention_scores=True)
    expected, expected_scores, expected_probabilities = reference.attention(
        inputs, inputs, attention
    )
    np.testing.assert_allclose(output, expected, atol=1e-5)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    np.testing.assert_allclose(probabilities, expected_probabilities, atol=1e-6)


def test_padding_mask_matches_numpy(attention, inputs):
    output, _, probabilities = attention(
        inputs, attention_mask=PADDING, return_attention_scores=True
    )
    allowed = np.broadcast_to(PADDING[:, None, :].astype(bool), (BATCH, LENGTH, LENGTH))
    expected, _, expected_probabilities = reference.attention(inputs, inputs, attention, allowed)
    np.testing.assert_allclose(output, expected, atol=1e-5)
    np.testing.assert_allclose(probabilities, expected_probabilities, atol=1e-6)
    assert np.all(probabilities.numpy()[0, :, :, 4:] == 0.0)


def test_full_mask_and_causal_match_numpy(inputs):
    layer = MultiHeadAttention(HEADS, causal=True)
    layer(inputs)
    full = np.random.default_rng(2).integers(0, 2, (BATCH, LENGTH, LENGTH)).astype("int32")
    full[:, :, 0] = 1  # every query may see at least one key
    output = layer(inputs, attention_mask=full)
    causal = np.tril(np.ones((LENGTH, LENGTH), bool))
    expected, _, _ = reference.attention(inputs, inputs, layer, full.astype(bool) & causal)
    np.testing.assert_allclose(output, expected, atol=1e-5)


def test_cross_attention_lengths(attention, inputs):
    memory = inputs[:, :3]
    output, scores, _ = attention(inputs, memory, return_attention_scores=True)
    expected, _, _ = reference.attention(inputs, memory, attention)
    assert scores.shape == (BATCH, HEADS, LENGTH, 3)
    np.testing.assert_allclose(output, expected, atol=1e-5)


def test_xla_compiles_and_agrees(attention, inputs):
    eager = attention(inputs, attention_mask=PADDING)
    compiled = tf.function(
        lambda x, m: attention(x, attention_mask=m), jit_compile=True
    )(inputs, PADDING)
    np.testing.assert_allclose(compiled, eager, atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_softmax_stays_float32_under_mixed_precision(policy, attention, inputs):
    layer = MultiHeadAttention(HEADS, dtype=policy)
    layer(inputs)
    layer.set_weights(attention.get_weights())
    output, scores, probabilities = layer(
        inputs, attention_mask=PADDING, return_attention_scores=True
    )
    assert output.dtype == keras.DTypePolicy(policy).compute_dtype
    assert scores.dtype == "float32" and probabilities.dtype == "float32"
    np.testing.assert_allclose(probabilities.numpy().sum(-1), 1.0, atol=1e-6)
    expected = attention(inputs, attention_mask=PADDING)
    np.testing.assert_allclose(np.asarray(output, "float32"), expected, atol=0.1, rtol=0.05)


def test_config_round_trip(attention):
    clone = MultiHeadAttention.from_config(attention.get_config())
    assert clone.get_config() == attention.get_config()


def test_hidden_size_must_divide_by_heads():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(3)(np.zeros((1, 2, 8), "float32"))
