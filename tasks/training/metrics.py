"""Evaluation metrics of the fine-tuning tasks.

These are the numbers a task reports from `Task.evaluate` (GLUE, NER,
SQuAD, multi-label and image classification), computed once per evaluation
on host arrays. Where scikit-learn or scipy computes the number papers
report, they are called; custom code remains only where the reference
definition is another one (with the reason beside it): top-k accuracy
(Keras' tie rule), entity F1 (conlleval/seqeval) and SQuAD EM/F1 (the
official scripts).

Conventions:
    * Inputs are lists or numpy arrays; results are Python floats.
    * Classification metrics raise ValueError on empty or mismatched
      inputs: a score over no examples is a bug, not a number.
    * A ratio whose denominator is zero (a precision with no predicted
      positives, an F1 with nothing to find and nothing found, an MCC with
      a constant column) is 0, sklearn's `zero_division=0`. Correlations
      of a constant input are nan, as scipy gives.
"""

import collections
import re
import string
import warnings

import numpy as np
from scipy import stats
from sklearn import metrics as sklearn_metrics


# ---------------------------------------------------------------------------
# Single-label classification (GLUE and image classification).
# ---------------------------------------------------------------------------


def _pair(labels, predictions):
    """Both as 1-D arrays of the same non-zero length."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.ndim != 1 or labels.shape != predictions.shape:
        raise ValueError(
            f"labels and predictions must be 1-D of one length, got "
            f"{labels.shape} and {predictions.shape}")
    if labels.size == 0:
        raise ValueError("no examples")
    return labels, predictions


def accuracy(labels, predictions):
    """Fraction of examples whose prediction equals the label."""
    return float(sklearn_metrics.accuracy_score(*_pair(labels, predictions)))


def f1(labels, predictions, average="binary", positive=1):
    """F1 of single-label predictions (MRPC and QQP report binary F1).

    average:
        "binary": F1 of class `positive` only. Raises if more than two
            classes occur; 0 if `positive` occurs in neither input (where
            sklearn's average="binary" refuses an absent pos_label).
        "macro": unweighted mean of the per-class F1 over the classes that
            occur in labels or predictions (sklearn's default class set).
        "micro": F1 of the pooled counts; for single-label data this
            equals accuracy.
    """
    labels, predictions = _pair(labels, predictions)
    if average == "binary":
        classes = np.union1d(labels, predictions)
        if len(classes) > 2:
            raise ValueError(f"average='binary' needs at most two classes, got {classes}; "
                             "use 'macro' or 'micro'")
        return float(sklearn_metrics.f1_score(labels, predictions, labels=[positive],
                                              average="macro", zero_division=0))
    if average not in ("macro", "micro"):
        raise ValueError(f"average must be 'binary', 'macro' or 'micro', got {average!r}")
    return float(sklearn_metrics.f1_score(labels, predictions, average=average,
                                          zero_division=0))


def matthews_corrcoef(labels, predictions):
    """Matthews correlation coefficient (CoLA's metric), for any number of
    classes (Gorodkin's generalisation, as sklearn); 0 when undefined (all
    labels or all predictions one class)."""
    labels, predictions = _pair(labels, predictions)
    with warnings.catch_warnings():  # one class only: sklearn warns, and returns the 0
        warnings.simplefilter("ignore", UserWarning)
        return float(sklearn_metrics.matthews_corrcoef(labels, predictions))


def top_k_accuracy(labels, scores, k):
    """Fraction of examples whose label is among the k highest of its scores.

    labels: (n,) integer class ids; scores: (n, num_classes) logits or
    probabilities. Ties are counted in the label's favour: it is a hit when
    fewer than k classes score strictly higher, which is tf.math.in_top_k's
    (and so Keras' SparseTopKCategoricalAccuracy's, the training metric's)
    rule; sklearn's top_k_accuracy_score breaks ties by class order instead.
    """
    labels, scores = np.asarray(labels), np.asarray(scores)
    if scores.ndim != 2 or labels.shape != scores.shape[:1]:
        raise ValueError(
            f"need labels (n,) and scores (n, classes), got {labels.shape} "
            f"and {scores.shape}")
    if labels.size == 0:
        raise ValueError("no examples")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    label_scores = np.take_along_axis(scores, labels[:, None].astype(np.int64), axis=1)
    higher = np.sum(scores > label_scores, axis=1)
    return float(np.mean(higher < k))


# ---------------------------------------------------------------------------
# Multi-label classification.
# ---------------------------------------------------------------------------


def multilabel_f1(labels_multi_hot, predictions_multi_hot, average="micro",
                  zero_division=0.0):
    """F1 of multi-label predictions, both (n, num_labels) arrays of 0/1
    (threshold scores before calling), as sklearn.metrics.f1_score.

    average:
        "micro": F1 of the true/false positives and false negatives pooled
            over all labels and examples.
        "macro": unweighted mean over all num_labels columns of each
            label's F1.

    A label with no true and no predicted positives has an undefined F1;
    it scores `zero_division` and still counts in the macro mean. The
    default 0 drags the macro mean down when an evaluation set lacks some
    labels; pass 1.0 to count "nothing to find, nothing found" as perfect.
    """
    labels = np.asarray(labels_multi_hot)
    predictions = np.asarray(predictions_multi_hot)
    if labels.ndim != 2 or labels.shape != predictions.shape:
        raise ValueError(
            f"need two (n, num_labels) arrays of one shape, got {labels.shape} "
            f"and {predictions.shape}")
    if labels.size == 0:
        raise ValueError("no examples")
    for name, array in (("labels", labels), ("predictions", predictions)):
        if not np.isin(array, (0, 1)).all():
            raise ValueError(f"{name} must be multi-hot 0/1; threshold scores first")
    if average not in ("micro", "macro"):
        raise ValueError(f"average must be 'micro' or 'macro', got {average!r}")
    return float(sklearn_metrics.f1_score(labels.astype(int), predictions.astype(int),
                                          average=average, zero_division=zero_division))


# ---------------------------------------------------------------------------
# Regression (STS-B).
# ---------------------------------------------------------------------------


def _vectors(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be 1-D of one length, got {x.shape} and {y.shape}")
    if x.size < 2:
        raise ValueError("a correlation needs at least two points")
    return x, y


def _correlation(statistic, x, y):
    """scipy's statistic; nan, without scipy's warning, when x or y is constant."""
    x, y = _vectors(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return float(statistic(x, y)[0])


def pearson(x, y):
    """Pearson's correlation coefficient r; nan when x or y is constant."""
    return _correlation(stats.pearsonr, x, y)


def spearman(x, y):
    """Spearman's rank correlation, ties given their average rank; nan when x
    or y is constant."""
    return _correlation(stats.spearmanr, x, y)


def _ratio(numerator, denominator):
    """numerator / denominator, 0 when the denominator is 0 (conlleval's rule)."""
    return numerator / denominator if denominator else 0.0


# ---------------------------------------------------------------------------
# Sequence labelling (NER): entity-level F1 as conlleval / seqeval. Not a
# token-level sklearn F1: an entity counts only with its exact span and type.
# ---------------------------------------------------------------------------


def _entities(tags):
    """(type, start, end) of the entities in one sequence of B-/I-/O tags,
    end inclusive, by conlleval's chunk rules restricted to B, I and O:

        an entity starts at B-X, or at I-X after O or after a tag of
        another type; it goes on while the next tag is I-X; anything else
        (O, B-, a different type, the end of the sequence) closes it.

    The same rules read IOB1 (B- only between adjacent same-type entities)
    and IOB2 (B- on every entity), and take ill-formed IOB2 such as an
    I- after O leniently.
    """
    entities, start, current = [], None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        if tag == "O":
            prefix, kind = "O", None
        elif len(tag) > 2 and tag[0] in "BI" and tag[1] == "-":
            prefix, kind = tag[0], tag[2:]
        else:
            raise ValueError(f"tag {tag!r} is not O, B-<type> or I-<type>")
        continues = prefix == "I" and kind == current
        if current is not None and not continues:
            entities.append((current, start, i - 1))
            current = None
        if prefix != "O" and not continues:
            start, current = i, kind
    return entities


def entity_f1(true_tag_sequences, predicted_tag_sequences, scheme="IOB2"):
    """Entity-level precision, recall and F1 of tagged sentences, as seqeval's
    default mode (seqeval.metrics.f1_score without `mode="strict"`) and the
    CoNLL conlleval script compute them.

    Entities are read from each sentence with conlleval's lenient rules
    (see `_entities`): B-X starts one; I-X continues one of type X and
    otherwise starts a new one (after O or another type). An entity is
    correct only if its type, first and last token match a true one
    exactly. Counts are pooled over all sentences and types (micro
    average); precision = correct / predicted entities, recall = correct /
    true entities, each 0 when its denominator is, and F1 = 2PR/(P+R), 0
    when P + R = 0 — so no entities at all gives zeros, not an error.

    scheme: "IOB2" (B- on every entity) or "IOB1" (CoNLL-2003 files: B-
        only to split adjacent entities of one type). Under these lenient
        rules both are read identically; the argument documents the
        caller's data and rejects anything else. Tags must be "O",
        "B-<type>" or "I-<type>"; E-/S- (IOBES) tags raise ValueError.

    Returns dict(precision=..., recall=..., f1=...) as fractions.
    """
    if scheme not in ("IOB1", "IOB2"):
        raise ValueError(f"scheme must be 'IOB1' or 'IOB2', got {scheme!r}")
    if len(true_tag_sequences) != len(predicted_tag_sequences):
        raise ValueError(
            f"{len(true_tag_sequences)} true and {len(predicted_tag_sequences)} "
            "predicted sentences")
    true, predicted = set(), set()
    for sentence, (true_tags, predicted_tags) in enumerate(
            zip(true_tag_sequences, predicted_tag_sequences)):
        if len(true_tags) != len(predicted_tags):
            raise ValueError(
                f"sentence {sentence}: {len(true_tags)} true and "
                f"{len(predicted_tags)} predicted tags")
        true.update((sentence,) + e for e in _entities(true_tags))
        predicted.update((sentence,) + e for e in _entities(predicted_tags))
    correct = len(true & predicted)
    precision = float(_ratio(correct, len(predicted)))
    recall = float(_ratio(correct, len(true)))
    f1_score = float(_ratio(2 * precision * recall, precision + recall))
    return dict(precision=precision, recall=recall, f1=f1_score)


# ---------------------------------------------------------------------------
# Extractive question answering: the official SQuAD v1.1 / v2.0 scripts (their
# answer normalization and bag-of-tokens F1 are the definition; no library has them).
# ---------------------------------------------------------------------------

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def squad_normalize(text):
    """The official scripts' `normalize_answer`: lower-case, drop ASCII
    punctuation, replace the words a/an/the by a space, collapse runs of
    whitespace — in that order. "The Cat!" -> "cat"."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _gold_answers(ground_truths):
    """v2.0's gold list: answers that normalize to something; if none
    (unanswerable: [] or [""]), the only correct answer is ""."""
    answers = [a for a in ground_truths if squad_normalize(a)]
    return answers or [""]


def _exact(gold, prediction):
    return float(squad_normalize(gold) == squad_normalize(prediction))


def _token_f1(gold, prediction):
    """v2.0's `compute_f1`: F1 of the bags of normalized tokens; if either
    side has no tokens (no answer), 1 if both have none, else 0."""
    gold_tokens = squad_normalize(gold).split()
    predicted_tokens = squad_normalize(prediction).split()
    if not gold_tokens or not predicted_tokens:
        return float(gold_tokens == predicted_tokens)
    common = collections.Counter(gold_tokens) & collections.Counter(predicted_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(predicted_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_exact_match(prediction, ground_truths):
    """1.0 if the normalized prediction equals some normalized ground truth,
    else 0.0 (the max of `compute_exact` over the gold answers).

    Unanswerable questions (ground_truths [] or [""]) follow SQuAD v2.0:
    only a prediction that normalizes to "" scores 1. Gold answers that
    normalize to "" are dropped when others exist, as the v2.0 script
    does; on SQuAD v1.1 data this is the v1.1 script's result.
    """
    return max(_exact(gold, prediction) for gold in _gold_answers(ground_truths))


def squad_f1(prediction, ground_truths):
    """The best token-level F1 of the prediction against any ground truth
    (bag-of-tokens overlap after `squad_normalize`). Unanswerable
    questions as `squad_exact_match`: 1.0 for an empty prediction, else 0."""
    return max(_token_f1(gold, prediction) for gold in _gold_answers(ground_truths))


def squad_scores(predictions, dataset):
    """SQuAD exact match and F1 in percent, as the official scripts print.

    predictions: {question id: predicted answer text} ("" for "no answer").
    dataset: {question id: list of gold answer texts}; [] or [""] marks an
        unanswerable (v2.0) question.

    Every question of `dataset` counts; one missing from `predictions`
    scores 0 (v1.1's rule; the v2.0 script requires them all). Predictions
    for ids not in `dataset` are ignored. Returns dict(exact_match, f1,
    total), and, like the v2.0 script, HasAns_exact_match / HasAns_f1 /
    HasAns_total and the NoAns_ counterparts for whichever of answerable
    and unanswerable questions are present — but only when the dataset has
    unanswerable questions, so v1.1 gets the v1.1 keys alone.
    """
    if not dataset:
        raise ValueError("empty dataset")
    rows = {True: [], False: []}  # has answer -> [(exact, f1)]
    for qid, ground_truths in dataset.items():
        has_answer = any(squad_normalize(a) for a in ground_truths)
        if qid in predictions:
            prediction = predictions[qid]
            score = (squad_exact_match(prediction, ground_truths),
                     squad_f1(prediction, ground_truths))
        else:
            score = (0.0, 0.0)
        rows[has_answer].append(score)

    def summary(prefix, scores):
        exact, f1_ = np.mean(scores, axis=0) * 100.0
        return {f"{prefix}exact_match": float(exact), f"{prefix}f1": float(f1_),
                f"{prefix}total": len(scores)}

    result = summary("", rows[True] + rows[False])
    if rows[False]:
        for prefix, has_answer in (("HasAns_", True), ("NoAns_", False)):
            if rows[has_answer]:
                result.update(summary(prefix, rows[has_answer]))
    return result
