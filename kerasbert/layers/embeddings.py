"""Input embeddings: text (token + segment + position) and image patches."""

import keras
import numpy as np
from keras import ops

from kerasbert.layers.initializers import default_initializer
from kerasbert.layers.initializers import fresh as _fresh
from kerasbert.layers.precision import norm_policy


@keras.saving.register_keras_serializable(package="kerasbert")
class TextEmbeddings(keras.layers.Layer):
    """Token + segment + learned position embeddings, layer norm, dropout.

    `type_vocab_size=0` drops the segment term (DistilBERT); the segment ids
    are then accepted and ignored, so every family takes the same inputs.
    `embedding_size` set (ALBERT) makes the three tables E wide and projects
    the normalized sum to `hidden_size` with `embedding_projection` (ALBERT's
    embedding_hidden_mapping_in); unset, E = H and nothing is projected.
    `type_vocab_size=1` (RoBERTa) keeps the one segment row, added to every
    token whatever the segment ids say.
    `padding_id` set (RoBERTa, fairseq): positions count from padding_id + 1
    over the tokens that are not `padding_id`, and padding tokens take
    position `padding_id`, as Hugging Face's create_position_ids_from_input_ids
    does; the table then has max_sequence_length + padding_id + 1 rows.
    """

    def __init__(
        self,
        vocab_size,
        hidden_size,
        max_sequence_length=512,
        type_vocab_size=2,
        embedding_size=None,
        layer_norm_epsilon=1e-12,
        dropout=0.1,
        kernel_initializer=None,
        padding_id=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.padding_id = padding_id
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.max_sequence_length = max_sequence_length
        self.type_vocab_size = type_vocab_size
        self.embedding_size = embedding_size
        self.layer_norm_epsilon = layer_norm_epsilon
        self.dropout = dropout
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or default_initializer()
        )
        width = embedding_size or hidden_size
        policy = norm_policy(self.dtype_policy)
        self.token_embedding = keras.layers.Embedding(
            vocab_size, width, embeddings_initializer=_fresh(self.kernel_initializer),
            dtype=policy, name="token_embedding",
        )
        self.segment_embedding = None
        if type_vocab_size:
            self.segment_embedding = keras.layers.Embedding(
                type_vocab_size, width,
                embeddings_initializer=_fresh(self.kernel_initializer),
                dtype=policy, name="segment_embedding",
            )
        self.position_embedding = keras.layers.Embedding(
            self.position_rows, width,
            embeddings_initializer=_fresh(self.kernel_initializer),
            dtype=policy, name="position_embedding",
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="layer_norm"
        )
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=policy)
        self.embedding_projection = None
        if embedding_size is not None:
            self.embedding_projection = keras.layers.Dense(
                hidden_size, kernel_initializer=_fresh(self.kernel_initializer),
                dtype=policy, name="embedding_projection",
            )

    def build(self, token_ids_shape, segment_ids_shape=None):
        width = self.embedding_size or self.hidden_size
        self.token_embedding.build(token_ids_shape)
        if self.segment_embedding is not None:
            self.segment_embedding.build(token_ids_shape)
        self.position_embedding.build((None,))
        self.layer_norm.build(tuple(token_ids_shape) + (width,))
        if self.embedding_projection is not None:
            self.embedding_projection.build(tuple(token_ids_shape) + (width,))

    def call(self, token_ids, segment_ids=None, training=None):
        x = self.embed(token_ids, segment_ids, training=training)
        if self.embedding_projection is not None:
            x = self.embedding_projection(x)
        return x

    def embed(self, token_ids, segment_ids=None, training=None):
        """The normalized sum of the tables, E wide, before any projection: the
        part another network may share (`SharedTextEmbeddings`)."""
        sequence_length = token_ids.shape[1]
        if sequence_length is not None and sequence_length > self.max_sequence_length:
            raise ValueError(
                f"Sequence length {sequence_length} exceeds the model's "
                f"max_sequence_length={self.max_sequence_length}; truncate the "
                "inputs (the preprocessor's sequence_length) to fit."
            )
        if self.padding_id is None:
            positions = self.position_embedding(ops.arange(ops.shape(token_ids)[1]))[None]
        else:
            real = ops.cast(ops.not_equal(token_ids, self.padding_id), "int32")
            positions = self.position_embedding(ops.cumsum(real, axis=1) * real + self.padding_id)
        x = self.token_embedding(token_ids) + positions
        if self.segment_embedding is not None:
            if segment_ids is None or self.type_vocab_size == 1:
                segment_ids = ops.zeros_like(token_ids)
            x = x + self.segment_embedding(segment_ids)
        return self.dropout_layer(self.layer_norm(x), training=training)

    def compute_output_spec(self, token_ids, segment_ids=None, training=None):
        return keras.KerasTensor(tuple(token_ids.shape) + (self.hidden_size,),
                                 dtype=norm_policy(self.dtype_policy).compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            max_sequence_length=self.max_sequence_length,
            type_vocab_size=self.type_vocab_size,
            embedding_size=self.embedding_size,
            layer_norm_epsilon=self.layer_norm_epsilon,
            dropout=self.dropout,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            padding_id=self.padding_id,
        )
        return config

    @property
    def position_rows(self):
        """Rows of the position table: RoBERTa's starts after padding_id."""
        if self.padding_id is None:
            return self.max_sequence_length
        return self.max_sequence_length + self.padding_id + 1


class SharedTextEmbeddings(keras.layers.Layer):
    """Another network's `TextEmbeddings` tables and layer norm, projected to
    this network's `hidden_size` by a projection of its own (none when the
    widths agree).

    ELECTRA's generator and discriminator share their token, segment and
    position tables (Clark et al., 2020); each projects them to its own width.
    `source` is held, not tracked: its weights belong to the network that owns
    it, and tracking them here too would give the optimizer and checkpoints
    each variable twice. So this layer has no config: the model that builds it
    is checkpointed, not saved whole (ELECTRA pretraining saves the
    discriminator alone).
    """

    def __init__(self, source, hidden_size, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        object.__setattr__(self, "_source", source)
        self.hidden_size = hidden_size
        self.width = source.embedding_size or source.hidden_size
        self.projection = None
        if hidden_size != self.width:
            self.projection = keras.layers.Dense(
                hidden_size, kernel_initializer=kernel_initializer or default_initializer(),
                dtype=norm_policy(self.dtype_policy), name="embedding_projection")

    @property
    def source(self):
        return self._source

    def build(self, token_ids_shape, segment_ids_shape=None):
        if self.projection is not None:
            self.projection.build(tuple(token_ids_shape) + (self.width,))

    def call(self, token_ids, segment_ids=None, training=None):
        x = self.source.embed(token_ids, segment_ids, training=training)
        return x if self.projection is None else self.projection(x)

    def compute_output_spec(self, token_ids, segment_ids=None, training=None):
        return keras.KerasTensor(tuple(token_ids.shape) + (self.hidden_size,),
                                 dtype=norm_policy(self.dtype_policy).compute_dtype)


def _cubic_weights(distance):
    """PyTorch's bicubic convolution kernel (A = -0.75) at |distance|."""
    a = -0.75
    d = np.abs(distance)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def bicubic_resize_matrix(source_size, target_size):
    """[target, source] matrix of PyTorch's bicubic resize, align_corners=False.

    Resizing by a fixed matrix is exact, differentiable and XLA-friendly, and
    matches Hugging Face ViT's `interpolate_pos_encoding` weight for weight.
    """
    matrix = np.zeros((target_size, source_size), np.float64)
    scale = source_size / target_size
    for target in range(target_size):
        center = (target + 0.5) * scale - 0.5
        base = int(np.floor(center))
        for tap in range(base - 1, base + 3):
            source = min(max(tap, 0), source_size - 1)  # border replicate
            matrix[target, source] += _cubic_weights(center - tap)
    return matrix.astype(np.float32)


def interpolate_position_embeddings(position_embeddings, source_grid, target_grid,
                                    num_tokens=1):
    """Resizes [1, num_tokens + h*w, H] ViT position embeddings to a new patch grid.

    The entries of the `num_tokens` tokens before the patches (class token;
    DeiT's distillation token too) are kept; the grid part is resized
    bicubically. Works on numpy arrays and on tensors.
    """
    source_grid, target_grid = tuple(source_grid), tuple(target_grid)
    if source_grid == target_grid:
        return position_embeddings
    hidden_size = position_embeddings.shape[-1]
    class_position = position_embeddings[:, :num_tokens]
    grid = ops.reshape(position_embeddings[:, num_tokens:], source_grid + (hidden_size,))
    rows = bicubic_resize_matrix(source_grid[0], target_grid[0])
    columns = bicubic_resize_matrix(source_grid[1], target_grid[1])
    grid = ops.einsum("ri,ijh,cj->rch", rows, ops.cast(grid, "float32"), columns)
    grid = ops.reshape(grid, (1, target_grid[0] * target_grid[1], hidden_size))
    return ops.concatenate(
        [ops.cast(class_position, grid.dtype), grid], axis=1
    )


@keras.saving.register_keras_serializable(package="kerasbert")
class PatchEmbeddings(keras.layers.Layer):
    """ViT input: non-overlapping patches, class token, position embeddings.

    Patches come from a strided convolution (`projection`). Position
    embeddings are learned for `image_size`; images of another size (with
    static shape) get them bicubically interpolated to the new grid, as
    Hugging Face's `interpolate_pos_encoding` does.
    `distillation_token=True` (DeiT) adds a second learned token right after
    the class token, [class, distillation, patches], with its own position
    row, as Hugging Face's DeiTEmbeddings and timm order them.
    """

    def __init__(
        self,
        hidden_size,
        patch_size,
        image_size=(224, 224),
        num_channels=3,
        dropout=0.0,
        kernel_initializer=None,
        distillation_token=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.patch_size = patch_size
        self.distillation_token = distillation_token
        self.num_tokens = 2 if distillation_token else 1  # tokens before the patches
        self.image_size = tuple(image_size)
        self.num_channels = num_channels
        self.dropout = dropout
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or default_initializer()
        )
        self.grid = (image_size[0] // patch_size, image_size[1] // patch_size)
        self.projection = keras.layers.Conv2D(
            hidden_size, patch_size, strides=patch_size, padding="valid",
            kernel_initializer=_fresh(self.kernel_initializer),
            dtype=self.dtype_policy, name="projection",
        )
        # Class token, positions and their sum stay float32 under mixed precision.
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=norm_policy(self.dtype_policy))

    def build(self, images_shape):
        self.projection.build(images_shape)
        self.class_token = self.add_weight(
            name="class_token", shape=(1, 1, self.hidden_size),
            initializer="zeros",
        )
        self.position_embeddings = self.add_weight(
            name="position_embeddings",
            shape=(1, self.num_tokens + self.grid[0] * self.grid[1], self.hidden_size),
            initializer=_fresh(self.kernel_initializer),
        )
        # Created last, so a ViT's variables keep their order (and saved
        # ViT models their variable indices) whether or not DeiT exists.
        self.distillation_token_embedding = None
        if self.distillation_token:
            self.distillation_token_embedding = self.add_weight(
                name="distillation_token", shape=(1, 1, self.hidden_size),
                initializer="zeros",
            )

    def call(self, images, training=None):
        patches = self.projection(images)  # [batch, grid_h, grid_w, H]
        grid = tuple(patches.shape[1:3])
        if None in grid:
            raise ValueError(
                "PatchEmbeddings needs images of static height and width; "
                f"got shape {images.shape}."
            )
        batch_size = ops.shape(patches)[0]
        patches = ops.reshape(patches, (batch_size, grid[0] * grid[1], self.hidden_size))
        patches = ops.cast(patches, self.dropout_layer.compute_dtype)
        tokens = [self.class_token]
        if self.distillation_token:
            tokens.append(self.distillation_token_embedding)
        tokens = [ops.broadcast_to(ops.cast(token, patches.dtype),
                                   (batch_size, 1, self.hidden_size)) for token in tokens]
        positions = interpolate_position_embeddings(self.position_embeddings, self.grid, grid,
                                                    num_tokens=self.num_tokens)
        x = ops.concatenate(tokens + [patches], axis=1)
        x = x + ops.cast(positions, patches.dtype)
        return self.dropout_layer(x, training=training)

    def compute_output_spec(self, images, training=None):
        grid_h = images.shape[1] // self.patch_size if images.shape[1] else None
        grid_w = images.shape[2] // self.patch_size if images.shape[2] else None
        length = self.num_tokens + grid_h * grid_w if grid_h and grid_w else None
        return keras.KerasTensor(
            (images.shape[0], length, self.hidden_size),
            dtype=self.dropout_layer.compute_dtype,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size,
            patch_size=self.patch_size,
            image_size=self.image_size,
            num_channels=self.num_channels,
            dropout=self.dropout,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            distillation_token=self.distillation_token,
        )
        return config
