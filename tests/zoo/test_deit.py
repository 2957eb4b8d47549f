"""DeiT beyond what every family shares (test_backbones, test_convert_hf,
test_registry cover it there): published sizes as transformers counts them,
keras-hub's DeiTBackbone, and a DeiT started from a ViT."""

import numpy as np
import pytest

import zoo
from zoo.deit import from_vit

PUBLISHED = ["deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224",
             "deit_tiny_distilled_patch16_224", "deit_small_distilled_patch16_224",
             "deit_base_distilled_patch16_224"]


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_count_is_the_transformers_base_models(name):
    # The published configs' values (facebook/deit-*: the distilled ones are
    # DeiT, the others ViT checkpoints), built on torch's meta device (no
    # memory, no download); counted without the pooler their classifiers lack.
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    preset = zoo.get_preset(name)
    a = preset.arguments
    distilled = "distilled" in name
    values = dict(hidden_size=a["hidden_size"], num_hidden_layers=a["num_layers"],
                  num_attention_heads=a["num_heads"], intermediate_size=a["intermediate_size"],
                  image_size=a["image_size"], patch_size=a["patch_size"])
    with torch.device("meta"):
        if distilled:
            model = transformers.DeiTModel(transformers.DeiTConfig(**values),
                                           add_pooling_layer=False)
        else:
            model = transformers.ViTModel(transformers.ViTConfig(**values),
                                          add_pooling_layer=False)
    assert sum(p.numel() for p in model.parameters()) == preset.parameters
    assert preset.family == ("deit" if distilled else "vit")
    repo = "facebook/" + name.replace("_", "-")
    assert preset.weights.sources == (f"hf://{repo}",)
    assert zoo.pretrained.preset_of_hub_name(repo) is preset


def test_keras_hub_deit_preset_gives_its_outputs(tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    theirs = keras_hub.models.DeiTBackbone(image_shape=(32, 32, 3), patch_size=8, num_layers=2,
                                           num_heads=2, hidden_dim=16, intermediate_dim=32)
    rng = np.random.default_rng(0)
    for weight in theirs.weights:  # tokens, biases and norms away from 0 and 1
        weight.assign(weight.numpy() + rng.normal(0, 0.1, weight.shape).astype("float32"))
    theirs.save_to_preset(str(tmp_path))
    model = zoo.load(str(tmp_path))
    assert isinstance(model, zoo.DeitBackbone) and model.activation == "gelu"
    images = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    expected = np.asarray(theirs(images))  # [class, distillation, patches] after the final LN
    outputs = model(images)
    difference = float(np.abs(outputs["sequence_output"] - expected).max())
    print("keras-hub DeiT max abs difference", difference)
    assert difference <= 1e-5
    np.testing.assert_allclose(outputs["pooled_output"], expected[:, 0], atol=1e-5)
    np.testing.assert_allclose(outputs["distillation_output"], expected[:, 1], atol=1e-5)


def test_a_vit_becomes_a_deit_with_a_copy_of_its_class_token():
    vit = zoo.build("vit_test_tiny")
    deit = from_vit(vit)
    assert isinstance(deit, zoo.DeitBackbone)
    assert deit.count_params() == vit.count_params() + 2 * vit.hidden_size
    images = np.random.default_rng(1).normal(size=(2, 32, 32, 3)).astype("float32")
    outputs = deit(images)
    # Two identical tokens at identical positions stay identical through
    # every (permutation-equivariant) block: both heads start from the ViT's
    # class-token features.
    np.testing.assert_allclose(outputs["pooled_output"], outputs["distillation_output"],
                               atol=1e-6)
    tokens = deit.get_layer("embeddings")
    np.testing.assert_array_equal(tokens.distillation_token_embedding.numpy(),
                                  vit.get_layer("embeddings").class_token.numpy())
    for name in ("transformer", "layer_norm"):
        for ours, source in zip(deit.get_layer(name).weights, vit.get_layer(name).weights):
            np.testing.assert_array_equal(ours.numpy(), source.numpy())
    with pytest.raises(ValueError, match="VitBackbone"):
        from_vit(deit)
