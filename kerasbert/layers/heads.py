"""Heads that sit on a backbone: the BERT pooler and the masked-LM head."""

import keras
from keras import ops

from kerasbert.layers.activations import get_activation
from kerasbert.layers.initializers import default_initializer
from kerasbert.layers.precision import norm_policy


@keras.saving.register_keras_serializable(package="kerasbert")
class Pooler(keras.layers.Dense):
    """Dense + tanh on the first ([CLS]) token: BERT's `pooled_output`."""

    def __init__(self, units, activation="tanh", kernel_initializer=None, **kwargs):
        super().__init__(
            units,
            activation=activation,
            kernel_initializer=kernel_initializer or default_initializer(),
            **kwargs,
        )

    def build(self, input_shape):
        super().build((input_shape[0], input_shape[-1]))

    def call(self, sequence_output):
        return super().call(sequence_output[:, 0, :])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)


@keras.saving.register_keras_serializable(package="kerasbert")
class MaskedLMHead(keras.layers.Layer):
    """Predicts token ids at masked positions, decoder tied to the embeddings.

    transform (dense H -> E, activation, layer norm), then logits =
    x @ token_embedding^T + bias, as BERT, ALBERT and DistilBERT do. The tied
    matrix belongs to the backbone, so it is passed in (`token_embedding`, a
    keras Embedding layer) and not serialized: the model that owns both
    rebuilds the tie, as keras-hub's tasks do.

    Call: `sequence_output` [batch, length, H] and optionally
    `masked_positions` [batch, predictions] (int); returns float32 logits
    [batch, predictions or length, vocab].
    """

    def __init__(
        self,
        token_embedding,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # Not tracked as a sublayer: the matrix belongs to the backbone, and
        # tracking it here too would save it twice.
        object.__setattr__(self, "_token_embedding", token_embedding)
        self.activation = activation
        self.activation_fn = get_activation(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or default_initializer()
        )
        self.vocab_size = token_embedding.input_dim
        self.embedding_size = token_embedding.output_dim
        self.transform = keras.layers.Dense(
            self.embedding_size, kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy, name="transform",
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=norm_policy(self.dtype_policy),
            name="layer_norm",
        )

    @property
    def token_embedding(self):
        return self._token_embedding

    def build(self, sequence_output_shape, masked_positions_shape=None):
        self.transform.build(sequence_output_shape)
        self.layer_norm.build(tuple(sequence_output_shape[:-1]) + (self.embedding_size,))
        self.bias = self.add_weight(
            name="bias", shape=(self.vocab_size,), initializer="zeros"
        )

    def call(self, sequence_output, masked_positions=None):
        x = sequence_output
        if masked_positions is not None:
            x = ops.take_along_axis(
                x, ops.cast(masked_positions, "int32")[:, :, None], axis=1
            )
        x = self.layer_norm(self.activation_fn(self.transform(x)))
        x = ops.cast(x, self.compute_dtype)
        decoder = ops.cast(self.token_embedding.embeddings, x.dtype)
        logits = ops.einsum("bme,ve->bmv", x, decoder)
        # Read as float32 even inside an autocast scope.
        return ops.cast(logits, "float32") + ops.cast(self.bias, "float32")

    def compute_output_spec(self, sequence_output, masked_positions=None):
        length = (masked_positions if masked_positions is not None else sequence_output).shape[1]
        return keras.KerasTensor(
            (sequence_output.shape[0], length, self.vocab_size), dtype="float32"
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
