"""Masked-LM (+ NSP/SOP) pretraining learns a corpus with structure, masks reproducibly,
and its saved model reloads, tie included, with kerasbert and zoo alone."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import zoo
from kerasbert.text import Preprocessor, WordPieceTokenizer, build_wordpiece_vocabulary
from tasks import registry
from tasks.training import runner
from tasks.base import TaskConfig
from tasks.pretraining import PretrainingTask, grammar_documents, read_documents

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def registered():
    """The runner knows this task."""
    assert registry.task_class(PretrainingTask.name) is PretrainingTask


def write_documents(path, documents):
    with open(path, "w") as file:
        file.write("\n\n".join("\n".join(document) for document in documents) + "\n")


@pytest.fixture(scope="module")
def preprocessor(tmp_path_factory):
    vocab = str(tmp_path_factory.mktemp("vocab") / "vocab.txt")
    task = PretrainingTask(TaskConfig())
    build_wordpiece_vocabulary(task.training_texts(), 200, lower_case=True, output_file=vocab)
    return Preprocessor(WordPieceTokenizer(vocab, lower_case=True), sequence_length=32)


@pytest.mark.heavy
def test_learns_masked_words_and_next_sentences(tmp_path, registered):
    data = tmp_path / "data"
    os.makedirs(data)
    write_documents(data / "train.txt", grammar_documents(500, seed=0))
    write_documents(data / "validation.txt", grammar_documents(150, seed=1))
    settings = runner.RunSettings(
        task="pretraining", data=str(data), model="bert_tiny_uncased",
        model_dir=str(tmp_path / "run"), sequence_length=32, vocab_size=200, batch_size=32,
        train_steps=500, steps_per_loop=500, learning_rate=1e-3, dropout=0.0,
        options={"max_predictions": 5})
    scores = runner.run(settings)["final"]

    # Baselines on exactly the evaluated masks: the best single token for
    # every masked position (the most frequent masked token of the split
    # itself, so at least as good as a unigram model), and the majority NSP
    # label. Each masked word of the corpus but the adjective is predictable
    # from its sequence (grammar_documents), and a random B breaks the story
    # order, so a model that reads context beats both by a wide margin.
    task = runner.make_task(settings)
    preprocessor = runner.text_preprocessor(task, settings, None)
    masked, nsp = [], []
    for _, labels, weights in task.build_dataset("validation", preprocessor, 64, training=False):
        masked += labels["mlm_logits"].numpy()[weights["mlm_logits"].numpy() > 0].tolist()
        nsp += labels["nsp_logits"].numpy().tolist()
    unigram = np.bincount(masked).max() / len(masked)
    majority = max(np.mean(nsp), 1 - np.mean(nsp))
    print(f"pretraining held-out: {scores}; unigram baseline {unigram:.3f} over {len(masked)} "
          f"masked tokens, NSP majority {majority:.3f} over {len(nsp)} pairs")
    # ~330 pairs, ~650 masked tokens: a standard deviation of about 2.7% (NSP)
    # and 2% (MLM), so these margins are far beyond chance.
    assert scores["mlm_accuracy"] > unigram + 0.3, (scores, unigram)
    assert scores["nsp_accuracy"] > majority + 0.15, (scores, majority)
    assert scores["perplexity"] < 3.0, scores

    # Reload in a process with keras, kerasbert and zoo only: same logits,
    # and the MLM decoder is still the backbone's token embedding.
    features, _, _ = next(iter(task.build_dataset("validation", preprocessor, 8,
                                                  training=False)))
    np.savez(tmp_path / "inputs.npz", **{k: v.numpy() for k, v in features.items()})
    model_path = str(tmp_path / "run" / "model.keras")
    expected = keras.saving.load_model(model_path)(features)
    script = (
        "import sys, keras, numpy as np, zoo\n"
        "assert not any(m == 'tasks' or m.startswith('tasks.') for m in sys.modules)\n"
        f"model = keras.saving.load_model({model_path!r})\n"
        "head = model.get_layer('mlm_head')\n"
        "backbone = model.get_layer('bert_tiny_uncased')\n"
        "assert head.token_embedding is backbone.token_embedding\n"
        f"outputs = model(dict(np.load({str(tmp_path / 'inputs.npz')!r})))\n"
        f"np.savez({str(tmp_path / 'outputs.npz')!r}, "
        "**{k: np.asarray(v) for k, v in outputs.items()})\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    reloaded = np.load(tmp_path / "outputs.npz")
    assert sorted(reloaded) == ["mlm_logits", "nsp_logits"]
    assert reloaded["mlm_logits"].shape == (8, 5, preprocessor.vocabulary.size)
    for name in reloaded:
        np.testing.assert_allclose(reloaded[name], np.asarray(expected[name]), atol=1e-5)


@pytest.mark.parametrize("preset, option, output", [
    ("bert_test_tiny", "default", "nsp_logits"),
    ("albert_test_tiny", "default", "sop_logits"),
    ("distilbert_test_tiny", "default", None),
    ("bert_test_tiny", "none", None),
    ("bert_test_tiny", "sop", "sop_logits"),
    ("distilbert_test_tiny", "nsp", "nsp_logits"),  # no pooler: reads [CLS]
])
def test_sentence_task_follows_the_family(preprocessor, preset, option, output):
    options = {"max_predictions": 4} if option == "default" else {
        "max_predictions": 4, "sentence_task": option}
    task = PretrainingTask(TaskConfig(sequence_length=32, options=options))
    model = task.build_model(zoo.build(preset, vocab_size=preprocessor.vocabulary.size))
    features, labels, weights = next(iter(task.build_dataset("validation", preprocessor, 4,
                                                             training=False)))
    outputs = model(features)
    expected = ["mlm_logits"] + ([output] if output else [])
    assert sorted(outputs) == sorted(labels) == sorted(weights) == sorted(expected)
    assert outputs["mlm_logits"].shape == (4, 4, preprocessor.vocabulary.size)
    if output:
        assert outputs[output].shape == (4, 2)
    if option == "none":  # MLM alone: consecutive segments, in document order
        assert {row["label"] for row in task.examples("validation")} == {0}

    # Rebuilt from its config, as the runner saves it: same outputs, and the
    # MLM head decodes with the new backbone's token embedding.
    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    assert copy.get_layer("mlm_head").token_embedding is copy.get_layer(preset).token_embedding
    for name, value in copy(features).items():
        np.testing.assert_allclose(value, outputs[name], atol=1e-6)


@pytest.mark.heavy
def test_loss_and_accuracy_count_only_masked_tokens(preprocessor):
    # Keras' loss and metric (the progress bar) must equal evaluate()'s
    # numbers, which weight each masked token by masked_lm_weights: padded
    # prediction slots count for nothing. One batch holds the whole split,
    # so Keras' per-batch averaging is the per-token average.
    task = PretrainingTask(TaskConfig(sequence_length=32, options={"max_predictions": 6}))
    model = task.build_model(zoo.build("bert_test_tiny", vocab_size=preprocessor.vocabulary.size))
    model.compile(loss=task.build_losses(), metrics=task.build_metrics())
    size = len(task.examples("validation"))
    dataset = task.build_dataset("validation", preprocessor, size, training=False)
    _, _, weights = next(iter(dataset))
    assert 0 < weights["mlm_logits"].numpy().mean() < 0.9  # there are padded slots
    keras_scores = model.evaluate(dataset, return_dict=True, verbose=0)
    scores = task.evaluate(model, "validation", preprocessor, size)
    assert np.isclose(np.exp(keras_scores["mlm_logits_loss"]), scores["perplexity"], rtol=1e-4)
    assert np.isclose(keras_scores["mlm_logits_accuracy"], scores["mlm_accuracy"], atol=1e-6)
    assert scores["perplexity"] > 50  # untrained: close to the vocabulary size (~100)


def test_masks_are_reproducible_and_resume_mid_stream(preprocessor):
    task = PretrainingTask(TaskConfig(sequence_length=32))

    def batches(start_step, count, seed=0):
        stream = task.build_dataset("train", preprocessor, 8, training=True,
                                    start_step=start_step, seed=seed)
        return [(x["input_word_ids"].numpy(), x["masked_lm_positions"].numpy())
                for x, _, _ in stream.take(count)]

    full = batches(0, 5)
    for left, right in zip(full[3:], batches(3, 2)):  # a run resumed at step 3
        np.testing.assert_array_equal(left[0], right[0])
        np.testing.assert_array_equal(left[1], right[1])
    assert not np.array_equal(full[0][1], full[1][1])  # every batch masked afresh
    assert not np.array_equal(full[0][0], batches(0, 1, seed=1)[0][0])


def test_reads_documents_and_splits_a_single_file(tmp_path):
    path = tmp_path / "corpus.txt"
    documents = [[f"doc {d} sentence {s} ." for s in range(3)] for d in range(10)]
    write_documents(path, documents)
    assert read_documents(path) == documents
    task = PretrainingTask(TaskConfig(data=str(path), options={"validation_fraction": 0.2}))
    assert task.documents("train") == documents[:8]
    assert task.documents("validation") == documents[8:]
    assert len(task.training_texts()) == 24


def test_reads_tfds_documents(monkeypatch):
    # No network here: rows shaped as TFDS text corpora give them, one
    # document per example in options["text_field"].
    import tasks.pretraining as module

    rows = [{"text": "First one. Second one!\nThird one"}, {"text": "Other doc? Yes."}]
    monkeypatch.setattr(module, "load_tfds", lambda name, split: rows)
    task = PretrainingTask(TaskConfig(data="c4/en"))
    assert task.documents("train") == [["First one.", "Second one!", "Third one"],
                                       ["Other doc?", "Yes."]]
