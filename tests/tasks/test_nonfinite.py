"""A NaN in a training batch: the run stops naming the step (or skips the
batch with --skip_nonfinite_batches), and nothing NaN is ever written."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tasks.image_classification import ImageClassificationTask
from tasks.training import loop, runner

POISONED_STEP = 6


@pytest.fixture
def poisoned_batch(monkeypatch):
    """The training stream's batch of step POISONED_STEP holds NaN pixels."""
    build_dataset = ImageClassificationTask.build_dataset

    def poisoned(self, split, image_shape, batch_size, training, start_step=0, seed=0):
        dataset = build_dataset(self, split, image_shape, batch_size, training, start_step,
                                seed)
        if not training:
            return dataset

        def poison(index, batch):
            images, labels = batch
            bad = tf.equal(index + start_step + 1, POISONED_STEP)
            return tf.where(bad, tf.fill(tf.shape(images), float("nan")), images), labels

        return dataset.enumerate().map(poison)

    monkeypatch.setattr(ImageClassificationTask, "build_dataset", poisoned)


def settings(model_dir, **overrides):
    return runner.RunSettings(model="vit_test_tiny", model_dir=str(model_dir), train_steps=8,
                              steps_per_loop=4, batch_size=8, **overrides)


def assert_checkpoint_finite(path):
    reader = tf.train.load_checkpoint(path)
    for name, dtype in reader.get_variable_to_dtype_map().items():
        if dtype.is_floating:
            assert np.isfinite(reader.get_tensor(name)).all(), name


def assert_model_finite(path):
    import keras

    import zoo  # noqa: F401  (registers the backbones for loading)

    for weight in keras.saving.load_model(path).get_weights():
        assert np.isfinite(weight).all()


def test_a_nan_batch_stops_the_run_or_is_skipped(tmp_path, poisoned_batch, monkeypatch):
    stopped = tmp_path / "stopped"
    with pytest.raises(loop.NonFiniteLoss, match=rf"Step {POISONED_STEP} \(batch "
                       rf"{POISONED_STEP} of the seeded training stream, --seed=0\): the loss "
                       r"or a gradient is not finite \(NaN or Inf\); the weights were not "
                       r"updated. .* latest checkpoint \(.*ckpt-4\) holds finite weights.*"
                       r"--skip_nonfinite_batches"):
        runner.run(settings(stopped))
    assert loop.checkpoint_paths(str(stopped / "checkpoints")) == [
        str(stopped / "checkpoints" / "ckpt-4")]
    assert_checkpoint_finite(str(stopped / "checkpoints" / "ckpt-4"))
    assert not os.path.exists(stopped / "model.keras")
    assert not os.path.exists(stopped / "metrics.json")

    skipped = tmp_path / "skipped"
    losses = []
    train = loop.train

    def train_and_keep_losses(task, model, *args):
        result = train(task, model, *args)
        losses.extend(model.history.history["loss"])
        return result

    monkeypatch.setattr(loop, "train", train_and_keep_losses)
    result = runner.run(settings(skipped, skip_nonfinite_batches=True))
    # The skipped batch's loss is not in the logged mean of its loop.
    assert len(losses) == 2 and np.isfinite(losses).all(), losses
    assert result["step"] == 8 and result["skipped_nonfinite_batches"] == 1
    with open(skipped / "metrics.json") as file:
        assert json.load(file)["skipped_nonfinite_batches"] == 1
    assert_checkpoint_finite(str(skipped / "checkpoints" / "ckpt-8"))
    assert_model_finite(str(skipped / "model.keras"))
