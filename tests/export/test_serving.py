"""A real export behind TF Serving's request formats, and what a crash leaves.

REST bodies go through `tests/export/rest.py` (TF Serving's JSON rules); gRPC through
the test PredictionService of serving_server.py on 127.0.0.1, called with
the stock tensorflow-serving-api client stub.
"""

import json
import os
import signal
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

import export
import zoo
from tests.export import rest
from tasks.base import TaskConfig
from tests.export.serving_server import start_server
from tests.export.test_export import save_task_model, text_backbone, tokenizer_dir  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEXTS = ["a fine film", "", "not a fine film at all " * 20]


@pytest.fixture(scope="module")
def pair_export(tmp_path_factory, tokenizer_dir):  # noqa: F811
    from tasks.classification import TextClassificationTask

    root = tmp_path_factory.mktemp("pair")
    task = TextClassificationTask(TaskConfig(text_fields=("a", "b"), options={
        "labels": ["different", "same"]}))
    model, _ = save_task_model(root / "run", task, text_backbone(tokenizer_dir), tokenizer_dir)
    base = str(root / "exports" / "pairs")
    version = export.export_model(str(root / "run"), base)
    ids = zoo.load_preprocessor(str(root / "run" / "model.keras"), sequence_length=24)(
        TEXTS, TEXTS[::-1])
    return base, version, np.asarray(model(ids)["logits"])


def test_rest_row_and_columnar_bodies(pair_export):
    _, version, logits = pair_export
    loaded = tf.saved_model.load(version)
    rows = {"instances": [{"text": a, "text_b": b} for a, b in zip(TEXTS, TEXTS[::-1])]}
    answer = json.loads(rest.predict_json(loaded, json.dumps(rows)))
    predictions = answer["predictions"]
    assert len(predictions) == 3
    np.testing.assert_allclose([p["logits"] for p in predictions], logits, atol=1e-5)
    assert [p["label_name"] for p in predictions] == [
        ["different", "same"][i] for i in logits.argmax(-1)]
    columns = {"signature_name": "serving_default",
               "inputs": {"text": TEXTS, "text_b": TEXTS[::-1]}}
    outputs = json.loads(rest.predict_json(loaded, json.dumps(columns)))["outputs"]
    np.testing.assert_allclose(outputs["probabilities"], tf.nn.softmax(logits).numpy(),
                               atol=1e-5)
    with pytest.raises(ValueError, match="text_b"):
        rest.predict_json(loaded, json.dumps({"instances": [{"text": "only one"}]}))


def test_grpc_predict_with_the_stock_client(pair_export):
    base, _, logits = pair_export
    server, port = start_server(base, "pairs")
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{port}"))
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "pairs"
        request.model_spec.signature_name = "serving_default"
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(TEXTS))
        request.inputs["text_b"].CopyFrom(tf.make_tensor_proto(TEXTS[::-1]))
        response = stub.Predict(request, timeout=60)
        assert response.model_spec.version.value == 1
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["logits"]), logits,
                                   atol=1e-5)
        labels = tf.make_ndarray(response.outputs["label"])
        np.testing.assert_array_equal(labels, logits.argmax(-1))
        # The ids signature, called by name with its SignatureDef input names.
        ids = zoo.load_preprocessor(os.path.join(os.path.dirname(base), "..", "run",
                                                 "model.keras"), sequence_length=24)(
            TEXTS, TEXTS[::-1])
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "pairs"
        request.model_spec.signature_name = "serve_ids"
        for name, value in ids.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
        response = stub.Predict(request, timeout=60)
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["logits"]), logits,
                                   atol=1e-5)
    finally:
        server.stop(grace=None)


@pytest.mark.heavy
def test_a_killed_export_leaves_no_version(tmp_path, tokenizer_dir):  # noqa: F811
    from tasks.classification import TextClassificationTask

    vocab_size = sum(1 for _ in open(tokenizer_dir / "vocab.txt"))
    task = TextClassificationTask(TaskConfig(options={"labels": ["a", "b"]}))
    save_task_model(tmp_path / "run", task, zoo.build("bert_small_uncased",
                                                      vocab_size=vocab_size), tokenizer_dir)
    base = tmp_path / "exports" / "big"
    command = [sys.executable, "-m", "export", f"--model_dir={tmp_path / 'run'}",
               f"--export_dir={base}", "--noverify"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not (
            base.exists() and any(name.startswith(".tmp-") for name in os.listdir(base))):
        time.sleep(0.05)
    time.sleep(0.5)  # well inside writing the SavedModel
    process.send_signal(signal.SIGKILL)
    process.wait()
    # Whatever it got to, TF Serving sees no version: only numeric folders
    # count, and the version folder appears only by the final rename.
    numeric = [name for name in os.listdir(base) if name.isdigit()]
    assert numeric == [], os.listdir(base)
    # The next export takes version 1, whole.
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [name for name in os.listdir(base) if name.isdigit()] == ["1"]
    loaded = tf.saved_model.load(str(base / "1"))
    assert loaded.signatures["serving_default"](text=tf.constant(["ok"]))["label"].shape == (1,)
