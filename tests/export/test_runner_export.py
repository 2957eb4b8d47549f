"""`python -m tasks.run ... --export_dir=BASE/NAME` exports at the end of training."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from export.verify import call_in_fresh_process
from tasks.training import runner
from tasks.data import embedded


@pytest.mark.heavy
def test_the_main_job_exports_a_digit_classifier_for_serving(tmp_path):
    # The README's main job (ViT on scikit-learn's digits), shortened.
    settings = runner.RunSettings(model_dir=str(tmp_path / "run"), train_steps=20,
                                  steps_per_loop=20, export_dir=str(tmp_path / "exports" / "digits"))
    result = runner.run(settings)
    assert result["export"] == str(tmp_path / "exports" / "digits" / "1")
    assert os.path.exists(tmp_path / "run" / "serving.json")

    images, _ = embedded.digits("validation")
    images = images[:6]
    pixels = np.round(images * 255).astype(np.uint8)  # what a client sends: PNG files
    encoded = np.array([tf.io.encode_png(p).numpy() for p in pixels], dtype=object)
    served = call_in_fresh_process(result["export"], {"serving_default": {
        "image_bytes": encoded}})["serving_default"]
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    expected = np.asarray(model((pixels.astype(np.float32) / 255.0 - 0.5) / 0.5)["logits"])
    np.testing.assert_allclose(served["logits"], expected, atol=1e-5)
    assert [name.decode() for name in served["label_name"]] == [
        str(i) for i in expected.argmax(-1)]
