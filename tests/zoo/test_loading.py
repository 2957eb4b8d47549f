"""zoo.load on our own .keras files, and its errors on anything it cannot read."""


import numpy as np
import pytest

import zoo
from zoo.heads import BackboneWithHeads

BATCH = {"input_word_ids": np.array([[2, 5, 7, 0]], "int32"),
         "input_mask": np.array([[1, 1, 1, 0]], "int32"),
         "input_type_ids": np.zeros((1, 4), "int32")}


@pytest.fixture(scope="module")
def saved_with_heads(tmp_path_factory):
    model = BackboneWithHeads(zoo.build("bert_test_tiny"), mlm_head={}, sentence_head="nsp",
                              classifier=dict(num_classes=3, label_names=["a", "b", "c"]))
    path = str(tmp_path_factory.mktemp("keras") / "model.keras")
    model.save(path)
    return model, path


def test_keras_file_with_heads_is_bit_identical(saved_with_heads):
    model, path = saved_with_heads
    loaded = zoo.load(path, with_head=True)
    for name in ("mlm_logits", "nsp_logits", "logits", "sequence_output"):
        np.testing.assert_array_equal(loaded(BATCH)[name], model(BATCH)[name])
    assert loaded.classifier["label_names"] == ["a", "b", "c"]


def test_keras_file_backbone_only(saved_with_heads):
    model, path = saved_with_heads
    backbone = zoo.load(path)
    assert isinstance(backbone, zoo.BertBackbone)
    np.testing.assert_array_equal(backbone(BATCH)["pooled_output"], model(BATCH)["pooled_output"])


def test_keras_file_overrides(saved_with_heads):
    model, path = saved_with_heads
    loaded = zoo.load(path, with_head=True, dtype="mixed_bfloat16", return_attention_scores=True)
    assert loaded.backbone.dtype_policy.name == "mixed_bfloat16"
    outputs = loaded(BATCH)
    assert len(outputs["attention_probs"]) == 2
    np.testing.assert_allclose(outputs["logits"], model(BATCH)["logits"], atol=3e-2)


def test_missing_path():
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        zoo.load("/nonexistent/model")


def test_unknown_folder_says_what_is_readable(tmp_path):
    (tmp_path / "weights.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"Cannot tell .*weights\.pt.*Hugging Face folder"):
        zoo.load(str(tmp_path))


def test_unknown_model_type_is_named(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    from zoo.convert.safetensors_io import write_safetensors

    write_safetensors({"a": np.zeros(2, "float32")}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="gpt2"):
        zoo.load(str(tmp_path))


def test_safetensors_round_trip_keeps_dtypes(tmp_path):
    import ml_dtypes

    from zoo.convert.safetensors_io import read_safetensors, write_safetensors

    tensors = {"f": np.arange(6, dtype="float32").reshape(2, 3),
               "b": np.arange(4).astype(ml_dtypes.bfloat16), "i": np.array([1, -2], "int64")}
    write_safetensors(tensors, str(tmp_path / "t.safetensors"))
    back = read_safetensors(str(tmp_path / "t.safetensors"))
    for name, value in tensors.items():
        assert back[name].dtype == value.dtype
        np.testing.assert_array_equal(back[name].astype("float32"), value.astype("float32"))
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    assert load_file(str(tmp_path / "t.safetensors"))["b"].dtype == torch.bfloat16



def test_a_run_folder_loads_as_its_model_keras(tmp_path):
    """tasks.run's model_dir (model.keras + tokenizer files) is a checkpoint."""
    backbone = zoo.build("bert_tiny_uncased", vocab_size=30, num_layers=1)
    backbone.save(str(tmp_path / "model.keras"))
    loaded = zoo.load(str(tmp_path))
    assert type(loaded) is type(backbone)
    for ours, theirs in zip(loaded.get_weights(), backbone.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
