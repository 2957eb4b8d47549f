"""Text classification, regression and multi-label learn on text they have not seen."""

import pytest

from tasks.training import runner
from tests.tasks import synthetic

SMALL_TEXT_MODEL = dict(model="bert_tiny_uncased", sequence_length=24, batch_size=32,
                        steps_per_loop=100, eval_every_loops=100, vocab_size=200,
                        learning_rate=5e-4, warmup_fraction=0.1)


def run(tmp_path, task, data, steps, **extra):
    settings = runner.RunSettings(task=task, data=str(data), model_dir=str(tmp_path / "run"),
                                  train_steps=steps, **{**SMALL_TEXT_MODEL, **extra})
    return runner.run(settings)["final"]


@pytest.mark.heavy
def test_pair_classification_learns(tmp_path):
    # Needs both segments: do A and B share words? Neither text alone tells,
    # so chance is 50%; with 300 unseen pairs its standard deviation is 2.9%,
    # and > 62% (over 4 sigma) can only come from comparing the texts. A tiny
    # model learns this slowly: 1,000 steps reach ~68% here.
    data = synthetic.shared_word_pairs(tmp_path / "data")
    scores = run(tmp_path, "classification", data, 1000, text_fields=("text_a", "text_b"),
                 learning_rate=1e-3)
    assert scores["accuracy"] > 0.62, scores


@pytest.mark.heavy
def test_regression_learns(tmp_path):
    # Pearson with the count difference: 0 by chance; > 0.8 needs counting.
    data = synthetic.counting_regression(tmp_path / "data")
    scores = run(tmp_path, "regression", data, 500)
    assert scores["pearson"] > 0.8 and scores["spearman"] > 0.8, scores


@pytest.mark.heavy
def test_multilabel_learns(tmp_path):
    # Each color present with p=0.5: always predicting all colors gives
    # micro-F1 ~0.67; > 0.9 means the model reads which colors appear.
    data = synthetic.color_multilabel(tmp_path / "data")
    scores = run(tmp_path, "multilabel", data, 400)
    assert scores["micro_f1"] > 0.9, scores


def test_unknown_label_is_named(tmp_path):
    data = synthetic.shared_word_pairs(tmp_path / "data", train=40, validation=10)
    with pytest.raises(ValueError, match="'0' is not one of"):
        run(tmp_path, "classification", data, 2, text_fields=("text_a", "text_b"),
            options={"labels": ("yes", "no")})
