"""Multi-worker training with Keras 3's own `model.fit` (keras-team/keras#20585).

Under `tf.distribute.MultiWorkerMirroredStrategy` with more than one worker,
Keras 3.15's TensorFlow trainer fails twice before the first step:

1. Its symbolic build (see kerasbert.keras_internals) takes the first
   distributed batch and calls
   `strategy.reduce("MEAN", batch, axis=None)` on the whole (x, y) tuple of
   PerReplica values; the collective strategy cannot reduce that structure
   ("Attempt to convert a value (PerReplica...) to a Tensor").
2. The train/test functions reduce the step's logs with
   `reduce_per_replica(..., "auto")`, which in multi-worker mode means
   `strategy.reduce("MEAN", value, axis=0)` on every log, and every log is a
   scalar ("Invalid reduction dimension 0 for input with 0 dimensions").

`enable_multi_worker_fit(model)` replaces those three methods on the model
instance (no Keras fork, no new model class, so saved models are
unchanged), and only when the strategy spans several workers:

- the symbolic build takes shapes and dtypes from the dataset's
  `element_spec` (no batch is read, nothing is reduced);
- one step is `strategy.run(train_step)` inside a `tf.function`: each
  replica's loss is scaled by 1 / replicas (Keras does that), the
  optimizer's `apply_gradients` all-reduces (SUM) the gradients, so the
  update is the global-batch gradient on every worker;
- the logs are read back in cross-replica context: a metric's variables are
  ON_READ with SUM aggregation, so `metric.result()` there all-reduces its
  totals and counts and gives the exact global value (the loss tracker's
  global mean is the SUM over replicas of their scaled losses). Logs that
  are not metrics (a custom `train_step`'s extras) are averaged over
  replicas, which is what Keras meant by "auto".

`model.predict` works unchanged (its "concat" reduction gathers across
workers in order) and is left alone.

Files: every worker must take part in saving (a checkpoint may read
variables through collectives), but only the chief writes to `model_dir`;
the others write to `model_dir/workertemp_<task id>` and remove it at the
end (the TF / tf-keras convention). See `write_dir` and `remove_write_dir`.
"""

import os
import shutil
import types

import tensorflow as tf
from absl import logging

from kerasbert import keras_internals


def is_multi_worker(strategy):
    """True when some of the strategy's replicas live in other processes."""
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.num_replicas_in_sync > len(strategy.extended.worker_devices))


def is_chief(strategy):
    """The worker that writes to model_dir (always True outside multi-worker)."""
    return not is_multi_worker(strategy) or strategy.extended.should_checkpoint


def write_dir(model_dir, strategy):
    """model_dir on the chief; model_dir/workertemp_<task id> on other workers."""
    if is_chief(strategy):
        return model_dir
    return os.path.join(model_dir, f"workertemp_{strategy.cluster_resolver.task_id}")


def remove_write_dir(model_dir, strategy):
    """Removes a non-chief worker's temporary folder (nothing on the chief)."""
    folder = write_dir(model_dir, strategy)
    if folder != model_dir:
        shutil.rmtree(folder, ignore_errors=True)


def shard_training_data(dataset, strategy, global_batch_size):
    """The training stream, marked to be split by examples across workers.

    `dataset` yields GLOBAL batches (the runner's --batch_size) built from
    in-memory tensors: there are no files to shard, so each worker reads the
    same seeded stream, tf.distribute rebatches every global batch into
    per-replica batches of global / replicas and each worker keeps its own
    (AutoShardPolicy.DATA, said explicitly rather than reached through AUTO's
    fallback). Together the workers see exactly the single-worker batches.
    """
    if is_multi_worker(strategy) and global_batch_size % strategy.num_replicas_in_sync:
        raise ValueError(f"--batch_size={global_batch_size} (the global batch) must be a "
                         f"multiple of the {strategy.num_replicas_in_sync} replicas.")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def enable_multi_worker_fit(model):
    """Makes `model.fit` / `model.evaluate` work under multi-worker MWMS.

    The model must have been built in the strategy's scope. A no-op for any
    other strategy (Keras' own functions are right there). Returns the model.
    """
    if not is_multi_worker(model.distribute_strategy):
        return model
    keras_internals.replace_symbolic_build(model, _build_from_spec)
    model.make_train_function = types.MethodType(_make_train_function, model)
    model.make_test_function = types.MethodType(_make_test_function, model)
    model.train_function = model.test_function = None  # built by the methods above
    return model


def _build_from_spec(self, iterator=None, data_batch=None):
    """Keras' build of metrics, losses and optimizer, from the data's spec.

    Keras reads one distributed batch and all-reduces it only to get shapes;
    the undistributed dataset's `element_spec` has them (TensorSpecs have
    `.shape` and `.dtype`, all `_symbolic_build` uses).
    """
    if iterator is not None:
        data_batch = iterator.data_adapter.get_tf_dataset().element_spec
    keras_internals.keras_symbolic_build(self, data_batch)  # Keras' own, given a batch


def _make_train_function(self, force=False):
    if self.train_function is None or force:
        self.train_function = _make_function(self, self.train_step)
    return self.train_function


def _make_test_function(self, force=False):
    if self.test_function is None or force:
        self.test_function = _make_function(self, self.test_step)
    return self.test_function


def _make_function(model, step_function):
    """iterator -> logs of `steps_per_execution` steps, reduced across workers."""
    strategy = model.distribute_strategy
    local = [v.path for v in model.metrics_variables
             if not isinstance(getattr(v, "value", v), tf.distribute.DistributedValues)]
    if local:  # their results would be each worker's own, silently
        raise ValueError(f"Metric variables {local[:3]} are not distributed: compile the "
                         "model inside strategy.scope().")

    def one_step_on_data(data):
        per_replica_logs = strategy.run(step_function, args=(data,))
        # Read the metrics only after every replica has updated them.
        updates = tf.nest.flatten(strategy.experimental_local_results(per_replica_logs))
        with tf.control_dependencies(updates):
            return _cross_replica_logs(model, strategy, per_replica_logs)

    def one_step(iterator):  # as in Keras: reading the iterator stays out of XLA
        return one_step_on_data(iterator.get_next())

    jit_compile = model.jit_compile
    if jit_compile and all("CPU" in device.upper() for device in strategy.extended.worker_devices):
        # TF 2.21: "Collectives are not yet implemented for CPU devices when
        # compiling with XLA" (the all-reduces are inside the step).
        logging.warning("Multi-worker on CPU: the training step runs without XLA.")
        jit_compile = False
    if not model.run_eagerly:
        one_step_on_data = tf.function(one_step_on_data, reduce_retracing=True,
                                       jit_compile=jit_compile)
        one_step = tf.function(one_step, reduce_retracing=True)

    def function(iterator):
        logs = None
        for _ in range(model.steps_per_execution):
            try:
                logs = one_step(iterator)
            except (StopIteration, tf.errors.OutOfRangeError):
                if logs is None:
                    raise  # TFEpochIterator ends the epoch
                break
        return logs

    return function


def _cross_replica_logs(model, strategy, per_replica_logs):
    """Global logs: metrics from their own (all-reduced) state, the rest averaged."""
    metric_logs = model.get_metrics_result()  # cross-replica context: ON_READ SUM -> all-reduce
    logs = {}
    for name, value in per_replica_logs.items():
        if name in metric_logs:
            logs[name] = metric_logs[name]
        else:
            logs[name] = tf.nest.map_structure(
                lambda v: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None), value)
    return logs
