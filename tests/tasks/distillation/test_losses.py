"""Each distillation loss against a value computed by hand in numpy."""

import numpy as np
import pytest
import tensorflow as tf

from tasks.distillation import losses
from tasks.distillation.objectives import DistilBertObjective, TinyBertObjective

RNG = np.random.default_rng(0)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def log_softmax(x):
    return np.log(softmax(x))


# Fixed small tensors: 2 sequences x 3 positions x 5 classes.
TEACHER = RNG.normal(size=(2, 3, 5)).astype(np.float32) * 2
STUDENT = RNG.normal(size=(2, 3, 5)).astype(np.float32) * 2
WEIGHTS = np.array([[1, 1, 0], [1, 0, 0]], np.float32)


def test_kl_divergence_matches_numpy():
    temperature = 2.0
    p, q = softmax(TEACHER / temperature), softmax(STUDENT / temperature)
    kl = (p * (np.log(p) - np.log(q))).sum(-1)  # per position
    expected = (kl * WEIGHTS).sum() / WEIGHTS.sum() * temperature ** 2
    got = losses.kl_divergence(TEACHER, STUDENT, temperature, WEIGHTS)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Unweighted: the mean over every position.
    np.testing.assert_allclose(losses.kl_divergence(TEACHER, STUDENT, temperature),
                               kl.mean() * 4, rtol=1e-5)
    # Identical distributions: 0.
    assert abs(float(losses.kl_divergence(TEACHER, TEACHER, temperature))) < 1e-6


def test_kl_divergence_equals_torch_batchmean_on_selected_rows():
    # DistilBERT's reference: KLDivLoss(reduction="batchmean") over the
    # selected positions' rows, times T^2.
    torch = pytest.importorskip("torch")
    temperature = 2.0
    selected = WEIGHTS.astype(bool)
    reference = torch.nn.KLDivLoss(reduction="batchmean")(
        torch.log_softmax(torch.tensor(STUDENT[selected]) / temperature, -1),
        torch.softmax(torch.tensor(TEACHER[selected]) / temperature, -1)) * temperature ** 2
    np.testing.assert_allclose(losses.kl_divergence(TEACHER, STUDENT, temperature, WEIGHTS),
                               reference.item(), rtol=1e-5)


def test_masked_lm_cross_entropy_matches_numpy():
    labels = np.array([[1, 4, 0], [2, 3, 3]])
    log_probs = log_softmax(STUDENT)
    per_position = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    expected = (per_position * WEIGHTS).sum() / WEIGHTS.sum()
    np.testing.assert_allclose(losses.masked_lm_cross_entropy(labels, STUDENT, WEIGHTS),
                               expected, rtol=1e-5)


def test_logits_mse_matches_numpy():
    per_position = ((STUDENT - TEACHER) ** 2).sum(-1)
    expected = (per_position * WEIGHTS).sum() / WEIGHTS.sum()
    np.testing.assert_allclose(losses.logits_mse(TEACHER, STUDENT, WEIGHTS), expected,
                               rtol=1e-5)


def test_cosine_embedding_loss_matches_numpy():
    teacher = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    student = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1], [1, 1, 0]])
    cosine = (teacher * student).sum(-1) / (np.linalg.norm(teacher, axis=-1)
                                            * np.linalg.norm(student, axis=-1))
    expected = ((1 - cosine) * mask).sum() / mask.sum()
    np.testing.assert_allclose(losses.cosine_embedding_loss(teacher, student, mask), expected,
                               rtol=1e-5)
    # Same direction, any length: 0; opposite: 2.
    np.testing.assert_allclose(losses.cosine_embedding_loss(teacher, 3 * teacher, mask), 0,
                               atol=1e-6)
    np.testing.assert_allclose(losses.cosine_embedding_loss(teacher, -teacher, mask), 2,
                               rtol=1e-6)


def test_soft_cross_entropy_matches_numpy():
    teacher, student = TEACHER[:, 0], STUDENT[:, 0]  # [2, 5]
    for temperature in (1.0, 3.0):
        expected = -(softmax(teacher / temperature)
                     * log_softmax(student / temperature)).sum(-1).mean()
        np.testing.assert_allclose(losses.soft_cross_entropy(teacher, student, temperature),
                                   expected, rtol=1e-5)
    # Per token, weighted (tagging): the mean over the real tokens.
    per_token = -(softmax(TEACHER) * log_softmax(STUDENT)).sum(-1)
    np.testing.assert_allclose(losses.soft_cross_entropy(TEACHER, STUDENT, 1.0, WEIGHTS),
                               (per_token * WEIGHTS).sum() / WEIGHTS.sum(), rtol=1e-5)


def test_mean_squared_error_matches_numpy():
    teacher = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    student = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(losses.mean_squared_error(teacher, student),
                               ((teacher - student) ** 2).mean(), rtol=1e-5)
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    per_row = ((teacher - student) ** 2).mean(-1)
    np.testing.assert_allclose(losses.mean_squared_error(teacher, student, mask),
                               (per_row * mask).sum() / mask.sum(), rtol=1e-5)


def test_attention_score_mse_zeroes_padded_keys():
    teacher = RNG.normal(size=(2, 2, 3, 3)).astype(np.float32)
    student = RNG.normal(size=(2, 2, 3, 3)).astype(np.float32)
    mask = np.array([[1, 1, 1], [1, 1, 0]])
    # The reference: scores carry -10000 on padded keys, and every entry
    # <= -100 is set to 0 on both sides before an MSE over all entries.
    bias = (1 - mask[:, None, None, :]) * -10000.0
    t, s = teacher + bias, student + bias
    t, s = np.where(t <= -100, 0, t), np.where(s <= -100, 0, s)
    expected = ((t - s) ** 2).mean()
    np.testing.assert_allclose(losses.attention_score_mse(teacher, student, mask), expected,
                               rtol=1e-5)


def test_losses_accept_float16_and_return_float32():
    value = losses.kl_divergence(tf.constant(TEACHER, tf.float16),
                                 tf.constant(STUDENT, tf.bfloat16), 2.0, WEIGHTS)
    assert value.dtype == tf.float32


def test_distilbert_objective_weights_the_terms():
    labels = {"mlm_logits": np.array([[1, 4, 0], [2, 3, 3]])}
    weights = {"mlm_logits": WEIGHTS}
    hidden_t = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    hidden_s = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    features = {"input_mask": np.array([[1, 1, 1], [1, 1, 0]])}
    teacher = {"task": {"mlm_logits": TEACHER}, "internals": {"sequence_output": hidden_t}}
    student = {"task": {"mlm_logits": STUDENT}, "internals": {"sequence_output": hidden_s}}
    objective = DistilBertObjective()  # 5, 2, 1 at T=2
    terms = objective(teacher, student, features, labels, weights, step=0)
    assert sorted(terms) == ["loss_ce", "loss_cos", "loss_mlm"]
    assert [terms[n][0] for n in ("loss_ce", "loss_mlm", "loss_cos")] == [5.0, 2.0, 1.0]
    np.testing.assert_allclose(terms["loss_ce"][1],
                               losses.kl_divergence(TEACHER, STUDENT, 2.0, WEIGHTS), rtol=1e-6)
    np.testing.assert_allclose(terms["loss_cos"][1], losses.cosine_embedding_loss(
        hidden_t, hidden_s, features["input_mask"]), rtol=1e-6)
    with_mse = DistilBertObjective(alpha_mse=0.5)(teacher, student, features, labels, weights, 0)
    assert with_mse["loss_mse"][0] == 0.5


def test_tinybert_objective_follows_the_layer_map():
    # Teacher: embeddings + 4 layers; student: embeddings + 2 layers, map [2, 4].
    mask = np.array([[1, 1, 1], [1, 1, 0]])
    hidden = [RNG.normal(size=(2, 3, 4)).astype(np.float32) for _ in range(5)]
    scores = [RNG.normal(size=(2, 2, 3, 3)).astype(np.float32) for _ in range(4)]
    student_hidden = [RNG.normal(size=(2, 3, 4)).astype(np.float32) for _ in range(3)]
    student_scores = [RNG.normal(size=(2, 2, 3, 3)).astype(np.float32) for _ in range(2)]
    teacher = {"internals": {"encoder_outputs": hidden, "attention_scores": scores},
               "task": {"logits": TEACHER[:, 0]}}
    student = {"internals": {"encoder_outputs": [h * 0 for h in student_hidden],
                             "fit_dense_outputs": student_hidden,
                             "attention_scores": student_scores},
               "task": {"logits": STUDENT[:, 0]}}
    objective = TinyBertObjective([2, 4], stage="both", switch_step=10)
    terms = objective(teacher, student, {"input_mask": mask}, None, None, step=3)
    expected_hidden = sum(((student_hidden[s] - hidden[t]) ** 2).mean()
                          for s, t in ((0, 0), (1, 2), (2, 4)))
    expected_attention = sum(losses.attention_score_mse(scores[t], student_scores[s], mask)
                             for s, t in ((0, 1), (1, 3)))
    np.testing.assert_allclose(terms["hidden_loss"][1], expected_hidden, rtol=1e-5)
    np.testing.assert_allclose(terms["attention_loss"][1], expected_attention, rtol=1e-5)
    # Step 3 < 10: the intermediate stage; from step 10 on, the predictions.
    assert [float(terms[n][0]) for n in ("hidden_loss", "prediction_loss")] == [1.0, 0.0]
    later = objective(teacher, student, {"input_mask": mask}, None, None, step=10)
    assert [float(later[n][0]) for n in ("hidden_loss", "prediction_loss")] == [0.0, 1.0]
    np.testing.assert_allclose(later["prediction_loss"][1], -(
        softmax(TEACHER[:, 0]) * log_softmax(STUDENT[:, 0])).sum(-1).mean(), rtol=1e-5)


def test_tinybert_prediction_losses_for_regression_and_multilabel():
    teacher, student = TEACHER[:, 0], STUDENT[:, 0]
    regression = TinyBertObjective([1], stage="prediction", prediction_kind="regression")
    np.testing.assert_allclose(regression.prediction_term(teacher, student, None),
                               ((teacher - student) ** 2).mean(), rtol=1e-5)
    multilabel = TinyBertObjective([1], stage="prediction", prediction_kind="sigmoid")
    p = 1 / (1 + np.exp(-teacher))
    q = 1 / (1 + np.exp(-student))
    expected = -(p * np.log(q) + (1 - p) * np.log(1 - q)).mean()
    np.testing.assert_allclose(multilabel.prediction_term(teacher, student, None), expected,
                               rtol=1e-5)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="temperature"):
        DistilBertObjective(temperature=0)
    with pytest.raises(ValueError, match="weight is 0"):
        DistilBertObjective(alpha_ce=0, alpha_mlm=0, alpha_cos=0)
    with pytest.raises(ValueError, match="stage"):
        TinyBertObjective([1], stage="all")
