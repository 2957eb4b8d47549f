"""Masked-LM layers a plain functional pretraining model can save and reload.

`MaskedLMHead` decodes with the backbone's token embedding, a tie no layer
config can hold, so a functional model holding it does not reload.
`TiedMaskedLMHead` saves the vocabulary and embedding sizes instead and
ties itself again when the reloaded model is wired up. `PredictionSlots`
marks the padded slots of `masked_lm_positions` with a Keras mask, so
built-in losses and metrics average over the real masked tokens only.
"""

import keras
from keras import ops

from kerasbert import keras_internals
from kerasbert.layers.heads import MaskedLMHead


class _Untied:
    """Stands in for the token embedding (its shape only) until the tie is found."""

    def __init__(self, input_dim, output_dim):
        self.input_dim = input_dim
        self.output_dim = output_dim


@keras.saving.register_keras_serializable(package="kerasbert")
class TiedMaskedLMHead(MaskedLMHead):
    """A `MaskedLMHead` whose tie survives a functional model's save and load.

    Built with `token_embedding` (the backbone's, as MaskedLMHead). Rebuilt
    from its config (vocab_size and embedding_size instead), it ties itself
    when first called on a symbolic `sequence_output`: to the
    `token_embedding` of the layer that produced it, the backbone. So in a
    task model it must read the backbone's `sequence_output` directly, as
    keras.saving.load_model and keras.Model.from_config wire it.
    """

    def __init__(self, token_embedding=None, vocab_size=None, embedding_size=None, **kwargs):
        if token_embedding is None:
            if vocab_size is None or embedding_size is None:
                raise ValueError("TiedMaskedLMHead needs token_embedding, or vocab_size and "
                                 "embedding_size (from its config).")
            token_embedding = _Untied(vocab_size, embedding_size)
        super().__init__(token_embedding, **kwargs)

    def __call__(self, sequence_output, *args, **kwargs):
        if isinstance(self.token_embedding, _Untied):
            self._tie(sequence_output)
        return super().__call__(sequence_output, *args, **kwargs)

    def _tie(self, sequence_output):
        embedding = getattr(keras_internals.producing_layer(sequence_output),
                            "token_embedding", None)
        if embedding is None:
            raise ValueError(f"{self.name} has no token embedding to decode with: build it "
                             "with token_embedding=backbone.token_embedding, or call it on a "
                             "backbone's symbolic sequence_output.")
        if (embedding.input_dim, embedding.output_dim) != (self.vocab_size, self.embedding_size):
            raise ValueError(f"{self.name} was saved for a {self.vocab_size} x "
                             f"{self.embedding_size} token embedding, the backbone has "
                             f"{embedding.input_dim} x {embedding.output_dim}.")
        object.__setattr__(self, "_token_embedding", embedding)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, embedding_size=self.embedding_size)
        return config


@keras.saving.register_keras_serializable(package="kerasbert")
class PredictionSlots(keras.layers.Layer):
    """Marks the real prediction slots of masked-LM logits with a Keras mask.

    Call [logits [b, P, V], masked_lm_positions [b, P]] -> the logits, masked
    where the position is not 0. Padded slots point at position 0 ([CLS],
    never a masked token), so built-in losses and metrics (which honour the
    mask) average over the real predictions only, with or without sample
    weights. Use it with dtype="float32" so a mixed policy keeps the logits
    in 32 bits.
    """

    def call(self, inputs):
        logits, _ = inputs
        return ops.copy(logits)

    def compute_mask(self, inputs, previous_mask=None):
        return ops.not_equal(inputs[1], 0)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs[0].shape, dtype=inputs[0].dtype)
