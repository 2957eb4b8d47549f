"""TinyBERT data augmentation: masked-LM candidates, sampling, rows."""

import numpy as np
import pytest
import tensorflow as tf

import zoo
from kerasbert.text.wordpiece import WordPieceTokenizer
from tasks.distillation.augmentation import (
    DEFAULT_STOP_WORDS, MlmAugmenter, augment_rows, iter_augmented_rows)
from zoo.heads import BackboneWithHeads

GREEK = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota",
         "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau",
         "upsilon", "phi", "chi", "psi", "omega"]
COLOURS = ["red", "blue", "green", "cyan", "black", "white", "pink", "gold", "grey", "tan"]
VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]"] + GREEK + COLOURS
         + ["the", "a", "is", "of", "cat", "##s", "##er", "##ing", ".", ",", "!"])
ID = {token: index for index, token in enumerate(VOCAB)}

# The tokens the biased head ranks first, best first: specials, "##" pieces,
# "[unused0]" and "alpha" among them, so filtering shows.
RANKED = ["red", "[MASK]", "blue", "##s", "alpha", "green", "[CLS]", "cyan", "[unused0]",
          "black", "##ing", "white", "pink", "[UNK]", "gold", "grey", "tan"]


@pytest.fixture(scope="module")
def tokenizer():
    return WordPieceTokenizer(VOCAB)


@pytest.fixture(scope="module")
def biased_model():
    """Random tiny BERT whose MLM bias makes RANKED win, in that order, everywhere."""
    backbone = zoo.build("bert_test_tiny", vocab_size=len(VOCAB), max_sequence_length=128)
    model = BackboneWithHeads(backbone, mlm_head={})
    bias = np.zeros(len(VOCAB), np.float32)
    for rank, token in enumerate(RANKED):
        bias[ID[token]] = 100.0 - 2.0 * rank  # random logits are ~0.1: far below the gaps
    model.get_layer("mlm_head").bias.assign(bias)
    return model


class SegmentOneBag:
    """A fake MLM: at every position, logits count the tokens of segment 1
    (real positions only), weighted by position so the order is fixed. Records
    the inputs it was called with."""

    def __init__(self, vocab_size):
        self.vocab_size = vocab_size
        self.calls = []

    def _record(self, word_ids, mask, type_ids):
        self.calls.append((word_ids.numpy(), mask.numpy(), type_ids.numpy()))
        return np.int32(0)

    def __call__(self, inputs, training=False):
        ids, mask, types = (inputs["input_word_ids"], inputs["input_mask"],
                            inputs["input_type_ids"])
        done = tf.py_function(self._record, [ids, mask, types], tf.int32)
        length = tf.shape(ids)[1]
        weight = tf.cast(types * mask, tf.float32) * (
            1.0 + 1.0 / tf.cast(1 + tf.range(length), tf.float32))
        with tf.control_dependencies([done]):
            bag = tf.einsum("bs,bsv->bv", weight, tf.one_hot(ids, self.vocab_size))
        return {"mlm_logits": tf.tile(bag[:, None, :], [1, length, 1])}


def test_candidates_are_top_k_minus_specials_pieces_and_the_word(tokenizer, biased_model):
    augmenter = MlmAugmenter(biased_model, tokenizer, top_k=15)
    words = ["alpha", "the", "cats", "beta", ",", "omega", "[SEP]"]
    assert augmenter.split("Alpha the cats beta, omega [SEP]") == words
    got = augmenter.candidates(words)
    top = RANKED[:15]
    keep = [t for t in top if not t.startswith(("[", "##"))]
    assert keep == ["red", "blue", "alpha", "green", "cyan", "black", "white", "pink", "gold"]
    assert got[0] == [t for t in keep if t != "alpha"]  # the word itself dropped
    assert got[3] == keep and got[5] == keep
    # Stop word, multi-piece word (cat ##s), punctuation, special token: kept.
    assert got[1] == [] and got[2] == [] and got[4] == [] and got[6] == []
    # top_k counts before filtering, as in the reference.
    assert augmenter.__class__(biased_model, tokenizer, top_k=3).candidates(["beta"]) == [
        ["red", "blue"]]


def test_masked_lm_input_is_masked_copy_then_original(tokenizer):
    fake = SegmentOneBag(len(VOCAB))
    augmenter = MlmAugmenter(fake, tokenizer, top_k=8, sequence_length=64)
    words = ["beta", "gamma", "cats", "delta"]
    ids = [ID["beta"], ID["gamma"], ID["cat"], ID["##s"], ID["delta"]]
    word_ids, type_ids = augmenter.masked_lm_input(ids, 2)
    assert word_ids == ([ID["[CLS]"], ID["beta"], ID["[MASK]"], ID["cat"], ID["##s"],
                         ID["delta"], ID["[SEP]"]] + ids + [ID["[SEP]"]])
    assert type_ids == [0] * 7 + [1] * 6
    # Cut to sequence_length; a mask beyond it gives no candidates.
    short = MlmAugmenter(fake, tokenizer, sequence_length=5)
    assert short.masked_lm_input(ids, 2) == (word_ids[:5], type_ids[:5])
    assert short.candidates(words)[3] == []  # delta's mask would sit at position 5
    assert fake.calls[-1][0].shape == (2, 5)
    fake.calls.clear()

    got = augmenter.candidates(words)
    # One batched call for the three single-piece words, rows as the reference builds them.
    assert len(fake.calls) == 1
    call_ids, call_mask, call_types = fake.calls[0]
    assert call_ids.shape == (3, 13) and call_mask.all()
    for row, position in enumerate([1, 2, 5]):
        expected, types = augmenter.masked_lm_input(ids, position)
        assert call_ids[row].tolist() == expected and call_types[row].tolist() == types
    # The fake predicts segment 1 (the original) in order: its other pieces but
    # [SEP] and "##s" (the zero-logit rest of the top 8 are [PAD], [UNK]: dropped).
    assert got == [["gamma", "cat", "delta"], ["beta", "cat", "delta"], [],
                   ["beta", "gamma", "cat"]]

    # Texts of different lengths share a batch, padded with input_mask 0.
    fake.calls.clear()
    augmenter.augment_many(["beta gamma", "beta gamma delta cats"])
    call_ids, call_mask, _ = fake.calls[0]
    assert call_ids.shape[0] == 5
    assert sorted(call_mask.sum(axis=1).tolist()) == [7, 7, 13, 13, 13]
    assert (call_ids[call_mask == 0] == ID["[PAD]"]).all()


def test_augment_variants_and_replacement_rate(tokenizer, biased_model):
    copies, probability = 120, 0.4
    augmenter = MlmAugmenter(biased_model, tokenizer, copies=copies, probability=probability,
                             top_k=15, batch_size=8, seed=3)
    text = ("Beta gamma, the delta epsilon zeta of eta theta iota cats kappa lambda [SEP] mu nu "
            "xi is omicron pi rho sigma tau upsilon!")
    words = augmenter.split(text)
    candidates = augmenter.candidates(words)
    eligible = [i for i, c in enumerate(candidates) if c]
    assert [words[i] for i in eligible] == [
        "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
        "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon"]
    assert all(w.lower() in DEFAULT_STOP_WORDS for w in ("the", "of", "is"))

    out = augmenter.augment(text)
    assert out[0] == text
    variants = out[1:]
    assert len(variants) == len(set(variants)) and len(variants) <= copies
    assert len(variants) >= copies - 2  # 19 words, 8-9 choices each: repeats are rare
    replaced = 0
    for variant in variants:
        new = variant.split(" ")
        assert len(new) == len(words) and new != words
        for i, (old, word) in enumerate(zip(words, new)):
            if old != word:
                assert i in eligible and word in candidates[i]
                replaced += 1
    draws = len(variants) * len(eligible)
    assert draws >= 2000
    assert abs(replaced / draws - probability) < 0.05

    # Nothing to replace: the text alone.
    assert augmenter.augment("the cats of the, is!") == ["the cats of the, is!"]


def test_seeds(tokenizer, biased_model):
    texts = ["beta gamma delta epsilon", "zeta eta theta iota kappa"]

    def run(seed):
        augmenter = MlmAugmenter(biased_model, tokenizer, copies=10, seed=seed)
        return [augmenter.augment(text) for text in texts]

    first = run(0)
    assert run(0) == first
    assert run(1) != first
    # Batching across texts draws the same as one call per text.
    assert MlmAugmenter(biased_model, tokenizer, copies=10, seed=0).augment_many(texts) == first


def test_augment_rows(tokenizer, biased_model):
    rows = [
        {"idx": 0, "sentence1": "beta gamma delta", "sentence2": "epsilon zeta.", "label": 1},
        {"idx": 1, "sentence1": "the cats", "sentence2": "eta theta iota", "label": 0},
    ]
    snapshot = [dict(row) for row in rows]
    out = augment_rows(rows, ("sentence1", "sentence2"),
                       MlmAugmenter(biased_model, tokenizer, copies=6, seed=5))
    assert rows == snapshot  # inputs untouched

    # The same draws as augmenting each field in row order.
    reference = MlmAugmenter(biased_model, tokenizer, copies=6, seed=5)
    expected = []
    for row in rows:
        expected.append(row)
        for field in ("sentence1", "sentence2"):
            expected += [{**row, field: v} for v in reference.augment(row[field])[1:]]
    assert out == expected

    # Each row first, then its variants; one field changes at a time.
    assert out[0] == rows[0]
    start = out.index(rows[1])
    assert start > 1 and all(r["idx"] == 0 for r in out[:start])
    for row in out:
        original = rows[row["idx"]]
        assert row["label"] == original["label"] and set(row) == set(original)
        changed = [f for f in ("sentence1", "sentence2") if row[f] != original[f]]
        assert len(changed) <= 1
    assert any(r["sentence1"] != rows[0]["sentence1"] for r in out[:start])
    assert any(r["sentence2"] != rows[0]["sentence2"] for r in out[:start])
    # "the cats" has nothing to replace: row 1 only varies in sentence2.
    assert all(r["sentence1"] == "the cats" for r in out[start:])

    # One field, None fields skipped, chunking does not change the result.
    single = [{"sentence": "beta gamma", "label": 2}, {"sentence": None, "label": 3}]
    one = augment_rows(single, "sentence", MlmAugmenter(biased_model, tokenizer, copies=4))
    assert one[0] == single[0] and one[-1] == single[1] and len(one) > 2
    assert all(r["label"] == 2 for r in one[:-1])
    chunked = list(iter_augmented_rows(single, ["sentence"],
                                       MlmAugmenter(biased_model, tokenizer, copies=4),
                                       chunk_size=1))
    assert chunked == one
