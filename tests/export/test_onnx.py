"""ONNX export: a text classifier and a ViT classifier in ONNX Runtime give
the SavedModel's predictions; int8 keeps the labels; the tokenizer files
beside model.onnx reproduce the ids; what cannot convert says so.

One module fixture builds, saves and exports both models once: float32 ONNX,
int8 ONNX of the text model, and the SavedModels they are compared with.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

import export  # noqa: E402
import zoo  # noqa: E402
from export import onnx as onnx_export  # noqa: E402
from export import onnx_verify  # noqa: E402
from kerasbert.text import build_wordpiece_vocabulary  # noqa: E402
from tasks.base import TaskConfig  # noqa: E402
from tests.export.test_export import SEQUENCE, TEXTS, save_task_model  # noqa: E402
from tests.text_corpus import training_corpus  # noqa: E402

FLOAT_TOLERANCE = 1e-4
INT8_TOLERANCE = 0.02  # the text model's int8 logits moved by 6e-5 here


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from tasks.classification import TextClassificationTask
    from tasks.image_classification import ImageClassificationTask

    keras.utils.set_random_seed(3)
    root = tmp_path_factory.mktemp("onnx")
    build_wordpiece_vocabulary(training_corpus()[:400], 300, lower_case=True,
                               output_file=str(root / "vocab.txt"))
    vocab_size = sum(1 for _ in open(root / "vocab.txt"))
    text_task = TextClassificationTask(TaskConfig(options={
        "labels": ["negative", "neutral", "positive"]}))
    save_task_model(root / "text", text_task,
                    zoo.build("bert_test_tiny", vocab_size=vocab_size, dropout=0.0), root)
    image_task = ImageClassificationTask(TaskConfig(options={
        "labels": ["cat", "dog"], "mean": 0.5, "std": 0.25}))
    _, image_spec = save_task_model(root / "image", image_task,
                                    zoo.build("vit_test_tiny", dropout=0.0), None)
    result = {"root": root, "image_spec": image_spec}
    for name in ("text", "image"):
        run = str(root / name)
        result[name] = {
            "saved_model": export.export_model(run, str(root / "sm" / name),
                                               warmup_requests=False),
            # The tests compare every file with the SavedModel; export_onnx's
            # own check runs in docs/export.md's example.
            "float32": onnx_export.export_onnx(run, str(root / "onnx" / name), verify=False),
        }
    result["text"]["int8"] = onnx_export.export_onnx(
        str(root / "text"), str(root / "onnx" / "text"), quantize="int8", verify=False)
    return result


def _run(version, inputs):
    session = onnx_export.session(os.path.join(version, onnx_export.MODEL_FILE))
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs)))


def _saved_model(version, inputs):
    serve_ids = tf.saved_model.load(version).signatures["serve_ids"]
    return {name: value.numpy()
            for name, value in serve_ids(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def _text_inputs(folder):
    ids = zoo.load_preprocessor(str(folder), sequence_length=SEQUENCE)(TEXTS)
    return {name: value.numpy() for name, value in ids.items()}


def _image_inputs(spec):
    height, width = spec.image_size
    rng = np.random.default_rng(0)
    return {"images": rng.normal(size=(4, height, width, spec.num_channels)).astype("float32")}


def _assert_like_saved_model(name, exported, inputs):
    expected = _saved_model(exported[name]["saved_model"], inputs)
    served = _run(exported[name]["float32"], inputs)
    # Every numeric output of serve_ids, none of the strings (label_name).
    assert sorted(served) == ["label", "logits", "probabilities"]
    assert expected["label_name"].dtype == object
    for output in served:
        np.testing.assert_allclose(served[output], expected[output], atol=FLOAT_TOLERANCE,
                                   err_msg=output)
    np.testing.assert_array_equal(served["label"], expected["label"])
    if "int8" not in exported[name]:
        return
    quantized = _run(exported[name]["int8"], inputs)
    error = np.abs(quantized["logits"] - expected["logits"]).max()
    top_two = np.sort(expected["logits"], axis=-1)[:, -2:]
    print(f"{name}: int8 max |logits - SavedModel's| {error:.2g}, smallest top-two margin "
          f"{(top_two[:, 1] - top_two[:, 0]).min():.2g}")
    assert error <= INT8_TOLERANCE
    np.testing.assert_array_equal(quantized["label"], expected["label"])


@pytest.mark.heavy  # the module fixture: 10-34 s here, with the machine idle to busy
def test_text_classifier_predicts_as_the_saved_model(exported):
    # The ids come from the tokenizer files written beside model.onnx.
    inputs = _text_inputs(exported["text"]["float32"])
    _assert_like_saved_model("text", exported, inputs)


@pytest.mark.heavy
def test_image_classifier_predicts_as_the_saved_model(exported):
    _assert_like_saved_model("image", exported, _image_inputs(exported["image_spec"]))


@pytest.mark.heavy
def test_layout_and_tokenizer_files(exported):
    text = exported["text"]
    assert text["float32"].endswith(os.path.join("onnx", "text", "1"))
    assert text["int8"].endswith(os.path.join("onnx", "text", "2"))
    assert sorted(os.listdir(os.path.dirname(text["float32"]))) == ["1", "2"]  # no temporary
    assert sorted(os.listdir(text["float32"])) == [
        "model.onnx", "serving.json", "tokenizer_config.json", "vocab.txt"]
    assert sorted(os.listdir(exported["image"]["float32"])) == ["model.onnx", "serving.json"]
    # The tokenizer files beside model.onnx give the ids the run's own do.
    beside = _text_inputs(text["float32"])
    own = _text_inputs(exported["root"] / "text" / "model.keras")
    for name in own:
        np.testing.assert_array_equal(beside[name], own[name], err_msg=name)
    assert export.read_spec(text["float32"]).label_names == ("negative", "neutral", "positive")
    # int8: every product with a weight is an integer one; float32: none is.
    for kind, expected in (("float32", {"MatMul", "Gemm"}), ("int8", {"MatMulInteger"})):
        model = onnx.load(os.path.join(text[kind], "model.onnx"))
        weights = {tensor.name for tensor in model.graph.initializer}
        with_weights = {node.op_type for node in model.graph.node
                        if node.op_type.startswith(("MatMul", "Gemm"))
                        and len(node.input) > 1 and node.input[1] in weights}
        assert with_weights == expected, (kind, with_weights)


@pytest.mark.heavy
def test_bad_requests_are_refused_clearly(exported):
    run, base = str(exported["root"] / "text"), str(exported["root"] / "onnx" / "text")
    with pytest.raises(ValueError, match="quantize='int4'"):
        onnx_export.export_onnx(run, base, quantize="int4")
    with pytest.raises(FileExistsError, match="immutable"):
        onnx_export.export_onnx(run, base, version=1)
    with pytest.raises(onnx_export.OnnxExportError, match="is an export .*model.keras"):
        onnx_export.export_onnx(exported["text"]["saved_model"], base)
    # An operation ONNX has no conversion for: named, with what to do instead.
    inputs = {name: keras.Input((None,), dtype="int32", name=name)
              for name in ("input_word_ids", "input_mask", "input_type_ids")}
    embedding = keras.layers.Lambda(lambda ids: tf.math.lgamma(
        tf.cast(ids, tf.float32) + 2.0))(inputs["input_word_ids"])
    model = keras.Model(inputs, {"embedding": embedding})
    with pytest.raises(onnx_export.OnnxExportError, match="Lgamma.*--format=saved_model"):
        onnx_export.to_onnx(model, export.ServingSpec(kind="embedding"))


def test_verification_bounds_float_outputs_and_int8_decisions():
    spec = export.ServingSpec(kind="classifier")
    logits = np.array([[2.0, 0.0, -1.0], [0.1, 0.0, -1.0]], np.float32)
    expected = {"logits": logits, "label": np.array([0, 0], np.int32)}
    off = {"logits": logits + 2e-4, "label": expected["label"]}
    with pytest.raises(onnx_export.OnnxExportError, match="beyond 0.0001.*logits"):
        onnx_verify.compare(off, expected, spec)
    # int8: the scores are reported, not bounded; a label may change only
    # where the float model was unsure (its second row: top two 0.1 apart).
    flipped = {"logits": logits + 0.05, "label": np.array([0, 1], np.int32)}
    assert onnx_verify.compare(flipped, expected, spec, quantized=True)["logits"] > 0.04
    wrong = {"logits": logits, "label": np.array([1, 0], np.int32)}
    with pytest.raises(onnx_export.OnnxExportError, match="label differs .* on 1 sample"):
        onnx_verify.compare(wrong, expected, spec, quantized=True)
