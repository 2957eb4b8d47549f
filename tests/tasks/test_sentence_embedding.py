"""Sentence-BERT objectives: each loss against hand-computed values, and a tiny
model trained with the ranking loss finds held-out paraphrases."""

import json
import math

import keras
import numpy as np
import pytest

import zoo
from export.verify import call_in_fresh_process
from tasks.training import runner
from tasks.base import TaskConfig
from tasks.data import paraphrases
from tasks.sentence_embedding import (InBatchRankingLoss, SentenceEmbeddingTask,
                                      cosine_similarity, pair_features, ranking_loss,
                                      retrieval_scores, similarity_logits)

U = np.array([[1.0, 0.0], [0.0, 1.0]], "float32")
V = np.array([[1.0, 0.0], [1.0, 1.0]], "float32")


def test_ranking_loss_by_hand():
    # scale 1: row 0 scores (cos(u0, v0), cos(u0, v1)) = (1, 1/sqrt2), right answer 0;
    # row 1 scores (0, 1/sqrt2), right answer 1.
    c = 1 / math.sqrt(2)
    row0 = -1 + math.log(math.exp(1) + math.exp(c))
    row1 = -c + math.log(math.exp(0) + math.exp(c))
    logits = similarity_logits(U, V, 1.0)
    np.testing.assert_allclose(np.asarray(logits), [[1, c], [0, c]], atol=1e-6)
    assert float(ranking_loss(logits)) == pytest.approx((row0 + row1) / 2, abs=1e-6)
    # The Keras loss ignores its labels: the right answer of row i is column i.
    assert float(InBatchRankingLoss()(np.zeros(2), logits)) == pytest.approx(
        (row0 + row1) / 2, abs=1e-6)
    # Scale 20 (the default) sharpens the softmax: the same ranking, a smaller loss.
    assert float(ranking_loss(similarity_logits(U, V, 20.0))) == pytest.approx(
        (math.log(1 + math.exp(20 * (c - 1))) + math.log(1 + math.exp(-20 * c))) / 2, abs=1e-6)


def test_cosine_similarity_loss_by_hand():
    similarity = np.asarray(cosine_similarity(U, V))
    np.testing.assert_allclose(similarity, [1.0, 1 / math.sqrt(2)], atol=1e-6)
    scores = np.array([0.5, 1.0], "float32")
    loss = keras.losses.MeanSquaredError()(scores, similarity)
    assert float(loss) == pytest.approx(((1 - 0.5) ** 2 + (1 / math.sqrt(2) - 1) ** 2) / 2,
                                        abs=1e-6)


def test_softmax_loss_by_hand():
    u = np.array([[1.0, 2.0]], "float32")
    v = np.array([[3.0, 0.0]], "float32")
    features = np.asarray(pair_features(u, v))
    np.testing.assert_array_equal(features, [[1, 2, 3, 0, 2, 2]])  # (u, v, |u - v|)
    kernel = np.array([[0.1, 0.0, -0.1], [0.0, 0.2, 0.0], [0.1, 0.1, 0.1],
                       [0.0, 0.0, 0.0], [-0.2, 0.0, 0.1], [0.0, 0.1, 0.0]], "float32")
    logits = features @ kernel  # (0.1+0.3-0.4, 0.4+0.3+0.2, -0.1+0.3+0.2) = (0, 0.9, 0.4)
    np.testing.assert_allclose(logits, [[0.0, 0.9, 0.4]], atol=1e-6)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(np.array([1]), logits)
    expected = -0.9 + math.log(math.exp(0) + math.exp(0.9) + math.exp(0.4))
    assert float(loss) == pytest.approx(expected, abs=1e-6)


def test_softmax_model_uses_the_pair_features():
    """The task's classifier reads exactly (u, v, |u - v|) of the shared encoder."""
    task = SentenceEmbeddingTask(TaskConfig(options={"objective": "softmax"}))
    backbone = zoo.build("bert_tiny_uncased", vocab_size=60, num_layers=1, hidden_size=8,
                         num_heads=2, intermediate_size=16, dropout=0.0)
    model = task.build_model(backbone)
    ids = np.random.default_rng(0).integers(5, 60, (3, 7)).astype("int32")
    ones, zeros = np.ones_like(ids), np.zeros_like(ids)
    side_a = {"input_word_ids": ids, "input_mask": ones, "input_type_ids": zeros}
    side_b = {"input_word_ids": ids[::-1].copy(), "input_mask": ones, "input_type_ids": zeros}
    inputs = {f"{side}_{name}": value for side, values in (("a", side_a), ("b", side_b))
              for name, value in values.items()}
    logits = model.predict(inputs, verbose=0)["logits"]
    encoder = task.saved_model(model)
    u = encoder.predict(side_a, verbose=0)["embedding"]
    v = encoder.predict(side_b, verbose=0)["embedding"]
    kernel, bias = model.get_layer("classifier").get_weights()
    np.testing.assert_allclose(logits, np.asarray(pair_features(u, v)) @ kernel + bias,
                               atol=1e-5)
    assert task.labels() == sorted(paraphrases.LABELS)


def test_retrieval_scores():
    queries = np.array([[1, 0], [0, 1], [1, 1]], "float32")
    candidates = np.array([[1, 0.1], [1, 0], [1, 1.2]], "float32")
    # Query 0's best is candidate 1 (rank 2); query 1's best is candidate 2 (its own,
    # candidate 1, is orthogonal: rank 3); query 2's best is candidate 2 (rank 1).
    scores = retrieval_scores(queries, candidates)
    assert scores["accuracy_at_1"] == pytest.approx(1 / 3)
    assert scores["mrr"] == pytest.approx((1 / 2 + 1 / 3 + 1) / 3)
    # Collapsed embeddings tie everywhere: ties count against, so they score
    # last, not first.
    collapsed = retrieval_scores(np.ones((5, 4), "float32"), np.ones((5, 4), "float32"))
    assert collapsed["accuracy_at_1"] == 0.0 and collapsed["mrr"] == pytest.approx(1 / 5)


def test_paraphrase_splits_are_disjoint_and_reworded():
    train = paraphrases.pairs("train")
    validation = paraphrases.pairs("validation")
    assert len(validation) == 120
    assert not {row["text"] for row in train} & {row["text"] for row in validation}
    # A paraphrase says each of the five things with another wording.
    phrases = [p for concepts in paraphrases.SLOTS.values() for options in concepts
               for p in options]
    for row in validation:
        text, text_b = row["text"].lower(), row["text_b"].lower()
        assert text != text_b
        assert not [p for p in phrases if p in text and p in text_b]
    cosine = paraphrases.pairs("validation", "cosine")
    assert {row["label"] for row in cosine} <= {0.0, 0.2, 0.4, 0.6, 0.8, 1.0}


@pytest.fixture(scope="module")
def ranking_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sentence_run")
    settings = runner.RunSettings(
        task="sentence_embedding", model="bert_tiny_uncased", sequence_length=24,
        vocab_size=400, batch_size=32, train_steps=150, steps_per_loop=150,
        learning_rate=1e-3, dropout=0.0, model_dir=str(folder / "run"),
        export_dir=str(folder / "export" / "encoder"))
    result = runner.run(settings)
    return settings, result


@pytest.mark.heavy
def test_ranking_finds_held_out_paraphrases(ranking_run):
    settings, result = ranking_run
    final = result["final"]
    assert final["chance"] == pytest.approx(1 / 120)
    # An untrained encoder of the same size and vocabulary is near chance.
    task = SentenceEmbeddingTask(TaskConfig(sequence_length=24))
    preprocessor = zoo.load_preprocessor(settings.model_dir, sequence_length=24)
    untrained = zoo.build("bert_tiny_uncased", vocab_size=preprocessor.vocabulary.size,
                          dropout=0.0)
    before = task.evaluate(task.build_model(untrained), "validation", preprocessor, 64)
    assert before["accuracy_at_1"] < 0.15
    assert final["accuracy_at_1"] > 0.6 and final["mrr"] > 0.7
    with open(f"{settings.model_dir}/metrics.json") as file:
        assert json.load(file)["final"]["accuracy_at_1"] == final["accuracy_at_1"]


def test_saved_encoder_and_export_serve_strings(ranking_run):
    settings, result = ranking_run
    encoder = zoo.load(f"{settings.model_dir}/model.keras")
    assert isinstance(encoder, zoo.SentenceEncoder) and encoder.normalize
    preprocessor = zoo.load_preprocessor(settings.model_dir, sequence_length=24)
    texts = ["The dog runs quickly in the park at night.", "At dawn a lady hums softly.", ""]
    expected = encoder.encode(texts, preprocessor)
    np.testing.assert_allclose(np.linalg.norm(expected, axis=1), 1.0, atol=1e-5)
    served = call_in_fresh_process(result["export"], {
        "serving_default": {"text": np.array(texts, dtype=object)}})
    np.testing.assert_allclose(served["serving_default"]["embedding"], expected, atol=1e-5)


@pytest.mark.parametrize("objective, metric, steps", [("softmax", "accuracy", 20),
                                                      ("cosine", "spearman", 60)])
@pytest.mark.heavy
def test_softmax_and_cosine_objectives_train_and_evaluate(objective, metric, steps, tmp_path):
    """A short run of each labelled objective through the runner: the real
    metric comes out of evaluation (cosine: correlated with the scores after
    60 steps; softmax learns slowly here, so its run only shows the path)."""
    settings = runner.RunSettings(
        task="sentence_embedding", model="bert_tiny_uncased", sequence_length=24,
        vocab_size=400, batch_size=32, train_steps=steps, steps_per_loop=steps,
        learning_rate=1e-3,
        dropout=0.0, model_dir=str(tmp_path / objective), options={"objective": objective})
    result = runner.run(settings)
    final = result["final"]
    assert set(final) >= {metric} and np.isfinite(final[metric])
    if objective == "cosine":
        assert final["spearman"] > 0.3
    else:
        assert 0.0 <= final["accuracy"] <= 1.0
    assert isinstance(zoo.load(f"{settings.model_dir}/model.keras"), zoo.SentenceEncoder)


@pytest.fixture(scope="module")
def sentence_transformers_folder(tmp_path_factory):
    fixtures = pytest.importorskip("tests.zoo.sentence_fixtures")
    folder = tmp_path_factory.mktemp("st")
    hf_folder = fixtures.make_hf_model(folder / "hf")
    fixtures.save_sentence_transformer(hf_folder, folder / "st", "mean", normalize=True)
    return folder / "st"


def test_other_tasks_and_tools_take_a_sentence_encoders_backbone(sentence_transformers_folder):
    """--init_checkpoint=<Sentence-Transformers folder> fine-tunes its backbone in
    other tasks; sentence_embedding keeps the whole encoder; visualize reads
    its attention."""
    from tasks.tools import visualize
    from zoo.text_backbone import TextBackbone

    path = str(sentence_transformers_folder)
    settings = runner.RunSettings(task="classification", init_checkpoint=path)
    task = runner.make_task(settings)
    assert isinstance(runner.make_backbone(task, settings, None), TextBackbone)
    settings = runner.RunSettings(task="sentence_embedding", init_checkpoint=path)
    encoder = runner.make_backbone(runner.make_task(settings), settings, None)
    assert isinstance(encoder, zoo.SentenceEncoder) and encoder.normalize
    backbone, _ = visualize.load_backbone(path)
    assert isinstance(backbone, TextBackbone) and "attention_probs" in backbone.output
