"""Token ids of one or two texts -> the three model inputs.

`[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`, truncated to fit, padded, with
segment ids (A and its special tokens 0, B and its [SEP] 1) and an input
mask: `input_word_ids`, `input_mask`, `input_type_ids`, int32 [batch, seq].
`pair_separators=2` gives fairseq's pairs (RoBERTa, XLM-R): `<s> A </s></s> B </s>`.

Truncation policies (the budget is sequence_length - 2, or - 2 - pair_separators
- 1 for pairs):
  longest_first  (default, Hugging Face's): a single text keeps its first
                 tokens; for a pair, only the longer is cut while that is
                 enough, else both get half the budget (the longer one the
                 odd token; on equal lengths B gets it), as the `tokenizers`
                 library does. google-research/bert's _truncate_seq_pair
                 gives the odd token to A on equal lengths instead.
  head           keep each text's first tokens
  tail           keep each text's last tokens
  head+tail      keep each text's first `head_length` and last
                 (length - head_length) tokens (Sun et al., 2019: 128 + 382)
For pairs, every policy splits the budget as longest_first does and then
cuts each text by its policy.
"""

import tensorflow as tf

TRUNCATIONS = ("longest_first", "head", "tail", "head+tail")


def pair_lengths(length_a, length_b, budget):
    """Lengths A and B keep under Hugging Face's longest_first."""
    budget = tf.cast(budget, length_a.dtype)  # int64 row lengths, also in graphs
    shorter = tf.minimum(length_a, length_b)
    longer_kept = tf.maximum(shorter, budget - shorter)
    both_cut = shorter + longer_kept > budget
    half = budget // 2
    shorter = tf.where(both_cut, half, shorter)
    longer_kept = tf.where(both_cut, half + budget % 2, longer_kept)
    a_is_longer = length_a > length_b
    keep_a = tf.where(a_is_longer, longer_kept, shorter)
    keep_b = tf.where(a_is_longer, shorter, longer_kept)
    return tf.minimum(keep_a, length_a), tf.minimum(keep_b, length_b)


def _cut(ids, keep, truncation, head_length):
    """Keeps `keep` [batch] tokens of each row of ragged `ids` by the policy."""
    length = ids.row_lengths()
    position = tf.ragged.range(length)
    if truncation in ("longest_first", "head"):
        kept = position < keep[:, None]
    elif truncation == "tail":
        kept = position >= (length - keep)[:, None]
    else:  # head+tail
        head = tf.minimum(keep, head_length)
        tail_start = length - (keep - head)
        kept = (position < head[:, None]) | (position >= tail_start[:, None])
    return tf.ragged.boolean_mask(ids, kept)


class InputPacker(tf.Module):
    """Packs ragged token ids [batch, (tokens)] (one or two texts) into model inputs.

    pad_to: "fixed" pads to `sequence_length`; "longest" to the longest row
    of the batch (never beyond sequence_length), for length bucketing.
    """

    def __init__(self, sequence_length, cls_id, sep_id, pad_id, truncation="longest_first",
                 pad_to="fixed", head_length=None, pair_separators=1, name=None):
        super().__init__(name=name)
        if truncation not in TRUNCATIONS:
            raise ValueError(f"Unknown truncation {truncation!r}; choose one of {TRUNCATIONS}.")
        if pad_to not in ("fixed", "longest"):
            raise ValueError(f"pad_to must be 'fixed' or 'longest', not {pad_to!r}.")
        if sequence_length < 3:
            raise ValueError(f"sequence_length={sequence_length} leaves no room for text.")
        self.sequence_length = sequence_length
        self.cls_id, self.sep_id, self.pad_id = cls_id, sep_id, pad_id
        self.truncation = truncation
        self.pad_to = pad_to
        self.head_length = head_length
        self.pair_separators = pair_separators

    def head_length_within(self, budget):
        # Sun et al. keep 128 of 510: a quarter of the budget by default.
        return self.head_length if self.head_length is not None else budget // 4

    def __call__(self, ids_a, ids_b=None):
        ids_a = tf.cast(_as_ragged(ids_a), tf.int32)
        segments = [ids_a]
        if ids_b is None:
            budget = self.sequence_length - 2
            keep = tf.minimum(ids_a.row_lengths(), budget)
            segments = [_cut(ids_a, keep, self.truncation, self.head_length_within(budget))]
        else:
            ids_b = tf.cast(_as_ragged(ids_b), tf.int32)
            budget = self.sequence_length - 2 - self.pair_separators
            keep_a, keep_b = pair_lengths(ids_a.row_lengths(), ids_b.row_lengths(), budget)
            head = self.head_length_within(budget)
            segments = [_cut(ids_a, keep_a, self.truncation, head),
                        _cut(ids_b, keep_b, self.truncation, head)]
        return self._combine(segments)

    def _combine(self, segments):
        batch = segments[0].nrows()
        cls = tf.fill([batch, 1], self.cls_id)
        sep = tf.fill([batch, 1], self.sep_id)
        pieces, types = [cls], [tf.zeros([batch, 1], tf.int32)]
        for index, segment in enumerate(segments):
            # The first of two texts ends with pair_separators separators.
            separators = self.pair_separators if index == 0 and len(segments) == 2 else 1
            pieces += [segment] + [sep] * separators
            types += [tf.fill([batch, 1], index) + tf.zeros_like(segment)]
            types += [tf.fill([batch, 1], index)] * separators
        ids = tf.concat(pieces, axis=1)
        type_ids = tf.concat(types, axis=1)
        length = self.sequence_length if self.pad_to == "fixed" else None
        shape = [None, length]
        return {
            "input_word_ids": ids.to_tensor(self.pad_id, shape=shape),
            "input_mask": tf.ones_like(ids).to_tensor(0, shape=shape),
            "input_type_ids": type_ids.to_tensor(0, shape=shape),
        }

    def get_config(self):
        return dict(sequence_length=self.sequence_length, cls_id=self.cls_id,
                    sep_id=self.sep_id, pad_id=self.pad_id, truncation=self.truncation,
                    pad_to=self.pad_to, head_length=self.head_length,
                    pair_separators=self.pair_separators)


def _as_ragged(ids):
    if isinstance(ids, tf.RaggedTensor):
        return ids
    return tf.RaggedTensor.from_tensor(tf.convert_to_tensor(ids))
