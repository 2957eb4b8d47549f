"""TF Serving's protocols around a toy SavedModel: REST JSON bodies and gRPC Predict.

The toy model has two signatures:

* ``serving_default``: ``text``, ``text_b`` (string [None]) ->
  ``length`` (int32 [None], bytes of ``text``), ``upper`` (string [None], ``text_b`` upper-cased);
* ``serve_ids``: ``input_word_ids`` (int32 [None, None]) -> ``total`` (int32 [None], row sums
  times the model's ``scale``).
"""

import base64
import json
import os
import re
import shutil

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tests.export import rest
from tests.export.serving_server import latest_version, start_server


class Toy(tf.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = tf.Variable(scale, dtype=tf.int32, trainable=False)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([None], tf.string, name="text_b"),
        ]
    )
    def serve(self, text, text_b):
        return {"length": tf.strings.length(text), "upper": tf.strings.upper(text_b)}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="input_word_ids")])
    def serve_ids(self, input_word_ids):
        return {"total": tf.reduce_sum(input_word_ids, axis=1) * self.scale}


def _save(path, scale):
    module = Toy(scale)
    tf.saved_model.save(
        module,
        str(path),
        signatures={"serving_default": module.serve, "serve_ids": module.serve_ids},
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """BASE with BASE/toy/1 (scale 1)."""
    root = tmp_path_factory.mktemp("serving")
    _save(root / "toy" / "1", scale=1)
    return root


@pytest.fixture(scope="module")
def loaded(base):
    return tf.saved_model.load(str(base / "toy" / "1"))


@pytest.fixture(scope="module")
def stub(base):
    server, port = start_server(str(base / "toy"), "toy")
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)
    finally:
        channel.close()
        server.stop(grace=None)


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _predict(loaded, body):
    return json.loads(rest.predict_json(loaded, json.dumps(body)))


# --------------------------------------------------------------------- REST


def test_rest_row_format(loaded):
    body = {
        "signature_name": "serving_default",
        "instances": [{"text": "héllo", "text_b": "abc"}, {"text": "", "text_b": "Xy z"}],
    }
    # "héllo" is 6 bytes in utf-8.
    assert _predict(loaded, body) == {
        "predictions": [{"length": 6, "upper": "ABC"}, {"length": 0, "upper": "XY Z"}]
    }


def test_rest_columnar_format(loaded):
    body = {"inputs": {"text": ["a", "bb", "ccc"], "text_b": ["d", "e", "f"]}}
    assert _predict(loaded, body) == {"outputs": {"length": [1, 2, 3], "upper": ["D", "E", "F"]}}


def test_rest_one_input_one_output_is_bare(loaded):
    ids = [[1, 2, 3], [4, 5, 6]]
    assert _predict(loaded, {"signature_name": "serve_ids", "instances": ids}) == {"predictions": [6, 15]}
    objects = [{"input_word_ids": row} for row in ids]
    assert _predict(loaded, {"signature_name": "serve_ids", "instances": objects}) == {"predictions": [6, 15]}
    assert _predict(loaded, {"signature_name": "serve_ids", "inputs": ids}) == {"outputs": [6, 15]}
    assert _predict(loaded, {"signature_name": "serve_ids", "inputs": {"input_word_ids": ids}}) == {
        "outputs": [6, 15]
    }


def test_rest_b64_inputs_and_outputs(loaded):
    raw = b"\xff\xfeab"  # not utf-8
    body = {
        "instances": [
            {"text": {"b64": _b64(raw)}, "text_b": {"b64": _b64(raw)}},
            {"text": "x", "text_b": {"b64": _b64(b"ok")}},
        ]
    }
    assert _predict(loaded, body) == {
        "predictions": [
            {"length": 4, "upper": {"b64": _b64(b"\xff\xfeAB")}},
            {"length": 1, "upper": "OK"},
        ]
    }
    # Unpadded base64 is accepted (absl::Base64Unescape accepts it).
    body = {"inputs": {"text": [{"b64": "YWI"}], "text_b": ["c"]}}
    inputs = rest.request_to_inputs(body, loaded.signatures["serving_default"])
    assert inputs["text"].numpy().tolist() == [b"ab"]


def test_request_to_inputs_tensors(loaded):
    inputs = rest.request_to_inputs(
        {"signature_name": "serve_ids", "instances": [[1, 2], [3, 4]]}, loaded.signatures["serve_ids"]
    )
    assert list(inputs) == ["input_word_ids"]
    assert inputs["input_word_ids"].dtype == tf.int32
    np.testing.assert_array_equal(inputs["input_word_ids"].numpy(), [[1, 2], [3, 4]])
    body = {"instances": [{"text": "é", "text_b": ""}]}
    strings = rest.request_to_inputs(body, loaded.signatures["serving_default"])
    assert strings["text"].dtype == tf.string
    assert strings["text"].numpy().tolist() == ["é".encode("utf-8")]


def test_outputs_to_response_encodings():
    outputs = {
        "score": tf.constant([0.2, 3.0, float("nan")], tf.float32),
        "id_bytes": tf.constant([b"abc", b"\x00", b""]),
        "label": tf.constant(["é", "b", "c"]),
        "flag": tf.constant([True, False, True]),
    }
    row = rest.outputs_to_response(outputs, {"instances": []})
    first = row["predictions"][0]
    # float32 0.2 is written as 0.2 (shortest round trip), whole floats stay floats.
    assert first == {"score": 0.2, "id_bytes": {"b64": "YWJj"}, "label": "é", "flag": True}
    assert row["predictions"][1]["score"] == 3.0 and isinstance(row["predictions"][1]["score"], float)
    assert np.isnan(row["predictions"][2]["score"])
    assert row["predictions"][2]["id_bytes"] == {"b64": ""}
    # NaN is written as the NaN token, as TF Serving does.
    assert "NaN" in json.dumps(row)

    probs = {"probs": tf.constant([[0.5, 0.25]], tf.float32)}
    assert rest.outputs_to_response(probs, {"inputs": {}}) == {"outputs": [[0.5, 0.25]]}
    assert rest.outputs_to_response(probs, {"instances": [1]}) == {"predictions": [[0.5, 0.25]]}


@pytest.mark.parametrize(
    "outputs, message",
    [
        (
            {"a": tf.constant([1, 2]), "b": tf.constant([1])},
            "Tensor name: b has inconsistent batch size: 1 expecting: 2",
        ),
        ({"a": tf.constant(1)}, "Tensor name: a has no shape information"),
        ({}, "Cannot convert empty tensor map to JSON"),
    ],
)
def test_outputs_to_response_errors(outputs, message):
    with pytest.raises(ValueError, match=message):
        rest.outputs_to_response(outputs, {"instances": [1]})


@pytest.mark.parametrize(
    "body, message",
    [
        ({"instances": [{"text": "a", "text_b": "b", "extra": "c"}]}, "does not have named input: extra"),
        ({"instances": [{"text": "a"}]}, r"keys must be equal to: text,text_b \(missing: text_b\)"),
        (
            {"instances": [{"text": "a", "text_b": "b"}, {"text": "c"}]},
            r"Failed to process element: 1 .*missing: text_b",
        ),
        (
            {"instances": [{"text": "a", "text_b": "b"}, ["c", "d"]]},
            "Expecting object but got list at item 1",
        ),
        ({"instances": ["a", "b"]}, "instances is a plain list, but expecting list of objects"),
        (
            {"instances": [{"text": ["a"], "text_b": "b"}, {"text": "c", "text_b": "d"}]},
            r"Expecting shape \[1\] but got: \[\]",
        ),
        ({"inputs": {"text": ["a"]}}, "Missing named input: text_b in 'inputs' object."),
        ({"inputs": {"text": ["a"], "text_b": ["b"], "oops": [1]}}, r"unknown input\(s\): oops"),
        ({"inputs": ["a"]}, "inputs is a plain value/list, but expecting an object"),
        ({"instances": []}, "No values in 'instances' array"),
        ({"instances": {"text": "a", "text_b": "b"}}, "Excepting 'instances' to be an list/array"),
        ({"instances": [], "inputs": {}}, "expecting only one of 'inputs' or 'instances' keys"),
        ({"signature_name": "serving_default"}, "Missing 'inputs' or 'instances' key"),
        ([1, 2], "Is not object"),
        (
            {"inputs": {"text": [1], "text_b": ["a"]}},
            "JSON Value: 1 Type: Number is not of expected type: string",
        ),
        ({"inputs": {"text": [{"b64": "!!"}], "text_b": ["a"]}}, "Unable to base64 decode"),
        (
            {"inputs": {"text": [{"b64": "YQ==", "x": 1}], "text_b": ["a"]}},
            "not formatted correctly for base64 data",
        ),
        (
            {"inputs": {"text": [["a"]], "text_b": ["b"]}},
            r"input 'text' has shape \[1,1\], incompatible with the signature's \[\?\]",
        ),
    ],
)
def test_rest_bad_bodies_default_signature(loaded, body, message):
    with pytest.raises(ValueError, match=message):
        rest.request_to_inputs(body, loaded.signatures["serving_default"])


@pytest.mark.parametrize(
    "inputs, message",
    [
        ([[1, 2], [3]], "Encountered list at unexpected size: 1 at level: 1 expected size: 2"),
        ([[1, [2]], [3, 4]], "Encountered list at unexpected level: 2 expected < 2"),
        ([[1, 2], 3], "found at incorrect level: 2 in the JSON DOM. Expected at level: 3"),
        ([1, 2], r"incompatible with the signature's \[\?,\?\]"),
        ([[1.5]], "JSON Value: 1.5 Type: Number is not of expected type: int32"),
        ([[1.0]], "is not of expected type: int32"),
        ([[True]], "Type: True is not of expected type: int32"),
        ([[2**31]], "is not of expected type: int32"),
        ([["1"]], "Type: String is not of expected type: int32"),
    ],
)
def test_rest_bad_ids(loaded, inputs, message):
    with pytest.raises(ValueError, match=message):
        rest.request_to_inputs({"inputs": inputs}, loaded.signatures["serve_ids"])


def test_predict_json_errors(loaded):
    with pytest.raises(ValueError, match='Serving signature name: "nope" not found in signature def'):
        rest.predict_json(loaded, '{"signature_name": "nope", "instances": [1]}')
    with pytest.raises(ValueError, match="'signature_name' key must be a string value"):
        rest.predict_json(loaded, '{"signature_name": 3, "instances": [1]}')
    with pytest.raises(ValueError, match="JSON Parse error"):
        rest.predict_json(loaded, '{"instances": [')
    with pytest.raises(ValueError, match="The document is empty"):
        rest.predict_json(loaded, "")
    assert json.loads(rest.error_json(ValueError("boom"))) == {"error": "boom"}


def test_predict_json_default_and_empty_signature_name(loaded):
    body = {"signature_name": "", "inputs": {"text": ["ab"], "text_b": ["c"]}}
    assert _predict(loaded, body) == {"outputs": {"length": [2], "upper": ["C"]}}
    text = rest.predict_json(loaded, b'{"instances": [{"text": "a", "text_b": "b"}]}')
    assert json.loads(text) == {"predictions": [{"length": 1, "upper": "B"}]}


# --------------------------------------------------------------------- gRPC


INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _request(signature_name=None, model="toy", **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if signature_name is not None:
        request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def test_grpc_default_signature(stub):
    request = _request(text=[b"h\xc3\xa9llo", b""], text_b=[b"abc", b"Xy z"])
    response = stub.Predict(request, timeout=20)
    assert set(response.outputs) == {"length", "upper"}
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["length"]), np.array([6, 0], np.int32))
    assert tf.make_ndarray(response.outputs["length"]).dtype == np.int32
    assert tf.make_ndarray(response.outputs["upper"]).tolist() == [b"ABC", b"XY Z"]
    assert response.model_spec.name == "toy"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"


def test_grpc_serve_ids_and_output_filter(stub):
    ids = np.array([[1, 2, 3], [4, 5, 6]], np.int32)
    response = stub.Predict(_request("serve_ids", input_word_ids=ids), timeout=20)
    assert list(response.outputs) == ["total"]
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["total"]), [6, 15])
    assert response.model_spec.signature_name == "serve_ids"

    request = _request(text=[b"a"], text_b=[b"b"])
    request.output_filter.append("upper")
    response = stub.Predict(request, timeout=20)
    assert list(response.outputs) == ["upper"]


@pytest.mark.parametrize(
    "request_kwargs, code, message",
    [
        (
            dict(signature_name="nope", text=[b"a"], text_b=[b"b"]),
            grpc.StatusCode.FAILED_PRECONDITION,
            'Serving signature key "nope" not found.',
        ),
        (
            dict(model="other", text=[b"a"], text_b=[b"b"]),
            grpc.StatusCode.NOT_FOUND,
            r"Servable not found for request: Latest\(other\)",
        ),
        (dict(text=[b"a"]), INVALID, r"Missing but required: \{text_b\}"),
        (
            dict(text=[b"a"], text_b=[b"b"], extra=[b"c"]),
            INVALID,
            r"input size does not match signature: 3!=2 .* Sent extra: \{extra\}",
        ),
        (
            dict(text=[b"a"], text_bb=[b"b"]),
            INVALID,
            r"input tensor alias not found in signature: text_bb\. "
            r"Inputs expected to be in the set \{text,text_b\}\.",
        ),
        (
            dict(text=np.array([1], np.int32), text_b=[b"b"]),
            INVALID,
            "input text is int32, the signature expects string",
        ),
        (
            dict(signature_name="serve_ids", input_word_ids=np.array([1, 2], np.int32)),
            INVALID,
            r"has shape \[2\]",
        ),
        (
            dict(signature_name="__saved_model_init_op"),
            grpc.StatusCode.INTERNAL,
            "Expected prediction signature method_name",
        ),
    ],
)
def test_grpc_errors(stub, request_kwargs, code, message):
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(_request(**request_kwargs), timeout=20)
    assert caught.value.code() == code
    assert re.search(message, caught.value.details()), caught.value.details()


def test_grpc_output_filter_unknown(stub):
    request = _request(text=[b"a"], text_b=[b"b"])
    request.output_filter.append("lower")
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(request, timeout=20)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "output tensor alias not found in signature: lower" in caught.value.details()


def test_grpc_model_metadata(stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "toy"
    request.metadata_field.append("signature_def")
    response = stub.GetModelMetadata(request, timeout=20)
    assert response.model_spec.name == "toy" and response.model_spec.version.value == 1
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    default = signatures.signature_def["serving_default"]
    assert set(default.inputs) == {"text", "text_b"}
    assert set(default.outputs) == {"length", "upper"}
    assert default.method_name == "tensorflow/serving/predict"
    ids = signatures.signature_def["serve_ids"].inputs["input_word_ids"]
    assert ids.dtype == tf.int32.as_datatype_enum
    assert [d.size for d in ids.tensor_shape.dim] == [-1, -1]

    request.metadata_field[:] = ["something_else"]
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetModelMetadata(request, timeout=20)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_grpc_and_rest_agree(stub, loaded):
    texts, texts_b = ["héllo", "a b"], ["x", "Yz"]
    request = _request(text=[t.encode() for t in texts], text_b=[t.encode() for t in texts_b])
    grpc_outputs = stub.Predict(request, timeout=20).outputs
    rest_outputs = _predict(loaded, {"inputs": {"text": texts, "text_b": texts_b}})["outputs"]
    assert rest_outputs["length"] == tf.make_ndarray(grpc_outputs["length"]).tolist()
    assert rest_outputs["upper"] == [s.decode() for s in tf.make_ndarray(grpc_outputs["upper"]).tolist()]


def test_server_serves_highest_version(base, tmp_path):
    root = tmp_path / "toy"
    shutil.copytree(base / "toy" / "1", root / "1")
    _save(root / "2", scale=10)
    os.makedirs(root / "tmp-3")  # not a version: ignored, as by TF Serving
    server, port = start_server(str(root), "toy")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            ids = np.array([[1, 2, 3]], np.int32)
            response = stub.Predict(_request("serve_ids", input_word_ids=ids), timeout=20)
            assert response.model_spec.version.value == 2
            np.testing.assert_array_equal(tf.make_ndarray(response.outputs["total"]), [60])

            request = _request("serve_ids", input_word_ids=ids)
            request.model_spec.version.value = 1  # loaded: only the latest
            with pytest.raises(grpc.RpcError) as caught:
                stub.Predict(request, timeout=20)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        server.stop(grace=None)


def test_latest_version_is_numeric(tmp_path):
    for name in ("9", "10", "2", "11.bak", "latest"):
        os.makedirs(tmp_path / name)
    assert latest_version(str(tmp_path)) == (10, str(tmp_path / "10"))
    with pytest.raises(FileNotFoundError):
        latest_version(str(tmp_path / "latest"))
