"""LiteRT exports (export/litert.py) run in the LiteRT interpreter.

A tiny text classifier whose tokenizer goes inside the file (unigram
SentencePiece with XLM-R's fairseq ids) and a tiny ViT classifier, exported
float32 and int8, give the in-process Keras model's predictions; the
in-file tokenizer gives the SavedModel's ids on the varied test corpus.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from export import litert, litert_runtime
from export.litert_text import LiteRtPreprocessor, text_support
from kerasbert.text import (TRUNCATIONS, Preprocessor, SentencePieceTokenizer,
                            build_sentencepiece_model)
from tasks.base import TaskConfig
from tests.export.test_export import SEQUENCE, TEXTS, save_task_model
from tests.text_corpus import corpus, training_corpus

FLOAT_TOLERANCE = 1e-4  # LiteRT's float32 kernels against TensorFlow's
TEST_TEXTS = TEXTS + corpus(lines=12, seed=3)


def input_dependent(task_class, inputs, spread=10.0):
    """The task with a model whose labels depend on its input.

    A random tiny model answers every input alike (the logits of the text
    classifier vary by ~1e-5 across texts), so equal labels would prove
    nothing. Its matrices widened `spread` times make the outputs depend on
    the input, and the head's bias centered on `inputs` spreads their labels
    over the classes.
    """

    class InputDependent(task_class):
        def build_model(self, backbone):
            model = super().build_model(backbone)
            for weight in model.weights:
                if len(weight.shape) >= 2:
                    weight.assign(weight * spread)
            head = model.get_layer("classifier")
            kernel, bias = head.get_weights()
            mean = np.asarray(model(inputs())["logits"]).mean(axis=0)
            head.set_weights([kernel, bias - mean])
            return model

    return InputDependent


@pytest.fixture(scope="module")
def sentencepiece_model(tmp_path_factory):
    """A unigram SentencePiece model learned on the training corpus (200 pieces)."""
    prefix = tmp_path_factory.mktemp("sentencepiece") / "spiece"
    return build_sentencepiece_model(training_corpus()[:400], 200, str(prefix))


@pytest.fixture(scope="module")
def exports(tmp_path_factory, sentencepiece_model):
    """{name: (version folder, Keras model, spec)} for the text and ViT classifiers,
    float32 and int8, and the text model's preprocessor."""
    from tasks.classification import TextClassificationTask
    from tasks.image_classification import ImageClassificationTask

    keras.utils.set_random_seed(0)  # the same weights, so the same int8 margins, every run
    root = tmp_path_factory.mktemp("litert")
    tokenizer_dir = root / "tokenizer"
    tokenizer = SentencePieceTokenizer(sentencepiece_model, fairseq_ids=True)
    zoo.save_tokenizer(tokenizer, str(tokenizer_dir))
    task = input_dependent(TextClassificationTask, lambda: Preprocessor(
        tokenizer, SEQUENCE)(TEST_TEXTS))(TaskConfig(options={"labels": ["a", "b", "c"]}))
    backbone = zoo.build("bert_test_tiny", vocab_size=tokenizer.vocabulary.size, dropout=0.0)
    text_model, text_spec = save_task_model(root / "text", task, backbone, tokenizer_dir)
    image_task = input_dependent(ImageClassificationTask, sample_images)(TaskConfig(options={
        "labels": ["cat", "dog"], "mean": 0.5, "std": 0.25}))
    image_model, image_spec = save_task_model(
        root / "vit", image_task, zoo.build("vit_test_tiny", dropout=0.0), None)
    result = {"preprocessor": zoo.load_preprocessor(str(root / "text" / "model.keras"),
                                                    sequence_length=SEQUENCE)}
    for name, model, spec in (("text", text_model, text_spec),
                              ("vit", image_model, image_spec)):
        for quantize in (None, "int8"):
            version = litert.export_litert(str(root / name), str(root / "exports" / name),
                                           quantize=quantize)
            result[f"{name}-{quantize or 'float'}"] = (version, model, spec)
    return result


def sample_images():
    """Eight random images, normalized as the ViT's spec in `exports` says (mean 0.5,
    std 0.25)."""
    pixels = np.random.default_rng(1).uniform(size=(8, 32, 32, 3))
    return ((pixels - 0.5) / 0.25).astype(np.float32)


def run(version, signature, inputs):
    interpreter = litert_runtime.load(os.path.join(version, litert.MODEL_FILE))
    return litert_runtime.call(interpreter, signature, inputs)


@pytest.mark.heavy  # the shared exports: four conversions, ~15 s
def test_text_classifier_reads_raw_text_as_the_saved_model(exports):
    version, model, spec = exports["text-float"]
    assert sorted(os.listdir(version)) == [
        "model.tflite", "sentencepiece.bpe.model", "serving.json", "tokenizer_config.json"]
    assert not [name for name in os.listdir(os.path.dirname(version)) if name.startswith(".")]
    ids = exports["preprocessor"](TEST_TEXTS)
    logits = np.asarray(model(ids)["logits"])
    assert len(set(logits.argmax(-1))) > 1  # the inputs do not all get one label
    for signature, inputs in (("serving_default", {"text": TEST_TEXTS}),
                              ("serve_ids", {k: v.numpy() for k, v in ids.items()})):
        outputs = run(version, signature, inputs)
        assert sorted(outputs) == ["label", "logits", "probabilities"]
        np.testing.assert_allclose(outputs["logits"], logits, atol=FLOAT_TOLERANCE,
                                   err_msg=signature)
        np.testing.assert_array_equal(outputs["label"], logits.argmax(-1))
    quantized = run(exports["text-int8"][0], "serving_default", {"text": TEST_TEXTS})
    _assert_int8_labels("text", logits, quantized, exports["text-float"][0],
                        exports["text-int8"][0])


@pytest.mark.heavy  # the shared exports: four conversions, ~15 s
def test_vit_classifier_takes_normalized_images(exports):
    version, model, spec = exports["vit-float"]
    images = sample_images()
    assert images.shape[1:] == (*spec.image_size, spec.num_channels)
    logits = np.asarray(model(images)["logits"])
    assert len(set(logits.argmax(-1))) > 1
    interpreter = litert_runtime.load(os.path.join(version, litert.MODEL_FILE))
    assert list(interpreter.get_signature_list()) == ["serve_ids"]  # no image bytes inside
    outputs = litert_runtime.call(interpreter, "serve_ids", {"images": images})
    np.testing.assert_allclose(outputs["logits"], logits, atol=FLOAT_TOLERANCE)
    np.testing.assert_array_equal(outputs["label"], logits.argmax(-1))
    quantized = run(exports["vit-int8"][0], "serve_ids", {"images": images})
    _assert_int8_labels("vit", logits, quantized, version, exports["vit-int8"][0])


def _assert_int8_labels(name, logits, quantized, float_version, int8_version):
    """The int8 file's logits within the export's int8 tolerance, and its labels
    the model's on every input whose margin (best logit - second) exceeds twice
    the largest logit error: the labels that error cannot flip, at least 3/4
    of the inputs here. (All are equal in the runs so far; a near-tie is a
    coin toss that says nothing about the export.)"""
    error = np.abs(quantized["logits"] - logits).max()
    assert error <= litert.TOLERANCE["int8"] * max(1.0, np.abs(logits).max()), error
    top_two = np.sort(logits, axis=-1)[:, -2:]
    margin = top_two[:, 1] - top_two[:, 0]
    decided = margin > 2 * error
    assert decided.mean() >= 0.75, (margin, error)
    np.testing.assert_array_equal(quantized["label"][decided], logits.argmax(-1)[decided])
    sizes = [os.path.getsize(os.path.join(v, litert.MODEL_FILE))
             for v in (float_version, int8_version)]
    print(f"{name} int8: largest logit error {error:.4f}, labels equal on "
          f"{np.sum(quantized['label'] == logits.argmax(-1))} of {len(logits)} inputs "
          f"({decided.sum()} with a margin over twice the error; smallest margin "
          f"{margin.min():.4f}), logits span {np.ptp(logits):.2f}; .tflite {sizes[0]:,} -> "
          f"{sizes[1]:,} bytes")


@pytest.mark.heavy  # the shared exports: four conversions, ~15 s
def test_in_file_tokenizer_gives_the_saved_models_ids_on_the_corpus(exports, tmp_path):
    # The very packing the export puts in the file, alone in a .tflite with
    # the ids as outputs, against the SavedModel's Preprocessor: single texts
    # and pairs on the 2,200 varied lines; pairs under the other truncation
    # policies (each text cut by its policy) on the first 400.
    tokenizer = exports["preprocessor"].tokenizer
    module, signatures, cases = tf.Module(), {}, {}
    lines = corpus()
    for truncation, names, count in [("longest_first", ("text",), len(lines))] + [
            (truncation, ("text", "text_b"), len(lines) if truncation == "longest_first"
             else 400) for truncation in TRUNCATIONS]:
        preprocessor = Preprocessor(tokenizer, SEQUENCE, truncation=truncation)
        function = tf.function(_caller(LiteRtPreprocessor(preprocessor)), autograph=False,
                               input_signature=[tf.TensorSpec([None], tf.string, name)
                                                for name in names])
        key = f"{truncation.replace('+', '_')}_{len(names)}"
        setattr(module, key, function)
        signatures[key] = function.get_concrete_function()
        texts = [lines[:count], lines[::-1][:count]][:len(names)]
        cases[key] = (preprocessor, dict(zip(names, texts)))
    tf.saved_model.save(module, str(tmp_path), signatures=signatures)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path), list(signatures))
    converter.allow_custom_ops = True
    interpreter = litert_runtime.load(converter.convert())
    for key, (preprocessor, inputs) in cases.items():
        expected = preprocessor(*inputs.values())
        actual = litert_runtime.call(interpreter, key, inputs)
        for name, value in expected.items():
            np.testing.assert_array_equal(actual[name], value.numpy(), err_msg=key)


def _caller(function):
    return lambda *texts: function(*texts)  # a closure: saved endpoints take no defaults


@pytest.mark.heavy  # the shared exports: four conversions, ~15 s
def test_verify_refuses_a_file_whose_numbers_differ(exports):
    # The int8 file checked against the float model with the float tolerance.
    version, model, _ = exports["text-int8"]
    with open(os.path.join(version, litert.MODEL_FILE), "rb") as file:
        flatbuffer = file.read()
    ids = {k: v.numpy() for k, v in exports["preprocessor"](TEST_TEXTS).items()}
    samples = {"serve_ids": ids, "serving_default": {"text": TEST_TEXTS}}
    with pytest.raises(ValueError, match="serve_ids output 'logits' differs from the "
                                         "SavedModel's by"):
        litert.check(flatbuffer, lambda **inputs: model(inputs), samples,
                     litert.TOLERANCE[None])


def test_which_tokenizers_go_inside(sentencepiece_model):
    from kerasbert.text import WordPieceTokenizer

    assert text_support(SentencePieceTokenizer(sentencepiece_model)) == (True, "")
    assert text_support(SentencePieceTokenizer(sentencepiece_model, fairseq_ids=True))[0]
    for tokenizer in (SentencePieceTokenizer(sentencepiece_model, albert_normalization=True),
                      SentencePieceTokenizer(sentencepiece_model, lower_case=True)):
        assert not text_support(tokenizer)[0]
    wordpiece = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "##b"])
    supported, reason = text_support(wordpiece)
    assert not supported and "BertNormalizer" in reason
