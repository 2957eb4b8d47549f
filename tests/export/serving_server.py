"""A small TF Serving gRPC PredictionService for tests (no model server binary here).

It serves one model the way ``tensorflow_model_server --model_name=NAME
--model_base_path=BASE`` does with its default version policy: the highest
numeric version folder under BASE.  ``Predict`` calls the SavedModel by
signature name with the SignatureDef's input/output names, and answers errors
with the status codes and messages of TF Serving's ``predict_util.cc`` /
``get_model_metadata_impl.cc``:

* wrong model name or version:   NOT_FOUND ``Servable not found for request: ...``
* version label:                 INVALID_ARGUMENT ``Unrecognized servable version label: ...``
* unknown signature:             FAILED_PRECONDITION ``Serving signature key "x" not found.``
* not a predict/classify/regress signature (``__saved_model_init_op``): INTERNAL
* inputs not matching the SignatureDef: INVALID_ARGUMENT
  (``input size does not match signature ...``,
  ``input tensor alias not found in signature ...``)
* unknown ``output_filter`` alias: INVALID_ARGUMENT

Only ``Predict`` and ``GetModelMetadata`` (``signature_def``) are implemented;
the other methods answer UNIMPLEMENTED.  Additions over the real server: input
dtypes and shapes are checked against the SignatureDef before the call
(INVALID_ARGUMENT).  Outputs are built with ``tf.make_tensor_proto`` (numeric
tensors in ``tensor_content``; the real server fills the typed ``*_val``
fields); ``tf.make_ndarray`` reads either.

Usage::

    server, port = start_server(base_path, "toy")
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        ...
    finally:
        server.stop(grace=None)
"""

import os
from concurrent import futures

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHODS = (
    "tensorflow/serving/predict",
    "tensorflow/serving/classify",
    "tensorflow/serving/regress",
)


def latest_version(model_base_path):
    """(version, path) of the highest numeric version folder under ``model_base_path``."""
    versions = [
        int(entry.name)
        for entry in os.scandir(model_base_path)
        if entry.is_dir() and entry.name.isdigit()
    ]
    if not versions:
        raise FileNotFoundError(f"no numeric version folder under {model_base_path}")
    version = max(versions)
    return version, os.path.join(model_base_path, str(version))


def _signature_defs(export_dir):
    """name -> SignatureDef of the ``serve`` meta graph in ``saved_model.pb``."""
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        saved_model = saved_model_pb2.SavedModel.FromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"{export_dir} has no meta graph tagged 'serve'")


def _shape_fits(shape, tensor_shape_proto):
    if tensor_shape_proto.unknown_rank:
        return True
    dims = [d.size for d in tensor_shape_proto.dim]
    return len(dims) == len(shape) and all(d < 0 or d == s for d, s in zip(dims, shape))


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Serves the latest version of one SavedModel under ``model_base_path``."""

    def __init__(self, model_base_path, model_name):
        self.model_name = model_name
        self.version, self.export_dir = latest_version(model_base_path)
        self.model = tf.saved_model.load(self.export_dir)
        self.signature_defs = _signature_defs(self.export_dir)

    def _check_model_spec(self, spec, context):
        if spec.version_label:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Unrecognized servable version label: {spec.version_label}",
            )
        if spec.HasField("version"):
            if spec.name != self.model_name or spec.version.value != self.version:
                context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"Servable not found for request: Specific({spec.name}, {spec.version.value})",
                )
        elif spec.name != self.model_name:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({spec.name})")

    def Predict(self, request, context):
        self._check_model_spec(request.model_spec, context)
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        signature_def = self.signature_defs.get(signature_name)
        if signature_def is None:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f'Serving signature key "{signature_name}" not found.',
            )
        if signature_def.method_name not in PREDICT_METHODS:
            context.abort(
                grpc.StatusCode.INTERNAL,
                "Expected prediction signature method_name to be one of {"
                + ", ".join(PREDICT_METHODS)
                + f"}}. Was: {signature_def.method_name}",
            )

        expected = set(signature_def.inputs)
        sent = set(request.inputs)
        if len(sent) != len(expected):
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input size does not match signature: {len(sent)}!={len(expected)} "
                f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
                f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
                f"Missing but required: {{{','.join(sorted(expected - sent))}}}.",
            )
        inputs = {}
        for alias in sorted(request.inputs):
            if alias not in signature_def.inputs:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"input tensor alias not found in signature: {alias}. "
                    f"Inputs expected to be in the set {{{','.join(sorted(expected))}}}.",
                )
            try:
                array = tf.make_ndarray(request.inputs[alias])
            except Exception:  # noqa: BLE001 - any parse failure is the client's
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"tensor parsing error: {alias}")
            info = signature_def.inputs[alias]
            want = tf.dtypes.as_dtype(info.dtype)
            got = tf.dtypes.as_dtype(request.inputs[alias].dtype)
            if got != want:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"input {alias} is {got.name}, the signature expects {want.name}",
                )
            if not _shape_fits(array.shape, info.tensor_shape):
                dims = [d.size for d in info.tensor_shape.dim]
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"input {alias} has shape {list(array.shape)}, the signature expects {dims} (-1: any)",
                )
            inputs[alias] = tf.constant(array, dtype=want)

        aliases = list(request.output_filter)
        for alias in aliases:
            if alias not in signature_def.outputs:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"output tensor alias not found in signature: {alias} Outputs expected to be "
                    f"in the set {{{','.join(sorted(signature_def.outputs))}}}.",
                )
        if len(set(aliases)) != len(aliases):
            duplicate = next(a for a in aliases if aliases.count(a) > 1)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"duplicate output tensor alias: {duplicate}")
        aliases = aliases or sorted(signature_def.outputs)

        try:
            outputs = self.model.signatures[signature_name](**inputs)
        except tf.errors.OpError as err:
            context.abort(_grpc_code(err.error_code), err.message)
        except (TypeError, ValueError) as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))

        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = self.version
        response.model_spec.signature_name = signature_name
        for alias in aliases:
            response.outputs[alias].CopyFrom(tf.make_tensor_proto(np.asarray(outputs[alias])))
        return response

    def GetModelMetadata(self, request, context):
        if not request.HasField("model_spec"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
        if not request.metadata_field:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "GetModelMetadataRequest must specify at least one metadata_field",
            )
        for field in request.metadata_field:
            if field != "signature_def":
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Metadata field {field} is not supported")
        self._check_model_spec(request.model_spec, context)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature_def in self.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature_def)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.model_name
        response.model_spec.version.value = self.version
        response.metadata["signature_def"].Pack(signature_map)
        return response


def _grpc_code(tf_error_code):
    """The gRPC StatusCode of a TensorFlow error code (both use the same numbers)."""
    for code in grpc.StatusCode:
        if code.value[0] == tf_error_code:
            return code
    return grpc.StatusCode.UNKNOWN


def start_server(model_base_path, model_name, port=0, max_workers=4):
    """Serve the latest version under ``model_base_path`` as ``model_name`` on 127.0.0.1.

    Args:
      model_base_path: folder holding numeric version folders (``1/``, ``2/``, ...),
        each a SavedModel.
      model_name: the name clients put in ``model_spec.name``.
      port: TCP port; 0 picks a free one.
      max_workers: threads answering calls.

    Returns:
      ``(server, port)``: the started ``grpc.Server`` (stop it with
      ``server.stop(grace=None)``) and the port it listens on.
    """
    servicer = PredictionServicer(model_base_path, model_name)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    if not bound:
        raise OSError(f"could not bind 127.0.0.1:{port}")
    server.start()
    return server, bound
