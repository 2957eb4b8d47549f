"""`export.litert.export_litert`: a trained model folder -> BASE/NAME/VERSION/model.tflite.

    python -m export --model_dir=runs/sst2 --export_dir=exports/sst2-lite --format=litert
    python -m export ... --format=litert --quantize=int8   # dynamic-range int8 weights

The version folder holds model.tflite, serving.json (label names for the
app) and the tokenizer files, written into a hidden sibling folder and
renamed into place when complete, as export/saved_model.py does.

Signatures of model.tflite, the SavedModel's names and numeric outputs:
  serve_ids        input_word_ids, input_mask, input_type_ids int32
                   [batch, sequence_length] (padded to the exported length);
                   images float32 [batch, h, w, c], resized and normalized
  serving_default  text (and text_b) string [batch], tokenized and packed in
                   the file, only where LiteRT's kernels give the project's
                   exact ids (export/litert_text.py says which tokenizers);
                   otherwise the app tokenizes with the files beside it
String outputs (label_name, tags, answer...) stay out: LiteRT has no string
kernels for them; serving.json's label_names name the ids. Image bytes stay
out too: decoding (tf.io.decode_image) is no LiteRT builtin and the
interpreters here run no Flex kernels.

verify: runs the file in the LiteRT interpreter (export/litert_runtime.py)
on sample inputs and compares every output with the SavedModel's functions
(export.signatures.ServingModule) before the version appears.
"""

import os
import shutil

import numpy as np
import tensorflow as tf
from absl import logging

from export import litert_runtime, litert_text, warmup
from export import versions
from export.saved_model import load_for_serving
from export.signatures import ServingModule
from export.spec import write_spec

MODEL_FILE = "model.tflite"
# Largest |LiteRT - SavedModel| accepted on a float output, as a fraction of
# max(1, its largest magnitude): float32 kernels differ from TensorFlow's in
# summation order only; int8 weights move outputs by up to a few percent
# (measured in docs/export.md).
TOLERANCE = {None: 1e-4, "int8": 0.05}
# Custom ops the interpreter can run: tensorflow-text's TFLite kernels used
# by export/litert_text.py. Any other custom op would fail on a device.
_KNOWN_CUSTOM_OPS = ("TFText>FastSentencepieceTokenize",)
# Sample texts for the check: the warm-up texts (ordinary, empty, over-long)
# and accents, CJK, emoji, odd whitespace.
_CHECK_TEXTS = ["a short warm-up request", "", "a long warm-up request " * 100,
                "Crème brûlée in Zürich, 42 km!", "東京都 北京大学 한국어 😀👍🏽",
                "tabs\tand\nnew lines\u3000here"]


def export_litert(model_dir, export_dir, version=None, quantize=None, verify=True):
    """Exports to `export_dir`/VERSION/model.tflite and returns that folder.

    model_dir: a tasks.run model folder or any checkpoint zoo.load reads.
    quantize: None (float32) or "int8" (LiteRT's dynamic-range quantization:
        weights int8, activations quantized on the fly where a kernel can).
    verify: compare the file's outputs in the LiteRT interpreter with the
        SavedModel's on sample inputs; raise beyond TOLERANCE[quantize] times
        max(1, the output's largest magnitude).
    """
    if quantize not in TOLERANCE:
        raise ValueError(f"quantize must be None or 'int8', not {quantize!r}.")
    final = versions.version_path(export_dir, version)
    model, spec, preprocessor = load_for_serving(model_dir)
    serving = ServingModule(model, spec, preprocessor)
    lite = LiteRtModule(serving, spec, preprocessor)
    if lite.text_reason is not None:
        logging.warning("LiteRT: %s.", lite.text_reason)
    with versions.writing(final) as folder:
        flatbuffer = convert(lite, os.path.join(folder, "saved_model"), quantize)
        shutil.rmtree(os.path.join(folder, "saved_model"))
        with open(os.path.join(folder, MODEL_FILE), "wb") as file:
            file.write(flatbuffer)
        write_spec(spec, folder)
        if preprocessor is not None:
            import zoo

            zoo.save_tokenizer(preprocessor.tokenizer, folder)
        if verify:
            samples = {signature: inputs for signature, inputs in
                       sample_inputs(spec, preprocessor).items() if signature in
                       lite.signatures()}
            error = check(flatbuffer, serving.serve_ids, samples, TOLERANCE[quantize])
            logging.info("LiteRT %s: %s bytes, signatures %s; largest difference from the "
                         "SavedModel's outputs %.3g.", final, f"{len(flatbuffer):,}",
                         sorted(lite.signatures()), error)
    return final


class LiteRtModule(tf.Module):
    """The SavedModel's functions with LiteRT-ready inputs and numeric outputs.

    serve_ids: the SavedModel's, its text ids fixed to the sequence length (a
    static width lets LiteRT plan its tensors once). serving_default (text
    models whose tokenizer fits, see litert_text.text_support): raw text ->
    LiteRtPreprocessor -> the same model call.
    """

    def __init__(self, serving, spec, preprocessor):
        super().__init__(name="litert")
        # The variables once; the ServingModule itself stays untracked (saving
        # it would trace and write its other signatures too).
        self.model_variables = serving.model_variables
        inputs = [_fixed_length(value, spec.sequence_length)
                  for value in _input_specs(serving.serve_ids)]
        # No autograph: nothing here branches on tensors, and transpiling is slow.
        self.serve_ids = tf.function(lambda *values: _numeric(serving.serve_ids(*values)),
                                     input_signature=inputs, autograph=False)
        self.text_reason = _text_reason(spec, preprocessor)
        if self.text_reason is None:
            self.preprocessor = litert_text.LiteRtPreprocessor(preprocessor)
            names = spec.text_inputs

            def from_text(*texts):
                ids = self.preprocessor(*texts)
                return _numeric(serving.serve_ids(**ids))

            self.serving_default = tf.function(
                from_text, input_signature=[tf.TensorSpec([None], tf.string, name)
                                            for name in names], autograph=False)

    def signatures(self):
        """{signature name: concrete function} for the SavedModel handed to the converter."""
        names = ["serve_ids"] + (["serving_default"] if self.text_reason is None else [])
        return {name: getattr(self, name).get_concrete_function() for name in names}


def _input_specs(function):
    """The TensorSpecs a signature takes, in order: a tf.function's or a
    concrete function's (ServingModule holds either)."""
    specs = getattr(function, "input_signature", None)
    if specs is None:
        specs = tf.nest.flatten(function.structured_input_signature)
    return list(specs)


def _fixed_length(value, sequence_length):
    """An int32 id input [batch, (choices,) None] -> [..., sequence_length]."""
    if value.dtype != tf.int32:
        return value  # images: already [batch, h, w, c]
    return tf.TensorSpec(value.shape[:-1].concatenate([sequence_length]), value.dtype,
                         value.name)


def _numeric(outputs):
    return {name: value for name, value in outputs.items() if value.dtype != tf.string}


def _text_reason(spec, preprocessor):
    """None when raw text goes into the file, else why it does not."""
    if spec.is_image:
        return ("image bytes stay out: decoding (tf.io.decode_image) is no LiteRT builtin "
                "and no Flex kernel runs here; serve_ids takes images float32 "
                f"[batch, {spec.image_size[0]}, {spec.image_size[1]}, {spec.num_channels}], "
                f"resized and normalized as (pixels / 255 - {spec.mean}) / {spec.std}")
    if spec.kind == "span":
        return ("a span model's raw-text path (windows over a long context, answers decoded "
                "to text) needs string and ragged ops LiteRT lacks; serve_ids takes one "
                "packed window (question, context) and gives token positions")
    if spec.kind == "choice":
        return ("a multiple-choice model's raw-text path (one packed row per choice) needs "
                "ragged ops LiteRT lacks; serve_ids takes the packed ids [batch, choices, seq]")
    supported, reason = litert_text.text_support(preprocessor.tokenizer)
    return None if supported else (
        f"{reason}; serve_ids takes the packed ids (tokenize with the files beside "
        "model.tflite: zoo.load_preprocessor(VERSION_DIR, "
        f"sequence_length={spec.sequence_length}))")


def convert(lite, saved_model_dir, quantize=None):
    """The flatbuffer of `lite`'s signatures (written through `saved_model_dir`)."""
    signatures = lite.signatures()
    tf.saved_model.save(lite, saved_model_dir, signatures=signatures)
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=list(signatures))
    # tensorflow-text's tokenizer ops become custom ops (checked below).
    converter.allow_custom_ops = lite.text_reason is None
    if quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    flatbuffer = converter.convert()
    unknown = sorted(set(custom_ops(flatbuffer)) - set(_KNOWN_CUSTOM_OPS))
    if unknown:
        raise ValueError(f"The LiteRT model needs custom ops no LiteRT runtime here has: "
                         f"{unknown}; only tensorflow-text's {list(_KNOWN_CUSTOM_OPS)} run.")
    return flatbuffer


def custom_ops(flatbuffer):
    """Names of the custom ops a .tflite file uses."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    return [code.customCode.decode() for code in model.operatorCodes
            if code.customCode is not None]


def sample_inputs(spec, preprocessor):
    """{signature: inputs} to check an export with: texts (serving_default,
    where text goes in) and their packed ids, or two random normalized images."""
    if spec.is_image:
        height, width = spec.image_size
        pixels = np.random.default_rng(0).uniform(size=(2, height, width, spec.num_channels))
        return {"serve_ids": {"images": ((pixels - spec.mean) / spec.std).astype(np.float32)}}
    if spec.kind == "choice":  # the warm-up's ids, padded to the file's fixed width
        ids = warmup.sample_inputs(spec, "serve_ids")
        return {"serve_ids": {name: np.pad(value, [(0, 0)] * (value.ndim - 1) + [
            (0, spec.sequence_length - value.shape[-1])]) for name, value in ids.items()}}
    texts = [tf.constant(_CHECK_TEXTS[i:] + _CHECK_TEXTS[:i]) for i in range(
        len(spec.text_inputs))]
    ids = {name: value.numpy() for name, value in preprocessor(*texts).items()}
    return {"serving_default": dict(zip(spec.text_inputs, [t.numpy() for t in texts])),
            "serve_ids": ids}


def check(flatbuffer, reference, samples, tolerance):
    """The largest difference of the LiteRT outputs from the reference's; raises
    beyond `tolerance` times max(1, the output's largest magnitude).

    reference: the SavedModel's serve_ids (ids or images -> named outputs).
    samples: {signature: inputs}, serve_ids among them; the SavedModel's
        serving_default is serve_ids on the Preprocessor's ids
        (signatures.ServingModule), so every signature answers to
        serve_ids' expected outputs.
    """
    largest = 0.0
    interpreter = litert_runtime.load(flatbuffer)
    expected = reference(**{k: tf.constant(v) for k, v in samples["serve_ids"].items()})
    for signature, inputs in samples.items():
        actual = litert_runtime.call(interpreter, signature, inputs)
        for name, value in _numeric(expected).items():
            value = np.asarray(value)
            if value.dtype.kind in "iub":
                continue  # labels, tag ids: argmaxes of the floats checked here
            # A span model's "no span" score (-3e38) is a marker, not a number to compare.
            real = np.abs(value) < 1e30
            error = float(np.max(np.abs(actual[name] - value)[real], initial=0.0))
            largest = max(largest, error)
            allowed = tolerance * max(1.0, float(np.max(np.abs(value)[real], initial=0.0)))
            if not error <= allowed:
                raise ValueError(
                    f"The LiteRT model's {signature} output {name!r} differs from the "
                    f"SavedModel's by {error:.3g} (allowed {allowed:.3g}): the conversion "
                    "changed the model's numbers; export without --quantize, or report it "
                    "with this model's config.")
    return largest
