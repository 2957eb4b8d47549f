"""Training a task model with `model.fit`: checkpoints, resume, best model, logs.

Training runs in loops of `steps_per_loop` steps (Keras "epochs" of the
repeated training stream). After every loop a checkpoint of the model, the
optimizer and the dropout layers' random streams is written under
model_dir/checkpoints (the previous ones stay valid until the new one is
complete). A run started again with the same command restores the latest
usable checkpoint (a damaged one is set aside), skips the examples it had
consumed and continues: nothing before the checkpoint is redone, and the run
ends with the weights of an uninterrupted one.

A SIGTERM or SIGINT stops the run after the current step, with a checkpoint
of that step (see preemption). A step whose loss or gradient is NaN or Inf
changes no weight; it stops the run, or is skipped and counted with
skip_nonfinite_batches. No checkpoint or model with NaN or Inf weights is
written.
"""

import dataclasses
import json
import os
import tempfile
from typing import Optional

import keras
import tensorflow as tf
from absl import logging

from kerasbert import keras_internals
from tasks.options import option
from tasks.training import distributed, model_dir, preemption


@dataclasses.dataclass
class TrainingSettings:
    """What the training loop reads; the runner's RunSettings extends it (each a flag)."""

    model_dir: Optional[str] = option(None, "Checkpoints, logs, metrics.json, model.keras. "
                                      "Default: runs/<task>.", may_change=True)
    batch_size: int = option(32, "Global training batch size.")
    eval_batch_size: int = option(64, "Evaluation batch size.", may_change=True)
    train_steps: Optional[int] = option(None, "Training steps (default: num_epochs over the "
                                        "data).", may_change=True)
    steps_per_loop: int = option(100, "Steps between checkpoints (and evaluations).",
                                 may_change=True)
    eval_every_loops: int = option(1, "Evaluate every N loops (always at the end).",
                                   may_change=True)
    jit_compile: bool = option(False, "Compile the train and predict steps with XLA.",
                               may_change=True)
    seed: int = option(0, "Seed of data order, initialisation and anything a task draws "
                       "(TinyBERT augmentation).")
    max_checkpoints: int = option(3, "Checkpoints kept in model_dir/checkpoints (the newest).",
                                  may_change=True)
    skip_nonfinite_batches: bool = option(False, "Skip a training batch whose loss or "
                                          "gradient is NaN or Inf (counted in the logs and "
                                          "metrics.json) instead of stopping the run.",
                                          may_change=True)


def _save_atomically(model, path):
    """Saves `model` without its optimizer, atomically (whole or absent).

    An uncompiled copy is saved: the optimizer lives in `tasks`, and a saved
    task model must reload with only kerasbert and zoo imported.
    """
    _check_weights_finite(model, path)
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


class NonFiniteLoss(RuntimeError):
    """A training step's loss or gradient held a NaN or an Inf."""


class _LoopEnd(keras.callbacks.Callback):
    """After each step: stop on a signal (with a checkpoint) or a non-finite
    step. After each loop: checkpoint, evaluate every `eval_every_loops`,
    keep the best."""

    def __init__(self, manager, evaluate, task, settings, best, optimizer, watch, chief=True):
        super().__init__()
        self.chief = chief  # multi-worker: only the chief writes best.json
        self.manager = manager
        self.evaluate = evaluate
        self.task = task
        self.settings = settings
        self.best = best
        self.optimizer = optimizer  # the LayerwiseAdamW (not a loss-scale wrapper)
        self.watch = watch
        self.skipped = int(optimizer.skipped_steps.numpy())

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.optimizer.iterations.numpy())
        self._check_finite(step)
        if step % self.settings.steps_per_loop and self.watch.should_stop():
            self._stop(step, self._save(step))

    def _check_finite(self, step):
        skipped = int(self.optimizer.skipped_steps.numpy())
        if skipped == self.skipped:
            return
        self.skipped = skipped
        problem = (f"Step {step} (batch {step} of the seeded training stream, --seed="
                   f"{self.settings.seed}): the loss or a gradient is not finite (NaN or Inf); "
                   "the weights were not updated")
        if not self.settings.skip_nonfinite_batches:
            latest = self.manager.latest_checkpoint
            raise NonFiniteLoss(
                f"{problem}. The run stops; its latest checkpoint ({latest or 'none yet'}) "
                "holds finite weights. Look for a broken example or lower --learning_rate, "
                "or pass --skip_nonfinite_batches to skip such batches.")
        logging.warning("%s: batch skipped (%d so far).", problem, skipped)

    def _save(self, step):
        _check_weights_finite(self.model, f"the checkpoint of step {step}")
        path = self.manager.save(checkpoint_number=step)
        logging.info("Step %d: checkpoint %s", step, path)
        return path

    def _stop(self, step, path):
        raise preemption.Preempted(self.watch.signal_name, step, path)

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.optimizer.iterations.numpy())
        path = self._save(step)
        if self.watch.should_stop():
            self._stop(step, path)
        loop = step // self.settings.steps_per_loop
        last = step >= self.settings.train_steps
        if loop % self.settings.eval_every_loops and not last:
            return
        with self.watch.interruptible():
            scores = self.evaluate(self.model)
        logging.info("Step %d: %s", step, _format(scores))
        value = scores[self.task.primary_metric]
        sign = -1 if self.task.primary_mode == "min" else 1
        if self.best.get("value") is None or sign * value > sign * self.best["value"]:
            self.best.update(value=value, step=step, scores=scores)
            if self.chief:  # multi-worker: the chief alone writes files to model_dir
                _save_atomically(self.task.saved_model(self.model),
                                 os.path.join(self.settings.model_dir, "best_model.keras"))
                model_dir.write_json(os.path.join(self.settings.model_dir, "best.json"),
                                     self.best)


def _check_weights_finite(model, what):
    """Refuses to save NaN or Inf weights (nothing is written)."""
    bad = [v.path for v in model.weights
           if keras.backend.is_float_dtype(v.dtype)
           and not bool(tf.reduce_all(tf.math.is_finite(v)))]
    if bad:
        raise NonFiniteLoss(f"Not writing {what}: {len(bad)} weights hold NaN or Inf, e.g. "
                            f"{bad[:3]}.")


def _format(scores):
    return ", ".join(f"{name}={value:.4f}" for name, value in sorted(scores.items()))


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
    (the streams then start afresh), and so do those written before the
    optimizer counted skipped non-finite steps (the count starts at 0)."""
    counted = any(name.startswith("optimizer/skipped_steps/")
                  for name, _ in tf.train.list_variables(path))
    if counted or not hasattr(optimizer, "skipped_steps"):
        tf.train.Checkpoint(model=model, optimizer=optimizer).restore(
            path).assert_existing_objects_matched()
    else:
        tf.train.Checkpoint(model=model).restore(path).assert_existing_objects_matched()
        tf.train.Checkpoint(optimizer=optimizer).restore(path).expect_partial()
    tf.train.Checkpoint(random_streams=_random_streams(model)).restore(path).expect_partial()


def train(task, model, optimizer, train_dataset_fn, evaluate, settings):
    """Fits `model` (already built in the strategy's scope) and returns final scores.

    train_dataset_fn(start_step) -> the training stream from that step.
    evaluate(model) -> {metric: value} on the evaluation split.
    Raises preemption.Preempted after checkpointing when a signal stops the
    run, NonFiniteLoss on a NaN or Inf step (unless skip_nonfinite_batches).
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
    if settings.skip_nonfinite_batches:
        # A skipped batch's NaN loss stays out of the loop's logged mean loss.
        keras_internals.ignore_nonfinite_losses(model)
    # Multi-worker: Keras' own train/test functions fail (keras#20585); this
    # replaces them on the model (a no-op for any other strategy).
    distributed.enable_multi_worker_fit(model)
    chief = distributed.is_chief(strategy)
    trained = task.trained_model(model)
    checkpoint = training_checkpoint(trained, optimizer)
    # All workers resume from the chief's checkpoints (only the chief sets
    # damaged ones aside).
    latest = restore_latest(os.path.join(settings.model_dir, "checkpoints"), trained,
                            optimizer, set_aside=chief)
    # Every worker saves (saving may need collectives), but only the chief
    # into model_dir; the others into a temporary folder removed at the end.
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(distributed.write_dir(settings.model_dir, strategy),
                                 "checkpoints"),
        max_to_keep=settings.max_checkpoints)
    best_path = os.path.join(settings.model_dir, "best.json")
    best = {}
    if latest:
        step = int(optimizer.iterations.numpy())
        logging.info("Resumed from checkpoint %s at step %d of %d.", latest,
                     step, settings.train_steps)
        print(f"Resumed from checkpoint {latest} at step {step}.", flush=True)
        if os.path.exists(best_path):
            with open(best_path) as file:
                best = json.load(file)
    start_step = int(optimizer.iterations.numpy())
    watch = preemption.Watch(strategy, distributed.is_multi_worker(strategy))
    with watch.active():
        if start_step >= settings.train_steps:
            logging.info("Training already finished at step %d.", start_step)
        else:
            callbacks = [
                _LoopEnd(manager, evaluate, task, settings, best, optimizer, watch, chief),
                keras.callbacks.TensorBoard(
                    os.path.join(distributed.write_dir(settings.model_dir, strategy), "logs")),
            ]

            def fit(first_step, steps_per_epoch, epochs):
                # Multi-worker: each worker keeps its share of every global batch.
                dataset = distributed.shard_training_data(train_dataset_fn(first_step),
                                                          strategy, settings.batch_size)
                model.fit(dataset, steps_per_epoch=steps_per_epoch, epochs=epochs,
                          initial_epoch=first_step // steps_per_loop, callbacks=callbacks,
                          verbose=2)

            # A run stopped by a signal mid-loop first ends that loop, then
            # runs whole loops: loop ends (checkpoints, evaluations) fall on
            # the steps of an uninterrupted run.
            loop_end = -(-start_step // steps_per_loop) * steps_per_loop
            if loop_end > start_step:
                fit(start_step, loop_end - start_step, loop_end // steps_per_loop)
            if loop_end < settings.train_steps:
                fit(loop_end, steps_per_loop, loops)
        with watch.interruptible():
            scores = evaluate(model)

    final_step = int(optimizer.iterations.numpy())
    result = {"step": final_step, "final": scores, "best": best}
    skipped = int(optimizer.skipped_steps.numpy())
    if skipped:
        result["skipped_nonfinite_batches"] = skipped
    if task.skipped_examples:
        result["skipped_examples"] = dict(task.skipped_examples)
    if chief:  # multi-worker: the chief alone writes files to model_dir
        _save_atomically(task.saved_model(model), os.path.join(settings.model_dir,
                                                               "model.keras"))
        model_dir.write_json(os.path.join(settings.model_dir, "metrics.json"), result)
    distributed.remove_write_dir(settings.model_dir, strategy)
    return result


def checkpoint_paths(folder):
    """The checkpoints in `folder`, newest first (by their files, not the
    `checkpoint` state file, which a crash may leave behind)."""
    numbered = []
    for path in tf.io.gfile.glob(os.path.join(folder, "ckpt-*.index")):
        number = os.path.basename(path)[len("ckpt-"):-len(".index")]
        if number.isdigit():
            numbered.append((int(number), path[:-len(".index")]))
    return [path for _, path in sorted(numbered, reverse=True)]


def restore_latest(folder, model, optimizer, set_aside=True):
    """Restores the newest usable checkpoint of `folder`; returns its path, or
    None when there is none.

    A damaged one (truncated or missing data file) is skipped with a warning
    and, when `set_aside`, moved to `folder/damaged/`, the state file then
    naming the usable ones; when none restores, an error lists them all.
    """
    paths = checkpoint_paths(folder)
    failures = []
    for path in paths:
        try:
            restore(path, model, optimizer)
        # Whole, but of another model: shapes or dtypes differ (InvalidArgument),
        # objects are missing (AssertionError, ValueError).
        except (tf.errors.InvalidArgumentError, AssertionError, ValueError) as error:
            raise RuntimeError(
                f"Checkpoint {path} does not match the model and optimizer this run builds "
                f"({str(error).strip().splitlines()[0][:300]}): was model_dir trained with "
                "other code or settings? Use another --model_dir.") from error
        # A truncated or missing file: an OpError (DataLoss, a missing file), or
        # IndexError ("Read less bytes than requested") in the object graph.
        except (tf.errors.OpError, IndexError) as error:
            reason = str(error).strip().splitlines()[0][:300]
            logging.warning("Checkpoint %s is damaged (%s); trying the one before.", path,
                            reason)
            failures.append(f"{os.path.basename(path)}: {reason}")
            continue
        if failures and set_aside:
            _set_aside(folder, paths[:len(failures)], paths[len(failures):])
        return path
    if failures:
        raise RuntimeError(f"No usable checkpoint in {folder}: " + "; ".join(failures)
                           + ". Move the folder away to start the run over.")
    return None


def _set_aside(folder, damaged, usable):
    """Moves `damaged` checkpoints' files to folder/damaged/ and names the
    `usable` ones (newest first) in the state file the CheckpointManager reads."""
    target = os.path.join(folder, "damaged")
    tf.io.gfile.makedirs(target)
    for path in damaged:
        for name in tf.io.gfile.glob(path + ".*"):
            tf.io.gfile.rename(name, os.path.join(target, os.path.basename(name)),
                               overwrite=True)
    tf.compat.v1.train.update_checkpoint_state(
        folder, usable[0], all_model_checkpoint_paths=list(reversed(usable)))
    logging.warning("Moved the damaged checkpoints %s to %s.",
                    [os.path.basename(p) for p in damaged], target)
