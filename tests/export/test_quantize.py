"""`export_model(..., quantize="int8")`: int8 weights, served in a TensorFlow-only process.

The export itself is one case of tests/export/test_export.py's `served`
fixture (`int8_classifier_case`, checked by `check_int8_classifier`), so it
is called in the same fresh process as every other kind; the tests here run
the quantized model in process.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import export
import zoo
from export import quantize
from tests.text_corpus import corpus

HELD_OUT = corpus(40, seed=7)  # not the texts the vocabulary was learned from
# Rounding each token and weight to int8 moves a logit by well under 1% of
# the logits' range on these models.
RELATIVE_TOLERANCE = 0.02


def int8_classifier_case(root, model, sequence_length):
    """The classifier run in `root/run` exported with quantize="int8", called
    on held-out texts, and on the first of them alone through serve_ids."""
    version = export.export_model(str(root / "run"), str(root / "exports" / "clf_int8"),
                                  quantize="int8")
    preprocessor = zoo.load_preprocessor(str(root / "run" / "model.keras"),
                                         sequence_length=sequence_length)
    ids = {name: value.numpy() for name, value in preprocessor(HELD_OUT).items()}
    calls = {"serving_default": {"text": np.array(HELD_OUT, dtype=object)},
             "serve_ids": {name: value[:1] for name, value in ids.items()}}
    return version, model, calls, (version, ids)


def check_int8_classifier(model, outputs, extra):
    version, ids = extra
    expected = np.asarray(model(ids)["logits"])
    logits = outputs["serving_default"]["logits"]
    error = np.abs(logits - expected).max() / np.ptp(expected)
    print(f"int8 logits: max error {error:.2%} of the float32 logits' range")
    assert error < RELATIVE_TOLERANCE
    # The float32 labels wherever float32's margin is wider than twice the
    # tolerance: most texts, so the check is not vacuous.
    ranked = np.sort(expected, axis=-1)
    clear = ranked[:, -1] - ranked[:, -2] > 2 * RELATIVE_TOLERANCE * np.ptp(expected)
    assert clear.mean() > 0.5, clear.mean()
    np.testing.assert_array_equal(outputs["serving_default"]["label"][clear],
                                  expected.argmax(-1)[clear])
    # Tokens are quantized one by one: a text alone gets its numbers in a batch.
    np.testing.assert_allclose(outputs["serve_ids"]["logits"][0], logits[0], atol=1e-5)

    # Stored: the int8 layers' weights as int8 and no float32 copy of them.
    checkpoint = os.path.join(version, "variables", "variables")
    stored = [tf.train.load_checkpoint(checkpoint).get_tensor(name)
              for name, _ in tf.train.list_variables(checkpoint) if "OBJECT_GRAPH" not in name]
    layers = quantize.quantized_layers(model)
    assert len(layers) == 13  # 2 blocks x 6 Dense kernels, and the token table
    int8 = sorted(value.size for value in stored if value.dtype == np.int8)
    assert int8 == sorted(layer.weights[0].numpy().size for layer in layers)
    scales = sum(layer.weights[0].shape[-1 if isinstance(layer, keras.layers.Dense) else 0]
                 for layer in layers)  # one per output channel / table row
    floats = sum(value.size for value in stored if value.dtype == np.float32)
    assert floats == model.count_params() - sum(int8) + scales
    print(f"variables: {sum(int8) + 4 * floats:,} bytes for {4 * model.count_params():,} "
          "bytes of float32 weights")


@pytest.fixture(scope="module")
def backbone():
    keras.utils.set_random_seed(1)
    return zoo.build("bert_test_tiny", dropout=0.0)


def test_each_text_is_quantized_alone_and_the_caller_model_stays_float32(backbone):
    quantized = quantize.quantize_model(backbone)
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 100, (4, 24)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[2, 10:] = 0  # padding must not change another text's numbers either
    inputs = {"input_word_ids": ids, "input_mask": mask, "input_type_ids": np.zeros_like(ids)}
    batch = np.asarray(quantized(inputs)["sequence_output"])
    alone = np.asarray(quantized({name: value[:1] for name, value in inputs.items()})
                       ["sequence_output"])
    np.testing.assert_allclose(alone[0], batch[0], atol=1e-6)
    expected = np.asarray(backbone(inputs)["sequence_output"])
    assert np.abs(batch - expected).max() < RELATIVE_TOLERANCE * np.ptp(expected)
    assert all(weight.dtype == "float32" for weight in backbone.weights)
    assert {weight.dtype for weight in quantized.weights} == {"float32", "int8"}


def test_unknown_modes_and_models_without_blocks_are_refused(backbone):
    with pytest.raises(ValueError, match="Unknown quantization 'int4'; one of"):
        quantize.quantize_model(backbone, "int4")
    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no Transformer blocks to quantize"):
        quantize.quantize_model(dense)


def test_the_runner_refuses_export_quantize_without_an_export(tmp_path):
    from tasks.training import runner

    settings = runner.RunSettings(task="classification", model_dir=str(tmp_path),
                                  export_quantize="int8")
    with pytest.raises(ValueError, match="--export_quantize applies to the export: add "
                                         "--export_dir"):
        runner.run(settings)
    assert not os.listdir(tmp_path)  # refused before any training
