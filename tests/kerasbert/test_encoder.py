import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasbert.layers import TransformerBlock, TransformerStack
from tests import reference

BATCH, LENGTH, HIDDEN = 2, 5, 8
PADDING = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "int32")
ALLOWED = np.broadcast_to(PADDING[:, None, :].astype(bool), (BATCH, LENGTH, LENGTH))


def randomize(layer, seed=0):
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(rng.normal(0, 0.3, weight.shape) + (1.0 if "gamma" in weight.path else 0))


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(1).normal(size=(BATCH, LENGTH, HIDDEN)).astype("float32")


@pytest.mark.parametrize("norm_first", [False, True], ids=["post_ln", "pre_ln"])
@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh"])
def test_block_matches_numpy(norm_first, activation, inputs):
    block = TransformerBlock(2, 16, activation=activation, norm_first=norm_first,
                             layer_norm_epsilon=1e-6)
    block(inputs)
    randomize(block)
    gelu = reference.gelu_exact if activation == "gelu" else reference.gelu_tanh
    expected = reference.transformer_block(inputs, block, ALLOWED, gelu)
    np.testing.assert_allclose(block(inputs, attention_mask=PADDING), expected, atol=2e-5)


def test_block_dropout_only_in_training(inputs):
    block = TransformerBlock(2, 16, dropout=0.5, attention_dropout=0.5)
    first = block(inputs, training=False)
    np.testing.assert_array_equal(first, block(inputs, training=False))
    assert not np.allclose(first, block(inputs, training=True))


def test_stack_without_sharing_has_one_block_per_layer(inputs):
    stack = TransformerStack(3, num_heads=2, intermediate_size=16)
    outputs = stack(inputs, attention_mask=PADDING)
    assert len(stack.blocks) == 3 and len(outputs["hidden_states"]) == 3
    x = inputs
    for index, hidden in enumerate(outputs["hidden_states"]):
        x = reference.transformer_block(x, stack.blocks[index], ALLOWED)
        np.testing.assert_allclose(hidden, x, atol=3e-5)


def test_shared_stack_really_shares(inputs):
    stack = TransformerStack(4, num_groups=1, num_heads=2, intermediate_size=16)
    outputs = stack(inputs, attention_mask=PADDING)
    single = TransformerBlock(2, 16)
    single(inputs)
    assert len(stack.weights) == len(single.weights)
    assert stack.count_params() == single.count_params()
    x = inputs
    for hidden in outputs["hidden_states"]:  # the same block applied 4 times
        x = reference.transformer_block(x, stack.blocks[0], ALLOWED)
        np.testing.assert_allclose(hidden, x, atol=5e-5)


def test_groups_follow_albert_assignment():
    stack = TransformerStack(6, num_groups=3, num_heads=2, intermediate_size=16)
    # Hugging Face ALBERT: group = int(i / (num_layers / num_groups))
    expected = [int(i / (6 / 3)) for i in range(6)]
    assert [stack.blocks.index(stack.block_for_layer(i)) for i in range(6)] == expected


def test_groups_must_divide_layers():
    with pytest.raises(ValueError, match="divide"):
        TransformerStack(4, num_groups=3, num_heads=2, intermediate_size=16)


def test_gradient_reaches_every_shared_weight(inputs):
    stack = TransformerStack(4, num_groups=2, num_heads=2, intermediate_size=16)
    stack(inputs)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(stack(inputs, attention_mask=PADDING)["hidden_states"][-1] ** 2)
    gradients = tape.gradient(loss, stack.trainable_weights)
    assert all(g is not None and np.abs(g).sum() > 0 for g in gradients)


def test_stack_returns_scores_per_layer(inputs):
    stack = TransformerStack(2, num_heads=2, intermediate_size=16)
    outputs = stack(inputs, attention_mask=PADDING, return_attention_scores=True)
    assert len(outputs["attention_scores"]) == 2
    assert outputs["attention_probs"][1].shape == (BATCH, 2, LENGTH, LENGTH)


def test_stack_xla(inputs):
    stack = TransformerStack(2, num_groups=1, num_heads=2, intermediate_size=16)
    eager = stack(inputs, attention_mask=PADDING)["hidden_states"][-1]
    compiled = tf.function(lambda x, m: stack(x, attention_mask=m)["hidden_states"][-1],
                           jit_compile=True)(inputs, PADDING)
    np.testing.assert_allclose(compiled, eager, atol=1e-5)


@pytest.mark.parametrize("cls,kwargs", [
    (TransformerBlock, dict(num_heads=2, intermediate_size=16, norm_first=True)),
    (TransformerStack, dict(num_layers=4, num_groups=2, num_heads=2, intermediate_size=16)),
])
def test_config_round_trip(cls, kwargs, inputs):
    layer = cls(**kwargs)
    layer(inputs)
    clone = cls.from_config(layer.get_config())
    clone(inputs)
    assert clone.get_config() == layer.get_config()
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(keras.tree.flatten(clone(inputs))[-1],
                                  keras.tree.flatten(layer(inputs))[-1])
