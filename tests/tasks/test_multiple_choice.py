"""Multiple choice learns a rule it can only apply by reading context and choice together,
its saved model reloads with kerasbert and zoo alone, and its export (the "choice" serving
kind) chooses as the model does, in a TensorFlow-only process and through TF Serving's REST
and gRPC request forms."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from tasks import registry
from tasks.training import runner
from tasks.base import TaskConfig
from tasks.multiple_choice import SYNTHETIC_TOPICS, MultipleChoiceTask, synthetic_examples
from tests.export import odd_requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def registered():
    """The runner knows this task."""
    assert registry.task_class(MultipleChoiceTask.name) is MultipleChoiceTask


def write_jsonl(folder, split, rows):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{split}.jsonl"), "w") as file:
        for row in rows:
            file.write(json.dumps(row) + "\n")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained by the runner on SWAG-layout JSONL and exported at the
    end of the run (--export_dir), as `python -m tasks.run` does."""
    root = tmp_path_factory.mktemp("multiple_choice")
    data = root / "data"
    for split, count, seed in (("train", 3000, 0), ("validation", 300, 1)):
        write_jsonl(data, split, [{"startphrase": row["context"], "endings": row["choices"],
                                   "label": row["label"]}
                                  for row in synthetic_examples(count, seed)])
    settings = runner.RunSettings(
        task="multiple_choice", data=str(data), model="bert_tiny_uncased",
        model_dir=str(root / "run"), sequence_length=8, vocab_size=100, batch_size=16,
        train_steps=150, steps_per_loop=150, learning_rate=1e-3, dropout=0.0,
        export_dir=str(root / "exports" / "choices"))
    result = runner.run(settings)
    task = runner.make_task(settings)
    preprocessor = runner.text_preprocessor(task, settings, None)
    import keras

    model = keras.saving.load_model(root / "run" / "model.keras")
    # The held-out split, packed once by the task's own pipeline.
    rows = task.examples("validation")
    features, labels = next(iter(task.build_dataset("validation", preprocessor, len(rows),
                                                    training=False)))
    features = {name: value.numpy() for name, value in features.items()}
    return types.SimpleNamespace(
        root=root, settings=settings, result=result, preprocessor=preprocessor, model=model,
        rows=rows, features=features, labels=labels.numpy(),
        logits=np.asarray(model(features)["logits"]))


@pytest.mark.heavy
def test_learns_which_ending_continues_the_context(trained, registered):
    # Every example has one ending per topic, so an ending alone says
    # nothing: only its agreement with the context's topic picks it (see
    # synthetic_examples). Chance is 1/4; with 300 unseen examples its
    # standard deviation is 2.5%, so > 80% (22 sigma) means the model reads
    # context and ending together. It reaches ~100% within 150 steps
    # (measured: 0.96 after 100 steps, 1.0 after 150 and 200).
    # The startphrase/endings layout (SWAG's) is read from JSONL here.
    tmp_path, result = trained.root, trained.result
    print("multiple choice held-out scores:", result["final"])
    assert result["final"]["accuracy"] > 0.8, result

    # The saved model reloads in a process that imports only keras, kerasbert
    # and zoo, and gives the same logits.
    np.savez(tmp_path / "inputs.npz", **{name: value[:8]
                                         for name, value in trained.features.items()})
    expected = trained.logits[:8]
    script = (
        "import sys, keras, numpy as np, zoo\n"
        "assert not any(m == 'tasks' or m.startswith('tasks.') for m in sys.modules)\n"
        f"model = keras.saving.load_model({str(tmp_path / 'run' / 'model.keras')!r})\n"
        f"inputs = dict(np.load({str(tmp_path / 'inputs.npz')!r}))\n"
        f"np.save({str(tmp_path / 'logits.npy')!r}, np.asarray(model(inputs)['logits']))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    reloaded = np.load(tmp_path / "logits.npy")
    assert reloaded.shape == (8, 4)
    np.testing.assert_allclose(reloaded, expected, atol=1e-5)


def choice_examples(texts, choices):
    """Serialized tf.Examples: `text` bytes, `choices` a bytes_list (any length)."""
    def feature(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))

    return np.array([tf.train.Example(features=tf.train.Features(feature={
        "text": feature([text]), "choices": feature(row)})).SerializeToString()
        for text, row in zip(texts, choices)], dtype=object)


def masked_softmax(logits, present):
    """Probabilities over the present choices (an empty choice is none)."""
    scores = np.where(present, logits, -np.inf)
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    return scores / scores.sum(-1, keepdims=True)


@pytest.mark.heavy
def test_the_export_chooses_as_the_model_does(trained):
    # tasks.run --export_dir exported the trained model; a fresh process that
    # has only TensorFlow and tensorflow-text's ops calls its three
    # signatures on the task's own held-out split.
    from export.verify import call_in_fresh_process

    result, rows, logits = trained.result, trained.rows, trained.logits
    assert result["export"] == os.path.join(trained.settings.export_dir, "1")
    texts = np.array([row["context"] for row in rows], dtype=object)
    choices = np.array([row["choices"] for row in rows], dtype=object)
    # Every other example offers only its first three choices: serve_examples
    # pads them with "", which is never chosen.
    fewer = [row["choices"][:3] if index % 2 else row["choices"]
             for index, row in enumerate(rows)]
    present = np.ones_like(logits, dtype=bool)
    present[1::2, 3] = False
    # The same process answers the odd requests every export kind gets
    # (tests/export/odd_requests.py), with choices as a second text input.
    odd = odd_requests.choice_calls(texts, choices)
    served = call_in_fresh_process(result["export"], {
        "serving_default": {"text": texts, "choices": choices},
        "serve_examples": {"examples": choice_examples(texts, fewer)},
        "serve_ids": {name: value[:8] for name, value in trained.features.items()},
        **odd}, record_errors=True)
    odd_requests.check_text_answers(odd, served)
    odd_requests.text_after_nul_changes_the_answer(odd, served)

    default = served["serving_default"]
    np.testing.assert_array_equal(default["label"], logits.argmax(-1))
    assert (default["label"] == trained.labels).mean() == result["final"]["accuracy"]
    np.testing.assert_allclose(default["logits"], logits, atol=1e-5)
    np.testing.assert_allclose(default["probabilities"], masked_softmax(logits, True),
                               atol=1e-5)
    assert [text.decode() for text in default["label_text"]] == [
        row["choices"][label] for row, label in zip(rows, logits.argmax(-1))]
    examples = served["serve_examples"]
    chosen = np.where(present, logits, -np.inf).argmax(-1)
    np.testing.assert_array_equal(examples["label"], chosen)
    np.testing.assert_allclose(examples["probabilities"], masked_softmax(logits, present),
                               atol=1e-5)
    assert [text.decode() for text in examples["label_text"]] == [
        row["choices"][label] for row, label in zip(rows, chosen)]
    np.testing.assert_allclose(served["serve_ids"]["logits"], logits[:8], atol=1e-5)
    np.testing.assert_array_equal(served["serve_ids"]["label"], logits[:8].argmax(-1))


@pytest.mark.heavy
def test_rest_and_grpc_requests(trained):
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from export.choices import pack_choices
    from export.warmup import WARMUP_FILE
    from tests.export import rest
    from tests.export.serving_server import PredictionServicer

    # An empty text, an over-long one and choice lists padded with "".
    texts = ["cat cow horse", "", "red blue " * 20]
    choices = [["dog pig", "one two", "red green", "rice soup"],
               ["one two " * 20, "", "cat", "five"],
               ["black white", "cow", "", ""]]
    logits = np.asarray(trained.model(pack_choices(
        trained.preprocessor, tf.constant(texts), tf.constant(choices)))["logits"])
    present = np.array(choices) != ""
    expected = np.where(present, logits, -np.inf).argmax(-1)
    label_texts = [row[label] for row, label in zip(choices, expected)]

    # One SavedModel load for both: the gRPC service's (as start_server builds it).
    servicer = PredictionServicer(trained.settings.export_dir, "choices")
    loaded = servicer.model
    rows = {"instances": [{"text": t, "choices": c} for t, c in zip(texts, choices)]}
    predictions = json.loads(rest.predict_json(loaded, json.dumps(rows)))["predictions"]
    assert [p["label"] for p in predictions] == expected.tolist()
    assert [p["label_text"] for p in predictions] == label_texts
    np.testing.assert_allclose([p["probabilities"] for p in predictions],
                               masked_softmax(logits, present), atol=1e-5)
    columns = {"inputs": {"text": texts, "choices": choices}}
    outputs = json.loads(rest.predict_json(loaded, json.dumps(columns)))["outputs"]
    assert outputs["label_text"] == label_texts

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{port}"))
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "choices"
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(texts))
        request.inputs["choices"].CopyFrom(tf.make_tensor_proto(choices))
        response = stub.Predict(request, timeout=60)
        np.testing.assert_array_equal(tf.make_ndarray(response.outputs["label"]), expected)
        assert [t.decode() for t in tf.make_ndarray(response.outputs["label_text"])] == \
            label_texts
        # The warm-up requests TF Serving replays at load, answered here.
        warmup = os.path.join(trained.result["export"], WARMUP_FILE)
        for record in tf.data.TFRecordDataset(warmup).as_numpy_iterator():
            request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
            response = stub.Predict(request, timeout=60)
            batch = tf.make_ndarray(request.inputs["input_word_ids" if "input_word_ids" in
                                                   request.inputs else "text"]).shape[0]
            assert tf.make_ndarray(response.outputs["probabilities"]).shape == (batch, 4)
    finally:
        server.stop(grace=None)


def test_reads_fields_and_checks_labels(tmp_path):
    data = tmp_path / "data"
    write_jsonl(data, "train", [{"question": "q", "answers": ["a", "b", "c"], "gold": 2}])
    config = TaskConfig(data=str(data), label_field="gold",
                        options={"context_field": "question", "choices_field": "answers"})
    assert MultipleChoiceTask(config).examples("train") == [
        {"context": "q", "choices": ["a", "b", "c"], "label": 2}]

    with open(data / "validation.csv", "w") as file:  # Hugging Face's SWAG columns
        file.write("sent1,sent2,ending0,ending1,label\nA man,sits,down,up,1\n")
    assert MultipleChoiceTask(TaskConfig(data=str(data))).examples("validation") == [
        {"context": "A man sits", "choices": ["down", "up"], "label": 1}]

    write_jsonl(data, "test", [{"context": "c", "choices": ["a", "b"], "label": -1}])
    with pytest.raises(ValueError, match=r"test.jsonl:1: label -1 is not the index"):
        MultipleChoiceTask(TaskConfig(data=str(data))).examples("test")


def test_embedded_default_is_seeded_and_balanced():
    task = MultipleChoiceTask(TaskConfig())
    train = task.examples("train")
    assert train == MultipleChoiceTask(TaskConfig()).examples("train")
    assert len(train) == 2000 and len(task.examples("validation")) == 200
    counts = np.bincount([row["label"] for row in train], minlength=4)
    assert counts.min() > 400, counts  # the right ending is anywhere
    topic = {word: i for i, words in enumerate(SYNTHETIC_TOPICS) for word in words}
    for row in train[:50]:
        topics = [topic[choice.split()[0]] for choice in row["choices"]]
        assert sorted(topics) == [0, 1, 2, 3]  # one ending per topic: alone, none is special
        assert topics[row["label"]] == topic[row["context"].split()[0]]


def test_reads_tfds_hellaswag_rows(monkeypatch):
    # No network here: the TFDS reader is replaced by rows shaped as TFDS's
    # "hellaswag" gives them (context, endings, label, ...).
    from tasks.data import sources as module

    rows = [{"context": "A man", "endings": ["sits", "flies"], "label": 0,
             "activity_label": "x", "split_type": "indomain", "source_id": "y"}]
    monkeypatch.setattr(module, "load_tfds", lambda name, split: rows)
    task = MultipleChoiceTask(TaskConfig(data="hellaswag"))
    assert task.examples("validation") == [{"context": "A man", "choices": ["sits", "flies"],
                                            "label": 0}]
