"""The fine-tuning optimizer: AdamW with warmup/decay, BERT-style weight
decay exclusions, global-norm clipping and layer-wise learning-rate decay.

    optimizer = create_optimizer(2e-5, total_steps, warmup_fraction=0.1,
                                 layer_decay=0.8, model=model)
    model.compile(optimizer, ...)

Works with `model.fit` on the TensorFlow backend, under `tf.distribute`
strategies (create it inside `strategy.scope()`) and with mixed precision
(Keras wraps it in a LossScaleOptimizer for float16 itself).
"""

import math
import re

import keras
import tensorflow as tf
from keras import ops

from kerasbert import keras_internals

# Keras matches these as regexes against `variable.name` (the last path
# component: "kernel", "bias", "gamma", ...), not `variable.path`, so a
# pattern like "layer_norm" would silently exclude nothing. Every LayerNorm
# in the zoo (embeddings' included) names its parameters gamma/beta.
NO_WEIGHT_DECAY = ("bias", "gamma", "beta")

_BLOCK = re.compile(r"(?:^|/)transformer/layer_(\d+)/")
_EMBEDDINGS = re.compile(r"(?:^|/)embeddings/")


@keras.saving.register_keras_serializable(package="kerasbert")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `peak` over `warmup_steps`, then decay to `end`.

    decay: "linear" or "cosine" reach `end` at `total_steps` and stay there;
        "constant" holds `peak` after warmup.

    Pure tensor arithmetic (no Python branching on the step), so it traces
    once inside `tf.function`/XLA.
    """

    DECAYS = ("linear", "cosine", "constant")

    def __init__(self, peak, total_steps, warmup_steps=0, decay="linear",
                 end=0.0):
        if decay not in self.DECAYS:
            raise ValueError(f"decay must be one of {self.DECAYS}, got {decay!r}")
        if not 0 <= warmup_steps <= total_steps:
            raise ValueError(
                f"need 0 <= warmup_steps ({warmup_steps}) <= total_steps "
                f"({total_steps})")
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay
        self.end = float(end)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = self.peak * step / max(self.warmup_steps, 1)
        decay_steps = max(self.total_steps - self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        if self.decay == "linear":
            decayed = self.end + (self.peak - self.end) * (1.0 - progress)
        elif self.decay == "cosine":
            decayed = self.end + (self.peak - self.end) * 0.5 * (
                1.0 + ops.cos(math.pi * progress))
        else:
            decayed = ops.full_like(step, self.peak)
        return ops.where(step < self.warmup_steps, warmup, decayed)

    def get_config(self):
        return dict(peak=self.peak, total_steps=self.total_steps,
                    warmup_steps=self.warmup_steps, decay=self.decay,
                    end=self.end)


def layer_decay_multipliers(variables, layer_decay):
    """Learning-rate factors {variable path: factor} for layer-wise decay.

    With L blocks `transformer/layer_i`: block i gets layer_decay**(L - i),
    `embeddings/...` gets layer_decay**(L + 1); everything else (pooler,
    heads, a final LayerNorm) keeps the full rate and is left out of the
    dict. ALBERT's shared groups count as its blocks.
    """
    paths = [v.path for v in variables]
    blocks = [int(m.group(1)) for m in map(_BLOCK.search, paths) if m]
    if not blocks:
        raise ValueError("no `transformer/layer_<i>/` variables to decay; "
                         "build the model before creating the optimizer")
    num_layers = max(blocks) + 1
    multipliers = {}
    for path in paths:
        block = _BLOCK.search(path)
        if block:
            multipliers[path] = layer_decay ** (num_layers - int(block.group(1)))
        elif _EMBEDDINGS.search(path):
            multipliers[path] = layer_decay ** (num_layers + 1)
    return multipliers


@keras.saving.register_keras_serializable(package="kerasbert")
class LayerwiseAdamW(keras.optimizers.AdamW):
    """AdamW with a fixed learning-rate factor per variable.

    Adam is invariant to gradient scale, so layer-wise rates cannot be had by
    scaling gradients: `update_step` multiplies the learning rate itself by
    the variable's factor, looked up by `variable.path` in `lr_multipliers`
    (missing paths: 1.0). The factors are resolved to a list when the
    optimizer is built; they are configuration, not state, so checkpoints
    hold exactly AdamW's variables.

    Decoupled weight decay is applied in `update_step` too, as
    `var -= lr * factor * weight_decay * var`: Keras' AdamW decays with the
    global lr, which would decay the slowed-down lower layers as fast as the
    head.

    On TensorFlow, gradients are all-reduced across replicas before
    clipping, so `global_clipnorm` bounds the global gradient (Keras clips
    each replica's partial gradient and sums afterwards).

    A step whose global gradient holds a NaN or an Inf updates nothing
    (weights, moments, decay); `skipped_steps` counts such steps (the
    training loop stops or goes on: tasks.training.loop).
    """

    def __init__(self, *args, lr_multipliers=None, **kwargs):
        keras_internals.check_keras()  # the methods below override Keras' private steps
        super().__init__(*args, **kwargs)
        self.lr_multipliers = dict(lr_multipliers or {})

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        paths = [getattr(v, "path", v.name) for v in var_list]
        unknown = set(self.lr_multipliers) - set(paths)
        if unknown:
            raise ValueError(
                f"lr_multipliers name {len(unknown)} variables the optimizer "
                f"is not training, e.g. {sorted(unknown)[:3]}")
        # Indexed like Adam's slots (keras_internals.variable_index).
        self._lr_factors = [self.lr_multipliers.get(p, 1.0) for p in paths]
        self._decayed = [keras_internals.decays(self, v) for v in var_list]
        # Steps whose gradient held a NaN or an Inf: their update is skipped
        # (the weights stay finite) and counted; the training loop stops the
        # run on one, or goes on (--skip_nonfinite_batches). In checkpoints, so
        # the count survives a resume.
        self.skipped_steps = self.add_variable((), initializer="zeros", dtype="int64",
                                               aggregation="only_first_replica",
                                               name="skipped_steps")
        self._step_finite = True

    def _apply_weight_decay(self, variables):
        """Disabled: done per variable in `update_step`."""

    def update_step(self, gradient, variable, learning_rate):
        # No update at all (weights, moments, decay) on a step with a NaN or
        # Inf gradient anywhere: see `_clip_gradients`.
        tf.cond(self._step_finite,
                lambda: self._update_step(gradient, variable, learning_rate), lambda: None)

    def _update_step(self, gradient, variable, learning_rate):
        index = keras_internals.variable_index(self, variable)
        learning_rate = ops.multiply(
            ops.cast(learning_rate, variable.dtype), self._lr_factors[index])
        if self.weight_decay and self._decayed[index]:
            wd = ops.cast(self.weight_decay, variable.dtype)
            self.assign_sub(variable, variable * (learning_rate * wd))
        if self._fusable(variable):
            self._fused_adam_step(gradient, variable, learning_rate, index)
        else:
            super().update_step(gradient, variable, learning_rate)

    def _fusable(self, variable):
        """TensorFlow's fused Adam kernel applies: one plain (undistributed)
        resource variable, no AMSGrad."""
        return (keras.backend.backend() == "tensorflow" and not self.amsgrad
                and not tf.distribute.has_strategy() and hasattr(variable, "handle"))

    def _fused_adam_step(self, gradient, variable, learning_rate, index):
        """Keras' Adam update in one `ResourceApplyAdam` op per variable.

        The same arithmetic as `keras.optimizers.Adam.update_step` (m, v
        moving averages; var -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m /
        (sqrt(v) + eps)), in one pass over memory instead of about ten, and
        one op to trace instead of about twenty: BERT-base's first training
        step traces ~200 of these.
        """
        dtype = variable.dtype
        step = ops.cast(self.iterations + 1, dtype)
        beta_1 = ops.cast(self.beta_1, dtype)
        beta_2 = ops.cast(self.beta_2, dtype)
        momentum, velocity = keras_internals.adam_slots(self, index)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=momentum.handle,
            v=velocity.handle, beta1_power=ops.power(beta_1, step),
            beta2_power=ops.power(beta_2, step), lr=learning_rate, beta1=beta_1,
            beta2=beta_2, epsilon=ops.cast(self.epsilon, dtype),
            grad=ops.cast(tf.convert_to_tensor(gradient), dtype))

    def _clip_gradients(self, grads):
        all_reduce = getattr(super(), "_all_reduce_sum_gradients", None)
        if all_reduce is not None:  # TensorFlow backend
            grads = [g for g, _ in all_reduce([(g, None) for g in grads])]
        # Decided on the global gradient, so every replica and worker agrees.
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g))
                                for g in grads if g is not None])
        self._step_finite = finite
        self.skipped_steps.assign_add(tf.cast(tf.logical_not(finite), "int64"))
        return super()._clip_gradients(grads)

    def _all_reduce_sum_gradients(self, grads_and_vars):
        """Identity: `_clip_gradients` already all-reduced them."""
        return grads_and_vars

    def get_config(self):
        config = super().get_config()
        config["lr_multipliers"] = dict(self.lr_multipliers)
        return config


def create_optimizer(learning_rate, total_steps, warmup_steps=None,
                     warmup_fraction=None, decay="linear", end_learning_rate=0.0,
                     weight_decay=0.01, clipnorm=1.0, layer_decay=None,
                     beta_1=0.9, beta_2=0.999, epsilon=1e-6, model=None):
    """AdamW for fine-tuning, with a `WarmupDecay` schedule peaking at
    `learning_rate`.

    warmup_steps / warmup_fraction: warmup length, in steps or as a fraction
        of `total_steps` (give at most one; default none).
    weight_decay: decoupled decay, skipping biases and LayerNorm gamma/beta.
    clipnorm: global-norm clipping of the gradient (None or 0: off).
    layer_decay: e.g. 0.8 for ELECTRA/BEiT-style layer-wise rates; needs the
        built `model` (see `layer_decay_multipliers`).
    """
    if warmup_steps is not None and warmup_fraction is not None:
        raise ValueError("give warmup_steps or warmup_fraction, not both")
    if warmup_fraction is not None:
        warmup_steps = int(round(warmup_fraction * total_steps))
    schedule = WarmupDecay(learning_rate, total_steps, warmup_steps or 0,
                           decay=decay, end=end_learning_rate)
    multipliers = None
    if layer_decay is not None:
        if model is None:
            raise ValueError("layer_decay needs the (built) model")
        multipliers = layer_decay_multipliers(model.trainable_variables,
                                              layer_decay)
    optimizer = LayerwiseAdamW(
        learning_rate=schedule, weight_decay=weight_decay, beta_1=beta_1,
        beta_2=beta_2, epsilon=epsilon, global_clipnorm=clipnorm or None,
        lr_multipliers=multipliers)
    optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))
    return optimizer
