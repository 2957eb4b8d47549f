"""A run killed with SIGKILL mid-training resumes from its last checkpoint.

Exactly what a user does: start `python -m tasks.run`, kill -9 it, start the
same command again. The second run must say it resumed (checkpoint and
step), start at that step rather than redo earlier ones, and end at the same
step count as a run that was never interrupted.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS, PER_LOOP = 300, 50


def command(model_dir):
    return [sys.executable, "-m", "tasks.run", "--task=image_classification",
            f"--model_dir={model_dir}", f"--train_steps={STEPS}", f"--steps_per_loop={PER_LOOP}",
            "--eval_every_loops=100", "--learning_rate=1e-3"]


def checkpoint_steps(model_dir):
    folder = os.path.join(model_dir, "checkpoints")
    if not os.path.isdir(folder):
        return []
    return sorted(int(m.group(1)) for name in os.listdir(folder)
                  if (m := re.match(r"ckpt-(\d+)\.index$", name)))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """model_dir and output of the same command run once without a break."""
    model_dir = str(tmp_path_factory.mktemp("uninterrupted") / "run")
    finished = subprocess.run(command(model_dir), cwd=ROOT, capture_output=True, text=True,
                              timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return model_dir, finished


def final_weights(model_dir):
    import keras

    import zoo  # noqa: F401  (registers the backbones for loading)

    return keras.saving.load_model(os.path.join(model_dir, "model.keras")).get_weights()


@pytest.mark.heavy
def test_sigkill_then_same_command_resumes(tmp_path, uninterrupted):
    model_dir = str(tmp_path / "run")
    process = subprocess.Popen(command(model_dir), cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and len(checkpoint_steps(model_dir)) < 2:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    saved = checkpoint_steps(model_dir)
    assert saved and max(saved) < STEPS, f"killed too late to test a resume: {saved}"
    assert not os.path.exists(os.path.join(model_dir, "metrics.json"))

    resumed = subprocess.run(command(model_dir), cwd=ROOT, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    match = re.search(r"Resumed from checkpoint (\S+) at step (\d+)", log)
    assert match, log[-3000:]
    step = int(match.group(2))
    assert step >= max(saved) and step % PER_LOOP == 0 and match.group(1).endswith(f"ckpt-{step}")
    # Keras counts loops from the checkpoint's: nothing before it is trained again.
    first_loop = re.search(r"Epoch (\d+)/(\d+)", log)
    assert int(first_loop.group(1)) == step // PER_LOOP + 1
    assert int(first_loop.group(2)) == STEPS // PER_LOOP
    with open(os.path.join(model_dir, "metrics.json")) as file:
        assert json.load(file)["step"] == STEPS
    # The checkpoint holds the model, the optimizer and dropout's random
    # streams, and the data resumes where it stopped: the resumed run ends
    # with exactly the weights of the run that was never interrupted.
    for resumed_weight, whole_weight in zip(final_weights(model_dir),
                                            final_weights(uninterrupted[0])):
        np.testing.assert_array_equal(resumed_weight, whole_weight)


def test_uninterrupted_run_ends_at_the_same_step(uninterrupted):
    model_dir, finished = uninterrupted
    assert "Resumed" not in finished.stdout + finished.stderr
    with open(os.path.join(model_dir, "metrics.json")) as file:
        assert json.load(file)["step"] == STEPS
    # Started again after it finished: it resumes at the end and trains nothing.
    again = subprocess.run(command(model_dir), cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
    assert f"at step {STEPS}" in again.stdout and "Epoch" not in again.stdout


def test_checkpoints_without_random_streams_still_restore(tmp_path):
    # Checkpoints written before the random streams were saved: model and
    # optimizer restore, the streams start afresh; new ones restore all three.
    import keras
    import tensorflow as tf

    from tasks.training import loop

    def make():
        inputs = keras.Input((4,))
        model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dropout(0.5)(inputs)))
        optimizer = keras.optimizers.Adam()
        optimizer.build(model.trainable_variables)
        return model, optimizer

    model, optimizer = make()
    old = tf.train.Checkpoint(model=model, optimizer=optimizer).save(str(tmp_path / "old"))
    new = loop.training_checkpoint(model, optimizer).save(str(tmp_path / "new"))
    stream = [v for v in model.variables if v.path.endswith("seed_generator_state")][0]
    for path, streams_restored in ((old, False), (new, True)):
        fresh, fresh_optimizer = make()
        fresh_stream = [v for v in fresh.variables
                        if v.path.endswith("seed_generator_state")][0]
        fresh_stream.assign(stream.numpy() + 7)
        loop.restore(path, fresh, fresh_optimizer)
        for a, b in zip(fresh.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
        assert np.array_equal(fresh_stream.numpy(), stream.numpy()) == streams_restored
