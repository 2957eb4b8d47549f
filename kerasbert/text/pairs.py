"""Sentence-pair examples for next-sentence (BERT) and sentence-order (ALBERT) prediction.

Python-side, like the reference `create_pretraining_data.py` scripts; feed
the result to `pairs_dataset` and tokenize/pack/mask in the tf.data graph.

Labels follow the reference scripts (and so the pretrained NSP/SOP heads),
where the label is `is_random_next`:
- NSP (google-research/bert): 0 = B is the actual next segment,
  1 = B is a random segment from another document.
- SOP (google-research/albert): 0 = A, B in document order, 1 = swapped.

Segments: each document's sentences are packed greedily, in order, into
segments of up to `max_words` whitespace-separated words (a sentence longer
than that is a segment on its own); `max_words=None` keeps one sentence per
segment. A document of several sentences that fits one segment is cut at
its middle sentence boundary into two, so short documents still give pairs
(the reference also splits such a chunk at a sentence boundary). The reference instead fills a token budget per example and splits
it at a random sentence boundary; tokenizing here would tie this module to a
tokenizer, so the word count stands in for it.
"""

import random

import tensorflow as tf


def _segments(document, max_words):
    if max_words is None:
        return [sentence for sentence in document if sentence.strip()]
    segments, current, words = [], [], 0
    for sentence in document:
        count = len(sentence.split())
        if not count:
            continue
        if current and words + count > max_words:
            segments.append(" ".join(current))
            current, words = [], 0
        current.append(sentence)
        words += count
    if current:
        segments.append(" ".join(current))
    sentences = [sentence for sentence in document if sentence.split()]
    if len(segments) == 1 and len(sentences) > 1:
        middle = len(sentences) // 2
        segments = [" ".join(sentences[:middle]), " ".join(sentences[middle:])]
    return segments


def _split(documents, max_words):
    return [segments for segments in (_segments(d, max_words) for d in documents) if segments]


def next_sentence_pairs(documents, seed, max_words=None):
    """[(text_a, text_b, label)]: label 0 = actual next segment, 1 = random segment.

    documents: list of lists of sentences. Consecutive segments of a
    document are paired in turn; half the time B is replaced by a random
    segment of another document, and then the unused B starts the next pair
    (the reference "puts it back"). Needs at least two non-empty documents.
    """
    rng = random.Random(seed)
    docs = _split(documents, max_words)
    if len(docs) < 2:
        raise ValueError("next_sentence_pairs needs at least two non-empty documents.")
    pairs = []
    for index, segments in enumerate(docs):
        i = 0
        while i + 1 < len(segments):
            if rng.random() < 0.5:
                pairs.append((segments[i], segments[i + 1], 0))
                i += 2
            else:
                other = rng.randrange(len(docs) - 1)
                other += other >= index  # any document but this one
                pairs.append((segments[i], rng.choice(docs[other]), 1))
                i += 1
    return pairs


def sentence_order_pairs(documents, seed, max_words=None):
    """[(text_a, text_b, label)]: label 0 = in document order, 1 = swapped.

    Non-overlapping consecutive segments of each document; documents with a
    single segment give no pair (the reference falls back to a random next
    segment there, which would tilt the labels).
    """
    rng = random.Random(seed)
    pairs = []
    for segments in _split(documents, max_words):
        for i in range(0, len(segments) - 1, 2):
            first, second = segments[i], segments[i + 1]
            if rng.random() < 0.5:
                pairs.append((first, second, 0))
            else:
                pairs.append((second, first, 1))
    return pairs


def pairs_dataset(pairs):
    """A `tf.data.Dataset` of {"text_a", "text_b": string, "label": int32} dicts."""
    text_a, text_b, labels = zip(*pairs) if pairs else ((), (), ())
    return tf.data.Dataset.from_tensor_slices({
        "text_a": tf.constant(text_a, tf.string, shape=[len(pairs)]),
        "text_b": tf.constant(text_b, tf.string, shape=[len(pairs)]),
        "label": tf.constant(labels, tf.int32, shape=[len(pairs)]),
    })
