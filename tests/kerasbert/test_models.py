"""kerasbert.models.Model: its in-memory predict equals Keras' own."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasbert import models


def two_input_model(cls=models.Model):
    """Dict in, dict (with a list) out, like a text backbone."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    mask = keras.Input((None,), dtype="int32", name="mask")
    embedded = keras.layers.Embedding(50, 8)(ids)
    hidden = keras.layers.Dense(8, activation="gelu")(embedded)
    masked = hidden * keras.ops.expand_dims(keras.ops.cast(mask, "float32"), -1)
    pooled = keras.layers.Dense(3)(keras.ops.sum(masked, axis=1))
    return cls({"ids": ids, "mask": mask},
               {"pooled": pooled, "layers": [embedded, hidden]})


@pytest.fixture(scope="module")
def model():
    return two_input_model()


def inputs(rows, length=6, seed=0):
    rng = np.random.default_rng(seed)
    return {"ids": rng.integers(0, 50, (rows, length)).astype(np.int32),
            "mask": (rng.random((rows, length)) > 0.3).astype(np.int32)}


def keras_predict(model, x, **kwargs):
    return keras.Model.predict(model, x, verbose=0, **kwargs)


@pytest.mark.parametrize("rows,batch_size", [(7, 3), (4, 32), (6, 2), (1, None)])
def test_in_memory_predict_equals_keras_predict(model, rows, batch_size):
    x = inputs(rows)
    ours = model.predict(x, batch_size=batch_size, verbose=0)
    theirs = keras_predict(model, x, batch_size=batch_size)
    assert ours["pooled"].shape == (rows, 3)
    assert len(ours["layers"]) == 2 and ours["layers"][1].shape == (rows, 6, 8)
    for a, b in zip(tf.nest.flatten(ours), tf.nest.flatten(theirs)):
        assert isinstance(a, np.ndarray)
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_partial_last_batch_does_not_leak_padding(model):
    """The padded rows of the last batch never reach the results."""
    x = inputs(5)
    whole = model.predict(x, batch_size=5, verbose=0)["pooled"]
    batched = model.predict(x, batch_size=2, verbose=0)["pooled"]
    np.testing.assert_allclose(batched, whole, atol=1e-5)


def test_tensors_and_numpy_give_the_same_result(model):
    x = inputs(3)
    tensors = {name: tf.constant(value) for name, value in x.items()}
    np.testing.assert_allclose(model.predict(tensors, verbose=0)["pooled"],
                               model.predict(x, verbose=0)["pooled"], atol=1e-6)


def test_datasets_and_callbacks_take_keras_predict(model):
    x = inputs(4)
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(2)
    np.testing.assert_allclose(model.predict(dataset, verbose=0)["pooled"],
                               keras_predict(model, x)["pooled"], atol=1e-5)

    class Count(keras.callbacks.Callback):
        batches = 0

        def on_predict_batch_end(self, batch, logs=None):
            Count.batches += 1

    model.predict(x, batch_size=2, verbose=0, callbacks=[Count()])
    assert Count.batches == 2


def test_compile_jit_compile_false_is_honoured():
    model = two_input_model()
    model.predict(inputs(2), verbose=0)
    model.compile(jit_compile=False)
    np.testing.assert_allclose(model.predict(inputs(2), verbose=0)["pooled"],
                               keras_predict(model, inputs(2))["pooled"], atol=1e-5)
    assert set(models._INFERENCE_FUNCTIONS[model]) == {True, False}


def test_rows_that_disagree_are_refused(model):
    x = inputs(3)
    x["mask"] = x["mask"][:2]
    with pytest.raises(ValueError, match="disagree on the number of rows"):
        model.predict(x, verbose=0)


def test_saved_and_reloaded_keeps_the_class(model, tmp_path):
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, models.Model)
    np.testing.assert_allclose(loaded.predict(inputs(3), verbose=0)["pooled"],
                               model.predict(inputs(3), verbose=0)["pooled"], atol=1e-6)
