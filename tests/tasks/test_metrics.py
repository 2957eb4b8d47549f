"""tasks.training.metrics against hand-computed values, independent numpy formulations,
transcriptions of the reference algorithms (seqeval/conlleval chunking, the
official SQuAD scripts), and sklearn/scipy/seqeval themselves when importable
(they are not dependencies; those tests skip otherwise)."""

import collections
import math
import re
import string

import numpy as np
import pytest

from tasks.training import metrics as m


# ---------------------------------------------------------------------------
# accuracy, f1, matthews_corrcoef, top_k_accuracy
# ---------------------------------------------------------------------------


def test_accuracy():
    assert m.accuracy([0, 1, 1, 0], [0, 1, 0, 0]) == 0.75  # 3 of 4
    assert m.accuracy(np.array(["a", "b"]), ["a", "b"]) == 1.0


@pytest.mark.parametrize("fn", [m.accuracy, m.f1, m.matthews_corrcoef])
def test_classification_rejects_empty_and_mismatched(fn):
    with pytest.raises(ValueError):
        fn([], [])
    with pytest.raises(ValueError):
        fn([0, 1], [0, 1, 1])


def test_f1_hand():
    labels = [1, 1, 1, 1, 0, 0]
    predictions = [1, 1, 0, 0, 1, 0]
    # class 1: tp=2 fp=1 fn=2 -> P=2/3 R=1/2 -> F1 = 2*(1/3)/(7/6) = 4/7
    assert m.f1(labels, predictions) == pytest.approx(4 / 7)
    # class 0: tp=1 fp=2 fn=1 -> P=1/3 R=1/2 -> F1 = 2*(1/6)/(5/6) = 2/5
    assert m.f1(labels, predictions, positive=0) == pytest.approx(2 / 5)
    # macro: (4/7 + 2/5) / 2 = 17/35; micro = accuracy = 3/6
    assert m.f1(labels, predictions, average="macro") == pytest.approx(17 / 35)
    assert m.f1(labels, predictions, average="micro") == pytest.approx(0.5)


def test_f1_multiclass_hand():
    labels, predictions = [0, 1, 2, 2], [0, 2, 2, 1]
    # class 0: F1 1; class 1: tp0 fp1 fn1 -> 0; class 2: tp1 fp1 fn1 -> 2/4
    assert m.f1(labels, predictions, average="macro") == pytest.approx(0.5)
    assert m.f1(labels, predictions, average="micro") == pytest.approx(0.5)
    # A class seen only in predictions counts in the macro mean:
    # class 0: tp1 fp0 fn1 -> 2/3; class 1: tp0 fp1 -> 0; mean 1/3.
    assert m.f1([0, 0], [0, 1], average="macro") == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="binary"):
        m.f1(labels, predictions)
    with pytest.raises(ValueError):
        m.f1(labels, predictions, average="weighted")


def test_f1_one_class():
    assert m.f1([0, 0, 0], [0, 0, 0]) == 0.0  # no positives anywhere: 0
    assert m.f1([1, 1], [1, 1]) == 1.0
    assert m.f1([0, 0], [1, 1]) == 0.0  # P=0, R undefined -> 0
    assert m.f1([0, 0, 0], [0, 0, 0], average="macro") == 1.0


def test_mcc_hand():
    # tp=2 tn=2 fp=1 fn=1 -> (2*2 - 1*1) / sqrt(3*3*3*3) = 3/9
    assert m.matthews_corrcoef([1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 1]) == pytest.approx(1 / 3)
    assert m.matthews_corrcoef([0, 1, 0, 1], [0, 1, 0, 1]) == pytest.approx(1.0)
    assert m.matthews_corrcoef([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)
    # multi-class: n=4, correct=2, t=p=(1,1,2): (2*4 - 6) / sqrt((16-6)(16-6)) = 0.2
    assert m.matthews_corrcoef([0, 1, 2, 2], [0, 2, 2, 1]) == pytest.approx(0.2)
    # undefined (a constant side) -> 0
    assert m.matthews_corrcoef([0, 1, 1, 0], [1, 1, 1, 1]) == 0.0
    assert m.matthews_corrcoef([1, 1, 1], [1, 1, 1]) == 0.0


def _mcc_binary(labels, predictions):
    tp = np.sum((labels == 1) & (predictions == 1))
    tn = np.sum((labels == 0) & (predictions == 0))
    fp = np.sum((labels == 0) & (predictions == 1))
    fn = np.sum((labels == 1) & (predictions == 0))
    return (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))


def _mcc_gorodkin(labels, predictions, num_classes):
    """Gorodkin's definition: covariance of the one-hot matrices X, Y,
    cov(X, Y) / sqrt(cov(X, X) cov(Y, Y)), cov summed over classes."""
    x = np.eye(num_classes)[labels]
    y = np.eye(num_classes)[predictions]
    x, y = x - x.mean(0), y - y.mean(0)
    return np.sum(x * y) / math.sqrt(np.sum(x * x) * np.sum(y * y))


def _f1_per_class(labels, predictions, c):
    tp = np.sum((labels == c) & (predictions == c))
    p = tp / max(np.sum(predictions == c), 1)
    r = tp / max(np.sum(labels == c), 1)
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def test_classification_random_against_formulas():
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.integers(0, 2, 50)
        predictions = np.where(rng.random(50) < 0.7, labels, 1 - labels)
        assert m.matthews_corrcoef(labels, predictions) == pytest.approx(_mcc_binary(labels, predictions))
        assert m.f1(labels, predictions) == pytest.approx(_f1_per_class(labels, predictions, 1))
        labels = rng.integers(0, 4, 60)
        predictions = np.where(rng.random(60) < 0.5, labels, rng.integers(0, 4, 60))
        assert m.matthews_corrcoef(labels, predictions) == pytest.approx(
            _mcc_gorodkin(labels, predictions, 4))
        classes = np.union1d(labels, predictions)
        assert m.f1(labels, predictions, average="macro") == pytest.approx(
            np.mean([_f1_per_class(labels, predictions, c) for c in classes]))
        assert m.f1(labels, predictions, average="micro") == pytest.approx(
            m.accuracy(labels, predictions))


@pytest.mark.filterwarnings("ignore:A single label:UserWarning")
def test_classification_against_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    for num_classes in (2, 3, 5):
        labels = rng.integers(0, num_classes, 80)
        predictions = np.where(rng.random(80) < 0.5, labels, rng.integers(0, num_classes, 80))
        assert m.matthews_corrcoef(labels, predictions) == pytest.approx(
            skm.matthews_corrcoef(labels, predictions))
        for average in ("macro", "micro") + (("binary",) if num_classes == 2 else ()):
            assert m.f1(labels, predictions, average=average) == pytest.approx(
                skm.f1_score(labels, predictions, average=average))
        if num_classes > 2:  # (sklearn wants 1-D scores for two classes)
            scores = rng.random((80, num_classes))
            for k in range(1, num_classes):
                assert m.top_k_accuracy(labels, scores, k) == pytest.approx(
                    skm.top_k_accuracy_score(labels, scores, k=k))
    # the degenerate cases: one class, a constant side
    for labels, predictions in (([0, 0, 0], [0, 0, 0]), ([1, 1], [1, 1]), ([0, 1, 1], [1, 1, 1]),
                                ([0, 0], [1, 1]), ([0, 0], [0, 1])):
        assert m.matthews_corrcoef(labels, predictions) == skm.matthews_corrcoef(labels, predictions)
        for average in ("binary", "macro", "micro"):
            assert m.f1(labels, predictions, average=average) == pytest.approx(
                skm.f1_score(labels, predictions, average=average, zero_division=0.0))


def test_top_k_accuracy():
    scores = [[0.1, 0.5, 0.4], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]]
    labels = [2, 0, 2]
    # classes scoring strictly higher than the label: 1, 1, 2
    assert m.top_k_accuracy(labels, scores, 1) == 0.0
    assert m.top_k_accuracy(labels, scores, 2) == pytest.approx(2 / 3)
    assert m.top_k_accuracy(labels, scores, 3) == 1.0
    assert m.top_k_accuracy([1], [[0.5, 0.5]], 1) == 1.0  # ties favour the label
    with pytest.raises(ValueError):
        m.top_k_accuracy(labels, scores, 0)
    with pytest.raises(ValueError):
        m.top_k_accuracy([], np.zeros((0, 3)), 1)


# ---------------------------------------------------------------------------
# multilabel_f1
# ---------------------------------------------------------------------------


def test_multilabel_f1_hand():
    labels = [[1, 1, 0], [1, 0, 0]]
    predictions = [[1, 0, 0], [1, 1, 0]]
    # label 0: tp2 -> 1; label 1: tp0 fp1 fn1 -> 0; label 2: none at all.
    # micro: tp=2 fp=1 fn=1 -> 4/6
    assert m.multilabel_f1(labels, predictions) == pytest.approx(2 / 3)
    assert m.multilabel_f1(labels, predictions, "macro") == pytest.approx(1 / 3)  # (1+0+0)/3
    assert m.multilabel_f1(labels, predictions, "macro", zero_division=1.0) == pytest.approx(2 / 3)
    zeros = np.zeros((2, 3), int)
    assert m.multilabel_f1(zeros, zeros) == 0.0
    assert m.multilabel_f1(zeros, zeros, zero_division=1.0) == 1.0


def test_multilabel_f1_rejects_bad_input():
    with pytest.raises(ValueError, match="threshold"):
        m.multilabel_f1([[1, 0]], [[0.7, 0.2]])
    with pytest.raises(ValueError):
        m.multilabel_f1([1, 0], [1, 0])
    with pytest.raises(ValueError):
        m.multilabel_f1(np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError):
        m.multilabel_f1([[1, 0]], [[1, 0]], average="binary")


def test_multilabel_f1_against_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(2)
    labels = (rng.random((40, 6)) < 0.3).astype(int)
    labels[:, 5] = 0  # a label never true ...
    predictions = (rng.random((40, 6)) < 0.3).astype(int)
    predictions[:, 5] = 0  # ... and never predicted
    for average in ("micro", "macro"):
        for zero_division in (0.0, 1.0):
            assert m.multilabel_f1(labels, predictions, average, zero_division) == pytest.approx(
                skm.f1_score(labels, predictions, average=average, zero_division=zero_division))


# ---------------------------------------------------------------------------
# pearson, spearman
# ---------------------------------------------------------------------------


def test_pearson_hand():
    # dx=(-1,0,1), dy=(-5/3,-2/3,7/3): sum dxdy=4, sum dx2=2, sum dy2=26/3
    # r = 4 / sqrt(52/3) = sqrt(12/13)
    assert m.pearson([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(12 / 13))
    assert m.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(m.pearson([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError):
        m.pearson([1], [2])
    with pytest.raises(ValueError):
        m.pearson([1, 2], [1, 2, 3])


def test_spearman_hand():
    assert m.spearman([1, 2, 3], [1, 2, 5]) == pytest.approx(1.0)  # monotonic
    # ranks x = (1, 2.5, 2.5, 4), y = (1, 3, 2, 4), both means 2.5:
    # sum dxdy = 2.25+0+0+2.25 = 4.5, sum dx2 = 4.5, sum dy2 = 5 -> sqrt(0.9)
    assert m.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(math.sqrt(0.9))
    assert math.isnan(m.spearman([2, 2, 2], [1, 2, 3]))


def test_correlations_random_against_numpy():
    rng = np.random.default_rng(3)
    for _ in range(10):
        x = rng.normal(size=30)
        y = x + rng.normal(size=30)
        assert m.pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
        xi, yi = rng.integers(0, 5, 30), rng.integers(0, 5, 30)  # many ties
        # rank = (# smaller) + (# equal + 1) / 2, by brute force
        rank = lambda v: np.array([np.sum(v < a) + (np.sum(v == a) + 1) / 2 for a in v])
        assert m.spearman(xi, yi) == pytest.approx(np.corrcoef(rank(xi), rank(yi))[0, 1])


def test_correlations_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(4)
    x = rng.normal(size=50)
    y = x + rng.normal(size=50)
    xi, yi = rng.integers(0, 6, 50), rng.integers(0, 6, 50)
    assert m.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0])
    assert m.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])
    assert m.spearman(xi, yi) == pytest.approx(stats.spearmanr(xi, yi)[0])


# ---------------------------------------------------------------------------
# entity_f1
# ---------------------------------------------------------------------------


def test_entities_hand():
    assert m._entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 1), ("LOC", 3, 3)]
    assert m._entities(["O", "I-PER", "I-PER"]) == [("PER", 1, 2)]  # I- after O starts one; trailing closed
    assert m._entities(["B-PER", "I-LOC", "I-LOC"]) == [("PER", 0, 0), ("LOC", 1, 2)]  # type change
    assert m._entities(["I-PER", "I-LOC"]) == [("PER", 0, 0), ("LOC", 1, 1)]
    assert m._entities(["B-PER", "B-PER", "I-PER"]) == [("PER", 0, 0), ("PER", 1, 2)]
    # IOB1 (CoNLL-2003): B- only splits adjacent entities of one type
    assert m._entities(["I-PER", "I-PER", "B-PER", "I-PER", "O", "I-LOC"]) == [
        ("PER", 0, 1), ("PER", 2, 3), ("LOC", 5, 5)]
    assert m._entities(["B-I-X", "I-I-X"]) == [("I-X", 0, 1)]  # type is all after "B-"
    assert m._entities([]) == []
    for bad in ("E-PER", "S-PER", "B", "B-", "PER"):
        with pytest.raises(ValueError):
            m._entities([bad])


def test_entity_f1_hand():
    # I-LOC after O predicts the same LOC(3,3) entity: perfect
    assert m.entity_f1([["B-PER", "I-PER", "O", "B-LOC"]],
                       [["B-PER", "I-PER", "O", "I-LOC"]]) == dict(precision=1.0, recall=1.0, f1=1.0)
    # predicted PER(0,0) LOC(1,1) ORG(3,3); true PER(0,1) ORG(3,3): 1 correct
    # P=1/3, R=1/2, F1 = 2*(1/6)/(5/6) = 2/5
    scores = m.entity_f1([["B-PER", "I-PER", "O", "B-ORG", "O"]],
                         [["B-PER", "I-LOC", "O", "B-ORG", "O"]])
    assert scores == pytest.approx(dict(precision=1 / 3, recall=1 / 2, f1=2 / 5))
    # Two sentences; trailing MISC found, LOC missed: P=1/1, R=1/2, F1=2/3.
    scores = m.entity_f1([["O", "B-MISC", "I-MISC"], ["B-LOC"]],
                         [["O", "B-MISC", "I-MISC"], ["O"]], scheme="IOB1")
    assert scores == pytest.approx(dict(precision=1.0, recall=0.5, f1=2 / 3))
    # Entities never run across sentences: PER at the end of one and I-PER
    # at the start of the next are two entities, matching the B-PER there.
    assert m.entity_f1([["O", "B-PER"], ["B-PER", "O"]],
                       [["O", "B-PER"], ["I-PER", "O"]])["f1"] == 1.0
    # A span one token short is wrong (exact boundaries).
    assert m.entity_f1([["B-PER", "I-PER"]], [["B-PER", "O"]])["f1"] == 0.0


def test_entity_f1_edges():
    zeros = dict(precision=0.0, recall=0.0, f1=0.0)
    assert m.entity_f1([["O", "O"]], [["O", "O"]]) == zeros
    assert m.entity_f1([], []) == zeros
    assert m.entity_f1([["B-PER"]], [["O"]]) == zeros
    with pytest.raises(ValueError):
        m.entity_f1([["O", "O"]], [["O"]])
    with pytest.raises(ValueError):
        m.entity_f1([["O"]], [["O"], ["O"]])
    with pytest.raises(ValueError):
        m.entity_f1([["O"]], [["O"]], scheme="IOBES")
    with pytest.raises(ValueError):
        m.entity_f1([["S-PER"]], [["O"]])


def _seqeval_get_entities(sequences):
    """seqeval's (= conlleval's) default get_entities, transcribed for the
    B/I/O tags: sentences flattened with an "O" between them."""
    seq = [t for sentence in sequences for t in list(sentence) + ["O"]]
    chunks, prev_tag, prev_type, begin = [], "O", "", 0
    for i, chunk in enumerate(seq + ["O"]):
        tag, type_ = chunk[0], chunk[1:].split("-", maxsplit=1)[-1] or "_"
        end = (prev_tag in "BI" and tag in "BO") or (prev_tag != "O" and prev_type != type_)
        start = tag == "B" or (prev_tag == "O" and tag == "I") or (tag != "O" and prev_type != type_)
        if end:
            chunks.append((prev_type, begin, i - 1))
        if start:
            begin = i
        prev_tag, prev_type = tag, type_
    return set(chunks)


def _seqeval_scores(true, predicted):
    t, p = _seqeval_get_entities(true), _seqeval_get_entities(predicted)
    precision = len(t & p) / len(p) if p else 0.0
    recall = len(t & p) / len(t) if t else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return dict(precision=precision, recall=recall, f1=f1)


def _random_tags(rng, n):
    choices = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"]
    return [str(choices[i]) for i in rng.integers(0, len(choices), n)]


def test_entity_f1_random_against_seqeval_transcription():
    rng = np.random.default_rng(5)
    for _ in range(200):
        lengths = rng.integers(0, 12, rng.integers(1, 5))
        true = [_random_tags(rng, n) for n in lengths]
        predicted = [_random_tags(rng, n) for n in lengths]
        assert m.entity_f1(true, predicted) == pytest.approx(_seqeval_scores(true, predicted))


def test_entity_f1_against_seqeval():
    seqeval = pytest.importorskip("seqeval.metrics")
    rng = np.random.default_rng(6)
    for _ in range(50):
        lengths = rng.integers(1, 12, rng.integers(1, 5))
        true = [_random_tags(rng, n) for n in lengths]
        predicted = [_random_tags(rng, n) for n in lengths]
        scores = m.entity_f1(true, predicted)
        assert scores["precision"] == pytest.approx(seqeval.precision_score(true, predicted))
        assert scores["recall"] == pytest.approx(seqeval.recall_score(true, predicted))
        assert scores["f1"] == pytest.approx(seqeval.f1_score(true, predicted))


# ---------------------------------------------------------------------------
# SQuAD
# ---------------------------------------------------------------------------


def _official_normalize_answer(s):
    """normalize_answer of the official SQuAD v1.1 / v2.0 evaluate scripts."""
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def _official_v2_compute_f1(a_gold, a_pred):
    get_tokens = lambda s: _official_normalize_answer(s).split() if s else []
    gold_toks, pred_toks = get_tokens(a_gold), get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


NORMALIZE_CASES = [
    ("The Cat!", "cat"),
    ("  a  quick,  brown fox. ", "quick brown fox"),
    ("An apple", "apple"),
    ("theatre and anthem", "theatre and anthem"),  # articles as whole words only
    ("the-cat", "thecat"),  # punctuation goes first, so no article left
    ("don't", "dont"),
    ("1,000.5 $", "10005"),
    ("Théâtre", "théâtre"),  # lower-cased, accents kept
    ("\u201ccat\u201d", "\u201ccat\u201d"),  # only ASCII punctuation is removed
    ("The", ""),
    ("", ""),
]


@pytest.mark.parametrize("text,expected", NORMALIZE_CASES)
def test_squad_normalize(text, expected):
    assert m.squad_normalize(text) == expected
    assert _official_normalize_answer(text) == expected


def test_squad_em_f1_multiple_ground_truths():
    golds = ["Denver Broncos", "Broncos"]
    assert m.squad_exact_match("the Denver Broncos", golds) == 1.0
    assert m.squad_f1("the Denver Broncos", golds) == 1.0
    # vs "Denver Broncos": 2 common of 3 predicted, 2 gold -> P=2/3 R=1 -> 0.8
    # vs "the Broncos":    1 common of 3 predicted, 1 gold -> P=1/3 R=1 -> 0.5
    golds = ["Denver Broncos", "the Broncos"]
    assert m.squad_exact_match("Broncos of Denver", golds) == 0.0
    assert m.squad_f1("Broncos of Denver", golds) == pytest.approx(0.8)
    # Counter overlap: "cat" common once -> P=1/3 R=1/2 -> 2*(1/6)/(5/6) = 0.4
    assert m.squad_f1("cat cat cat", ["cat dog"]) == pytest.approx(0.4)
    assert m.squad_f1("dog", ["cat"]) == 0.0
    assert m.squad_f1("", ["cat"]) == 0.0
    assert m.squad_exact_match("", ["cat"]) == 0.0


def test_squad_v2_no_answer():
    for no_answer in ([], [""], ["", " "]):
        assert m.squad_exact_match("", no_answer) == 1.0
        assert m.squad_f1("", no_answer) == 1.0
        assert m.squad_exact_match("cat", no_answer) == 0.0
        assert m.squad_f1("cat", no_answer) == 0.0
    # A prediction that normalizes to nothing is a no-answer (as officially).
    assert m.squad_f1("The.", []) == 1.0
    # Empty gold answers are dropped when real ones exist (v2.0 script).
    assert m.squad_exact_match("", ["", "cat"]) == 0.0


def test_squad_f1_against_official_transcription():
    texts = ["the Denver Broncos", "Broncos", "Denver, the Broncos!", "", "a",
             "cat cat dog", "dog cat", "Super Bowl 50", "super bowl fifty"]
    for gold in texts:
        for prediction in texts:
            golds = [a for a in [gold] if _official_normalize_answer(a)] or [""]
            assert m.squad_f1(prediction, [gold]) == pytest.approx(
                max(_official_v2_compute_f1(a, prediction) for a in golds))


def test_squad_scores():
    dataset = {"q1": ["Denver Broncos"], "q2": ["cat dog"], "q3": [], "q4": [""]}
    predictions = {"q1": "denver broncos.", "q2": "cat cat cat", "q3": "", "q4": "something",
                   "not in dataset": "x"}
    # EM 1, 0, 1, 0 -> 50%; F1 1, 0.4, 1, 0 -> 60%
    assert m.squad_scores(predictions, dataset) == pytest.approx(dict(
        exact_match=50.0, f1=60.0, total=4,
        HasAns_exact_match=50.0, HasAns_f1=70.0, HasAns_total=2,
        NoAns_exact_match=50.0, NoAns_f1=50.0, NoAns_total=2))
    # v1.1-style data: no NoAns keys; a missing prediction scores 0.
    assert m.squad_scores({"q1": "Broncos"}, {"q1": ["Broncos"], "q2": ["cat"]}) == dict(
        exact_match=50.0, f1=50.0, total=2)
    # only unanswerable questions: NoAns_ keys alone
    assert m.squad_scores({"q": ""}, {"q": []}) == dict(
        exact_match=100.0, f1=100.0, total=1,
        NoAns_exact_match=100.0, NoAns_f1=100.0, NoAns_total=1)
    with pytest.raises(ValueError):
        m.squad_scores({}, {})
