"""Google TF1 checkpoints (google-research/bert, ALBERT): zoo.load gives transformers' outputs.

The checkpoints are written here with tf.compat.v1 under the variable names of
google-research/bert and google-research/albert, from a random transformers
model (tanh GELU, which is what the TF1 configs' "gelu" means). The name map
below is written out from those repositories, independently of zoo's tables.
"""

import dataclasses
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

import zoo
from tests.zoo import hf_fixtures as hf
from tests.zoo.test_convert_hf import TOLERANCE, max_differences
from zoo.convert.table import ConversionError
from zoo.convert.tf1 import find_tf1_checkpoint

# transformers name -> google-research name, before "." becomes "/" and the
# leaf (weight/bias) is renamed.
_SCOPES = [
    (r"^bert\.encoder\.layer\.(\d+)\.", r"bert.encoder.layer_\1."),
    (r"^albert\.encoder\.albert_layer_groups\.(\d+)\.albert_layers\.0\.",
     r"bert.encoder.transformer.group_\1.inner_group_0."),
    (r"\.attention\.(query|key|value)\.", r".attention_1.self.\1."),
    (r"\.attention\.dense\.", ".attention_1.output.dense."),
    (r"\.attention\.LayerNorm\.", ".LayerNorm."),
    (r"\.ffn_output\.", ".ffn_1.intermediate.output.dense."),
    (r"\.ffn\.", ".ffn_1.intermediate.dense."),
    (r"\.full_layer_layer_norm\.", ".LayerNorm_1."),
    (r"^albert\.pooler\.", "bert.pooler.dense."),
    (r"^albert\.", "bert."),
    (r"^predictions\.(dense|LayerNorm)\.", r"cls.predictions.transform.\1."),
]
# Heads whose TF1 variables are [out, in] like PyTorch's, or a bare bias.
_HEADS = {
    "cls.predictions.bias": "cls/predictions/output_bias",
    "predictions.bias": "cls/predictions/output_bias",
    "cls.seq_relationship.weight": "cls/seq_relationship/output_weights",
    "cls.seq_relationship.bias": "cls/seq_relationship/output_bias",
    "sop_classifier.classifier.weight": "cls/seq_relationship/output_weights",
    "sop_classifier.classifier.bias": "cls/seq_relationship/output_bias",
    "classifier.weight": "output_weights",
    "classifier.bias": "output_bias",
}


def tf1_variables(state):
    """google-research name -> array, from a transformers state dict."""
    variables = {}
    for name, value in state.items():
        value = np.asarray(value)
        if name in _HEADS:
            variables[_HEADS[name]] = value
            continue
        for pattern, replacement in _SCOPES:
            name = re.sub(pattern, replacement, name)
        scope, leaf = name.rsplit(".", 1)
        if "LayerNorm" in scope:
            leaf = {"weight": "gamma", "bias": "beta"}[leaf]
        elif scope.endswith("_embeddings"):
            leaf = None
        elif leaf == "weight":
            leaf, value = "kernel", value.T
        variables["/".join(filter(None, [scope.replace(".", "/"), leaf]))] = value
    return variables


def write_tf1_checkpoint(variables, prefix, step=1000):
    """Saves like TF1's run_pretraining: the weights, their Adam slots, global_step."""
    everything = dict(variables)
    for name, value in variables.items():
        everything[f"{name}/adam_m"] = np.zeros_like(value)
        everything[f"{name}/adam_v"] = np.full_like(value, 1e-3)
    everything["global_step"] = np.int64(step)
    graph = tf.Graph()
    with graph.as_default():
        saved = {name: tf.compat.v1.Variable(value, name=name)
                 for name, value in everything.items()}
        saver = tf.compat.v1.train.Saver(var_list=saved)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, prefix)


def tf1_config(model):
    """bert_config.json / albert_config.json, with the TF1 fields and "gelu"."""
    c = model.config
    config = dict(
        vocab_size=c.vocab_size, hidden_size=c.hidden_size,
        num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
        intermediate_size=c.intermediate_size, hidden_act="gelu",
        hidden_dropout_prob=c.hidden_dropout_prob,
        attention_probs_dropout_prob=c.attention_probs_dropout_prob,
        max_position_embeddings=c.max_position_embeddings,
        type_vocab_size=c.type_vocab_size, initializer_range=c.initializer_range,
    )
    if hasattr(c, "embedding_size"):
        config.update(embedding_size=c.embedding_size, num_hidden_groups=c.num_hidden_groups,
                      inner_group_num=c.inner_group_num, net_structure_type=0, gap_size=0,
                      num_memory_blocks=0, down_scale_factor=1)
    return config


def _tanh_gelu(name, **changes):
    case = hf.CASES[name]
    return dataclasses.replace(case, config=dict(case.config, hidden_act="gelu_new", **changes))


# name -> (case, checkpoint prefix name, config file name)
CASES = {
    "bert_pretraining": (_tanh_gelu("bert_pretraining_gelu"), "bert_model.ckpt",
                         "bert_config.json"),
    "bert_run_classifier": (_tanh_gelu("bert_classifier_gelu_new"), "model.ckpt-345",
                            "bert_config.json"),
    "albert_pretraining_2_groups": (_tanh_gelu("albert_pretraining"), "model.ckpt-best",
                                    "albert_config.json"),
    # An ALBERT config named bert_config.json: recognised by its embedding_size.
    "albert_pretraining_1_group": (_tanh_gelu("albert_pretraining", num_hidden_groups=1),
                                   "bert_model.ckpt", "bert_config.json"),
}


def write_case(name, folder, **config_changes):
    """A TF1 checkpoint folder for CASES[name]; returns (case, prefix, reference outputs)."""
    case, prefix_name, config_name = CASES[name]
    model = hf.make_model(case)
    state = hf.save(case, model, os.path.join(folder, "transformers"))
    tf1_folder = os.path.join(folder, "tf1")
    os.makedirs(tf1_folder)
    prefix = os.path.join(tf1_folder, prefix_name)
    write_tf1_checkpoint(tf1_variables(state), prefix)
    with open(os.path.join(tf1_folder, config_name), "w") as file:
        json.dump({**tf1_config(model), **config_changes}, file)
    return case, prefix, hf.reference_outputs(case, model, state)


@pytest.fixture(scope="module", params=sorted(CASES))
def saved(request, tmp_path_factory):
    case, prefix, reference = write_case(request.param, str(tmp_path_factory.mktemp("tf1")))
    return request.param, case, prefix, reference


def _heads_expected(reference):
    return {key for key in ("mlm_logits", "nsp_logits", "sop_logits", "logits")
            if key in reference}


def test_outputs_equal_transformers(saved):
    name, case, prefix, reference = saved
    model = zoo.load(os.path.dirname(prefix), with_head=True, output_embeddings=True,
                     return_attention_scores=True)
    outputs = model.predict(hf.text_batch(), verbose=0)
    assert _heads_expected(reference) <= set(outputs)
    differences = max_differences(outputs, reference)
    print(name, "max abs difference", max(differences.values()))
    assert max(differences.values()) <= TOLERANCE, differences


def test_run_classifier_logits_are_pooled_times_output_weights(tmp_path):
    _, prefix, _ = write_case("bert_run_classifier", str(tmp_path))
    model = zoo.load(prefix, with_head=True)
    assert model.classifier["num_classes"] == 3 and model.classifier["input"] == "pooled"
    outputs = model(hf.text_batch())
    reader = tf.train.load_checkpoint(prefix)
    weights, bias = reader.get_tensor("output_weights"), reader.get_tensor("output_bias")
    assert weights.shape == (3, hf.HIDDEN)
    expected = np.asarray(outputs["pooled_output"]) @ weights.T + bias
    np.testing.assert_allclose(outputs["logits"], expected, atol=TOLERANCE)


def test_backbone_only_leaves_heads_and_optimizer_state_out(saved):
    name, case, prefix, reference = saved
    model, report = zoo.loading.load_with_report(os.path.dirname(prefix))
    assert isinstance(model, zoo.registry.families()[case.family])
    np.testing.assert_allclose(model(hf.text_batch())["sequence_output"],
                               reference["sequence_output"], atol=TOLERANCE)
    left_out = dict(report.left_out)
    names = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    slots = {n for n in names if n.endswith(("/adam_m", "/adam_v"))}
    heads = {n for n in names if n.startswith(("cls/", "output_")) and n not in slots}
    assert heads and {n for n in left_out if "with_head=True" in left_out[n]} == heads
    assert slots and all("optimizer" in left_out[n] for n in slots)
    assert "global_step" in left_out
    loaded = {source for source, _ in report.loaded}
    assert not loaded & set(left_out)
    assert "bert/embeddings/word_embeddings" in loaded
    assert len(loaded) == len(model.weights)


def test_detects_folder_prefix_and_index_file(saved):
    name, case, prefix, reference = saved
    folder = os.path.dirname(prefix)
    for path in (folder, prefix, prefix + ".index"):
        assert find_tf1_checkpoint(path) == prefix
        assert zoo.loading.detect_format(path) == "tf1"
    np.testing.assert_allclose(zoo.load(prefix)(hf.text_batch())["sequence_output"],
                               reference["sequence_output"], atol=TOLERANCE)


def test_folder_choice_without_checkpoint_file(tmp_path):
    assert find_tf1_checkpoint(str(tmp_path)) is None
    for step in (900, 10000, 2000):
        (tmp_path / f"model.ckpt-{step}.index").touch()
    assert find_tf1_checkpoint(str(tmp_path)) == str(tmp_path / "model.ckpt-10000")
    (tmp_path / "model.ckpt-best.index").touch()
    assert find_tf1_checkpoint(str(tmp_path)) == str(tmp_path / "model.ckpt-best")
    (tmp_path / "checkpoint").write_text(
        'model_checkpoint_path: "/elsewhere/model.ckpt-2000"\n'
        'all_model_checkpoint_paths: "/elsewhere/model.ckpt-2000"\n')
    assert find_tf1_checkpoint(str(tmp_path)) == str(tmp_path / "model.ckpt-2000")


def test_shape_mismatch_names_variable_and_both_shapes(tmp_path):
    _, prefix, _ = write_case("bert_pretraining", str(tmp_path), vocab_size=120)
    with pytest.raises(ConversionError) as error:
        zoo.load(prefix)
    message = str(error.value)
    assert "bert/embeddings/word_embeddings" in message and "(99, 32)" in message
    assert "(120, 32)" in message and "vocabulary" in message
    assert "nothing was loaded" in message


def test_unsupported_inner_group_num_and_missing_config(tmp_path):
    _, prefix, _ = write_case("albert_pretraining_2_groups", str(tmp_path), inner_group_num=2)
    with pytest.raises(ConversionError, match="inner_group_num"):
        zoo.load(prefix)
    os.remove(os.path.join(os.path.dirname(prefix), "albert_config.json"))
    with pytest.raises(FileNotFoundError, match="bert_config.json"):
        zoo.load(prefix)
