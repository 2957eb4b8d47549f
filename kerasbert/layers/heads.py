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


@keras.saving.register_keras_serializable(package="kerasbert")
class ClassificationHead(keras.layers.Layer):
    """Dropout + dense to `num_classes` on a [batch, H] vector; float32 logits.

    `hidden_size` adds a dense + activation before it (DistilBERT's
    pre_classifier). Regression is `num_classes=1`; multi-label reads the
    logits through a sigmoid in the loss.
    """

    def __init__(self, num_classes, dropout=0.1, hidden_size=None, activation="relu",
                 kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.dropout = dropout
        self.hidden_size = hidden_size
        self.activation = activation
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or default_initializer())
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.pre_classifier = None
        if hidden_size:
            # By our names ("gelu" exact, "gelu_new" tanh), as checkpoints mean them:
            # ELECTRA's discriminator head applies the encoder's hidden_act here.
            self.pre_classifier = keras.layers.Dense(
                hidden_size, activation=get_activation(activation),
                kernel_initializer=self.kernel_initializer,
                dtype=self.dtype_policy, name="pre_classifier")
        self.classifier = keras.layers.Dense(
            num_classes, kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy,
            name="classifier")

    def build(self, input_shape):
        if self.pre_classifier is not None:
            self.pre_classifier.build(input_shape)
            input_shape = tuple(input_shape[:-1]) + (self.hidden_size,)
        self.classifier.build(input_shape)

    def call(self, x, training=None):
        if self.pre_classifier is not None:
            x = self.pre_classifier(x)
        x = self.dropout_layer(x, training=training)
        return ops.cast(self.classifier(x), "float32")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_classes,)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, dropout=self.dropout,
                      hidden_size=self.hidden_size, activation=self.activation,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config


@keras.saving.register_keras_serializable(package="kerasbert")
class SpanHead(keras.layers.Layer):
    """Start and end logits per token for extractive QA (dense to 2).

    Call (sequence_output [b, s, H], mask [b, s]) -> (start, end) float32
    [b, s]; masked positions get a large negative logit so softmax and
    argmax never pick them.
    """

    def __init__(self, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or default_initializer())
        self.dense = keras.layers.Dense(2, kernel_initializer=self.kernel_initializer,
                                        dtype=self.dtype_policy, name="span")

    def build(self, sequence_output_shape, mask_shape=None):
        self.dense.build(sequence_output_shape)

    def call(self, sequence_output, mask=None):
        logits = ops.cast(self.dense(sequence_output), "float32")
        if mask is not None:
            logits = ops.where(ops.cast(mask, "bool")[..., None], logits, -1e4)
        return logits[..., 0], logits[..., 1]

    def compute_output_spec(self, sequence_output, mask=None):
        shape = tuple(sequence_output.shape[:2])
        return (keras.KerasTensor(shape, dtype="float32"),
                keras.KerasTensor(shape, dtype="float32"))

    def get_config(self):
        config = super().get_config()
        config.update(kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config
