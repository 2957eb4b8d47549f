"""keras-hub presets: zoo.load equals keras-hub's own outputs (tanh GELU and all)."""

import numpy as np
import pytest

import zoo
from zoo.convert.table import ConversionError

keras_hub = pytest.importorskip("keras_hub")

TEXT = dict(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16,
            intermediate_dim=32, max_sequence_length=24)
BACKBONES = {
    "bert": lambda: keras_hub.models.BertBackbone(**TEXT),
    "albert": lambda: keras_hub.models.AlbertBackbone(**dict(TEXT, num_layers=4), num_groups=2,
                                                      embedding_dim=8),
    "distilbert": lambda: keras_hub.models.DistilBertBackbone(**TEXT),
    "vit": lambda: keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=8,
                                                num_layers=2, num_heads=2, hidden_dim=16,
                                                mlp_dim=32),
}


def perturb(backbone, seed=0):
    """Non-trivial biases and norms, so every weight is exercised."""
    rng = np.random.default_rng(seed)
    for weight in backbone.weights:
        weight.assign(weight.numpy() + rng.normal(0, 0.1, weight.shape).astype("float32"))


def inputs(family):
    rng = np.random.default_rng(3)
    if family == "vit":
        images = rng.normal(size=(2, 32, 32, 3)).astype("float32")
        return images, images
    ids = rng.integers(1, 50, (2, 10)).astype("int32")
    mask = np.ones_like(ids)
    mask[0, 7:] = 0
    segments = np.zeros_like(ids)
    segments[:, 5:] = 1
    ours = {"input_word_ids": ids, "input_mask": mask, "input_type_ids": segments}
    theirs = {"token_ids": ids, "padding_mask": mask}
    if family != "distilbert":
        theirs["segment_ids"] = segments
    return ours, theirs


@pytest.fixture(scope="module", params=sorted(BACKBONES))
def preset(request, tmp_path_factory):
    family = request.param
    backbone = BACKBONES[family]()
    perturb(backbone)
    folder = str(tmp_path_factory.mktemp(f"keras_hub_{family}"))
    backbone.save_to_preset(folder)
    return family, backbone, folder


def test_outputs_equal_keras_hub(preset):
    family, backbone, folder = preset
    model = zoo.load(folder)
    assert isinstance(model, zoo.registry.families()[family])
    ours, theirs = inputs(family)
    expected = backbone(theirs)
    outputs = model(ours)
    sequence = expected["sequence_output"] if isinstance(expected, dict) else expected
    difference = float(np.abs(outputs["sequence_output"] - np.asarray(sequence)).max())
    print(family, "max abs difference", difference)
    assert difference <= 1e-5
    if family in ("bert", "albert"):
        np.testing.assert_allclose(outputs["pooled_output"], expected["pooled_output"], atol=1e-5)


def test_activation_follows_keras_hub(preset):
    family, _, folder = preset
    expected = "gelu" if family in ("distilbert", "vit") else "gelu_tanh"
    assert zoo.load(folder).activation == expected


def test_with_head_wraps_the_backbone(preset):
    _, _, folder = preset
    model = zoo.load(folder, with_head=True)
    assert isinstance(model, zoo.BackboneWithHeads)


def test_mismatched_weights_are_refused(tmp_path):
    other = keras_hub.models.BertBackbone(**dict(TEXT, hidden_dim=8, intermediate_dim=16))
    other.save_to_preset(str(tmp_path))
    from zoo.convert import keras_hub as converter
    from zoo.convert.table import assign

    family, config, state = converter.read_preset(str(tmp_path))
    model = zoo.build("bert_test_tiny", vocab_size=50, max_sequence_length=24)
    with pytest.raises(ConversionError, match=r"token_embedding/embeddings.*\(50, 8\)"):
        assign(model, converter.TABLES["bert"], state, 2)
