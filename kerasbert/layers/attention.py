"""Multi-head scaled dot-product attention.

Query, key, value and output are plain [H, H] dense layers, the layout of
BERT-family checkpoints, so converters copy kernels without reshaping. The
softmax runs in float32 whatever the compute dtype, so mixed precision never
saturates it.
"""

import keras
from keras import ops

from kerasbert.layers.initializers import default_initializer, fresh

# Added to masked scores before the float32 softmax; exp() of it is exactly 0.
_MASKED_SCORE = -1e9


@keras.saving.register_keras_serializable(package="kerasbert")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention with padding/causal masks.

    Call arguments:
        query: [batch, query_length, hidden].
        key_value: [batch, key_length, hidden]; defaults to `query`
            (self-attention).
        attention_mask: 1 where attending is allowed, 0 where not; either a
            padding mask [batch, key_length] or a full mask
            [batch, query_length, key_length].
        return_attention_scores: also return the scores (QK^T / sqrt(d),
            before masking and softmax) and the probabilities, both float32
            [batch, heads, query_length, key_length].
    """

    def __init__(
        self,
        num_heads,
        dropout=0.0,
        causal=False,
        kernel_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.dropout = dropout
        self.causal = causal
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or default_initializer()
        )
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def _dense(self, units, name):
        return keras.layers.Dense(
            units,
            kernel_initializer=fresh(self.kernel_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, query_shape, key_value_shape=None):
        hidden_size = query_shape[-1]
        if hidden_size % self.num_heads:
            raise ValueError(
                f"hidden size {hidden_size} is not divisible by "
                f"num_heads={self.num_heads}."
            )
        self.head_size = hidden_size // self.num_heads
        key_value_shape = key_value_shape or query_shape
        self.query = self._dense(hidden_size, "query")
        self.key = self._dense(hidden_size, "key")
        self.value = self._dense(hidden_size, "value")
        self.output_dense = self._dense(hidden_size, "output")
        self.query.build(query_shape)
        self.key.build(key_value_shape)
        self.value.build(key_value_shape)
        self.output_dense.build(tuple(query_shape[:-1]) + (hidden_size,))

    def _split_heads(self, x):
        # [batch, length, hidden] -> [batch, length, heads, head_size]
        shape = ops.shape(x)
        return ops.reshape(x, (shape[0], shape[1], self.num_heads, self.head_size))

    def _allowed(self, attention_mask, query_length, key_length):
        """Boolean [batch or 1, 1, query_length, key_length], or None."""
        allowed = None
        if attention_mask is not None:
            allowed = ops.cast(attention_mask, "bool")
            if len(attention_mask.shape) == 2:
                allowed = allowed[:, None, None, :]
            else:
                allowed = allowed[:, None, :, :]
        if self.causal:
            rows = ops.arange(query_length)[:, None]
            columns = ops.arange(key_length)[None, :]
            causal = (rows >= columns)[None, None, :, :]
            allowed = causal if allowed is None else ops.logical_and(allowed, causal)
        return allowed

    def call(
        self,
        query,
        key_value=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
    ):
        key_value = query if key_value is None else key_value
        q = self._split_heads(self.query(query))
        k = self._split_heads(self.key(key_value))
        v = self._split_heads(self.value(key_value))

        scores = ops.einsum("bqnh,bknh->bnqk", q, k)
        scores = ops.cast(scores, "float32") / ops.sqrt(
            ops.cast(self.head_size, "float32")
        )
        allowed = self._allowed(attention_mask, ops.shape(q)[1], ops.shape(k)[1])
        masked_scores = (
            scores if allowed is None else ops.where(allowed, scores, _MASKED_SCORE)
        )
        probabilities = ops.softmax(masked_scores, axis=-1)
        dropped = self.dropout_layer(
            ops.cast(probabilities, self.compute_dtype), training=training
        )

        context = ops.einsum("bnqk,bknh->bqnh", dropped, v)
        shape = ops.shape(context)
        context = ops.reshape(
            context, (shape[0], shape[1], self.num_heads * self.head_size)
        )
        output = self.output_dense(context)
        if return_attention_scores:
            return output, scores, probabilities
        return output

    def compute_output_spec(self, query, key_value=None, attention_mask=None,
                            return_attention_scores=False, training=None):
        output = keras.KerasTensor(query.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return output
        key_length = (key_value if key_value is not None else query).shape[1]
        score_shape = (query.shape[0], self.num_heads, query.shape[1], key_length)
        return (
            output,
            keras.KerasTensor(score_shape, dtype="float32"),
            keras.KerasTensor(score_shape, dtype="float32"),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            dropout=self.dropout,
            causal=self.causal,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
