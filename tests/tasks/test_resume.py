"""A run stopped in any way a cluster stops it resumes exactly from its checkpoints.

Exactly what a user does: start `python -m tasks.run`, SIGTERM it, kill -9
it, start it twice, damage a checkpoint, start the same command again. The
resumed runs must say where they resumed (checkpoint and step), start at
that step rather than redo earlier ones, refuse what they cannot continue,
and end with exactly the weights of a run that was never interrupted.
"""

import dataclasses
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


def run_until_checkpoint_after(model_dir, step, **popen):
    """`command(model_dir)` started; returns it as soon as it has written a
    checkpoint of a step after `step`."""
    process = subprocess.Popen(command(model_dir), cwd=ROOT, **popen)
    deadline = time.time() + 240
    while time.time() < deadline and max(checkpoint_steps(model_dir), default=0) <= step:
        assert process.poll() is None, "the run ended before its checkpoints"
        time.sleep(0.01)
    return process


def truncate(path):
    with open(path, "r+b") as file:
        file.truncate(os.path.getsize(path) // 2)


@pytest.mark.heavy
def test_preempted_killed_and_damaged_runs_resume_exactly(tmp_path, uninterrupted):
    """What a cluster does to a run, one after the other, each time followed by
    the same command: SIGTERM mid-loop, a second run on the folder, SIGKILL, a
    restart with another --model, a truncated latest checkpoint. The run that
    finishes has exactly the weights of the run that was never interrupted."""
    from tasks.training import model_dir as folder_lock, preemption, runner

    model_dir = str(tmp_path / "run")
    # 1. SIGTERM mid-loop: a checkpoint of the step it is at, the documented status.
    first = run_until_checkpoint_after(model_dir, 0, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True)
    time.sleep(0.2)  # into the second loop (a step takes ~20 ms here, a loop 50 steps)
    first.send_signal(signal.SIGTERM)
    output = first.communicate(timeout=120)[0]
    assert first.returncode == preemption.EXIT_STATUS, output[-3000:]
    match = re.search(r"Stopped by SIGTERM at step (\d+), checkpoint (\S+)\. The same "
                      r"command resumes", output)
    assert match, output[-3000:]
    stopped = int(match.group(1))
    assert stopped % PER_LOOP and stopped == max(checkpoint_steps(model_dir)), output[-3000:]
    assert not os.path.exists(os.path.join(model_dir, "model.keras"))

    # 2. Started while another process runs there: refused, naming it (this
    # test's process holds the folder's lock, as a run does).
    settings = runner.RunSettings(model_dir=model_dir, train_steps=STEPS,
                                  steps_per_loop=PER_LOOP, eval_every_loops=100,
                                  learning_rate=1e-3)
    with folder_lock.lock(model_dir):
        with pytest.raises(folder_lock.InUse, match=rf"{re.escape(model_dir)} is in use by "
                           rf"process {os.getpid()} on \S+, started at \d{{4}}-"):
            runner.run(settings)

    # 3. Resumed at that step (mid-loop), then SIGKILLed.
    resumed = run_until_checkpoint_after(model_dir, stopped, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True)
    resumed.send_signal(signal.SIGKILL)
    log = resumed.communicate()[0]
    assert resumed.returncode == -signal.SIGKILL
    assert f"Resumed from checkpoint {match.group(2)} at step {stopped}." in log, log[-3000:]
    saved = checkpoint_steps(model_dir)
    assert max(saved) < STEPS, f"killed too late to test a resume: {saved}"
    assert not os.path.exists(os.path.join(model_dir, "metrics.json"))

    # The killed run's lock is gone; restarted with another model: refused, naming it.
    with pytest.raises(folder_lock.SettingsChanged,
                       match=r"--model: None then, 'vit_test_tiny' now"):
        runner.run(dataclasses.replace(settings, model="vit_test_tiny"))

    # 5. The latest checkpoint's data file truncated: the run resumes from the one before.
    latest, before = sorted(saved)[-1], sorted(saved)[-2]
    truncate(os.path.join(model_dir, "checkpoints", f"ckpt-{latest}.data-00000-of-00001"))
    finished = subprocess.run(command(model_dir), cwd=ROOT, capture_output=True, text=True,
                              timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    log = finished.stdout + finished.stderr
    damaged = os.path.join(model_dir, "checkpoints", f"ckpt-{latest}")
    assert f"Checkpoint {damaged} is damaged" in log, log[-3000:]
    assert f"at step {before}." in finished.stdout
    assert os.path.exists(os.path.join(model_dir, "checkpoints", "damaged",
                                       f"ckpt-{latest}.index"))
    # Keras counts loops from the checkpoint's: nothing before it is trained again.
    first_loop = re.search(r"Epoch (\d+)/(\d+)", log)
    assert int(first_loop.group(1)) == before // PER_LOOP + 1
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
    # Started again after it finished, with more steps (a setting that may
    # change): it resumes at the end, logs the change and trains the new steps.
    longer = command(model_dir) + [f"--train_steps={STEPS + PER_LOOP}"]
    again = subprocess.run(longer, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"at step {STEPS}." in again.stdout
    assert f"Resuming with --train_steps={STEPS + PER_LOOP} (was {STEPS})" in again.stderr
    with open(os.path.join(model_dir, "metrics.json")) as file:
        assert json.load(file)["step"] == STEPS + PER_LOOP
    with open(os.path.join(model_dir, "run.json")) as file:
        assert json.load(file)["resumes"][-1]["changed"] == {"train_steps": [STEPS,
                                                                            STEPS + PER_LOOP]}


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


def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(tmp_path):
    # (The whole run is in the test above; here each kind of damage.)
    import keras
    import tensorflow as tf

    from tasks.training import loop

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    optimizer = keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    folder = str(tmp_path / "checkpoints")
    manager = tf.train.CheckpointManager(loop.training_checkpoint(model, optimizer), folder,
                                         max_to_keep=3)
    saved = {}
    for step in (1, 2, 3):
        optimizer.iterations.assign(step)
        saved[step] = manager.save(checkpoint_number=step)
    os.remove(saved[3] + ".data-00000-of-00001")  # missing data file
    truncate(saved[2] + ".index")
    assert loop.restore_latest(folder, model, optimizer) == saved[1]
    assert int(optimizer.iterations.numpy()) == 1
    assert sorted(os.listdir(os.path.join(folder, "damaged"))) == [
        "ckpt-2.data-00000-of-00001", "ckpt-2.index", "ckpt-3.index"]
    assert tf.train.latest_checkpoint(folder) == saved[1]  # what the next run's manager reads

    truncate(saved[1] + ".data-00000-of-00001")
    with pytest.raises(RuntimeError, match=r"No usable checkpoint in .*checkpoints: ckpt-1: "
                       r".*Move the folder away"):
        loop.restore_latest(folder, model, optimizer)


def test_checkpoints_without_the_skipped_step_count_still_restore(tmp_path):
    # Written before LayerwiseAdamW counted skipped non-finite steps (Keras'
    # AdamW with a schedule has the same state minus that count, appended last): the run resumes, counting
    # from 0; a checkpoint of another model is an error, not "damaged".
    import keras
    import tensorflow as tf

    from tasks.training import loop, optimization

    def model(units=2):
        inputs = keras.Input((4,))
        return keras.Model(inputs, keras.layers.Dense(units)(inputs))

    old_model = model()
    old_optimizer = keras.optimizers.AdamW(learning_rate=optimization.WarmupDecay(1e-3, 10))
    old_optimizer.build(old_model.trainable_variables)
    old_optimizer.iterations.assign(7)
    folder = str(tmp_path / "checkpoints")
    tf.train.CheckpointManager(loop.training_checkpoint(old_model, old_optimizer), folder,
                               max_to_keep=3).save(checkpoint_number=7)
    new_model, optimizer = model(), optimization.create_optimizer(1e-3, 10)
    optimizer.build(new_model.trainable_variables)
    assert loop.restore_latest(folder, new_model, optimizer).endswith("ckpt-7")
    assert int(optimizer.iterations.numpy()) == 7 and int(optimizer.skipped_steps.numpy()) == 0
    for a, b in zip(new_model.get_weights(), old_model.get_weights()):
        np.testing.assert_array_equal(a, b)

    other_model, other_optimizer = model(units=3), optimization.create_optimizer(1e-3, 10)
    other_optimizer.build(other_model.trainable_variables)
    with pytest.raises(RuntimeError, match="does not match the model and optimizer this run "
                       "builds"):
        loop.restore_latest(folder, other_model, other_optimizer)
