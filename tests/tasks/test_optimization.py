"""Tests for tasks/optimization.py: schedule, weight-decay exclusions,
clipping, layer-wise rates, checkpoints, fit under strategies/mixed precision."""

import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from tasks.training.optimization import (
    LayerwiseAdamW,
    WarmupDecay,
    create_optimizer,
    layer_decay_multipliers,
)

LR = 0.1


def tiny_classifier(seed=0):
    """bert_test_tiny (2 blocks) + a Dense head named "head"."""
    keras.utils.set_random_seed(seed)
    backbone = zoo.build("bert_test_tiny")
    pooled = backbone(backbone.input)["pooled_output"]
    logits = keras.layers.Dense(2, name="head")(pooled)
    return keras.Model(backbone.input, logits)


def tiny_data(n=64, seq=8, seed=0):
    rng = np.random.default_rng(seed)
    word_ids = rng.integers(1, 100, size=(n, seq)).astype("int32")
    features = {
        "input_word_ids": word_ids,
        "input_mask": np.ones((n, seq), "int32"),
        "input_type_ids": np.zeros((n, seq), "int32"),
    }
    labels = (word_ids[:, 1] >= 50).astype("int32")
    return features, labels


def apply_constant_gradients(optimizer, variables, value):
    grads = [tf.fill(v.shape, tf.constant(value, v.dtype)) for v in variables]
    optimizer.apply_gradients(zip(grads, variables))


def values(variables):
    return {v.path: v.numpy().copy() for v in variables}


# --------------------------------------------------------------- schedule

@pytest.mark.parametrize("decay, expected", [
    # steps:  0    5    10   55 (mid-decay)          100  150
    ("linear", [0.0, 0.5, 1.0, 0.1 + 0.9 * 0.5, 0.1, 0.1]),
    ("cosine", [0.0, 0.5, 1.0, 0.1 + 0.9 * 0.5, 0.1, 0.1]),
    ("constant", [0.0, 0.5, 1.0, 1.0, 1.0, 1.0]),
])
def test_schedule_values(decay, expected):
    schedule = WarmupDecay(1.0, total_steps=100, warmup_steps=10, decay=decay,
                           end=0.1)
    got = [float(schedule(step)) for step in (0, 5, 10, 55, 100, 150)]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_schedule_cosine_and_linear_shapes_differ_off_midpoint():
    # A quarter into the decay: linear is at 3/4, cosine at (1 + cos(pi/4))/2.
    kwargs = dict(total_steps=110, warmup_steps=10, end=0.0)
    assert float(WarmupDecay(2.0, decay="linear", **kwargs)(35)) == \
        pytest.approx(2.0 * 0.75)
    assert float(WarmupDecay(2.0, decay="cosine", **kwargs)(35)) == \
        pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi / 4)))


def test_schedule_is_graph_safe_and_serializable():
    schedule = WarmupDecay(3e-5, total_steps=1000, warmup_steps=100,
                           decay="cosine")
    traced = tf.function(lambda step: schedule(step))
    for step in (0, 50, 100, 550, 1000, 5000):
        assert float(traced(tf.constant(step, tf.int64))) == \
            pytest.approx(float(schedule(step)))
    clone = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(schedule))
    assert isinstance(clone, WarmupDecay)
    assert clone.get_config() == schedule.get_config()
    # No warmup: starts at the peak.
    assert float(WarmupDecay(1.0, 10)(0)) == 1.0


def test_create_optimizer_warmup_fraction():
    optimizer = create_optimizer(1.0, total_steps=200, warmup_fraction=0.1)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer._learning_rate.warmup_steps == 20
    assert optimizer.global_clipnorm == 1.0
    with pytest.raises(ValueError):
        create_optimizer(1.0, 200, warmup_steps=5, warmup_fraction=0.1)


# ----------------------------------------------------------- weight decay

def is_excluded(path):
    return path.rsplit("/", 1)[-1] in ("bias", "gamma", "beta")


@pytest.mark.parametrize("layer_decay", [None, 0.5])
def test_weight_decay_skips_biases_and_layer_norms(layer_decay):
    model = tiny_classifier()
    wd = 0.5
    optimizer = create_optimizer(LR, total_steps=10, weight_decay=wd,
                                 layer_decay=layer_decay, model=model)
    variables = model.trainable_variables
    before = values(variables)
    apply_constant_gradients(optimizer, variables, 0.0)  # Adam step is 0
    after = values(variables)

    factors = optimizer.lr_multipliers
    excluded = [p for p in before if is_excluded(p)]
    assert "embeddings/layer_norm/gamma" in excluded
    assert "transformer/layer_1/attention_layer_norm/beta" in excluded
    assert "embeddings/token_embedding/embeddings" not in excluded
    for path in before:
        if is_excluded(path):
            np.testing.assert_array_equal(after[path], before[path], path)
        else:
            rate = LR * factors.get(path, 1.0) * wd
            np.testing.assert_allclose(after[path], before[path] * (1 - rate),
                                       rtol=1e-6, err_msg=path)
            assert rate > 0 and np.any(before[path] != 0)


# --------------------------------------------------------------- clipping

def test_global_norm_clipping_bounds_the_update():
    w = keras.Variable(np.zeros(2, "float32"), name="w")
    # epsilon=1 makes Adam's first step depend on the gradient's scale:
    # update = lr * c * g / (c * |g| + eps) with c = sqrt(1 - beta_2).
    optimizer = create_optimizer(LR, total_steps=10, weight_decay=0.0,
                                 clipnorm=1.0, epsilon=1.0)
    optimizer.apply_gradients([(tf.constant([3e6, 4e6]), w)])
    clipped = np.array([0.6, 0.8])
    c = math.sqrt(1 - 0.999)
    expected = -LR * c * clipped / (c * clipped + 1.0)
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-5)
    momentum = optimizer._momentums[0].numpy()
    np.testing.assert_allclose(momentum, 0.1 * clipped, rtol=1e-5)


CLIP_ACROSS_REPLICAS = textwrap.dedent("""
    import tensorflow as tf
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from tasks.training.optimization import create_optimizer

    strategy = tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])
    with strategy.scope():
        w = keras.Variable(np.zeros(2, "float32"), name="w")
        optimizer = create_optimizer(0.1, 10, weight_decay=0.0, clipnorm=1.0)
        optimizer.build([w])
    per_replica = strategy.experimental_distribute_values_from_function(
        lambda ctx: tf.constant([[3e6, 0.0], [0.0, 4e6]][ctx.replica_id_in_sync_group]))

    @tf.function
    def step(x):
        def fn(x):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(w * x)
            optimizer.apply_gradients([(tape.gradient(loss, w.value), w)])
        strategy.run(fn, args=(x,))

    step(per_replica)
    # Summed gradient [3e6, 4e6] clipped to [0.6, 0.8]; m = (1 - beta_1) * g.
    print(optimizer._momentums[0].numpy().tolist())
""")


def test_clipping_sees_the_all_reduced_gradient():
    """Two replicas: clip the summed gradient, not each replica's part."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow",
               PYTHONPATH=root)
    out = subprocess.run([sys.executable, "-c", CLIP_ACROSS_REPLICAS],
                         capture_output=True, text=True, env=env, cwd=root,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    momentum = eval(out.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(momentum, [0.06, 0.08], rtol=1e-5)


# ------------------------------------------------------------ layer decay

def test_layer_decay_multipliers():
    model = tiny_classifier()
    factors = layer_decay_multipliers(model.trainable_variables, 0.5)
    assert factors["transformer/layer_1/attention/query/kernel"] == 0.5
    assert factors["transformer/layer_0/output_layer_norm/gamma"] == 0.25
    assert factors["embeddings/token_embedding/embeddings"] == 0.125
    assert factors["embeddings/layer_norm/beta"] == 0.125
    assert "pooler/kernel" not in factors and "head/kernel" not in factors


def test_layer_decay_scales_the_first_adam_step():
    model = tiny_classifier()
    optimizer = create_optimizer(LR, total_steps=10, weight_decay=0.0,
                                 clipnorm=None, layer_decay=0.5, model=model)
    variables = model.trainable_variables
    before = values(variables)
    apply_constant_gradients(optimizer, variables, 1.0)
    after = values(variables)
    # Adam's first step is ~lr * sign(g): its size is the variable's lr.
    step = {p: np.abs(after[p] - before[p]) for p in before}
    groups = {
        "head/kernel": 1.0,
        "pooler/kernel": 1.0,
        "transformer/layer_1/intermediate/kernel": 0.5,
        "transformer/layer_1/output/bias": 0.5,
        "transformer/layer_0/attention/key/kernel": 0.25,
        "transformer/layer_0/attention_layer_norm/gamma": 0.25,
        "embeddings/position_embedding/embeddings": 0.125,
        "embeddings/layer_norm/gamma": 0.125,
    }
    for path, factor in groups.items():
        np.testing.assert_allclose(step[path], LR * factor, rtol=1e-4,
                                   err_msg=path)
    for path in before:  # every variable got its factor, nothing else
        factor = optimizer.lr_multipliers.get(path, 1.0)
        np.testing.assert_allclose(step[path], LR * factor, rtol=1e-4,
                                   err_msg=path)


def test_layer_decay_needs_known_paths():
    with pytest.raises(ValueError):
        create_optimizer(LR, 10, layer_decay=0.8)  # no model
    optimizer = LayerwiseAdamW(lr_multipliers={"not/a/variable": 0.5})
    w = keras.Variable(np.zeros(2, "float32"), name="w")
    with pytest.raises(ValueError, match="not training"):
        optimizer.build([w])


# ---------------------------------------------- checkpoints / serialization

def trained_pair(tmp_path):
    """A model and optimizer after two steps, plus a checkpoint of them."""
    model = tiny_classifier(seed=1)
    optimizer = create_optimizer(LR, 10, warmup_steps=2, layer_decay=0.8,
                                 model=model)
    for value in (1.0, -0.5):
        apply_constant_gradients(optimizer, model.trainable_variables, value)
    path = tf.train.Checkpoint(optimizer=optimizer).write(
        str(tmp_path / "ckpt"))
    return model, optimizer, path


@pytest.mark.parametrize("build_first", [True, False])
def test_tf_checkpoint_restores_optimizer_state(tmp_path, build_first):
    model, optimizer, path = trained_pair(tmp_path)
    fresh_model = tiny_classifier(seed=2)
    fresh = create_optimizer(LR, 10, warmup_steps=2, layer_decay=0.8,
                             model=fresh_model)
    checkpoint = tf.train.Checkpoint(optimizer=fresh)
    if build_first:
        fresh.build(fresh_model.trainable_variables)
        checkpoint.read(path).assert_consumed()
    else:  # deferred: slots get their values when build() creates them
        checkpoint.read(path).expect_partial()
        fresh.build(fresh_model.trainable_variables)
    assert int(fresh.iterations) == 2
    assert len(fresh.variables) == len(optimizer.variables)
    for a, b in zip(optimizer.variables, fresh.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), a.path)
    # Same weights, state and factors: the next step matches exactly.
    fresh_model.set_weights(model.get_weights())
    apply_constant_gradients(optimizer, model.trainable_variables, 0.3)
    apply_constant_gradients(fresh, fresh_model.trainable_variables, 0.3)
    for a, b in zip(model.trainable_variables,
                    fresh_model.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6,
                                   err_msg=a.path)


def test_keras_model_file_round_trip(tmp_path):
    model, optimizer, _ = trained_pair(tmp_path)
    model.compile(optimizer=optimizer, loss="mse")
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.optimizer, LayerwiseAdamW)
    assert loaded.optimizer.lr_multipliers == optimizer.lr_multipliers
    assert int(loaded.optimizer.iterations) == 2
    for a, b in zip(optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), a.path)


def test_keras_serialization_round_trip():
    model = tiny_classifier()
    optimizer = create_optimizer(LR, 100, warmup_steps=10, decay="cosine",
                                 layer_decay=0.8, model=model)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(clone, LayerwiseAdamW)
    assert clone.lr_multipliers == optimizer.lr_multipliers
    assert isinstance(clone._learning_rate, WarmupDecay)
    assert clone._learning_rate.get_config() == \
        optimizer._learning_rate.get_config()
    assert clone.global_clipnorm == 1.0 and clone.weight_decay == 0.01


# ------------------------------------------------------------------- fit

def fit_losses(model, optimizer, epochs=4):
    features, labels = tiny_data()
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True))
    history = model.fit(features, labels, batch_size=16, epochs=epochs,
                        shuffle=False, verbose=0)
    return history.history["loss"]


def test_fit_reduces_loss():
    model = tiny_classifier()
    optimizer = create_optimizer(1e-2, total_steps=16, warmup_steps=2,
                                 layer_decay=0.8, model=model)
    losses = fit_losses(model, optimizer)
    assert losses[-1] < losses[0]
    assert int(optimizer.iterations) == 16


def test_fit_under_mirrored_strategy():
    strategy = tf.distribute.MirroredStrategy(["CPU:0"])
    with strategy.scope():
        model = tiny_classifier()
        optimizer = create_optimizer(1e-2, total_steps=16, warmup_steps=2,
                                     layer_decay=0.8, model=model)
        losses = fit_losses(model, optimizer)
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_fit_with_mixed_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    model = tiny_classifier()
    optimizer = create_optimizer(1e-2, total_steps=16, warmup_steps=2,
                                 layer_decay=0.8, model=model)
    losses = fit_losses(model, optimizer)
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    if policy == "mixed_float16":  # Keras wrapped ours for loss scaling
        assert isinstance(model.optimizer,
                          keras.optimizers.LossScaleOptimizer)
        assert model.optimizer.inner_optimizer is optimizer


# ------------------------------------------------ fused step, eager build

def train_with(fused, steps=4):
    """Weights after `steps` fit steps with the fused Adam kernel or Keras' ops."""
    from kerasbert import models

    model = tiny_classifier()
    model = models.Model(model.input, model.output)
    optimizer = create_optimizer(5e-2, total_steps=8, warmup_steps=1, layer_decay=0.8,
                                 model=model)
    if not fused:
        optimizer._fusable = lambda variable: False
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = tiny_data(n=8 * steps)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return values(model.trainable_variables)


def test_fused_adam_step_equals_keras_adam_arithmetic():
    """Same updates with weight decay, layer-wise rates, clipping and the
    embedding's sparse gradient: the fused kernel is only faster. Steps are
    ~5e-2 here; the kernel rounds its moving averages in another order
    (b1*m + (1-b1)*g vs m + (g-m)*(1-b1)), which Adam's m/sqrt(v) amplifies
    where gradients are ~epsilon, hence 1e-5 rather than 1e-6."""
    fused, keras_ops = train_with(True), train_with(False)
    assert fused.keys() == keras_ops.keys()
    moved = 0
    for path, value in fused.items():
        np.testing.assert_allclose(value, keras_ops[path], atol=1e-5, err_msg=path)
        moved += not np.allclose(value, values(tiny_classifier().trainable_variables).get(
            path, value + 1))
    assert moved > 0


def test_kerasbert_model_builds_its_optimizer_at_compile():
    from kerasbert import models

    model = tiny_classifier()
    model = models.Model(model.input, model.output)
    optimizer = create_optimizer(1e-2, total_steps=4)
    model.compile(optimizer=optimizer, loss="mse")
    assert optimizer.built
    # Plain eager variables, not ones lazily initialised inside the traced step.
    slots = [v for v in optimizer.variables if "momentum" in v.path]
    assert len(slots) == len(model.trainable_variables)
    assert all(type(v.value).__name__ == "ResourceVariable" for v in slots)
