"""Raw strings -> the three model inputs, in the graph: tokenizer + packer."""

import tensorflow as tf

from kerasbert.text.packing import InputPacker


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
        )

    @property
    def sequence_length(self):
        return self.packer.sequence_length

    @property
    def vocabulary(self):
        return self.tokenizer.vocabulary

    def __call__(self, text, text_b=None):
        text = tf.convert_to_tensor(text, tf.string)
        scalar = text.shape.rank == 0
        texts = [text] if text_b is None else [text, tf.convert_to_tensor(text_b, tf.string)]
        if scalar:
            texts = [t[None] for t in texts]
        ids = [self.tokenizer.tokenize(t) for t in texts]
        packed = self.packer(*ids)
        if scalar:
            packed = {name: value[0] for name, value in packed.items()}
        return packed

    def get_config(self):
        config = self.packer.get_config()
        for key in ("cls_id", "sep_id", "pad_id"):
            config.pop(key)
        return {"tokenizer": {"class_name": type(self.tokenizer).__name__,
                              "config": self.tokenizer.get_config()}, **config}
