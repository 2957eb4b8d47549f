"""Behaviour every backbone promises, checked on each family's tiny preset."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo

TEXT = ["bert_test_tiny", "albert_test_tiny", "distilbert_test_tiny", "tinybert_test_tiny",
        "roberta_test_tiny", "electra_test_tiny"]
ALL = TEXT + ["vit_test_tiny", "deit_test_tiny"]


def text_batch(length=7, padded=2, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 100, (2, length)).astype("int32")
    mask = np.ones((2, length), "int32")
    mask[0, length - padded:] = 0
    ids[mask == 0] = 0
    types = np.zeros((2, length), "int32")
    types[:, length // 2:] = 1
    return {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types}


def batch_for(model):
    if isinstance(model, zoo.VitBackbone):
        return np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    return text_batch()


@pytest.fixture(scope="module", params=ALL)
def model(request):
    return zoo.build(request.param)


def test_output_names_and_shapes(model):
    outputs = model(batch_for(model))
    hidden = model.hidden_size
    expected = {"sequence_output", "encoder_outputs"}
    if not isinstance(model, (zoo.DistilBertBackbone, zoo.ElectraBackbone)):  # no pooler
        expected.add("pooled_output")
        assert outputs["pooled_output"].shape == (2, hidden)
    if isinstance(model, zoo.DeitBackbone):  # the distillation token after the final LN
        expected.add("distillation_output")
        np.testing.assert_array_equal(outputs["distillation_output"],
                                      outputs["sequence_output"][:, 1])
    assert set(outputs) == expected
    assert outputs["sequence_output"].shape[-1] == hidden
    assert len(outputs["encoder_outputs"]) == model.num_layers
    if isinstance(model, zoo.VitBackbone):
        assert model.input.name == "images"
        tokens = 2 if isinstance(model, zoo.DeitBackbone) else 1  # class (+ distillation)
        assert outputs["sequence_output"].shape == (2, tokens + 16, hidden)
    else:
        assert sorted(model.input) == ["input_mask", "input_type_ids", "input_word_ids"]


def test_named_layers(model):
    assert model.get_layer("embeddings") is not None
    transformer = model.get_layer("transformer")
    assert transformer.blocks[0].name == "layer_0"
    if isinstance(model, (zoo.BertBackbone, zoo.AlbertBackbone, zoo.TinyBertBackbone)):
        assert model.get_layer("pooler") is not None


def test_config_round_trip(model):
    config = model.get_config()
    clone = type(model).from_config(config)
    assert clone.get_config() == config
    clone.set_weights(model.get_weights())
    batch = batch_for(model)
    np.testing.assert_array_equal(clone(batch)["sequence_output"], model(batch)["sequence_output"])


def test_keras_file_round_trip_is_bit_identical(model, tmp_path):
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    batch = batch_for(model)
    for a, b in zip(keras.tree.flatten(model(batch)), keras.tree.flatten(loaded(batch))):
        np.testing.assert_array_equal(a, b)


def test_dropout_off_at_inference(model):
    batch = batch_for(model)
    first = model(batch)["sequence_output"]
    np.testing.assert_array_equal(first, model(batch)["sequence_output"])
    predicted = model.predict(batch, verbose=0)["sequence_output"]
    np.testing.assert_array_equal(predicted, model.predict(batch, verbose=0)["sequence_output"])
    np.testing.assert_allclose(predicted, first, atol=1e-5)  # graph vs eager rounding
    if model.dropout:
        assert not np.allclose(first, model(batch, training=True)["sequence_output"])


def test_xla_compiled_call_agrees(model):
    batch = batch_for(model)
    compiled = tf.function(model, jit_compile=True)(batch)
    np.testing.assert_allclose(compiled["sequence_output"], model(batch)["sequence_output"],
                               atol=1e-5)


def test_gradients_reach_every_trainable_weight(model):
    batch = batch_for(model)
    with tf.GradientTape() as tape:
        outputs = model(batch, training=True)
        loss = sum(tf.reduce_sum(tf.sin(t)) for t in keras.tree.flatten(outputs))
    gradients = tape.gradient(loss, model.trainable_weights)
    missing = [w.path for w, g in zip(model.trainable_weights, gradients)
               if g is None or not np.any(np.asarray(g))]
    assert missing == []


@pytest.mark.parametrize("name", TEXT)
def test_padding_never_changes_real_positions(name):
    model = zoo.build(name)
    short = text_batch(length=7, padded=0)
    long = {key: np.pad(value, ((0, 0), (0, 5))) for key, value in short.items()}
    long["input_word_ids"][:, 7:] = 42  # garbage under the mask must not leak
    a, b = model(short), model(long)
    np.testing.assert_allclose(b["sequence_output"][:, :7], a["sequence_output"], atol=1e-5)
    if "pooled_output" in a:
        np.testing.assert_allclose(b["pooled_output"], a["pooled_output"], atol=1e-5)


@pytest.mark.parametrize("name", ["bert_test_tiny", "albert_test_tiny", "vit_test_tiny"])
def test_every_layer_output_is_that_layers_own(name):
    model = zoo.build(name, output_embeddings=True, return_attention_scores=True)
    batch = batch_for(model)
    outputs = model(batch)
    transformer = model.get_layer("transformer")
    mask = None if name == "vit_test_tiny" else batch["input_mask"]
    x = outputs["encoder_outputs"][0]
    for index in range(model.num_layers):
        x, _, probabilities = transformer.block_for_layer(index)(
            x, attention_mask=mask, return_attention_scores=True)
        np.testing.assert_allclose(outputs["encoder_outputs"][index + 1], x, atol=1e-5)
        np.testing.assert_allclose(outputs["attention_probs"][index], probabilities, atol=1e-6)


def test_distilbert_ignores_type_ids():
    model = zoo.build("distilbert_test_tiny")
    batch = text_batch()
    other = dict(batch, input_type_ids=1 - batch["input_type_ids"])
    np.testing.assert_array_equal(model(batch)["sequence_output"], model(other)["sequence_output"])


@pytest.mark.parametrize("name", ALL)
def test_attention_scores_and_embeddings_on_request(name):
    model = zoo.build(name, return_attention_scores=True, output_embeddings=True)
    outputs = model(batch_for(model))
    assert len(outputs["encoder_outputs"]) == model.num_layers + 1
    assert len(outputs["attention_scores"]) == model.num_layers
    probabilities = outputs["attention_probs"][0].numpy()
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    if name in TEXT:
        assert np.all(probabilities[0, :, :, -2:] == 0.0)  # padded keys


def test_albert_shares_one_set_of_block_weights():
    model = zoo.build("albert_test_tiny", num_groups=1)
    block_paths = {w.path.split("/")[1] for w in model.weights if w.path.startswith("transformer/")}
    assert block_paths == {"layer_0"}
    unshared = zoo.build("albert_test_tiny", num_groups=4)
    assert unshared.count_params() - model.count_params() == 3 * (
        model.get_layer("transformer").blocks[0].count_params())


def test_tinybert_fit_dense_projects_to_teacher_width():
    model = zoo.build("tinybert_test_tiny", teacher_hidden_size=24, output_embeddings=True)
    outputs = model(text_batch())
    fit_dense = model.get_layer("fit_dense")
    assert len(outputs["fit_dense_outputs"]) == model.num_layers + 1
    for hidden, projected in zip(outputs["encoder_outputs"], outputs["fit_dense_outputs"]):
        kernel, bias = (w.numpy() for w in fit_dense.weights)
        np.testing.assert_allclose(projected, hidden.numpy() @ kernel + bias, atol=1e-5)


def test_vit_builds_at_another_image_size():
    model = zoo.build("vit_test_tiny", image_size=48)
    assert model.get_layer("embeddings").position_embeddings.shape == (1, 37, 16)
    outputs = model(np.zeros((1, 48, 48, 3), "float32"))
    assert outputs["sequence_output"].shape == (1, 37, 16)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", ["bert_test_tiny", "vit_test_tiny"])
def test_mixed_precision_keeps_norms_and_softmax_in_float32(policy, name):
    reference = zoo.build(name, return_attention_scores=True)
    model = zoo.build(name, return_attention_scores=True, dtype=policy)
    model.set_weights(reference.get_weights())
    assert model.dtype_policy.name == policy
    assert type(model).from_config(model.get_config()).dtype_policy.name == policy
    assert all(w.dtype == "float32" for w in model.weights)
    batch = batch_for(model)
    outputs, expected = model(batch), reference(batch)
    # the residual stream (and so sequence_output) stays float32, as in torch autocast
    assert outputs["sequence_output"].dtype == "float32"
    assert outputs["attention_probs"][0].dtype == "float32"
    block = model.get_layer("transformer").blocks[0]
    assert block.intermediate.compute_dtype == keras.DTypePolicy(policy).compute_dtype
    tolerance = 0.03 if policy == "mixed_bfloat16" else 0.005
    np.testing.assert_allclose(np.asarray(outputs["sequence_output"], "float32"),
                               expected["sequence_output"], atol=tolerance)


@pytest.mark.parametrize("name", ["bert_test_tiny", "albert_test_tiny", "vit_test_tiny"])
def test_tf_checkpoint_of_the_model_alone_holds_every_weight(name, tmp_path):
    model = zoo.build(name)
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    saved = {name for name, _ in tf.train.list_variables(path) if "OPTIMIZER" not in name}
    assert len([n for n in saved if n.endswith(".ATTRIBUTES/VARIABLE_VALUE")]) == len(model.weights)
    other = zoo.build(name)
    tf.train.Checkpoint(model=other).read(path).assert_existing_objects_matched()
    for a, b in zip(model.weights, other.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
