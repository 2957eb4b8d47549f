"""Whitening against the authors' numpy code; streamed statistics equal one-shot ones."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasbert.layers import Whitening

HIDDEN, COUNT = 8, 3000


def embeddings(count=COUNT, seed=0):
    """Correlated, off-centre vectors, as BERT's are: x = z @ A + b."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(count, HIDDEN)) * np.linspace(2.0, 0.3, HIDDEN)
    mixing = rng.normal(size=(HIDDEN, HIDDEN))
    offset = rng.normal(size=HIDDEN) * 3.0
    return (z @ mixing + offset).astype("float32")


def reference_whitening(vecs, k):
    """bojone/BERT-whitening's compute_kernel_bias and transform, without the L2 norm."""
    mu = vecs.mean(axis=0, keepdims=True)
    cov = np.cov(vecs.T)
    u, s, vh = np.linalg.svd(cov)
    kernel, bias = np.dot(u, np.diag(1 / np.sqrt(s))), -mu
    return (vecs + bias).dot(kernel[:, :k]), kernel, bias


def test_adapted_output_has_zero_mean_and_identity_covariance():
    x = embeddings()
    assert np.abs(np.cov(x.T) - np.eye(HIDDEN)).max() > 1.0  # far from white before
    layer = Whitening()
    layer.adapt(x)
    y = np.asarray(layer(x), "float64")
    np.testing.assert_allclose(y.mean(axis=0), np.zeros(HIDDEN), atol=1e-5)
    np.testing.assert_allclose(np.cov(y.T), np.eye(HIDDEN), atol=1e-4)


@pytest.mark.parametrize("k", [HIDDEN, 3])
def test_equals_the_reference_implementation(k):
    x = embeddings()
    expected, kernel, bias = reference_whitening(x.astype("float64"), k)
    layer = Whitening(dimensions=None if k == HIDDEN else k)
    layer.adapt(x)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, atol=1e-5)
    # The reference's stored (kernel, bias) give the same layer.
    loaded = Whitening.from_kernel_bias(kernel, bias, dimensions=k)
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, atol=1e-5)
    np.testing.assert_allclose(loaded.kernel.numpy(), layer.kernel.numpy(), atol=1e-6)


def test_dimensions_keep_the_leading_whitened_components():
    x = embeddings()
    full, reduced = Whitening(), Whitening(dimensions=3)
    full.adapt(x)
    reduced.adapt(x)
    y = np.asarray(reduced(x))
    assert y.shape == reduced.compute_output_shape(x.shape) == (COUNT, 3)
    np.testing.assert_allclose(y, np.asarray(full(x))[:, :3], atol=1e-5)
    np.testing.assert_allclose(np.cov(y.T), np.eye(3), atol=1e-4)


def test_streamed_batches_give_the_one_shot_statistics():
    x = embeddings()
    one_shot = Whitening()
    one_shot.adapt(x)
    sources = {
        "dataset": tf.data.Dataset.from_tensor_slices(x).batch(256),  # ragged last batch
        "list": np.array_split(x, 7),  # the reference's list of vector arrays
        "generator": (x[i:i + 1000] for i in range(0, COUNT, 1000)),
    }
    for name, source in sources.items():
        streamed = Whitening()
        streamed.adapt(source)
        np.testing.assert_allclose(streamed.mean.numpy(), one_shot.mean.numpy(),
                                   rtol=1e-6, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(streamed.kernel.numpy(), one_shot.kernel.numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=name)


def test_unfitted_layer_is_the_identity():
    x = embeddings(count=5)
    np.testing.assert_array_equal(np.asarray(Whitening()(x)), x)
    np.testing.assert_array_equal(np.asarray(Whitening(dimensions=3)(x)), x[:, :3])


def test_fitted_weights_survive_a_keras_save_and_load(tmp_path):
    x = embeddings()
    inputs = keras.Input((HIDDEN,))
    model = keras.Model(inputs, Whitening(dimensions=5, name="whitening")(inputs))
    model.get_layer("whitening").adapt(x)
    assert model.trainable_weights == []
    expected = model.predict(x[:64], verbose=0)
    model.save(tmp_path / "whitened.keras")
    restored = keras.saving.load_model(tmp_path / "whitened.keras")
    assert restored.get_layer("whitening").get_config()["dimensions"] == 5
    np.testing.assert_allclose(restored.predict(x[:64], verbose=0), expected, atol=1e-6)
    restored.compile(jit_compile=True)  # on the model's path, so it must compile with XLA
    np.testing.assert_allclose(restored.predict(x[:64], verbose=0), expected, atol=1e-5)


def test_too_few_or_degenerate_embeddings_name_the_fix():
    x = embeddings()
    with pytest.raises(ValueError, match=f"needs at least {HIDDEN + 1} embeddings.*got {HIDDEN}"):
        Whitening().adapt(x[:HIDDEN])
    Whitening(dimensions=4).adapt(x[:HIDDEN])  # fewer components need fewer embeddings
    duplicated = np.concatenate([x[:, :-1], x[:, :1]], axis=1)  # one direction never varies
    with pytest.raises(ValueError, match="rank 7 .*dimensions<=7"):
        Whitening().adapt(duplicated)
    Whitening(dimensions=7).adapt(duplicated)
    with pytest.raises(ValueError, match="exceeds the embedding size"):
        Whitening(dimensions=HIDDEN + 1).adapt(x)
    with pytest.raises(ValueError, match="built for H=8"):
        layer = Whitening()
        layer.build((None, HIDDEN))
        layer.adapt(x[:, :4])


def test_mixed_precision_whitens_in_float32():
    x = embeddings()
    layer = Whitening(dtype="mixed_bfloat16")
    layer.adapt(x)
    assert layer.kernel.dtype == "float32"
    inputs = keras.ops.cast(x[:64], "bfloat16")
    result = layer(inputs)
    assert keras.backend.standardize_dtype(result.dtype) == "float32"
    widened = np.asarray(keras.ops.cast(inputs, "float32"), "float64")
    expected = (widened - layer.mean.numpy()) @ layer.kernel.numpy()
    np.testing.assert_allclose(np.asarray(result), expected, atol=1e-5)
