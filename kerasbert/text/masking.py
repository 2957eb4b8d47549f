"""Masked-LM inputs for BERT/ALBERT pretraining, built in the graph.

Semantics follow google-research/bert and google-research/albert
`create_pretraining_data.py`: per sequence, `round(n * selection_rate)`
tokens are predicted (at least 1, at most `max_predictions`), where `n`
counts the non-special tokens (the reference counts [CLS]/[SEP] too). Units
(tokens, or whole words) are visited in random order and taken greedily
while they fit the budget, so a word that would overflow it is skipped. Of
the selected tokens, each is independently replaced by [MASK]
(`mask_rate`), a random token (`random_rate`) or left as is.

Differences from the reference, on purpose:
- random replacements are drawn uniformly from the non-special ids (the
  reference draws from the whole vocabulary, [PAD]/[CLS]/... included);
- a continuation piece right after a special token starts its own unit
  (n-gram spans, as in ALBERT, may still reach across a [SEP]);
- tensorflow-text's `RandomItemSelector` is not used: it rounds the budget
  up (`ceil`), counts whole words (not tokens) against it, draws from the
  stateful `tf.random.shuffle`, and has no n-grams.

Randomness: stateless ops (`tf.random.stateless_*`) keyed by `seed`, a
shape-[2] integer tensor, so the output is a pure function of (ids, seed).
Use a distinct seed per batch, e.g.
`ds.enumerate().map(lambda i, x: masker(x, seed=tf.stack([base_seed, i])))`.
The draws depend on the padded width too (a ragged input is padded to
its longest row). With `seed=None` a per-masker `tf.random.Generator` (non-deterministic
state) makes the seed: convenient, not reproducible.
"""

import numpy as np
import tensorflow as tf


class MaskedLMMasker(tf.Module):
    """Selects and masks tokens of packed id batches for the masked-LM loss.

    `whole_word=True` needs `word_start_table` (bool [vocabulary_size], e.g.
    `Vocabulary.word_start_table()`); a word is a start token plus the
    non-start tokens after it. `max_ngram > 1` picks spans of 1..max_ngram
    units (whole words when `whole_word`, else tokens) with probability
    proportional to 1/n, as ALBERT does.
    """

    def __init__(self, vocabulary_size, mask_id, special_ids, word_start_table=None,
                 selection_rate=0.15, mask_rate=0.8, random_rate=0.1, max_predictions=20,
                 whole_word=False, max_ngram=1, name=None):
        super().__init__(name=name)
        if whole_word and word_start_table is None:
            raise ValueError("whole_word=True needs a word_start_table.")
        if not 0 <= mask_rate + random_rate <= 1:
            raise ValueError("mask_rate + random_rate must be within [0, 1].")
        if max_ngram < 1 or max_predictions < 1:
            raise ValueError("max_ngram and max_predictions must be >= 1.")
        special = np.zeros(vocabulary_size, bool)
        special[list(special_ids)] = True
        starts = np.ones(vocabulary_size, bool)
        if whole_word:
            starts = np.asarray(word_start_table, bool) | special
        self.mask_id = int(mask_id)
        self.selection_rate = float(selection_rate)
        self.mask_rate = float(mask_rate)
        self.random_rate = float(random_rate)
        self.max_predictions = int(max_predictions)
        self.max_ngram = int(max_ngram)
        self._filler = int(min(special_ids))
        self._special = tf.constant(special)
        self._starts = tf.constant(starts)
        self._replacements = tf.constant(np.flatnonzero(~special), tf.int32)
        ngram_p = 1.0 / np.arange(1, max_ngram + 1)
        self._ngram_logits = tf.constant(np.log(ngram_p / ngram_p.sum())[None], tf.float32)
        self._generator = tf.random.Generator.from_non_deterministic_state()

    @classmethod
    def from_vocabulary(cls, vocabulary, **kwargs):
        """A masker with the ids (and word starts) of a `Vocabulary`."""
        if kwargs.get("whole_word"):
            kwargs.setdefault("word_start_table", vocabulary.word_start_table())
        return cls(vocabulary.size, vocabulary.id_of("mask"), vocabulary.special_ids, **kwargs)

    def __call__(self, token_ids, seed=None):
        """token_ids: int [batch, seq], ragged [batch, (seq)] or [seq].

        Returns input_word_ids (same layout as the input, int32) and
        masked_lm_positions / masked_lm_ids (int32) and masked_lm_weights
        (float32), each [batch, max_predictions], sorted by position.
        """
        if isinstance(token_ids, tf.RaggedTensor):
            lengths = token_ids.row_lengths()
            out = self._mask(tf.cast(token_ids.to_tensor(self._filler), tf.int32), seed)
            out["input_word_ids"] = tf.RaggedTensor.from_tensor(out["input_word_ids"], lengths)
            return out
        token_ids = tf.cast(token_ids, tf.int32)
        if token_ids.shape.rank == 1:
            out = self._mask(token_ids[None], seed)
            return {key: value[0] for key, value in out.items()}
        return self._mask(token_ids, seed)

    def _seed(self, seed):
        if seed is None:
            return self._generator.make_seeds(1)[:, 0]
        seed = tf.cast(seed, tf.int64)
        return tf.stack([seed, 0]) if seed.shape.rank == 0 else seed

    def _mask(self, ids, seed):
        seeds = tf.random.experimental.stateless_split(self._seed(seed), 4)
        candidate = ~tf.gather(self._special, ids)
        selected = self._select(ids, candidate, seeds[:2])

        # 80/10/10: [MASK], a random non-special id, or the original id.
        action = tf.random.stateless_uniform(tf.shape(ids), seeds[2])
        random_ids = tf.gather(self._replacements, tf.random.stateless_uniform(
            tf.shape(ids), seeds[3], 0, tf.size(self._replacements), tf.int32))
        new_ids = tf.where(action < self.mask_rate, self.mask_id,
                           tf.where(action < self.mask_rate + self.random_rate, random_ids, ids))
        masked = tf.where(selected, new_ids, ids)

        # Selected positions first, in order; pad/trim to max_predictions.
        order = tf.argsort(tf.cast(~selected, tf.int32), axis=1, stable=True)
        width = self.max_predictions
        extra = tf.maximum(width - tf.shape(ids)[1], 0)
        positions = tf.pad(order, [[0, 0], [0, extra]])[:, :width]
        weights = tf.pad(tf.gather(selected, order, batch_dims=1), [[0, 0], [0, extra]])[:, :width]
        positions = tf.where(weights, positions, 0)
        return {
            "input_word_ids": masked,
            "masked_lm_positions": positions,
            "masked_lm_ids": tf.where(weights, tf.gather(ids, positions, batch_dims=1), 0),
            "masked_lm_weights": tf.cast(weights, tf.float32),
        }

    def _select(self, ids, candidate, seeds):
        """bool [batch, seq]: the tokens to predict (greedy over shuffled units)."""
        batch, length = tf.shape(ids)[0], tf.shape(ids)[1]
        count_candidates = tf.reduce_sum(tf.cast(candidate, tf.int32), axis=1)
        budget = tf.cast(tf.round(tf.cast(count_candidates, tf.float32) * self.selection_rate),
                         tf.int32)
        budget = tf.minimum(tf.maximum(budget, 1), self.max_predictions)
        budget = tf.where(count_candidates > 0, budget, 0)

        # Units: a candidate token starts one if it is a word start, or (whole
        # word) if the token before it is not a candidate.
        previous = tf.pad(candidate[:, :-1], [[0, 0], [1, 0]])
        starts = candidate & (tf.gather(self._starts, ids) | ~previous)
        unit_of = tf.maximum(tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1, 0)
        num_units = tf.reduce_sum(tf.cast(starts, tf.int32), axis=1)
        # before[:, u] = candidate tokens before unit u (u = num_units: all).
        tokens_before = tf.cumsum(tf.cast(candidate, tf.int32), axis=1, exclusive=True)
        start_positions = tf.argsort(tf.cast(~starts, tf.int32), axis=1, stable=True)
        before = tf.gather(tokens_before, start_positions, batch_dims=1)
        unit_index = tf.range(length)[None]
        before = tf.where(unit_index < num_units[:, None], before, count_candidates[:, None])
        before = tf.concat([before, count_candidates[:, None]], axis=1)

        # Random visiting order of units (real units first), and a span length per unit.
        noise = tf.random.stateless_uniform([batch, length], seeds[0])
        order = tf.argsort(tf.where(unit_index < num_units[:, None], noise, 2.0), axis=1)
        ngram = 1 + tf.reshape(tf.random.stateless_categorical(
            tf.tile(self._ngram_logits, [batch * length, 1]), 1, seeds[1], tf.int32),
            [batch, length])
        span_sizes = tf.range(1, self.max_ngram + 1)[None]

        def step(k, covered, count):
            unit = order[:, k]
            ends = tf.minimum(unit[:, None] + span_sizes, num_units[:, None])
            sizes = (tf.gather(before, ends, batch_dims=1)
                     - tf.gather(before, unit[:, None], batch_dims=1))
            # ALBERT: the drawn n-gram, shortened until it fits the budget.
            fits = ((span_sizes <= tf.gather(ngram, unit[:, None], batch_dims=1))
                    & (sizes <= (budget - count)[:, None]))
            n = tf.reduce_max(tf.where(fits, span_sizes, 0), axis=1)
            span = (unit_index >= unit[:, None]) & (unit_index < unit[:, None] + n[:, None])
            take = (n > 0) & (k < num_units) & ~tf.reduce_any(covered & span, axis=1)
            size = tf.gather(sizes, tf.maximum(n - 1, 0), batch_dims=1)
            return (k + 1, covered | (span & take[:, None]),
                    count + tf.where(take, size, 0))

        def more(k, covered, count):
            return (k < tf.reduce_max(num_units)) & tf.reduce_any(count < budget)

        _, covered, _ = tf.while_loop(
            more, step, (0, tf.zeros([batch, length], tf.bool), tf.zeros([batch], tf.int32)))
        return candidate & tf.gather(covered, unit_of, batch_dims=1)
