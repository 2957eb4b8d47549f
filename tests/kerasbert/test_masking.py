"""MaskedLMMasker: selection rate, 80/10/10, whole words, n-grams, seeds, tf.data."""

import numpy as np
import pytest
import tensorflow as tf

from kerasbert.text.masking import MaskedLMMasker
from kerasbert.text.vocabulary import WORDPIECE_SPECIALS, Vocabulary

VOCAB = 1000
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIALS = [PAD, UNK, CLS, SEP, MASK]
# Token ids >= 5: a third of them are word continuations ("##x").
WORD_STARTS = np.ones(VOCAB, bool)
WORD_STARTS[5::3] = False


def make_batch(rng, batch, length):
    """Packed rows: [CLS] a [SEP] b [SEP] [PAD]..., with stray [UNK]/[MASK] inside."""
    ids = rng.integers(5, VOCAB, size=(batch, length))
    ids[rng.random((batch, length)) < 0.02] = rng.choice([UNK, MASK])
    for row, used in zip(ids, rng.integers(length // 4, length + 1, size=batch)):
        row[0] = CLS
        row[rng.integers(1, used - 1)] = SEP
        row[used - 1] = SEP
        row[used:] = PAD
    return ids.astype("int32")


def masker(**kwargs):
    kwargs.setdefault("word_start_table", WORD_STARTS)
    return MaskedLMMasker(VOCAB, MASK, SPECIALS, **kwargs)


def run(m, ids, seed=(1, 2)):
    return {key: value.numpy() for key, value in m(ids, seed=seed).items()}


def budget(ids, rate=0.15, cap=20):
    n = (~np.isin(ids, SPECIALS)).sum(axis=1)
    return np.where(n > 0, np.minimum(np.maximum(np.round(n * rate), 1), cap), 0)


def words(row):
    """Lists of positions, one per word: a start token and the continuations after it."""
    groups, previous = [], False
    for position, token in enumerate(row):
        candidate = token not in SPECIALS
        if candidate and (WORD_STARTS[token] or not previous):
            groups.append([])
        if candidate:
            groups[-1].append(position)
        previous = candidate
    return groups


def test_rates_over_many_tokens():
    rng = np.random.default_rng(0)
    ids = make_batch(rng, 400, 512)
    out = run(masker(max_predictions=512), ids)
    selected = out["masked_lm_weights"] > 0
    positions = out["masked_lm_positions"][selected]
    rows = np.nonzero(selected)[0]
    original, now = ids[rows, positions], out["input_word_ids"][rows, positions]
    candidates = (~np.isin(ids, SPECIALS)).sum()
    assert candidates > 100_000
    rate = selected.sum() / candidates
    masked = np.mean(now == MASK)
    replaced = np.mean((now != MASK) & (now != original))
    kept = np.mean(now == original)
    # A random replacement hits the original id 1 time in (VOCAB - 5).
    collision = 1 / (VOCAB - len(SPECIALS))
    print(f"selected {rate:.4f} mask {masked:.4f} random {replaced:.4f} kept {kept:.4f}")
    assert abs(rate - 0.15) < 0.005
    assert abs(masked - 0.8) < 0.01
    assert abs(replaced - 0.1 * (1 - collision)) < 0.01
    assert abs(kept - 0.1 * (1 + collision)) < 0.01
    assert not np.isin(now[now != MASK], SPECIALS).any()  # random ids are never special


@pytest.mark.parametrize("whole_word,max_ngram", [(False, 1), (True, 1), (False, 3), (True, 3)])
def test_invariants(whole_word, max_ngram):
    rng = np.random.default_rng(1)
    ids = make_batch(rng, 64, 128)
    out = run(masker(whole_word=whole_word, max_ngram=max_ngram), ids)
    weights, positions = out["masked_lm_weights"], out["masked_lm_positions"]
    selected = weights > 0
    count = selected.sum(axis=1)
    assert set(np.unique(weights)) <= {0.0, 1.0}
    assert (selected[:, :-1] >= selected[:, 1:]).all()  # real predictions first
    assert (positions[~selected] == 0).all() and (out["masked_lm_ids"][~selected] == 0).all()
    np.testing.assert_array_equal(out["masked_lm_ids"],
                                  np.where(selected, np.take_along_axis(ids, positions, 1), 0))
    assert not np.isin(out["masked_lm_ids"][selected], SPECIALS).any()
    for row in range(len(ids)):
        chosen = positions[row, selected[row]]
        assert (np.diff(chosen) > 0).all()
        untouched = np.setdiff1d(np.arange(ids.shape[1]), chosen)
        np.testing.assert_array_equal(out["input_word_ids"][row, untouched], ids[row, untouched])
    expected = budget(ids)
    if whole_word:  # a word that would overflow the budget is skipped
        assert (count <= expected).all() and (count >= expected - 4).all()
        assert (count == expected).mean() > 0.5
    else:
        np.testing.assert_array_equal(count, expected)


def test_max_predictions_caps():
    ids = make_batch(np.random.default_rng(2), 32, 256)
    out = run(masker(max_predictions=7), ids)
    np.testing.assert_array_equal(out["masked_lm_weights"].sum(axis=1), budget(ids, cap=7))
    assert out["masked_lm_positions"].shape == (32, 7)


@pytest.mark.parametrize("max_ngram", [1, 3])
def test_whole_words_are_never_split(max_ngram):
    rng = np.random.default_rng(3)
    m = masker(whole_word=True, max_ngram=max_ngram)
    multi_piece = 0
    for step in range(20):
        ids = make_batch(rng, 32, 128)
        out = run(m, ids, seed=(7, step))
        for row in range(len(ids)):
            chosen = set(out["masked_lm_positions"][row, out["masked_lm_weights"][row] > 0])
            for word in words(ids[row]):
                hit = chosen.intersection(word)
                assert not hit or len(hit) == len(word), (ids[row], word, hit)
                multi_piece += bool(hit) and len(word) > 1
    assert multi_piece > 1000


def test_ngram_span_lengths_follow_one_over_n():
    rng = np.random.default_rng(4)
    ids = rng.integers(5, VOCAB, size=(50, 4000)).astype("int32")
    out = run(masker(max_ngram=3, selection_rate=0.015, max_predictions=60), ids)
    runs = []
    for row in range(len(ids)):
        flags = np.zeros(ids.shape[1] + 2, int)
        flags[1 + out["masked_lm_positions"][row, out["masked_lm_weights"][row] > 0]] = 1
        edges = np.diff(flags)
        runs.extend(np.nonzero(edges == -1)[0] - np.nonzero(edges == 1)[0])
    histogram = np.bincount(runs, minlength=4)[1:4] / len(runs)
    expected = np.array([6, 3, 2]) / 11  # 1/n normalised
    print("span lengths 1/2/3:", histogram.round(3), "expected", expected.round(3))
    np.testing.assert_allclose(histogram, expected, atol=0.03)


def test_seed_determinism():
    ids = make_batch(np.random.default_rng(5), 16, 64)
    m = masker(whole_word=True, max_ngram=3)
    first, again, other = run(m, ids, (3, 4)), run(m, ids, (3, 4)), run(m, ids, (3, 5))
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert (first["masked_lm_positions"] != other["masked_lm_positions"]).any()
    unseeded = [m(ids)["masked_lm_positions"].numpy() for _ in range(2)]
    assert (unseeded[0] != unseeded[1]).any()


def test_in_dataset_map_and_tf_function():
    ids = make_batch(np.random.default_rng(6), 24, 48)
    m = masker(whole_word=True, max_ngram=2)

    def dataset():
        ds = tf.data.Dataset.from_tensor_slices(ids).batch(8).enumerate()
        return ds.map(lambda i, x: m(x, seed=tf.stack([tf.constant(9, tf.int64), i])),
                      num_parallel_calls=tf.data.AUTOTUNE)

    batches = [list(dataset().as_numpy_iterator()) for _ in range(2)]
    for a, b in zip(*batches):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    eager = run(m, ids[:8], seed=np.array([9, 0]))
    for key in eager:  # the graph and eager runs agree
        np.testing.assert_array_equal(batches[0][0][key], eager[key])
    assert batches[0][0]["masked_lm_positions"].shape == (8, 20)

    graph = tf.function(lambda x, s: m(x, seed=s))
    traced = {k: v.numpy() for k, v in graph(tf.constant(ids[:8]), tf.constant([9, 0])).items()}
    for key in eager:
        np.testing.assert_array_equal(traced[key], eager[key])

    # Unbatched rows inside map, then batched.
    single = tf.data.Dataset.from_tensor_slices(ids).map(lambda x: m(x, seed=[1, 1])).batch(24)
    element = next(iter(single))
    assert element["masked_lm_positions"].shape == (24, 20)
    assert element["input_word_ids"].shape == ids.shape


def test_ragged_input_matches_padded():
    ids = make_batch(np.random.default_rng(7), 16, 64)
    lengths = (ids != PAD).sum(axis=1)
    ragged = tf.RaggedTensor.from_tensor(ids, lengths=lengths)
    m = masker(max_ngram=3)
    # The random draws depend on the padded width: compare at the ragged's own width.
    out, dense = m(ragged, seed=[5, 6]), run(m, ragged.to_tensor(), seed=(5, 6))
    assert isinstance(out["input_word_ids"], tf.RaggedTensor)
    np.testing.assert_array_equal(out["input_word_ids"].row_lengths().numpy(), lengths)
    np.testing.assert_array_equal(out["input_word_ids"].to_tensor().numpy(),
                                  dense["input_word_ids"])
    for key in ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights"):
        np.testing.assert_array_equal(out[key].numpy(), dense[key])


def test_from_vocabulary():
    tokens = list(WORDPIECE_SPECIALS.values()) + ["the", "cat", "##s", "sat", "##ting"]
    vocabulary = Vocabulary(tokens, WORDPIECE_SPECIALS, continuation_prefix="##")
    m = MaskedLMMasker.from_vocabulary(vocabulary, whole_word=True, mask_rate=1.0,
                                       random_rate=0.0, selection_rate=0.5)
    cls, sep, mask = (vocabulary.id_of(r) for r in ("cls", "sep", "mask"))
    cat, s = vocabulary.token_to_id("cat"), vocabulary.token_to_id("##s")
    ids = np.array([[cls, cat, s, sep]], "int32")
    out = run(m, ids)
    # 2 candidates, budget 1: the two-piece word "cat ##s" never fits.
    assert out["masked_lm_weights"].sum() == 0
    out = run(MaskedLMMasker.from_vocabulary(vocabulary, whole_word=True, mask_rate=1.0,
                                             random_rate=0.0, selection_rate=1.0), ids)
    np.testing.assert_array_equal(out["input_word_ids"], [[cls, mask, mask, sep]])
    np.testing.assert_array_equal(out["masked_lm_ids"][0, :2], [cat, s])


def test_rejects_bad_configuration():
    with pytest.raises(ValueError, match="word_start_table"):
        MaskedLMMasker(VOCAB, MASK, SPECIALS, whole_word=True)
    with pytest.raises(ValueError, match="mask_rate"):
        MaskedLMMasker(VOCAB, MASK, SPECIALS, mask_rate=0.8, random_rate=0.3)
