"""Raw strings -> the three model inputs, in the graph: tokenizer + packer."""

import tensorflow as tf

from kerasbert.text.packing import InputPacker, _as_ragged


class Preprocessor(tf.Module):
    """`preprocessor(text)` or `preprocessor(text, text_b)` -> model inputs.

    text: a string tensor [batch] (or a scalar, or a Python list). Returns
    `input_word_ids`, `input_mask`, `input_type_ids`, int32 [batch, seq]
    ([seq] for a scalar). Usable in `tf.data.Dataset.map`, `tf.function` and
    SavedModels. Over-long texts are truncated by `truncation` (see
    kerasbert.text.packing).
    """

    def __init__(self, tokenizer, sequence_length=128, truncation="longest_first",
                 pad_to="fixed", head_length=None, name=None):
        super().__init__(name=name)
        self.tokenizer = tokenizer
        vocabulary = tokenizer.vocabulary
        self.packer = InputPacker(
            sequence_length, vocabulary.id_of("cls"), vocabulary.id_of("sep"),
            vocabulary.id_of("pad"), truncation=truncation, pad_to=pad_to,
            head_length=head_length,
            pair_separators=tokenizer.pair_separators,
        )

    @property
    def sequence_length(self):
        return self.packer.sequence_length

    @property
    def vocabulary(self):
        return self.tokenizer.vocabulary

    def __call__(self, text, text_b=None, length=None):
        """`length` (optional, int or scalar tensor): pad (or cut) to this many
        positions instead of the packer's own padding; see `pack`."""
        text = tf.convert_to_tensor(text, tf.string)
        scalar = text.shape.rank == 0
        texts = [text] if text_b is None else [text, tf.convert_to_tensor(text_b, tf.string)]
        if scalar:
            texts = [t[None] for t in texts]
        ids = [self.tokenizer.tokenize(t) for t in texts]
        packed = self.packer(*ids) if length is None else self.pack(*ids, length=length)
        if scalar:
            packed = {name: value[0] for name, value in packed.items()}
        return packed

    # Tokenizing and packing as separate steps, for length bucketing
    # (tasks.data.pipeline): tokenize once, read each example's packed
    # length, group examples of similar length, pack each group to its
    # bucket's length.

    def tokenize(self, text, text_b=None):
        """Strings [batch] (one or two texts) -> a list of ragged token ids, one per text."""
        texts = [text] if text_b is None else [text, text_b]
        return [self.tokenizer.tokenize(tf.convert_to_tensor(t, tf.string)) for t in texts]

    def packed_lengths(self, ids_a, ids_b=None):
        """int32 [batch]: positions each example fills once packed ([CLS] and
        [SEP]s included, truncated to sequence_length; every truncation
        policy keeps min(tokens, budget))."""
        segments = [_as_ragged(ids) for ids in ([ids_a] if ids_b is None else [ids_a, ids_b])]
        total = tf.add_n([tf.cast(s.row_lengths(), tf.int32) for s in segments])
        specials = 2 if ids_b is None else 2 + self.packer.pair_separators
        return tf.minimum(total + specials, self.sequence_length)

    def pack(self, ids_a, ids_b=None, length=None):
        """Ragged token ids (from `tokenize`) -> model inputs.

        length None: the packer's padding (`pad_to`). Otherwise the inputs
        are exactly `length` wide (a Python int gives a static width):
        padded to it, or cut to it when wider (pad_to="fixed" gives
        sequence_length); it must be >= every packed length of the batch
        (checked), so only padding is ever cut.
        """
        packed = self.packer(ids_a, ids_b)
        if length is None:
            return packed
        needed = tf.reduce_max(tf.reduce_sum(packed["input_mask"], axis=1))
        check = tf.debugging.assert_less_equal(
            needed, tf.cast(length, tf.int32),
            message="pack: length is shorter than the longest packed example")
        with tf.control_dependencies([check]):
            width = tf.shape(packed["input_word_ids"])[1]
            extra = tf.maximum(tf.cast(length, tf.int32) - width, 0)
        pad_values = {"input_word_ids": self.packer.pad_id}
        fitted = {}
        for name, value in packed.items():
            value = tf.pad(value, [[0, 0], [0, extra]], constant_values=pad_values.get(name, 0))
            fitted[name] = value[:, :length]
        return fitted

    def get_config(self):
        config = self.packer.get_config()
        for key in ("cls_id", "sep_id", "pad_id", "pair_separators"):
            config.pop(key)
        return {"tokenizer": {"class_name": type(self.tokenizer).__name__,
                              "config": self.tokenizer.get_config()}, **config}
