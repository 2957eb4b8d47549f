"""BERT-whitening: sentence embeddings with zero mean and identity covariance.

Su et al. 2021 ("Whitening Sentence Representations for Better Semantics
and Faster Retrieval") found that BERT's sentence vectors are anisotropic
(they crowd into a narrow cone), which hurts cosine similarity; whitening
them with statistics of an unlabelled corpus matches or beats BERT-flow on
STS, and keeping only the first k components (dimension reduction) often
helps further while making retrieval cheaper.

The layer is y = (x - mean) @ kernel. `adapt` estimates the statistics as
the authors' code does (bojone/BERT-whitening, `compute_kernel_bias`):
mean mu, covariance `np.cov` (the unbiased 1/(n-1) estimate),
U, S = SVD(cov), kernel = U diag(1/sqrt(S)), keeping the first k columns.
Their `transform_and_normalize` then L2-normalises the result; this layer
does not (the sentence encoder's `normalize=True`, or
`keras.ops.normalize(y, axis=-1)`, gives the paper's setting). Column signs
are numpy's SVD's, as in the reference; a sign flip changes no dot product
or cosine. Statistics are accumulated in float64 batch by batch, so a corpus
can be streamed through a tf.data pipeline.

An unfitted layer is the identity (mean 0, kernel the first k columns of
the identity matrix), so a model can be built, traced and saved before the
statistics exist. The weights are non-trainable and saved with the model.
Under a mixed policy the transform runs in float32, like the layer norms.
"""

import keras
import numpy as np
from keras import ops

from kerasbert.layers.precision import norm_policy

# Rows converted to float64 at a time when `adapt` is given one big array.
ADAPT_CHUNK_ROWS = 65536


@keras.saving.register_keras_serializable(package="kerasbert")
class Whitening(keras.layers.Layer):
    """Whitens [..., H] embeddings into [..., k] (see the module docstring).

    Args:
        dimensions: k, how many whitened components to keep (the directions
            of largest variance first); None keeps all H.
    """

    def __init__(self, dimensions=None, **kwargs):
        super().__init__(**kwargs)
        # A matmul against 1/sqrt(singular values) amplifies rounding; keep
        # it float32 under the mixed policies (see precision.py).
        self.dtype_policy = norm_policy(self.dtype_policy)
        if dimensions is not None and dimensions < 1:
            raise ValueError(f"dimensions must be a positive integer or None, got {dimensions}.")
        self.dimensions = dimensions

    @classmethod
    def from_kernel_bias(cls, kernel, bias, dimensions=None, **kwargs):
        """A fitted layer from the reference code's (kernel, bias) pair.

        `kernel` [H, m] and `bias` [H] or [1, H] as `compute_kernel_bias`
        returns them (bias is -mu); the first `dimensions` columns are kept.
        """
        kernel = np.asarray(kernel, "float64")
        bias = np.asarray(bias, "float64").reshape(-1)
        hidden, columns = kernel.shape
        if bias.shape[0] != hidden:
            raise ValueError(f"bias has {bias.shape[0]} entries, kernel has {hidden} rows.")
        dimensions = dimensions or columns
        if dimensions > columns:
            raise ValueError(f"dimensions={dimensions} but the kernel has only {columns} columns.")
        layer = cls(dimensions=dimensions, **kwargs)
        layer.build((None, hidden))
        layer.mean.assign(-bias)
        layer.kernel.assign(kernel[:, :dimensions])
        return layer

    @property
    def output_dimensions(self):
        return self.dimensions or self.hidden_size

    def build(self, input_shape):
        self.hidden_size = input_shape[-1]
        if self.hidden_size is None:
            raise ValueError("Whitening needs a known last dimension (H).")
        if self.output_dimensions > self.hidden_size:
            raise ValueError(f"dimensions={self.dimensions} exceeds the embedding size "
                             f"H={self.hidden_size}.")
        # Identity until `adapt`: mean 0, kernel = the first k columns of I.
        self.mean = self.add_weight(shape=(self.hidden_size,), initializer="zeros",
                                    trainable=False, name="mean")
        self.kernel = self.add_weight(shape=(self.hidden_size, self.output_dimensions),
                                      initializer="identity", trainable=False, name="kernel")

    def adapt(self, data):
        """Fits mean and kernel to a corpus of embeddings.

        `data`: an array [n, H], or a tf.data.Dataset or any iterable of
        [batch, H] arrays (e.g. the reference's list of vector arrays).
        Needs at least k+1 embeddings (k = dimensions or H), and raises if
        fewer than k directions have variance: their whitening would divide
        by ~0.
        """
        count, mean, scatter = 0, None, None  # scatter: sum of centred outer products
        for batch in _batches(data):
            if batch.ndim != 2:
                raise ValueError(f"adapt expects [batch, H] arrays, got shape {batch.shape}; "
                                 "batch a dataset of single vectors first.")
            if len(batch) == 0:
                continue
            batch_mean = batch.mean(axis=0)
            centred = batch - batch_mean
            batch_scatter = centred.T @ centred
            if count == 0:
                count, mean, scatter = len(batch), batch_mean, batch_scatter
                continue
            if batch.shape[1] != mean.shape[0]:
                raise ValueError(f"Batches have {mean.shape[0]} and {batch.shape[1]} features.")
            # Chan et al.'s pairwise merge: no large sums minus large sums.
            total = count + len(batch)
            delta = batch_mean - mean
            scatter += batch_scatter + np.outer(delta, delta) * (count * len(batch) / total)
            mean += delta * (len(batch) / total)
            count = total
        if count == 0:
            raise ValueError("adapt got no embeddings.")

        hidden = mean.shape[0]
        if not self.built:
            self.build((None, hidden))
        elif hidden != self.hidden_size:
            raise ValueError(f"The layer was built for H={self.hidden_size}, "
                             f"the embeddings have {hidden} features.")
        dimensions = self.output_dimensions
        if count <= dimensions:
            raise ValueError(f"Whitening to {dimensions} dimensions needs at least "
                             f"{dimensions + 1} embeddings to estimate the covariance; "
                             f"got {count}. Adapt on more texts or lower `dimensions`.")
        covariance = scatter / (count - 1)  # np.cov's unbiased estimate, as the reference
        u, s, _ = np.linalg.svd(covariance)
        # numpy's matrix_rank tolerance: below it a singular value is rounding.
        tolerance = s[0] * hidden * np.finfo("float64").eps
        rank = int((s > tolerance).sum())
        if rank < dimensions:
            raise ValueError(f"The embeddings' covariance has rank {rank} (of H={hidden}): "
                             f"only {rank} directions vary, so {dimensions} cannot be whitened. "
                             f"Use dimensions<={rank} or adapt on more varied texts.")
        self.mean.assign(mean)
        self.kernel.assign(u[:, :dimensions] / np.sqrt(s[:dimensions]))

    def call(self, inputs):
        inputs = ops.cast(inputs, self.compute_dtype)
        mean = ops.cast(self.mean, self.compute_dtype)
        kernel = ops.cast(self.kernel, self.compute_dtype)
        return ops.matmul(inputs - mean, kernel)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.dimensions or input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "dimensions": self.dimensions}


def _batches(data):
    """float64 [batch, H] arrays from an array, a tf.data.Dataset or an iterable."""
    if hasattr(data, "as_numpy_iterator"):  # tf.data.Dataset
        data = data.as_numpy_iterator()
    elif hasattr(data, "shape"):  # one array or tensor: the whole corpus
        array = np.asarray(data)
        if array.ndim != 2:
            raise ValueError(f"adapt expects [n, H] embeddings, got shape {array.shape}.")
        data = (array[start:start + ADAPT_CHUNK_ROWS]
                for start in range(0, len(array), ADAPT_CHUNK_ROWS))
    for batch in data:
        yield np.asarray(batch).astype("float64")
