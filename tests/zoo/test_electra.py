"""The ELECTRA presets are Google's published configs, with transformers' counts."""

import inspect

import pytest

import zoo
from zoo.convert import hf

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

# config.json of hf://google/electra-{size}-{network} (all: vocab 30522, 512
# positions, 2 segments, "gelu", LN epsilon 1e-12). The generators are 256
# wide over tables as wide as their discriminator's, which they shared in
# pretraining; keras-hub's electra_*_generator_uncased_en presets count the
# same sizes (plus a pooled_dense ELECTRA does not have).
_SIZES = {  # name: (embedding_size, hidden_size, layers, heads, intermediate)
    "electra_small_discriminator": (128, 256, 12, 4, 1024),
    "electra_base_discriminator": (768, 768, 12, 12, 3072),
    "electra_large_discriminator": (1024, 1024, 24, 16, 4096),
    "electra_small_generator": (128, 256, 12, 4, 1024),
    "electra_base_generator": (768, 256, 12, 4, 1024),
    "electra_large_generator": (1024, 256, 24, 4, 1024),
}


def published_config(name):
    embedding, hidden, layers, heads, intermediate = _SIZES[name]
    return dict(model_type="electra", vocab_size=30522, embedding_size=embedding,
                hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                intermediate_size=intermediate, hidden_act="gelu", hidden_dropout_prob=0.1,
                attention_probs_dropout_prob=0.1, max_position_embeddings=512,
                type_vocab_size=2, layer_norm_eps=1e-12)


@pytest.mark.parametrize("name", sorted(_SIZES))
def test_preset_is_the_published_config_with_transformers_count(name):
    config = published_config(name)
    preset = zoo.get_preset(name)
    defaults = {parameter.name: parameter.default for parameter in
                inspect.signature(zoo.ElectraBackbone.__init__).parameters.values()}
    # What zoo.load makes of the published config is the preset, argument for argument.
    for argument, value in hf.backbone_arguments("electra", config, {}).items():
        assert preset.arguments.get(argument, defaults[argument]) == value, argument
    # transformers' ElectraModel built from the config, on the meta device
    # (shapes only, nothing allocated), counts the preset's parameters.
    with torch.device("meta"):
        model = transformers.ElectraModel(transformers.ElectraConfig(**config))
    assert sum(parameter.numel() for parameter in model.parameters()) == preset.parameters
    assert preset.weights.sources == (f"hf://google/{name.replace('_', '-')}",)
