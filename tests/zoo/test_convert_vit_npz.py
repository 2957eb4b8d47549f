"""Original ViT .npz (JAX names): zoo.load gives the outputs of the same weights in transformers.

The .npz files are written here from a random Hugging Face ViT (tanh GELU,
LayerNorm epsilon 1e-6, as the JAX code), renamed and reshaped the way the
google-research/vision_transformer checkpoints store them.
"""

import numpy as np
import pytest

import zoo
from tests.zoo import hf_fixtures as hf
from zoo.convert.table import ConversionError

TOLERANCE = 1e-5
CASE = hf.Case("vit", "ViTForImageClassification", "ViTConfig",
               dict(hf._VIT, hidden_act="gelu_new", layer_norm_eps=1e-6, num_labels=5))
HEADS = CASE.config["num_attention_heads"]


def to_jax(state):
    """Hugging Face ViTForImageClassification tensors -> original .npz names and layouts."""
    s = {name.removeprefix("vit."): np.asarray(value) for name, value in state.items()}
    hidden = s["embeddings.cls_token"].shape[-1]
    split = (HEADS, hidden // HEADS)
    npz = {
        "cls": s["embeddings.cls_token"],
        "Transformer/posembed_input/pos_embedding": s["embeddings.position_embeddings"],
        "embedding/kernel":  # [H, C, P, P] -> [P, P, C, H]
            s["embeddings.patch_embeddings.projection.weight"].transpose(2, 3, 1, 0),
        "embedding/bias": s["embeddings.patch_embeddings.projection.bias"],
        "Transformer/encoder_norm/scale": s["layernorm.weight"],
        "Transformer/encoder_norm/bias": s["layernorm.bias"],
        "head/kernel": s["classifier.weight"].T,
        "head/bias": s["classifier.bias"],
    }
    for i in range(CASE.config["num_hidden_layers"]):
        hf_layer, block = f"encoder.layer.{i}", f"Transformer/encoderblock_{i}"
        attention = f"{block}/MultiHeadDotProductAttention_1"
        for ours, theirs in [("query", "query"), ("key", "key"), ("value", "value")]:
            npz[f"{attention}/{ours}/kernel"] = (
                s[f"{hf_layer}.attention.attention.{theirs}.weight"].T.reshape(hidden, *split))
            npz[f"{attention}/{ours}/bias"] = (
                s[f"{hf_layer}.attention.attention.{theirs}.bias"].reshape(split))
        npz[f"{attention}/out/kernel"] = (
            s[f"{hf_layer}.attention.output.dense.weight"].T.reshape(*split, hidden))
        npz[f"{attention}/out/bias"] = s[f"{hf_layer}.attention.output.dense.bias"]
        for norm, theirs in [("LayerNorm_0", "layernorm_before"),
                             ("LayerNorm_2", "layernorm_after")]:
            npz[f"{block}/{norm}/scale"] = s[f"{hf_layer}.{theirs}.weight"]
            npz[f"{block}/{norm}/bias"] = s[f"{hf_layer}.{theirs}.bias"]
        for dense, theirs in [("Dense_0", "intermediate.dense"), ("Dense_1", "output.dense")]:
            npz[f"{block}/MlpBlock_3/{dense}/kernel"] = s[f"{hf_layer}.{theirs}.weight"].T
            npz[f"{block}/MlpBlock_3/{dense}/bias"] = s[f"{hf_layer}.{theirs}.bias"]
    return {name: np.ascontiguousarray(value, dtype="float32") for name, value in npz.items()}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(jax-named arrays, transformers outputs)."""
    model = hf.make_model(CASE)  # GELU inputs widened so the two GELUs differ
    state = hf.save(CASE, model, str(tmp_path_factory.mktemp("hf")))
    return to_jax(state), hf.reference_outputs(CASE, model, state)


def write(tmp_path, arrays, name="ViT-test.npz"):
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


def max_differences(ours, reference):
    differences = {}
    for name, expected in reference.items():
        expected = expected if isinstance(expected, list) else [expected]
        got = ours[name] if isinstance(ours[name], list) else [ours[name]]
        assert len(got) == len(expected), name
        for index, (a, b) in enumerate(zip(got, expected)):
            differences[f"{name}[{index}]"] = float(np.abs(np.asarray(a) - b).max())
    return differences


def test_outputs_equal_transformers(checkpoint, tmp_path):
    arrays, reference = checkpoint
    model = zoo.load(write(tmp_path, arrays), with_head=True, output_embeddings=True,
                     return_attention_scores=True)
    config = model.backbone.get_config()
    assert (config["image_size"], config["patch_size"], config["num_layers"],
            config["num_heads"], config["intermediate_size"], config["representation_size"],
            config["activation"], config["layer_norm_epsilon"]) == (
        (32, 32), 8, 2, 4, 37, None, "gelu_tanh", 1e-6)
    outputs = model.predict(hf.image_batch(), verbose=0)
    differences = max_differences(outputs, reference)
    print("max abs difference", max(differences.values()))
    assert set(reference) == {"sequence_output", "encoder_outputs", "attention_probs", "logits"}
    assert max(differences.values()) <= TOLERANCE, differences


def test_backbone_only_reports_head_left_out(checkpoint, tmp_path):
    arrays, reference = checkpoint
    model, report = zoo.loading.load_with_report(write(tmp_path, arrays))
    assert isinstance(model, zoo.registry.families()["vit"])
    assert sorted(report.left_out) == [
        ("head/bias", "a head: zoo.load(..., with_head=True) loads it"),
        ("head/kernel", "a head: zoo.load(..., with_head=True) loads it")]
    assert len(report.loaded) == len(arrays) - 2
    np.testing.assert_allclose(model(hf.image_batch())["sequence_output"],
                               reference["sequence_output"], atol=TOLERANCE)


def test_imagenet21k_pre_logits(checkpoint, tmp_path):
    arrays, reference = checkpoint
    rng = np.random.default_rng(3)
    representation, classes = 24, 7
    w, b, head_w, head_b = (rng.normal(size=shape).astype("float32") * 0.3 for shape in
                            [(32, representation), (representation,),
                             (representation, classes), (classes,)])
    arrays = {**arrays, "pre_logits/kernel": w, "pre_logits/bias": b,
              "head/kernel": head_w, "head/bias": head_b}
    model = zoo.load(write(tmp_path, arrays), with_head=True)
    assert model.backbone.get_config()["representation_size"] == representation
    outputs = model.predict(hf.image_batch(), verbose=0)
    pooled = np.tanh(reference["sequence_output"][:, 0] @ w + b)
    np.testing.assert_allclose(outputs["pooled_output"], pooled, atol=TOLERANCE)
    # The JAX model's head reads pre_logits, not the class token.
    np.testing.assert_allclose(outputs["logits"], pooled @ head_w + head_b, atol=TOLERANCE)


def test_truncated_npz_names_missing_variables(checkpoint, tmp_path):
    arrays, _ = checkpoint
    missing = "Transformer/encoderblock_1/MlpBlock_3/Dense_1/kernel"
    truncated = {k: v for k, v in arrays.items() if k != missing}
    with pytest.raises(ConversionError) as error:
        zoo.load(write(tmp_path, truncated))
    assert missing in str(error.value) and "nothing was loaded" in str(error.value)


def test_foreign_npz_says_which_keys_were_expected(tmp_path):
    path = write(tmp_path, {"weights": np.zeros((3, 3)), "bias": np.zeros(3)})
    with pytest.raises(ConversionError) as error:
        zoo.load(path)
    message = str(error.value)
    assert "not an original ViT .npz" in message
    assert "embedding/kernel" in message and "Transformer/posembed_input/pos_embedding" in message
    assert "'weights'" in message  # what was found instead


def test_not_an_archive(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip file at all")
    with pytest.raises(ConversionError, match="not a readable .npz"):
        zoo.load(str(path))
