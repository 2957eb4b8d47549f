"""Features from a text backbone's hidden states, the ways users pool them.

Two families of pooling, one layer:
- over tokens, from the last layer: `cls` (the first token, what BERT's
  pooler reads), `mean` and `max` (over the real tokens only, the
  Sentence-BERT poolings); they return one [batch, H] vector per text;
- over layers, per token: `last4_sum` and `last4_concat` (the BERT paper's
  feature-based NER, where concatenating the last four layers came within
  0.3 F1 of fine-tuning) and `weighted` (ELMo's scalar mix: a learned
  softmax-normalised weight per layer and a learned scale); they return
  [batch, seq, H] (4H for the concatenation), zero at padding positions.
  `all_layers` keeps every layer's hidden state apart, [batch, seq, layers,
  H], for users who choose layers themselves (BERT's extract_features.py).

Padding never changes a result: masked positions are excluded from the
token poolings and zeroed in the per-token ones. Under a mixed policy the
pooling runs in float32, like the layer norms.
"""

import keras
from keras import ops

from kerasbert.layers.precision import norm_policy

TOKEN_POOLINGS = ("cls", "mean", "max")
LAYER_POOLINGS = ("last4_sum", "last4_concat", "weighted", "all_layers")
POOLINGS = TOKEN_POOLINGS + LAYER_POOLINGS


@keras.saving.register_keras_serializable(package="kerasbert")
class FeaturePooling(keras.layers.Layer):
    """Pools hidden states into features (see the module docstring).

    Call arguments:
        hidden_states: list of [batch, seq, H] tensors, first layer first
            (a backbone's `encoder_outputs`; with `output_embeddings=True`
            the embeddings come first and `weighted` mixes them too).
        input_mask: [batch, seq], 1 for real tokens (the backbone's
            `input_mask`); None means every position is real. (Not named
            `mask`: Keras would fill that with its own propagated masks.)
    """

    def __init__(self, pooling="mean", **kwargs):
        super().__init__(**kwargs)
        # Sums and means over tokens or layers stay float32 under the mixed
        # policies, like the layer norms (see precision.py).
        self.dtype_policy = norm_policy(self.dtype_policy)
        if pooling not in POOLINGS:
            raise ValueError(f"Unknown pooling {pooling!r}; choose one of {POOLINGS}.")
        self.pooling = pooling

    def build(self, hidden_states_shape, input_mask_shape=None):
        layers = len(hidden_states_shape)
        if self.pooling.startswith("last4") and layers < 4:
            raise ValueError(f"{self.pooling} needs at least 4 hidden states, got {layers}; "
                             "use a deeper backbone, or `weighted` to mix all of them.")
        if self.pooling == "weighted":
            # Zero logits: the mix starts as the plain average of the layers.
            self.layer_logits = self.add_weight(shape=(layers,), initializer="zeros",
                                                name="layer_logits")
            self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

    def call(self, hidden_states, input_mask=None):
        hidden_states = [ops.cast(h, self.compute_dtype) for h in hidden_states]
        last = hidden_states[-1]
        mask = (ops.ones(ops.shape(last)[:2], self.compute_dtype) if input_mask is None
                else ops.cast(input_mask, self.compute_dtype))
        mask = ops.expand_dims(mask, -1)  # [batch, seq, 1]
        if self.pooling == "cls":
            return last[:, 0]
        if self.pooling == "mean":
            count = ops.maximum(ops.sum(mask, axis=1), 1.0)
            return ops.sum(last * mask, axis=1) / count
        if self.pooling == "max":
            pooled = ops.max(ops.where(mask > 0, last, float("-inf")), axis=1)
            # A text with no real token at all gets zeros, not -inf.
            return ops.where(ops.sum(mask, axis=1) > 0, pooled, 0.0)
        if self.pooling == "last4_sum":
            features = sum(hidden_states[-4:])
        elif self.pooling == "last4_concat":
            features = ops.concatenate(hidden_states[-4:], axis=-1)
        elif self.pooling == "all_layers":
            return ops.stack(hidden_states, axis=2) * ops.expand_dims(mask, -1)
        else:
            weights = ops.softmax(ops.cast(self.layer_logits, self.compute_dtype))
            mixed = sum(weights[i] * h for i, h in enumerate(hidden_states))
            features = ops.cast(self.scale, self.compute_dtype) * mixed
        return features * mask

    def compute_output_shape(self, hidden_states_shape, input_mask_shape=None):
        batch, sequence, hidden = hidden_states_shape[-1]
        if self.pooling in TOKEN_POOLINGS:
            return (batch, hidden)
        if self.pooling == "all_layers":
            return (batch, sequence, len(hidden_states_shape), hidden)
        return (batch, sequence, hidden * 4 if self.pooling == "last4_concat" else hidden)

    def get_config(self):
        return {**super().get_config(), "pooling": self.pooling}
