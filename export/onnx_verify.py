"""An ONNX export run in ONNX Runtime and compared with the Keras model.

    differences = verify_onnx("exports/sst2/1/model.onnx", model, spec, preprocessor)

Sample inputs (texts packed by the model's own preprocessor, among them an
empty and an over-long one, or random images) go through the Keras model
(`ids_function`, what the file was converted from) and through ONNX
Runtime; float32 must agree within FLOAT_TOLERANCE, an int8 model's labels
and tags wherever the float model was sure of them.
"""

import numpy as np
import tensorflow as tf

from export.onnx_convert import OnnxExportError, ids_function

FLOAT_TOLERANCE = 1e-4  # ONNX Runtime vs the Keras model, float32, any output
# int8: logits move by quantization error. A decision (label, labels, tag)
# may differ from the float model's only where the float model was unsure:
# its top two logits (a multi-label logit and 0) less than this apart.
INT8_MARGIN = 0.5
# The decisions each kind makes from its logits: (output, argmax or sigmoid).
DECISIONS = {"classifier": (("label", "argmax"),), "image_classifier": (("label", "argmax"),),
             "choice": (("label", "argmax"),), "tagger": (("tag_ids", "argmax"),),
             "multilabel": (("labels", "sigmoid"),)}


def session(path_or_proto, threads=None):
    """An ONNX Runtime CPU session with every graph optimization on."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    model = path_or_proto if isinstance(path_or_proto, str) else path_or_proto.SerializeToString()
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def sample_inputs(spec, preprocessor=None):
    """Inputs for verification: texts packed by the model's own preprocessor
    (an empty one, an over-long one) or random normalized images."""
    if spec.is_image:
        height, width = spec.image_size
        rng = np.random.default_rng(0)
        return {"images": rng.normal(size=(3, height, width, spec.num_channels)).astype("float32")}
    texts = ["the quick brown fox jumps over the lazy dog", "",
             "a much longer text that goes on and on " * 20]
    if spec.kind == "choice":
        from export.choices import pack_choices

        choices = tf.constant([["yes", "no"], ["a long choice " * 50, ""], ["one", "two"]])
        ids = pack_choices(preprocessor, tf.constant(texts), choices)
    else:
        second = [["what is it about?", "", "why"]] if len(spec.text_inputs) > 1 else []
        ids = preprocessor(tf.constant(texts), *[tf.constant(t) for t in second])
    return {name: np.asarray(value, np.int32) for name, value in ids.items()}


def compare(onnx_outputs, expected, spec, quantized=False):
    """Raises OnnxExportError when ONNX Runtime's outputs differ from the
    Keras model's: any beyond FLOAT_TOLERANCE in float32; an int8 model's
    labels or tags where the float model was sure of them (INT8_MARGIN).
    Returns {output: its largest absolute difference (float outputs), or
    how many of its entries differ (integer outputs: labels, tags, spans)}:
    what an int8 model's check reports."""
    differences = {}
    for name, value in expected.items():
        got = onnx_outputs[name]
        if got.shape != value.shape:
            raise OnnxExportError(f"ONNX output {name} has shape {got.shape}, the model's "
                                  f"{value.shape}.")
        if np.issubdtype(value.dtype, np.integer):
            differences[name] = int(np.sum(got != value))
        else:
            differences[name] = float(np.max(np.abs(got.astype(np.float64) - value),
                                             initial=0.0))
    if not quantized:
        worst = {name: d for name, d in differences.items() if d > FLOAT_TOLERANCE}
        if worst:
            raise OnnxExportError(
                f"ONNX Runtime's outputs differ from the Keras model's beyond {FLOAT_TOLERANCE}: "
                f"{worst}. The conversion changed what the model computes; export a SavedModel "
                "(--format=saved_model) and report the model's config.")
        return differences
    for name, rule in DECISIONS.get(spec.kind, ()):
        logits = expected["logits"]
        if rule == "argmax":
            top_two = np.sort(logits, axis=-1)[..., -2:]
            margin = top_two[..., 1] - top_two[..., 0]
        else:
            margin = np.abs(logits)
        disagree = (onnx_outputs[name] != expected[name]) & (margin > INT8_MARGIN)
        if np.any(disagree):
            raise OnnxExportError(
                f"The int8 model's {name} differs from the float model's on "
                f"{int(disagree.sum())} sample inputs where the float model was sure (logits "
                f"{INT8_MARGIN} from the decision boundary); export without --quantize.")
    return differences


def verify_onnx(path, model, spec, preprocessor=None, quantized=False):
    """Runs `path` in ONNX Runtime on sample inputs and compares it with the
    Keras model (through the same serve_ids function the file was made
    from); returns {output: max absolute difference}."""
    inputs = sample_inputs(spec, preprocessor)
    function, signature = ids_function(model, spec, preprocessor)
    expected = tf.function(function)(*[tf.constant(inputs[tensor.name]) for tensor in signature])
    expected = {name: np.asarray(value) for name, value in expected.items()}
    onnx_session = session(path)
    names = [output.name for output in onnx_session.get_outputs()]
    outputs = dict(zip(names, onnx_session.run(names, inputs)))
    return compare(outputs, expected, spec, quantized)


