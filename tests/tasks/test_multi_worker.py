"""`python -m tasks.run --strategy=multi_worker` trains like one worker (keras#20585).

Two worker processes on 127.0.0.1 (TF_CONFIG with task index 0 and 1, one
CPU device each) train the tiny ViT on the digits with a global batch of 16,
and one process trains the same thing alone with the default strategy.
Both workers must exit 0 and end with identical weights (mirrored variables,
all-reduced updates), only the chief may leave files in model_dir, and the
two-worker run must match the single one.

What is compared with the single run, and why a tolerance: every step's
training loss (steps_per_loop=1, so each Keras "epoch" log is one step's
global loss: it checks the loss reduction) and the final weights after 6
AdamW steps with clipping and weight decay, dropout 0 and the same seeded
data order (they check the data split and the gradient all-reduce: with
every worker reading the whole stream, auto-shard OFF, the losses are off by
up to 2.6% from the second step). A worker
computes the loss and gradients of its 8 examples and the all-reduce adds
the two halves, where the single run sums all 16 at once: the same numbers
added in another order, so float32 results may differ in the last bits and
Adam's g / sqrt(v) carries that into the weights. Measured on this machine:
the six losses are equal and the weights differ by at most 1.4e-8 (weights
up to ~1); rtol=1e-4 (atol=1e-5 for weights near 0) leaves room for other
CPUs and thread counts while staying far below a real error.

Each process runs this file as its entry (see `__main__` below): the real
`tasks.run` command line, plus a dump of the trained weights and per-step
losses to its own .npz, since a non-chief worker keeps no files.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 6
FLAGS = ["--task=image_classification", "--model=vit_test_tiny", "--dropout=0",
         "--batch_size=16", f"--train_steps={STEPS}", "--steps_per_loop=1",
         "--eval_every_loops=100", "--learning_rate=1e-3", "--warmup_fraction=0",
         "--eval_batch_size=100", "--seed=3"]
TIMEOUT = 150  # seconds, for all three processes together
PREEMPTED = 3  # the step at which the second worker gets SIGTERM


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _start(dump, model_dir, strategy, tf_config, log, sigterm_at=None):
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    if sigterm_at:
        env["SIGTERM_AT_STEP"] = str(sigterm_at)
    if tf_config:
        env["TF_CONFIG"] = json.dumps(tf_config)
    command = [sys.executable, "-m", "tests.tasks.test_multi_worker", str(dump),
               f"--strategy={strategy}", f"--model_dir={model_dir}", *FLAGS]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _load(dump):
    with np.load(dump) as arrays:
        weights = [arrays[f"arr_{i}"] for i in range(len(arrays.files) - 1)]
        return weights, arrays["loss"]


def _wait(processes, logs):
    """Waits for `processes` (killing them after TIMEOUT); returns their outputs."""
    try:
        deadline = time.time() + TIMEOUT
        while time.time() < deadline and any(p.poll() is None for p in processes):
            time.sleep(0.5)
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    outputs = []
    for log in logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    return outputs


@pytest.mark.heavy
def test_two_workers_train_like_one(tmp_path):
    """Also: SIGTERM on the second worker at step PREEMPTED stops both workers
    at that step with the documented status and the chief's checkpoint of it;
    the same two commands resume there."""
    from tasks.training import preemption

    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    model_dir = tmp_path / "multi_worker"

    def worker(index, log, sigterm_at=None):
        return _start(tmp_path / f"worker{index}.npz", model_dir, "multi_worker",
                      {"cluster": {"worker": workers}, "task": {"type": "worker",
                                                               "index": index}},
                      log, sigterm_at)

    logs = [open(tmp_path / f"{name}.log", "w+") for name in ("worker0", "worker1", "single")]
    processes = [worker(0, logs[0]), worker(1, logs[1], sigterm_at=PREEMPTED),
                 _start(tmp_path / "single.npz", tmp_path / "single", "default", None, logs[2])]
    outputs = _wait(processes, logs)
    for name, process, output in zip(("worker 0", "worker 1"), processes, outputs):
        assert process.returncode == preemption.EXIT_STATUS, \
            f"{name} exited {process.returncode}:\n{output[-4000:]}"
        assert f"at step {PREEMPTED}, checkpoint" in output, output[-4000:]
    assert "Stopped by SIGTERM at step" in outputs[1]
    assert "Stopped by another worker's signal at step" in outputs[0]
    # The chief's checkpoint of that step is whole and the latest.
    with open(model_dir / "checkpoints" / "checkpoint") as file:
        assert f'model_checkpoint_path: "ckpt-{PREEMPTED}"' in file.read()
    for kind in ("index", "data-00000-of-00001"):
        assert (model_dir / "checkpoints" / f"ckpt-{PREEMPTED}.{kind}").exists()

    resumed_logs = [open(tmp_path / f"resumed{index}.log", "w+") for index in (0, 1)]
    resumed = [worker(0, resumed_logs[0]), worker(1, resumed_logs[1])]
    resumed_outputs = _wait(resumed, resumed_logs)
    processes[:2], outputs[:2] = resumed, resumed_outputs
    for name, process, output in zip(("worker 0", "worker 1", "single"), processes, outputs):
        assert process.returncode == 0, f"{name} exited {process.returncode}:\n{output[-4000:]}"
        if name != "single":
            assert f"at step {PREEMPTED}." in output, output[-4000:]

    chief, chief_loss = _load(tmp_path / "worker0.npz")
    other, other_loss = _load(tmp_path / "worker1.npz")
    single, single_loss = _load(tmp_path / "single.npz")

    # The workers hold the same model, bit for bit.
    assert len(chief) == len(other) == len(single) > 0
    for a, b in zip(chief, other):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(chief_loss, other_loss)

    # ... and it is the model one worker trains with the same global batch
    # (the resumed workers' losses are those of the steps after PREEMPTED).
    single_loss = single_loss[PREEMPTED:]
    assert chief_loss.shape == single_loss.shape == (STEPS - PREEMPTED,)
    np.testing.assert_allclose(chief_loss, single_loss, rtol=1e-4)
    for a, b in zip(chief, single):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)

    # Only the chief wrote to model_dir; the other worker's temporary folder is gone.
    names = sorted(os.listdir(model_dir))
    assert not [name for name in names if name.startswith("workertemp")], names
    for name in ("model.keras", "metrics.json", "best.json", "checkpoints"):
        assert name in names, names
    with open(model_dir / "metrics.json") as file:
        metrics = json.load(file)
    assert metrics["step"] == STEPS
    with open(tmp_path / "single" / "metrics.json") as file:
        single_scores = json.load(file)["final"]
    # Evaluation (model.predict gathered across the workers) agrees too, to one
    # of the 360 validation images (an argmax may flip on a near tie).
    for name, value in single_scores.items():
        assert abs(metrics["final"][name] - value) <= 1 / 360 + 1e-9, (metrics, single_scores)


def _worker_main(dump, argv):
    """The `tasks.run` command line; then the weights and per-step losses to `dump`."""
    from absl import app

    from tasks import run
    from tasks.training import loop

    real_train = loop.train
    if os.environ.get("SIGTERM_AT_STEP"):  # a preemption of this worker at that step
        import keras

        step = int(os.environ["SIGTERM_AT_STEP"])

        class SigtermAt(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if int(self.model.optimizer.iterations.numpy()) == step:
                    os.kill(os.getpid(), signal.SIGTERM)

        fit = keras.Model.fit
        keras.Model.fit = lambda model, *args, callbacks=(), **kwargs: fit(
            model, *args, callbacks=[*callbacks, SigtermAt()], **kwargs)

    def train_and_dump(task, model, *args, **kwargs):
        result = real_train(task, model, *args, **kwargs)
        np.savez(dump, *model.get_weights(), loss=np.array(model.history.history["loss"]))
        return result

    loop.train = train_and_dump
    app.run(run.main, argv=[sys.argv[0], *argv])


if __name__ == "__main__":
    _worker_main(sys.argv[1], sys.argv[2:])
