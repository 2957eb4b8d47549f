"""Multiple choice learns a rule it can only apply by reading context and choice together,
and its saved model reloads with kerasbert and zoo alone."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tasks import registry
from tasks.training import runner
from tasks.base import TaskConfig
from tasks.multiple_choice import SYNTHETIC_TOPICS, MultipleChoiceTask, synthetic_examples

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


@pytest.mark.heavy
def test_learns_which_ending_continues_the_context(tmp_path, registered):
    # Every example has one ending per topic, so an ending alone says
    # nothing: only its agreement with the context's topic picks it (see
    # synthetic_examples). Chance is 1/4; with 300 unseen examples its
    # standard deviation is 2.5%, so > 80% (22 sigma) means the model reads
    # context and ending together. It reaches ~100% within 300 steps.
    # The startphrase/endings layout (SWAG's) is read from JSONL here.
    data = tmp_path / "data"
    for split, count, seed in (("train", 3000, 0), ("validation", 300, 1)):
        write_jsonl(data, split, [{"startphrase": row["context"], "endings": row["choices"],
                                   "label": row["label"]}
                                  for row in synthetic_examples(count, seed)])
    settings = runner.RunSettings(
        task="multiple_choice", data=str(data), model="bert_tiny_uncased",
        model_dir=str(tmp_path / "run"), sequence_length=8, vocab_size=100, batch_size=16,
        train_steps=300, steps_per_loop=300, learning_rate=1e-3, dropout=0.0)
    result = runner.run(settings)
    print("multiple choice held-out scores:", result["final"])
    assert result["final"]["accuracy"] > 0.8, result

    # The saved model reloads in a process that imports only keras, kerasbert
    # and zoo, and gives the same logits.
    task = runner.make_task(settings)
    preprocessor = runner.text_preprocessor(task, settings, None)
    features, _ = next(iter(task.build_dataset("validation", preprocessor, 8, training=False)))
    inputs = {name: value.numpy() for name, value in features.items()}
    np.savez(tmp_path / "inputs.npz", **inputs)
    import keras

    expected = keras.saving.load_model(tmp_path / "run" / "model.keras")(inputs)["logits"]
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
    np.testing.assert_allclose(reloaded, np.asarray(expected), atol=1e-5)


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
    with pytest.raises(ValueError, match="Label -1 is not the index"):
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
