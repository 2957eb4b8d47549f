"""NSP / SOP sentence pairs: label balance, what each label means, the dataset."""

import random

import numpy as np
import pytest

from kerasbert.text.pairs import next_sentence_pairs, pairs_dataset, sentence_order_pairs


def corpus(num_documents=600, seed=0):
    """Sentences named "d{doc}s{index}" so a pair says where it came from."""
    rng = random.Random(seed)
    return [[f"d{d}s{i}" for i in range(rng.randint(1, 12))] for d in range(num_documents)]


def where(sentence):
    document, index = sentence[1:].split("s")
    return int(document), int(index)


def test_next_sentence_pairs():
    pairs = next_sentence_pairs(corpus(), seed=1)
    labels = np.array([label for _, _, label in pairs])
    assert len(pairs) > 2000
    assert abs(labels.mean() - 0.5) < 0.03
    for text_a, text_b, label in pairs:
        (doc_a, i_a), (doc_b, i_b) = where(text_a), where(text_b)
        if label == 0:  # the actual next sentence
            assert (doc_b, i_b) == (doc_a, i_a + 1)
        else:  # a sentence of another document
            assert doc_b != doc_a


def test_sentence_order_pairs():
    pairs = sentence_order_pairs(corpus(), seed=1)
    labels = np.array([label for _, _, label in pairs])
    assert len(pairs) > 1000
    assert abs(labels.mean() - 0.5) < 0.03
    for text_a, text_b, label in pairs:
        (doc_a, i_a), (doc_b, i_b) = where(text_a), where(text_b)
        assert doc_a == doc_b
        assert i_b - i_a == (1 if label == 0 else -1)  # 1 = swapped, as ALBERT


def test_seeds():
    docs = corpus(50)
    assert next_sentence_pairs(docs, 3) == next_sentence_pairs(docs, 3)
    assert next_sentence_pairs(docs, 3) != next_sentence_pairs(docs, 4)
    assert sentence_order_pairs(docs, 3) == sentence_order_pairs(docs, 3)
    assert sentence_order_pairs(docs, 3) != sentence_order_pairs(docs, 4)


def test_max_words_packs_sentences_into_segments():
    docs = [[f"d{d}s{i} w w" for i in range(10)] for d in range(40)]  # 3 words each
    pairs = sentence_order_pairs(docs, seed=0, max_words=7)
    for text_a, text_b, label in pairs:
        for text in (text_a, text_b):
            assert len(text.split()) == 6  # two sentences fit, a third would not
        first, second = (text_a, text_b) if label == 0 else (text_b, text_a)
        assert where(first.split()[3])[1] + 1 == where(second.split()[0])[1]
    assert len(pairs) == 40 * 2  # 5 segments per document: 2 pairs, 1 left over
    # An over-long sentence is a segment of its own; "x y" + "z" would fit in
    # one segment, so that document is cut at its middle sentence boundary
    # (a short document still gives a pair); a one-sentence document gives none.
    docs = [["one two three four five six seven eight", "short"], ["x y", "z"], ["alone"]]
    pairs = sentence_order_pairs(docs, 0, max_words=3)
    assert [{a, b} for a, b, _ in pairs] == [
        {"one two three four five six seven eight", "short"}, {"x y", "z"}]
    story = ["a b", "c d", "e f", "g h", "i j"]  # 10 words, max 50: one segment
    (text_a, text_b, label), = sentence_order_pairs([story, story], 0, max_words=50)[:1]
    assert {text_a, text_b} == {"a b c d", "e f g h i j"}

def test_needs_two_documents():
    with pytest.raises(ValueError, match="two"):
        next_sentence_pairs([["a", "b"], []], seed=0)


def test_pairs_dataset():
    pairs = next_sentence_pairs(corpus(20), seed=0)
    elements = list(pairs_dataset(pairs).as_numpy_iterator())
    assert len(elements) == len(pairs)
    assert set(elements[0]) == {"text_a", "text_b", "label"}
    for element, (text_a, text_b, label) in zip(elements, pairs):
        assert element["text_a"].decode() == text_a and element["text_b"].decode() == text_b
        assert element["label"] == label and element["label"].dtype == np.int32
    assert list(pairs_dataset([]).as_numpy_iterator()) == []
