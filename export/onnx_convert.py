"""A model's serve_ids -> an ONNX model (tf2onnx, opset 17), weights as initializers.

    proto = to_onnx(model, spec, preprocessor)   # onnx.ModelProto, float32

`ids_function` is what the SavedModel's serve_ids signature computes, less
its string outputs; `to_onnx` traces it with the weights as inputs,
converts it with tf2onnx (export/onnx_graph.py turns layer norms and GELUs
into the operators ONNX Runtime runs fused), puts the weights back as
initializers and folds what only depends on them.
"""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from export import signatures

OPSET = 17  # LayerNormalization is an ONNX operator from opset 17 on
_WEIGHT_PREFIX = "kerasbert_weight_"


class OnnxExportError(ValueError):
    """The model cannot be converted to ONNX, or the converted file does not
    compute what the model computes."""


def _require_converters():
    try:
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError as error:
        raise ImportError(f"ONNX export needs tf2onnx and onnxruntime ({error}): "
                          "pip install 'kerasbert[onnx]'") from error


def ids_function(model, spec, preprocessor=None):
    """(function, input signature): what the SavedModel's serve_ids computes
    (signatures.ServingModule, export/choices.py), less its string outputs
    and its input checks. A plain Python function: to_onnx traces it with
    the weights as inputs, verification as it is."""
    call_model = signatures._model_caller(model)
    tokenizer = preprocessor.tokenizer if preprocessor is not None else None
    if spec.is_image:
        height, width = spec.image_size
        signature = [tf.TensorSpec([None, height, width, spec.num_channels], tf.float32,
                                   "images")]

        def outputs(images):
            features = {"images": images}
            return signatures.named_outputs(spec, call_model(features), features, tokenizer)
    else:
        rank = 3 if spec.kind == "choice" else 2  # choice: [batch, choices, seq]
        signature = [tf.TensorSpec([None] * rank, tf.int32, name)
                     for name in signatures.TEXT_IDS]

        def outputs(*ids):
            features = dict(zip(signatures.TEXT_IDS, ids))
            if spec.kind == "choice":
                from export.choices import choice_outputs

                return choice_outputs(call_model(features)["logits"])
            return signatures.named_outputs(spec, call_model(features), features, tokenizer)

    def numeric_outputs(*inputs):
        return {name: value for name, value in outputs(*inputs).items()
                if value.dtype != tf.string}

    return numeric_outputs, signature


def to_onnx(model, spec, preprocessor=None, opset=OPSET):
    """The float32 ONNX model (an onnx.ModelProto) of `model`'s serve_ids.

    The weights enter the traced function as inputs (a Keras StatelessScope
    maps every variable to one) and become the ONNX file's initializers
    after the conversion: freezing them into TensorFlow constants instead
    (tf2onnx's way) took 11.4 GB and ~100 s for BERT-base's 440 MB of
    weights here, this way 3.5 GB (the model's own 1.3 GB included) and
    11 s. ONNX Runtime's basic,
    hardware-independent graph optimizations then fold what the weights
    pass through (casts, reshapes, transposes) into plain initializers,
    which is also what int8 quantization needs to find them.
    """
    _require_converters()
    import onnx

    function, signature = ids_function(model, spec, preprocessor)
    weights = list({id(weight): weight for weight in model.weights}.values())
    names = [f"{_WEIGHT_PREFIX}{index}" for index in range(len(weights))]
    if sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in weights) >= 2 ** 31:
        raise OnnxExportError("The model's weights exceed 2 GB, the most one ONNX file holds "
                              "(protobuf's limit); export a SavedModel (--format=saved_model).")
    count = len(signature)

    def of_weights(*tensors):
        with keras.StatelessScope(state_mapping=list(zip(weights, tensors[count:]))):
            return function(*tensors[:count])

    proto = _convert(tf.function(of_weights), list(signature) + [
        tf.TensorSpec(w.shape, w.dtype, name) for w, name in zip(weights, names)], opset)
    _check_operators(proto)
    values = dict(zip(names, weights))
    kept = [tensor for tensor in proto.graph.input if tensor.name not in values]
    del proto.graph.input[:]
    proto.graph.input.extend(kept)
    proto.graph.initializer.extend(onnx.numpy_helper.from_array(
        np.asarray(values[name].numpy()), name) for name in names)
    _name_dimensions(proto)
    producer = proto.producer_name, proto.producer_version
    with tempfile.TemporaryDirectory() as folder:
        # Through a file, the proto dropped first: at most two copies of the
        # weights live at once besides the model's own.
        path = os.path.join(folder, "converted.onnx")
        onnx.save(proto, path)
        del proto
        folded = _folded(path, os.path.join(folder, "folded.onnx"))
    folded.producer_name, folded.producer_version = producer
    return folded


def _convert(function, signature, opset):
    """tf2onnx.convert.from_function's steps, with a safe optimizer list:
    its back-to-back pass merges two Reshapes even when the second one's
    shape holds 0s ("copy this dimension") computed for the first one's
    output (tf2onnx 1.17), which breaks every Dense layer on [batch, seq, H]."""
    from tf2onnx import optimizer, tf_loader, tfonnx
    from tf2onnx.convert import tensor_names_from_structed

    from export import onnx_graph

    concrete = function.get_concrete_function(*signature)
    inputs = [t.name for t in concrete.inputs if t.dtype != tf.resource]
    outputs = [t.name for t in concrete.outputs if t.dtype != tf.resource]
    graph_def = tf_loader.from_function(concrete, inputs, outputs)
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
        converted = tfonnx.process_tf_graph(
            graph, opset=opset, input_names=inputs, output_names=outputs,
            custom_op_handlers=onnx_graph.OP_HANDLERS, custom_rewriter=onnx_graph.REWRITERS,
            tensors_to_rename=tensor_names_from_structed(concrete, inputs, outputs))
    passes = {name: factory for name, factory in optimizer._get_optimizers().items()
              if name != "remove_back_to_back"}
    converted = optimizer.optimize_graph(converted, catch_errors=False, optimizers=passes)
    return converted.make_model("kerasbert serve_ids")


def _folded(path, target):
    """The model at `path` after ONNX Runtime's basic graph optimizations
    (constant folding, redundant node removal: standard operators only,
    nothing specific to this machine), as ONNX Runtime writes it out."""
    import onnx
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = target
    options.log_severity_level = 3  # not a warning per weight it drops as unused
    onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    folded = onnx.load(target)
    # ONNX Runtime declares every domain it knows; keep those the graph uses.
    used = {node.domain for node in folded.graph.node} | {""}
    kept = [entry for entry in folded.opset_import if entry.domain in used]
    del folded.opset_import[:]
    folded.opset_import.extend(kept)
    return folded


def _name_dimensions(proto):
    """Inputs [batch, sequence] (images [batch, h, w, c]), every output's
    first dimension `batch`; tf2onnx's own names for unknown sizes
    (unk__N) cleared, which leaves them unknown."""
    for tensors, names in ((proto.graph.input, ("batch", "sequence")),
                           (proto.graph.output, ("batch",))):
        for tensor in tensors:
            dims = tensor.type.tensor_type.shape.dim
            for index, dim in enumerate(dims):
                if dim.HasField("dim_value"):
                    continue
                if index < len(names) and (index == 0 or len(dims) == 2):
                    dim.dim_param = names[index]
                else:
                    dim.ClearField("dim_param")


def _check_operators(proto):
    """Raises OnnxExportError naming the TensorFlow ops tf2onnx left unconverted."""
    import onnx

    opset = {entry.domain: entry.version for entry in proto.opset_import}
    unknown = sorted({node.op_type for node in proto.graph.node
                      if not onnx.defs.has(node.op_type, node.domain or "")
                      or node.domain not in ("", "ai.onnx") and node.domain not in opset})
    if unknown:
        raise OnnxExportError(
            f"The model uses TensorFlow operations that have no ONNX conversion (tf2onnx, "
            f"opset {opset.get('', '?')}): {', '.join(unknown)}. Export it as a SavedModel "
            "instead (--format=saved_model), or replace those operations in the model.")


