"""A keras.Model that predicts without Keras' per-call loop and builds its
optimizer before the first step.

Keras' `predict` builds a tf.data pipeline, a distributed iterator and a
callback list on every call: about 40 ms here, which is most of the time of
a small model's batch (bert_tiny, 32 x 128: 56 ms through `predict`, 16 ms
through a compiled call) and 10% of BERT-base's. `Model.predict` sends
numpy arrays and tensors straight through one compiled inference function
instead, batch by batch, and pads the last partial batch so every batch has
one shape (one XLA program). Anything else (a tf.data.Dataset, a
generator, steps, callbacks, a distribution strategy, run_eagerly) goes to
Keras' own `predict`, so the results and the API are Keras'.

`compile` builds the optimizer's slots at once (for a built model outside
any distribution strategy). Keras defers that to the first training step,
inside the traced train function, where each slot becomes a lazily
initialised variable with its own init graph: 2.5 s of BERT-base's first
step here for AdamW's ~400 slots, 0.3 s when built eagerly.

XLA: a float32 model's function is XLA-compiled unless `compile()` turned
`jit_compile` off (Keras' "auto" does on a CPU); an uncompiled model, what
feature extraction and serving code call, therefore runs under XLA (1.2x
faster than a plain graph on bert_tiny here). A bfloat16 model runs as a
plain graph: oneDNN's bf16 matmuls beat XLA's CPU ones (22.3 vs 17.2
BERT-base sequences/s here).
"""

import weakref

import keras
import numpy as np
import tensorflow as tf

from kerasbert import keras_internals

# model -> {use_xla: tf.function}; weak, so the cache never keeps a model
# alive, and outside the model, so SavedModel export never sees the function.
_INFERENCE_FUNCTIONS = weakref.WeakKeyDictionary()


def _in_memory(x):
    leaves = tf.nest.flatten(x)
    return bool(leaves) and all(isinstance(leaf, (np.ndarray, tf.Tensor)) for leaf in leaves)


def _inference_function(model, use_xla):
    functions = _INFERENCE_FUNCTIONS.setdefault(model, {})
    if use_xla not in functions:
        model_ref = weakref.ref(model)

        def infer(inputs):
            return model_ref()(inputs, training=False)

        functions[use_xla] = tf.function(infer, jit_compile=use_xla, reduce_retracing=True)
    return functions[use_xla]


def _batches(inputs, rows, batch_size):
    """(numpy batch, real_rows), every batch `batch_size` rows (the last one
    padded by repeating its final row, which is valid input for any model)."""
    for start in range(0, rows, batch_size):
        stop = min(start + batch_size, rows)
        missing = batch_size - (stop - start)

        def take(leaf):
            batch = leaf[start:stop]
            if missing:
                batch = np.concatenate([batch, np.repeat(batch[-1:], missing, axis=0)])
            return batch

        yield tf.nest.map_structure(take, inputs), stop - start


@keras.saving.register_keras_serializable(package="kerasbert")
class Model(keras.Model):
    """keras.Model with a fast in-memory `predict` and an eagerly built
    optimizer (see the module docstring)."""

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        if (self.built and self.optimizer is not None
                and keras_internals.distribute_strategy(self) is None
                and not tf.distribute.has_strategy()):
            self.optimizer.build(self.trainable_variables)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        if not self._predicts_in_memory(x, steps, callbacks):
            return super().predict(x, batch_size=batch_size, verbose=verbose, steps=steps,
                                   callbacks=callbacks)
        inputs = tf.nest.map_structure(np.asarray, x)  # numpy slices are free
        rows = {int(leaf.shape[0]) for leaf in tf.nest.flatten(inputs)}
        if len(rows) != 1:
            raise ValueError(f"predict() inputs disagree on the number of rows: {sorted(rows)}; "
                             "every input needs one row per example.")
        rows = rows.pop()
        if rows == 0:
            raise ValueError("predict() got 0 rows; pass at least one example.")
        batch_size = min(batch_size or 32, rows)
        use_xla = (keras_internals.jit_compile(self) is not False
                   and self.compute_dtype == "float32")
        infer = _inference_function(self, use_xla)
        progress = None
        if verbose != 0:
            progress = keras.utils.Progbar(-(-rows // batch_size), verbose=1 if verbose == "auto" else verbose)
        pieces = []
        for step, (batch, real_rows) in enumerate(_batches(inputs, rows, batch_size)):
            outputs = infer(batch)
            pieces.append(tf.nest.map_structure(lambda t: t.numpy()[:real_rows], outputs))
            if progress is not None:
                progress.update(step + 1)
        if len(pieces) == 1:
            return pieces[0]
        return tf.nest.map_structure(lambda *parts: np.concatenate(parts, axis=0), *pieces)

    def _predicts_in_memory(self, x, steps, callbacks):
        return (steps is None and not callbacks and not self.run_eagerly
                and keras_internals.distribute_strategy(self) is None
                and not tf.distribute.has_strategy()
                and _in_memory(x))
