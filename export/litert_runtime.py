"""Runs a .tflite file as a device would: the LiteRT interpreter with
tensorflow-text's TFLite kernels registered, called by signature name.

    interpreter = litert_runtime.load("exports/sst2/1/model.tflite")
    outputs = litert_runtime.call(interpreter, "serving_default", {"text": texts})

The interpreter is ai-edge-litert's (`pip install "kerasbert[litert]"`), the
maintained LiteRT runtime: TensorFlow 2.21 still ships tf.lite.Interpreter
but marks it deprecated and scheduled for deletion. Neither runs Flex
(SELECT_TF_OPS) kernels, which is why the export uses builtins and
tensorflow-text's kernels only.
"""

import numpy as np


def load(model, num_threads=None):
    """A ready interpreter for `model` (a .tflite path or its bytes)."""
    try:
        from ai_edge_litert.interpreter import InterpreterWithCustomOps
    except ImportError as error:
        raise ImportError(
            "Running a LiteRT model needs the ai-edge-litert package: pip install "
            "'kerasbert[litert]' (or export with --noverify to skip the check).") from error
    from tensorflow_text.core.pybinds import tflite_registrar

    if not isinstance(model, bytes):
        with open(model, "rb") as file:
            model = file.read()
    return InterpreterWithCustomOps(
        model_content=model, num_threads=num_threads,
        custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS)


def call(interpreter, signature, inputs):
    """{input name: array} -> {output name: numpy array} for one signature.

    Inputs are resized to the arrays given (any batch size); strings go as
    bytes objects.
    """
    runner = interpreter.get_signature_runner(signature)
    arguments = {}
    for name, value in inputs.items():
        value = np.asarray(value)
        if value.dtype.kind in "US":
            value = np.array([v.encode() if isinstance(v, str) else v for v in value.ravel()],
                             dtype=object).reshape(value.shape)
        arguments[name] = value
    return dict(runner(**arguments))
