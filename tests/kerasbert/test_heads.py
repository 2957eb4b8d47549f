import keras
import numpy as np
import tensorflow as tf

from kerasbert.layers import MaskedLMHead, Pooler
from tests import reference


def test_pooler_is_tanh_dense_of_first_token():
    pooler = Pooler(4)
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    np.testing.assert_allclose(pooler(x), np.tanh(reference.dense(x[:, 0], pooler)), atol=1e-6)


def build_head():
    embedding = keras.layers.Embedding(11, 4)
    embedding.build((None,))
    head = MaskedLMHead(embedding, activation="gelu", layer_norm_epsilon=1e-12)
    return embedding, head


def test_mlm_head_matches_numpy_and_is_tied():
    embedding, head = build_head()
    x = np.random.default_rng(0).normal(size=(2, 5, 6)).astype("float32")
    positions = np.array([[0, 3], [4, 1]], "int32")
    logits = head(x, positions)
    head.bias.assign(np.arange(11, dtype="float32"))
    logits = head(x, positions)
    gathered = np.take_along_axis(x, positions[:, :, None], axis=1)
    h = reference.gelu_exact(reference.dense(gathered, head.transform))
    gamma, beta = (w.numpy() for w in head.layer_norm.weights)
    h = reference.layer_norm(h, gamma, beta, 1e-12)
    expected = h @ embedding.embeddings.numpy().T + np.arange(11)
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    assert logits.dtype == "float32" and logits.shape == (2, 2, 11)
    # tied: the head owns no [vocab, E] matrix of its own
    assert all(w.shape != (11, 4) for w in head.weights)


def test_mlm_gradient_reaches_the_shared_embedding():
    embedding, head = build_head()
    x = np.random.default_rng(0).normal(size=(2, 5, 6)).astype("float32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(head(x) ** 2)
    gradient = tape.gradient(loss, embedding.embeddings)
    assert np.abs(gradient).sum() > 0


def test_classification_head_matches_numpy_and_serializes():
    from kerasbert.layers import ClassificationHead

    head = ClassificationHead(3, dropout=0.5, hidden_size=5)
    x = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    logits = head(x)
    hidden = np.maximum(reference.dense(x, head.pre_classifier), 0)
    np.testing.assert_allclose(logits, reference.dense(hidden, head.classifier), atol=1e-5)
    assert logits.dtype == "float32"
    clone = ClassificationHead.from_config(head.get_config())
    clone(x)
    clone.set_weights(head.get_weights())
    np.testing.assert_array_equal(clone(x), logits)
    per_token = head(np.zeros((2, 7, 6), "float32"))  # tagging: one label per token
    assert per_token.shape == (2, 7, 3)


def test_span_head_masks_padding():
    from kerasbert.layers import SpanHead

    head = SpanHead()
    x = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    start, end = head(x, mask)
    both = reference.dense(x, head.dense)
    np.testing.assert_allclose(start[1], both[1, :, 0], atol=1e-5)
    np.testing.assert_allclose(end[0, :3], both[0, :3, 1], atol=1e-5)
    assert np.all(np.asarray(start)[0, 3:] <= -1e4 + 1)
