"""A sentence encoder: a text backbone, a pooling, optional whitening and L2
normalization, one `embedding` per text.

    backbone -> FeaturePooling (cls | mean | max, or several concatenated
    in Sentence-Transformers' order) -> Whitening (optional, fitted on a
    corpus) -> L2 normalization (optional) -> embedding [batch, D] float32

This is what a Sentence-Transformers folder holds (Transformer, Pooling,
Normalize modules), and what the `sentence_embedding` task trains and
`export` serves (strings in, `embedding` out). Normalized embeddings make
the dot product the cosine similarity, which is what search wants.
"""

import keras
import numpy as np
from keras import ops

from kerasbert.layers import FeaturePooling, Whitening
from kerasbert.layers.pooling import TOKEN_POOLINGS
from kerasbert.models import Model
from zoo.backbone import WrapsBackbone


def unit_length(x):
    """x / max(||x||, 1e-12) along the last axis: Sentence-Transformers' Normalize
    (and torch's F.normalize), so normalized embeddings match theirs exactly."""
    return x / ops.maximum(ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True)), 1e-12)


@keras.saving.register_keras_serializable(package="zoo")
class SentenceEncoder(WrapsBackbone, Model):
    """Args:
        backbone: a zoo text backbone.
        pooling: "cls", "mean" or "max", or a list of them (their outputs
            concatenated, as Sentence-Transformers does with several modes).
        whitening: add a `Whitening` layer after the pooling (identity until
            `adapt_whitening` estimates it from a corpus).
        whitening_dimensions: keep this many whitened dimensions (default:
            all of them).
        normalize: L2-normalize the embedding.
    """

    wrapper_arguments = ("pooling", "whitening", "whitening_dimensions", "normalize")

    def __init__(self, backbone, pooling="mean", whitening=False, whitening_dimensions=None,
                 normalize=False, **kwargs):
        poolings = [pooling] if isinstance(pooling, str) else list(pooling)
        unknown = [p for p in poolings if p not in TOKEN_POOLINGS]
        if unknown or not poolings:
            raise ValueError(f"A sentence encoder pools tokens into one vector: pooling must "
                             f"be one or more of {TOKEN_POOLINGS}, not {pooling!r}.")
        if whitening_dimensions is not None and not whitening:
            raise ValueError("whitening_dimensions is set but whitening=False; pass "
                             "whitening=True to reduce dimensions by whitening.")
        inputs = backbone.input
        outputs = backbone(inputs)
        dtype = backbone.dtype_policy
        pooled = [FeaturePooling(p, dtype=dtype, name=f"{p}_pooling")(
            outputs["encoder_outputs"], input_mask=inputs["input_mask"]) for p in poolings]
        features = pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, axis=-1)
        features = pooled_features = ops.cast(features, "float32")
        if whitening:
            features = Whitening(whitening_dimensions, name="whitening")(features)
        if normalize:
            features = unit_length(features)
        super().__init__(inputs=inputs, outputs={"embedding": features}, dtype=dtype, **kwargs)
        self.backbone = backbone
        self.pooling = pooling if isinstance(pooling, str) else list(pooling)
        self.whitening = whitening
        self.whitening_dimensions = whitening_dimensions
        self.normalize = normalize
        self._pooled_features = pooled_features  # what whitening is estimated from

    @property
    def embedding_size(self):
        return self.output["embedding"].shape[-1]

    def encode(self, texts, preprocessor, batch_size=64):
        """float32 [len(texts), D]: the embeddings of a list of strings."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.embedding_size), "float32")
        return self.predict(preprocessor(np.asarray(texts, dtype=object)),
                            batch_size=batch_size, verbose=0)["embedding"]

    def adapt_whitening(self, texts, preprocessor, batch_size=64):
        """Estimates the whitening kernel and mean from `texts` (a corpus like
        the one to be searched; more texts than embedding dimensions)."""
        if not self.whitening:
            raise ValueError("This encoder has no whitening layer; build it with "
                             "whitening=True (and optionally whitening_dimensions=k).")
        pooled = Model(self.input, self._pooled_features)
        texts = list(texts)
        batches = (pooled.predict(preprocessor(np.asarray(texts[i:i + batch_size], dtype=object)),
                                  verbose=0)
                   for i in range(0, len(texts), batch_size))
        self.get_layer("whitening").adapt(batches)  # streams: statistics batch by batch
