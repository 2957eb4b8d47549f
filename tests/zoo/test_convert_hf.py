"""Hugging Face checkpoints: zoo.load gives the transformers outputs, save_hf writes them back."""

import numpy as np
import pytest

import zoo
from tests.zoo import hf_fixtures as hf
from zoo.convert import hf_tables
from zoo.convert.table import ConversionError

TOLERANCE = 1e-5


def max_differences(ours, reference):
    differences = {}
    for name, expected in reference.items():
        if isinstance(expected, list):
            for index, (a, b) in enumerate(zip(ours[name], expected)):
                differences[f"{name}[{index}]"] = float(np.abs(np.asarray(a) - b).max())
            assert len(ours[name]) == len(expected), name
        else:
            differences[name] = float(np.abs(np.asarray(ours[name]) - expected).max())
    return differences


def batch_for(case):
    return (hf.image_batch() if case.family in hf.IMAGE_FAMILIES
            else hf.text_batch(case.pad_id))


@pytest.fixture(scope="module", params=sorted(hf.CASES))
def saved(request, tmp_path_factory):
    case = hf.CASES[request.param]
    model = hf.make_model(case)
    folder = str(tmp_path_factory.mktemp(request.param))
    state = hf.save(case, model, folder)
    return request.param, case, folder, hf.reference_outputs(case, model, state)


def test_outputs_equal_transformers(saved):
    name, case, folder, reference = saved
    model = zoo.load(folder, with_head=True, output_embeddings=True,
                     return_attention_scores=True)
    outputs = model.predict(batch_for(case), verbose=0)
    differences = max_differences(outputs, reference)
    print(name, "max abs difference", max(differences.values()))
    assert max(differences.values()) <= TOLERANCE, differences


def test_backbone_only_leaves_heads_out(saved):
    name, case, folder, reference = saved
    model, report = zoo.loading.load_with_report(folder)
    assert isinstance(model, zoo.registry.families()[case.family])
    outputs = model(batch_for(case))
    np.testing.assert_allclose(outputs["sequence_output"], reference["sequence_output"],
                               atol=TOLERANCE)
    head_names = [n for n, why in report.left_out if "with_head=True" in why]
    assert bool(head_names) == any(k in reference for k in ("mlm_logits", "logits", "nsp_logits",
                                                            "start_logits", "rtd_logits"))


@pytest.mark.parametrize("name", ["bert_pretraining_gelu", "albert_pretraining",
                                  "distilbert_mlm", "vit_classifier", "tinybert_pretraining"])
def test_bin_format_without_torch_equals_safetensors(name, tmp_path):
    case = hf.CASES[name]
    model = hf.make_model(case)
    state = hf.save(case, model, str(tmp_path), bin_format=True)
    assert not (tmp_path / "model.safetensors").exists()
    loaded = zoo.load(str(tmp_path), with_head=True, output_embeddings=True,
                      return_attention_scores=True)
    differences = max_differences(loaded.predict(batch_for(case), verbose=0),
                                  hf.reference_outputs(case, model, state))
    assert max(differences.values()) <= TOLERANCE, differences


def test_old_gamma_beta_names_and_no_prefix(tmp_path):
    case = hf.CASES["bert_pretraining_gelu"]
    model = hf.make_model(case)
    hf.save(case, model.bert, str(tmp_path), old_norm_names=True)  # BertModel: no "bert." prefix
    loaded = zoo.load(str(tmp_path))
    reference = hf.reference_outputs(case, model, {})
    np.testing.assert_allclose(loaded(hf.text_batch())["sequence_output"],
                               reference["sequence_output"], atol=TOLERANCE)


def test_save_hf_round_trip_is_exact(saved, tmp_path):
    name, case, folder, reference = saved
    model = zoo.load(folder, with_head=True)
    out = str(tmp_path / "exported")
    zoo.save_hf(model, out)
    original = hf.hf_files_state(folder, case)
    written = hf.hf_files_state(out, case)
    # A checkpoint without a pooler gets the model's (random) one written too,
    # as transformers' save_pretrained of such a model does.
    prefix = hf_tables.BASE_PREFIXES[case.family]
    extra = ([f"{prefix}pooler.dense.bias", f"{prefix}pooler.dense.weight"]
             if "no_pooler" in name else [])
    assert sorted(set(written) - set(original)) == extra
    assert set(original) <= set(written)
    for key in original:
        np.testing.assert_array_equal(written[key], original[key], err_msg=key)


def test_save_hf_loads_in_transformers(saved, tmp_path):
    name, case, folder, reference = saved
    model = zoo.load(folder, with_head=True)
    out = str(tmp_path / "exported")
    zoo.save_hf(model, out)
    reloaded = getattr(hf.transformers, case.model_class).from_pretrained(
        out, attn_implementation="eager").eval()
    again = hf.reference_outputs(case, reloaded, hf.hf_files_state(out, case))
    differences = max_differences(again, reference)
    assert max(differences.values()) <= TOLERANCE, differences


@pytest.mark.parametrize("name", sorted(hf.CASES))
def test_mixed_bfloat16_stays_close(name, tmp_path):
    # Weights at their initial scale (not widened for the GELU checks), as in
    # real checkpoints.
    case = hf.CASES[name]
    model = hf.make_model(case, gelu_input_scale=1.0)
    reference = hf.reference_outputs(case, model, hf.save(case, model, str(tmp_path)))
    loaded = zoo.load(str(tmp_path), dtype="mixed_bfloat16")
    output = np.asarray(loaded(batch_for(case))["sequence_output"], "float32")
    difference = np.abs(output - reference["sequence_output"]).max()
    print(name, "mixed_bfloat16 max abs difference", difference)
    assert difference <= 2e-2


def test_shape_mismatch_names_variable_shapes_and_cause(tmp_path):
    case = hf.CASES["bert_pretraining_gelu"]
    hf.save(case, hf.make_model(case), str(tmp_path))
    hf.write_config(str(tmp_path), vocab_size=120)
    with pytest.raises(ConversionError) as error:
        zoo.load(str(tmp_path))
    message = str(error.value)
    assert "embeddings.word_embeddings.weight" in message and "(99, 32)" in message
    assert "(120, 32)" in message and "vocabulary" in message
    assert "nothing was loaded" in message


def test_missing_and_unexpected_variables_are_named(tmp_path):
    case = hf.CASES["bert_pretraining_gelu"]
    hf.save(case, hf.make_model(case), str(tmp_path))
    hf.write_config(str(tmp_path), num_hidden_layers=3)
    with pytest.raises(ConversionError, match=r"missing .*encoder\.layer\.2\.attention"):
        zoo.load(str(tmp_path))
    hf.write_config(str(tmp_path), num_hidden_layers=1)
    with pytest.raises(ConversionError, match=r"unexpected .*encoder\.layer\.1\."):
        zoo.load(str(tmp_path))


def test_a_checkpoint_without_pooler_keeps_a_random_one(tmp_path):
    # BertForMaskedLM (and add_pooling_layer=False) checkpoints have no
    # pooler: it stays randomly initialised, as in transformers, and the
    # report says so; everything else loads.
    case = hf.CASES["bert_mlm_no_pooler"]
    hf.save(case, hf.make_model(case), str(tmp_path))
    model, report = zoo.loading.load_with_report(str(tmp_path), with_head=True)
    assert "pooled_output" in model.output
    assert any(name == "pooler.dense" and "random initialisation" in why
               for name, why in report.left_out), report.summary()
    assert not any("pooler" in target for _, target in report.loaded)


def test_unknown_override_is_refused(saved):
    _, _, folder, _ = saved
    with pytest.raises(ValueError, match="num_layers"):
        zoo.load(folder, num_layers=3)


def test_tanh_gelu_models_save_as_gelu_new(tmp_path):
    # keras-hub and TF1 checkpoints load with "gelu_tanh", a name transformers'
    # ACT2FN lacks: save_hf writes its equal, "gelu_new", and transformers
    # reloads the model to the same outputs.
    model = zoo.build("bert_test_tiny", activation="gelu_tanh", dropout=0.0)
    zoo.save_hf(model, str(tmp_path / "hf"))
    reloaded = hf.transformers.BertModel.from_pretrained(
        str(tmp_path / "hf"), attn_implementation="eager").eval()
    assert reloaded.config.hidden_act == "gelu_new"
    batch = hf.text_batch()
    batch["input_word_ids"] = batch["input_word_ids"] % model.vocab_size
    with hf.torch.no_grad():
        expected = reloaded(input_ids=hf.torch.from_numpy(batch["input_word_ids"]).long(),
                            attention_mask=hf.torch.from_numpy(batch["input_mask"]).long(),
                            token_type_ids=hf.torch.from_numpy(batch["input_type_ids"]).long())
    np.testing.assert_allclose(model(batch)["sequence_output"],
                               expected.last_hidden_state.numpy(), atol=TOLERANCE)
