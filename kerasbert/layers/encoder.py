"""Transformer encoder block and a stack of them with optional layer sharing.

One block is a self-attention sublayer and a feed-forward sublayer, each with
a residual connection and a layer norm: after the residual (post-LN: BERT,
ALBERT, DistilBERT, TinyBERT) or before the sublayer (pre-LN: ViT).
"""

import keras
from keras import ops

from kerasbert.layers.activations import get_activation
from kerasbert.layers.attention import MultiHeadAttention
from kerasbert.layers.initializers import default_initializer, fresh
from kerasbert.layers.precision import norm_policy


@keras.saving.register_keras_serializable(package="kerasbert")
class TransformerBlock(keras.layers.Layer):
    """One encoder layer.

    Sublayer names follow the checkpoints: `attention`,
    `attention_layer_norm`, `intermediate`, `output`, `output_layer_norm`.
    In pre-LN mode `attention_layer_norm` is applied before attention
    (ViT's layernorm_before) and `output_layer_norm` before the feed-forward
    (layernorm_after). Under mixed precision the residual stream and the
    layer norms stay float32 (see `precision.py`), so the block's output is
    float32 there.
    """

    def __init__(
        self,
        num_heads,
        intermediate_size,
        activation="gelu",
        dropout=0.1,
        attention_dropout=0.1,
        layer_norm_epsilon=1e-12,
        norm_first=False,
        kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.activation = activation
        self.activation_fn = get_activation(activation)
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.norm_first = norm_first
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or default_initializer()
        )

    def _initializer(self):
        return fresh(self.kernel_initializer)

    def build(self, input_shape):
        hidden_size = input_shape[-1]
        policy = self.dtype_policy
        residual_policy = norm_policy(policy)
        self.attention = MultiHeadAttention(
            self.num_heads,
            dropout=self.attention_dropout,
            kernel_initializer=self._initializer(),
            dtype=policy,
            name="attention",
        )
        self.attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=residual_policy,
            name="attention_layer_norm",
        )
        self.intermediate = keras.layers.Dense(
            self.intermediate_size,
            kernel_initializer=self._initializer(),
            dtype=policy,
            name="intermediate",
        )
        self.output_dense = keras.layers.Dense(
            hidden_size,
            kernel_initializer=self._initializer(),
            dtype=policy,
            name="output",
        )
        self.output_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=residual_policy, name="output_layer_norm"
        )
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=policy)

        self.attention.build(input_shape)
        self.attention_layer_norm.build(input_shape)
        self.intermediate.build(input_shape)
        self.output_dense.build(tuple(input_shape[:-1]) + (self.intermediate_size,))
        self.output_layer_norm.build(input_shape)

    def _feed_forward(self, x, training):
        residual_dtype = x.dtype
        x = self.activation_fn(self.intermediate(x))
        x = self.dropout_layer(self.output_dense(x), training=training)
        return ops.cast(x, residual_dtype)

    @property
    def residual_dtype(self):
        return norm_policy(self.dtype_policy).compute_dtype

    def call(self, x, attention_mask=None, return_attention_scores=False, training=None):
        x = ops.cast(x, self.residual_dtype)
        attention_input = self.attention_layer_norm(x) if self.norm_first else x
        attended = self.attention(
            attention_input,
            attention_mask=attention_mask,
            return_attention_scores=return_attention_scores,
            training=training,
        )
        if return_attention_scores:
            attended, scores, probabilities = attended
        attended = ops.cast(self.dropout_layer(attended, training=training), x.dtype)

        if self.norm_first:
            x = x + attended
            x = x + self._feed_forward(self.output_layer_norm(x), training)
        else:
            x = self.attention_layer_norm(x + attended)
            x = self.output_layer_norm(x + self._feed_forward(x, training))

        if return_attention_scores:
            return x, scores, probabilities
        return x

    def compute_output_spec(self, x, attention_mask=None,
                            return_attention_scores=False, training=None):
        output = keras.KerasTensor(x.shape, dtype=self.residual_dtype)
        if not return_attention_scores:
            return output
        score_shape = (x.shape[0], self.num_heads, x.shape[1], x.shape[1])
        return (
            output,
            keras.KerasTensor(score_shape, dtype="float32"),
            keras.KerasTensor(score_shape, dtype="float32"),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            activation=self.activation,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            layer_norm_epsilon=self.layer_norm_epsilon,
            norm_first=self.norm_first,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="kerasbert")
class TransformerStack(keras.layers.Layer):
    """`num_layers` blocks, of which `num_groups` hold distinct weights.

    With `num_groups == num_layers` (default) every layer has its own block.
    With fewer groups, consecutive layers share a block as ALBERT's
    `num_hidden_groups` does: layer i runs block `i * num_groups // num_layers`
    (`num_groups=1` shares one block across all layers). The blocks are
    sublayers named `layer_{g}`.

    Returns a dict: `hidden_states`, the output of every layer (a list of
    `num_layers` tensors), and, when asked, `attention_scores` and
    `attention_probs` (lists, one per layer).
    """

    def __init__(self, num_layers, num_groups=None, **block_kwargs):
        layer_kwargs = {
            key: block_kwargs.pop(key)
            for key in ("name", "dtype", "trainable")
            if key in block_kwargs
        }
        super().__init__(**layer_kwargs)
        self.num_layers = num_layers
        self.num_groups = num_groups or num_layers
        if not 1 <= self.num_groups <= num_layers or num_layers % self.num_groups:
            raise ValueError(
                f"num_groups={num_groups} must divide num_layers={num_layers}."
            )
        self.block_kwargs = dict(block_kwargs)
        # One attribute per block, not a list: tf.train.Checkpoint does not
        # follow Keras' tracked lists, and would silently skip the blocks.
        for g in range(self.num_groups):
            setattr(self, f"layer_{g}",
                    TransformerBlock(**block_kwargs, dtype=self.dtype_policy, name=f"layer_{g}"))

    @property
    def blocks(self):
        """The distinct blocks, in group order."""
        return [getattr(self, f"layer_{g}") for g in range(self.num_groups)]

    def block_for_layer(self, layer_index):
        """The block that layer `layer_index` runs."""
        return self.blocks[layer_index * self.num_groups // self.num_layers]

    def build(self, input_shape):
        for block in self.blocks:
            block.build(input_shape)

    def call(self, x, attention_mask=None, return_attention_scores=False, training=None):
        hidden_states, scores, probabilities = [], [], []
        for index in range(self.num_layers):
            x = self.block_for_layer(index)(
                x,
                attention_mask=attention_mask,
                return_attention_scores=return_attention_scores,
                training=training,
            )
            if return_attention_scores:
                x, layer_scores, layer_probabilities = x
                scores.append(layer_scores)
                probabilities.append(layer_probabilities)
            hidden_states.append(x)
        outputs = {"hidden_states": hidden_states}
        if return_attention_scores:
            outputs["attention_scores"] = scores
            outputs["attention_probs"] = probabilities
        return outputs

    def compute_output_spec(self, x, attention_mask=None,
                            return_attention_scores=False, training=None):
        # One distinct spec per layer: the functional graph maps real outputs
        # to specs by identity, so repeating one object would make every
        # layer's entry the same tensor.
        specs = [
            self.blocks[0].compute_output_spec(
                x, return_attention_scores=return_attention_scores
            )
            for _ in range(self.num_layers)
        ]
        if not return_attention_scores:
            return {"hidden_states": specs}
        hidden, scores, probabilities = (list(column) for column in zip(*specs))
        return {
            "hidden_states": hidden,
            "attention_scores": scores,
            "attention_probs": probabilities,
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            num_layers=self.num_layers, num_groups=self.num_groups, **self.block_kwargs
        )
        return config
