import pytest

import zoo

PUBLISHED = {
    "bert_tiny_uncased": 4_385_920,
    "bert_mini_uncased": 11_170_560,
    "bert_small_uncased": 28_763_648,
    "bert_medium_uncased": 41_373_184,
    "bert_base_uncased": 109_482_240,
    "bert_base_cased": 108_310_272,
    "bert_large_uncased": 335_141_888,
    "bert_base_multilingual_cased": 177_853_440,
    "albert_base_v2": 11_683_584,
    "albert_large_v2": 17_683_968,
    "albert_xlarge_v2": 58_724_864,
    "albert_xxlarge_v2": 222_595_584,
    "distilbert_base_uncased": 66_362_880,
    "distilbert_base_cased": 65_190_912,
    "tinybert_4l_312d": 14_350_248,
    "tinybert_6l_768d": 66_955_008,
    "roberta_base": 124_645_632,
    "roberta_large": 355_359_744,
    "distilroberta_base": 82_118_400,
    "xlm_roberta_base": 278_043_648,
    "electra_small_discriminator": 13_483_008,
    "electra_base_discriminator": 108_891_648,
    "electra_large_discriminator": 334_092_288,
    "electra_small_generator": 13_483_008,
    "electra_base_generator": 33_511_168,
    "electra_large_generator": 50_999_552,
    "xlm_roberta_large": 559_890_432,
    "vit_base_patch16_224": 85_798_656,
    "vit_base_patch32_224": 87_455_232,
    "vit_large_patch16_224": 303_301_632,
    "vit_large_patch32_224": 305_510_400,
    "vit_huge_patch14_224": 630_764_800,
    # DeiT: the base models' counts (DeiTModel / ViTModel without pooler);
    # tests/zoo/test_deit.py builds them in transformers too.
    "deit_tiny_patch16_224": 5_524_416,
    "deit_small_patch16_224": 21_665_664,
    "deit_base_patch16_224": 85_798_656,
    "deit_tiny_distilled_patch16_224": 5_524_800,
    "deit_small_distilled_patch16_224": 21_666_432,
    "deit_base_distilled_patch16_224": 85_800_192,
}
TINY = ["bert_test_tiny", "albert_test_tiny", "distilbert_test_tiny",
        "tinybert_test_tiny", "roberta_test_tiny", "electra_test_tiny", "vit_test_tiny", "vit_tiny_patch2_8",
        "deit_test_tiny", "deit_tiny_patch2_8"]


def analytic_count(name, **overrides):
    preset = zoo.get_preset(name)
    return preset.backbone_class.count_parameters(**{**preset.arguments, **overrides})


def test_available_lists_every_preset_sorted():
    names = zoo.available()
    assert names == sorted(names)
    assert set(PUBLISHED) | set(TINY) == set(names)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_count_is_recorded_and_derived(name):
    preset = zoo.get_preset(name)
    assert preset.parameters == PUBLISHED[name]
    assert analytic_count(name) == PUBLISHED[name]
    assert preset.description and preset.family in zoo.families()


@pytest.mark.parametrize("name", TINY)
def test_analytic_count_equals_built_count(name):
    # The analytic formula is what vouches for the published sizes above
    # without building 600M-parameter models; here it meets real models.
    assert zoo.build(name).count_params() == analytic_count(name) == zoo.get_preset(name).parameters


@pytest.mark.parametrize("name,overrides", [
    ("albert_test_tiny", dict(num_groups=4)),
    ("albert_test_tiny", dict(num_groups=1, embedding_size=16)),
    ("bert_test_tiny", dict(type_vocab_size=4, max_sequence_length=64)),
    ("tinybert_test_tiny", dict(teacher_hidden_size=24)),
    ("vit_test_tiny", dict(image_size=(48, 32), representation_size=8)),
    ("deit_test_tiny", dict(image_size=(48, 32), representation_size=8, num_channels=1)),
])
def test_analytic_count_follows_overrides(name, overrides):
    assert zoo.build(name, **overrides).count_params() == analytic_count(name, **overrides)


def test_unknown_preset_lists_close_matches():
    with pytest.raises(ValueError, match="bert_base_uncased") as error:
        zoo.build("bert_base_uncase")
    assert "Unknown preset 'bert_base_uncase'" in str(error.value)


def test_unknown_preset_without_close_match():
    with pytest.raises(ValueError, match="zoo.available"):
        zoo.build("resnet50")


def test_overrides_reach_the_backbone():
    model = zoo.build("bert_test_tiny", num_layers=3, dropout=0.0)
    assert model.num_layers == 3 and model.dropout == 0.0
    assert len(model.get_layer("transformer").blocks) == 3


@pytest.mark.heavy
@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_building_published_preset_gives_published_count(name):
    import keras

    model = zoo.build(name)
    assert model.count_params() == PUBLISHED[name]
    del model
    keras.backend.clear_session()
