import numpy as np
import pytest
import tensorflow as tf

from kerasbert.layers import PatchEmbeddings, TextEmbeddings, interpolate_position_embeddings
from kerasbert.layers.embeddings import bicubic_resize_matrix
from tests import reference

TOKENS = np.array([[5, 7, 9, 0], [3, 3, 1, 2]], "int32")
SEGMENTS = np.array([[0, 0, 1, 1], [0, 1, 1, 1]], "int32")


def table(layer):
    return layer.embeddings.numpy()


def test_text_embeddings_match_numpy():
    layer = TextEmbeddings(20, 8, max_sequence_length=16, layer_norm_epsilon=1e-12)
    output = layer(TOKENS, SEGMENTS)
    summed = (table(layer.token_embedding)[TOKENS] + table(layer.segment_embedding)[SEGMENTS]
              + table(layer.position_embedding)[:4][None])
    gamma, beta = (w.numpy() for w in layer.layer_norm.weights)
    np.testing.assert_allclose(output, reference.layer_norm(summed, gamma, beta, 1e-12), atol=1e-5)


def test_factorized_embeddings_project_after_the_norm():
    layer = TextEmbeddings(20, 8, embedding_size=4, max_sequence_length=16)
    output = layer(TOKENS, SEGMENTS)
    assert layer.token_embedding.embeddings.shape == (20, 4)
    summed = (table(layer.token_embedding)[TOKENS] + table(layer.segment_embedding)[SEGMENTS]
              + table(layer.position_embedding)[:4][None])
    gamma, beta = (w.numpy() for w in layer.layer_norm.weights)
    normed = reference.layer_norm(summed, gamma, beta, 1e-12)
    np.testing.assert_allclose(
        output, reference.dense(normed, layer.embedding_projection), atol=1e-5
    )


def test_without_segments_ids_are_ignored():
    layer = TextEmbeddings(20, 8, type_vocab_size=0, max_sequence_length=16)
    np.testing.assert_array_equal(layer(TOKENS, SEGMENTS), layer(TOKENS, np.zeros_like(SEGMENTS)))
    assert layer.segment_embedding is None


def test_dropout_only_in_training():
    layer = TextEmbeddings(20, 8, dropout=0.5, max_sequence_length=16)
    np.testing.assert_array_equal(layer(TOKENS), layer(TOKENS))
    assert not np.allclose(layer(TOKENS), layer(TOKENS, training=True))


def test_too_long_sequence_is_a_clear_error():
    layer = TextEmbeddings(20, 8, max_sequence_length=3)
    with pytest.raises(ValueError, match="max_sequence_length=3"):
        layer(TOKENS)


def test_patch_embeddings_match_numpy():
    layer = PatchEmbeddings(6, 4, image_size=(8, 12), num_channels=3)
    images = np.random.default_rng(0).normal(size=(2, 8, 12, 3)).astype("float32")
    output = layer(images)
    kernel, bias = (w.numpy() for w in layer.projection.weights)  # [P, P, C, H]
    patches = images.reshape(2, 2, 4, 3, 4, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 6, 48)
    embedded = patches @ kernel.reshape(48, 6) + bias
    class_token = np.broadcast_to(layer.class_token.numpy(), (2, 1, 6))
    expected = np.concatenate([class_token, embedded], 1) + layer.position_embeddings.numpy()
    np.testing.assert_allclose(output, expected, atol=1e-5)


def test_bicubic_matrix_matches_torch_interpolate():
    torch = pytest.importorskip("torch")
    grid = np.random.default_rng(0).normal(size=(7, 5)).astype("float32")
    for size in [(12, 9), (4, 3), (7, 5)]:
        expected = torch.nn.functional.interpolate(
            torch.from_numpy(grid)[None, None], size=size, mode="bicubic", align_corners=False
        )[0, 0].numpy()
        resized = bicubic_resize_matrix(7, size[0]) @ grid @ bicubic_resize_matrix(5, size[1]).T
        np.testing.assert_allclose(resized, expected, atol=1e-5)


def test_position_interpolation_on_new_image_size():
    layer = PatchEmbeddings(6, 4, image_size=(8, 8))
    layer.build((None, 8, 8, 3))
    table = layer.position_embeddings.numpy()
    same = interpolate_position_embeddings(table, (2, 2), (2, 2))
    np.testing.assert_array_equal(same, table)
    larger = np.asarray(interpolate_position_embeddings(table, (2, 2), (3, 3)))
    assert larger.shape == (1, 10, 6)
    np.testing.assert_array_equal(larger[:, 0], table[:, 0])  # class token kept
    images = np.zeros((1, 12, 12, 3), "float32")
    output = layer(images)
    bias = layer.projection.weights[1].numpy()
    np.testing.assert_allclose(output[:, 1:] - bias, larger[:, 1:], atol=1e-5)


def test_patch_embeddings_xla():
    layer = PatchEmbeddings(6, 4, image_size=(8, 8))
    images = np.random.default_rng(0).normal(size=(2, 12, 12, 3)).astype("float32")
    np.testing.assert_allclose(tf.function(layer, jit_compile=True)(images), layer(images),
                               atol=1e-5)


def test_distillation_token_comes_after_the_class_token():
    # DeiT: [class, distillation, patches] + positions (patches + 2 rows); a
    # resized grid keeps both token rows as they are.
    layer = PatchEmbeddings(6, 4, image_size=(8, 8), distillation_token=True)
    layer.build((None, 8, 8, 3))
    rng = np.random.default_rng(0)
    for weight in (layer.class_token, layer.distillation_token_embedding):
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    images = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    kernel, bias = (w.numpy() for w in layer.projection.weights)
    patches = images.reshape(2, 2, 4, 2, 4, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 4, 48)
    tokens = np.concatenate([layer.class_token.numpy(), layer.distillation_token_embedding.numpy()],
                            1)
    positions = layer.position_embeddings.numpy()
    assert positions.shape == (1, 6, 6)
    expected = np.concatenate([np.broadcast_to(tokens, (2, 2, 6)),
                               patches @ kernel.reshape(48, 6) + bias], 1) + positions
    np.testing.assert_allclose(layer(images), expected, atol=1e-5)
    larger = np.asarray(layer(np.zeros((1, 12, 12, 3), "float32")))
    assert larger.shape == (1, 11, 6)
    np.testing.assert_allclose(larger[0, :2], (tokens + positions[:, :2])[0], atol=1e-6)
    assert PatchEmbeddings.from_config(layer.get_config()).distillation_token
