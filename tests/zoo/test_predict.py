"""A zoo backbone's fast `predict` gives the numbers of its plain call."""

import keras
import numpy as np

import zoo
from kerasbert import models


def inputs(rows=5, length=12, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 100, (rows, length)).astype(np.int32)
    mask = (np.arange(length)[None, :] < rng.integers(3, length + 1, rows)[:, None])
    return {"input_word_ids": ids * mask, "input_mask": mask.astype(np.int32),
            "input_type_ids": np.zeros_like(ids)}


def test_xla_predict_equals_the_eager_forward_pass():
    """The compiled (XLA, float32) path against model(x): parity at 1e-5,
    with a padded last batch."""
    model = zoo.build("bert_test_tiny", vocab_size=100, dropout=0.0)
    x = inputs()
    fast = model.predict(x, batch_size=2, verbose=0)
    direct = model(x, training=False)
    assert set(models._INFERENCE_FUNCTIONS[model]) == {True}  # XLA
    for name in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(fast[name], np.asarray(direct[name]), atol=1e-5)


def test_bfloat16_predict_runs_as_a_plain_graph():
    """oneDNN's bf16 matmuls beat XLA's on a CPU: no XLA under bf16, and the
    same numbers as Keras' own predict."""
    model = zoo.build("bert_test_tiny", vocab_size=100, dropout=0.0, dtype="mixed_bfloat16")
    x = inputs()
    fast = model.predict(x, verbose=0)
    assert set(models._INFERENCE_FUNCTIONS[model]) == {False}
    reference = keras.Model.predict(model, x, verbose=0)
    np.testing.assert_allclose(fast["sequence_output"], reference["sequence_output"],
                               atol=1e-6)
