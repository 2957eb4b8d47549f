"""Training a task model with `model.fit`: checkpoints, resume, best model, logs.

Training runs in loops of `steps_per_loop` steps (Keras "epochs" of the
repeated training stream). After every loop a checkpoint of the model, the
optimizer and the dropout layers' random streams is written under model_dir/checkpoints (the previous ones stay
valid until the new one is complete). A run started again with the same
command restores the latest checkpoint, skips the examples it had consumed
and continues: nothing before the checkpoint is redone, and the run ends at
the same step count as an uninterrupted one.
"""

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Optional

import keras
import tensorflow as tf
from absl import logging

from tasks.options import option
from tasks.training import distributed


@dataclasses.dataclass
class TrainingSettings:
    """What the training loop reads; the runner's RunSettings extends it (each a flag)."""

    model_dir: Optional[str] = option(None, "Checkpoints, logs, metrics.json, model.keras. "
                                      "Default: runs/<task>.")
    batch_size: int = option(32, "Global training batch size.")
    eval_batch_size: int = option(64, "Evaluation batch size.")
    train_steps: Optional[int] = option(None, "Training steps (default: num_epochs over the "
                                        "data).")
    steps_per_loop: int = option(100, "Steps between checkpoints (and evaluations).")
    eval_every_loops: int = option(1, "Evaluate every N loops (always at the end).")
    jit_compile: bool = option(False, "Compile the train and predict steps with XLA.")
    seed: int = option(0, "Seed of data order, initialisation and anything a task draws "
                       "(TinyBERT augmentation).")
    max_checkpoints: int = option(3, "Checkpoints kept in model_dir/checkpoints (the newest).")


def _save_atomically(model, path):
    """Saves `model` without its optimizer, atomically (whole or absent).

    An uncompiled copy is saved: the optimizer lives in `tasks`, and a saved
    task model must reload with only kerasbert and zoo imported.
    """
    folder = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(suffix=".keras", dir=folder)
    os.close(handle)
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    try:
        copy.save(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


class _LoopEnd(keras.callbacks.Callback):
    """After each loop: checkpoint, evaluate every `eval_every_loops`, keep the best."""

    def __init__(self, manager, evaluate, task, settings, best, chief=True):
        super().__init__()
        self.chief = chief  # multi-worker: only the chief writes best.json
        self.manager = manager
        self.evaluate = evaluate
        self.task = task
        self.settings = settings
        self.best = best

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        path = self.manager.save(checkpoint_number=step)
        logging.info("Step %d: checkpoint %s", step, path)
        loop = epoch + 1
        last = step >= self.settings.train_steps
        if loop % self.settings.eval_every_loops and not last:
            return
        scores = self.evaluate(self.model)
        logging.info("Step %d: %s", step, _format(scores))
        value = scores[self.task.primary_metric]
        sign = -1 if self.task.primary_mode == "min" else 1
        if self.best.get("value") is None or sign * value > sign * self.best["value"]:
            self.best.update(value=value, step=step, scores=scores)
            if self.chief:  # multi-worker: the chief alone writes files to model_dir
                _save_atomically(self.task.saved_model(self.model),
                                 os.path.join(self.settings.model_dir, "best_model.keras"))
                _write_json(os.path.join(self.settings.model_dir, "best.json"), self.best)


def _format(scores):
    return ", ".join(f"{name}={value:.4f}" for name, value in sorted(scores.items()))


def _write_json(path, content):
    temporary = path + ".tmp"
    with open(temporary, "w") as file:
        json.dump(content, file, indent=2, sort_keys=True)
    os.replace(temporary, path)


def _random_streams(model):
    """Dropout's random stream states (Keras seed generators) of `model`."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def training_checkpoint(model, optimizer):
    """What a checkpoint holds: the model, the optimizer, and dropout's random
    streams, so a resumed run draws the masks the uninterrupted one would
    have and reproduces it."""
    return tf.train.Checkpoint(model=model, optimizer=optimizer,
                               random_streams=_random_streams(model))


def restore(path, model, optimizer):
    """Restores `training_checkpoint` state; the model and optimizer must match.
    Checkpoints written before the random streams were saved still restore
    (the streams then start afresh)."""
    tf.train.Checkpoint(model=model, optimizer=optimizer).restore(
        path).assert_existing_objects_matched()
    tf.train.Checkpoint(random_streams=_random_streams(model)).restore(path).expect_partial()


def train(task, model, optimizer, train_dataset_fn, evaluate, settings):
    """Fits `model` (already built in the strategy's scope) and returns final scores.

    train_dataset_fn(start_step) -> the training stream from that step.
    evaluate(model) -> {metric: value} on the evaluation split.
    """
    if not settings.model_dir or not settings.train_steps:
        raise ValueError(f"train needs a model_dir and a number of train_steps, got "
                         f"{settings.model_dir!r} and {settings.train_steps!r}.")
    os.makedirs(settings.model_dir, exist_ok=True)
    steps_per_loop = min(settings.steps_per_loop, settings.train_steps)
    loops = -(-settings.train_steps // steps_per_loop)  # the last loop may be the end
    settings = dataclasses.replace(settings, steps_per_loop=steps_per_loop,
                                   train_steps=loops * steps_per_loop)

    strategy = model.distribute_strategy
    # The loss tracker (created by compile) and the optimizer slots are
    # variables of the strategy: create them in its scope.
    with strategy.scope():
        model.compile(optimizer=optimizer, loss=task.build_losses(),
                      metrics=task.build_metrics(), jit_compile=settings.jit_compile)
        optimizer.build(model.trainable_variables)
    # Multi-worker: Keras' own train/test functions fail (keras#20585); this
    # replaces them on the model (a no-op for any other strategy).
    distributed.enable_multi_worker_fit(model)
    chief = distributed.is_chief(strategy)
    trained = task.trained_model(model)
    checkpoint = training_checkpoint(trained, optimizer)
    # Every worker saves (saving may need collectives), but only the chief
    # into model_dir; the others into a temporary folder removed at the end.
    # All of them resume from the chief's checkpoints.
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(distributed.write_dir(settings.model_dir, strategy),
                                 "checkpoints"),
        max_to_keep=settings.max_checkpoints)
    latest = tf.train.latest_checkpoint(os.path.join(settings.model_dir, "checkpoints"))
    best_path = os.path.join(settings.model_dir, "best.json")
    best = {}
    if latest:
        restore(latest, trained, optimizer)
        step = int(optimizer.iterations.numpy())
        logging.info("Resumed from checkpoint %s at step %d of %d.", latest,
                     step, settings.train_steps)
        print(f"Resumed from checkpoint {latest} at step {step}.", flush=True)
        if os.path.exists(best_path):
            with open(best_path) as file:
                best = json.load(file)
    start_step = int(optimizer.iterations.numpy())
    if start_step >= settings.train_steps:
        logging.info("Training already finished at step %d.", start_step)
    else:
        callbacks = [
            _LoopEnd(manager, evaluate, task, settings, best, chief),
            keras.callbacks.TensorBoard(
                os.path.join(distributed.write_dir(settings.model_dir, strategy), "logs")),
        ]
        # Multi-worker: each worker keeps its share of every global batch.
        dataset = distributed.shard_training_data(train_dataset_fn(start_step), strategy,
                                                  settings.batch_size)
        model.fit(dataset, steps_per_epoch=steps_per_loop, epochs=loops,
                  initial_epoch=start_step // steps_per_loop, callbacks=callbacks, verbose=2)

    scores = evaluate(model)
    final_step = int(optimizer.iterations.numpy())
    result = {"step": final_step, "final": scores, "best": best}
    if chief:  # multi-worker: the chief alone writes files to model_dir
        _save_atomically(task.saved_model(model), os.path.join(settings.model_dir,
                                                               "model.keras"))
        _write_json(os.path.join(settings.model_dir, "metrics.json"), result)
    distributed.remove_write_dir(settings.model_dir, strategy)
    return result


def clear_model_dir(model_dir):
    """Removes a previous run's checkpoints (for --overwrite)."""
    shutil.rmtree(model_dir, ignore_errors=True)
