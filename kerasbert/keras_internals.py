"""Every private Keras attribute kerasbert relies on, in one place.

Keras has no public API for these; each is read or called through a function
here, and each call first checks that the installed Keras is one these
internals were tested with, so a Keras that renamed them fails with a
message that says so instead of an AttributeError deep in a training step.

    _keras_history              the layer that produced a symbolic tensor
    _distribute_strategy        the strategy a model was built under
    _jit_compile                the model's compile(jit_compile=...) choice
    _aggregate_additional_loss  how fit adds a model's own losses (add_loss)
    _maybe_symbolic_build       fit's build of metrics and optimizer from a batch
    _get_variable_index,        an optimizer's slot index of a variable, its Adam
    _momentums, _velocities,    slots, and whether it decays the variable
    _use_weight_decay
    _flatten_layers             every layer nested in a layer (export's int8 pass)
    _loss_tracker               the mean loss fit logs (skipped NaN batches left out)

An optimizer subclass can only change Keras' steps by overriding them by
name: tasks.training.optimization.LayerwiseAdamW overrides `_apply_weight_decay`,
`_clip_gradients` and `_all_reduce_sum_gradients`, and calls `check_keras`
when it is created.
"""

import keras

# (major, minor) versions of Keras these internals were tested with.
TESTED_KERAS = ((3, 15),)


def _installed():
    return tuple(int(part) for part in keras.__version__.split(".")[:2])


def check_keras():
    """Raises a RuntimeError naming the versions when Keras is not a tested one."""
    if _installed() not in TESTED_KERAS:
        tested = ", ".join(f"{major}.{minor}.x" for major, minor in TESTED_KERAS)
        raise RuntimeError(
            f"kerasbert relies on Keras internals (kerasbert/keras_internals.py) tested with "
            f"Keras {tested}; this is Keras {keras.__version__}. Install a tested version "
            f"(pip install 'keras=={tested}') or update those internals for this one.")


def producing_layer(tensor):
    """The layer whose call made the symbolic `tensor`, or None (not symbolic)."""
    check_keras()
    history = getattr(tensor, "_keras_history", None)
    return history.operation if history else None


def distribute_strategy(model):
    """The strategy `model` was created under, or None (the default strategy)."""
    check_keras()
    return model._distribute_strategy


def jit_compile(model):
    """`model`'s compile(jit_compile=...) setting ("auto", True or False)."""
    check_keras()
    return model._jit_compile


def additional_loss(model, loss):
    """One of `model.losses` (add_loss, regularizers) as fit adds it to the loss."""
    check_keras()
    return model._aggregate_additional_loss(loss)


def replace_symbolic_build(model, build):
    """Makes `build(model, iterator=None, data_batch=None)` the way fit builds
    `model`'s metrics and optimizer before the first step."""
    check_keras()
    model._maybe_symbolic_build = build.__get__(model)


def keras_symbolic_build(model, data_batch):
    """Keras' own build of `model`'s metrics and optimizer from `data_batch`."""
    check_keras()
    type(model)._maybe_symbolic_build(model, data_batch=data_batch)


def variable_index(optimizer, variable):
    """The index of `variable` in the optimizer's slot lists."""
    check_keras()
    return optimizer._get_variable_index(variable)


def adam_slots(optimizer, index):
    """(first moment, second moment) variables of an Adam optimizer's `index`."""
    check_keras()
    return optimizer._momentums[index], optimizer._velocities[index]


def decays(optimizer, variable):
    """True when the optimizer's weight decay applies to `variable` (not to the
    names its exclude_from_weight_decay lists)."""
    check_keras()
    return optimizer._use_weight_decay(variable)


def sublayers(layer):
    """Every layer nested in `layer` at any depth (not `layer` itself)."""
    check_keras()
    return list(layer._flatten_layers(include_self=False, recursive=True))


def ignore_nonfinite_losses(model):
    """Makes the mean training loss `fit` logs leave out NaN and Inf batch
    losses (a compiled `model`). Evaluation shares the tracker and keeps
    counting them: a NaN evaluation loss must show."""
    check_keras()
    tracker = model._loss_tracker
    update_state = tracker.update_state
    train_step = model.train_step

    def finite_update_state(values, sample_weight=None):
        finite = keras.ops.all(keras.ops.isfinite(values))
        weight = 1.0 if sample_weight is None else keras.ops.cast(sample_weight, "float32")
        return update_state(keras.ops.where(finite, values, keras.ops.zeros_like(values)),
                            sample_weight=keras.ops.where(finite, weight, 0.0))

    def training_step(data):  # runs when the train function is traced
        tracker.update_state = finite_update_state
        try:
            return train_step(data)
        finally:
            tracker.update_state = update_state

    model.train_step = training_step
