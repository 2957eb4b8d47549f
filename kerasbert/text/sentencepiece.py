"""SentencePiece tokenization in the TensorFlow graph (ALBERT-style models).

Wraps `tensorflow_text.SentencepieceTokenizer`, so tokenization runs in
tf.data, in tf.function and inside an exported SavedModel, which needs only
tensorflow and tensorflow_text to load.
"""

import tensorflow as tf
import tensorflow_text as tf_text

from kerasbert.text.vocabulary import SENTENCEPIECE_SPECIALS, Vocabulary

WORD_PREFIX = "\u2581"


def lower_utf8(strings):
    """Lower-cases strings as `lower_case=True` does, in graph.

    `tf.strings.lower(encoding="utf-8")`: ICU's full Unicode lower-case
    mapping in the root locale, the same as Python's `str.lower()` (e.g. "Σ"
    at a word's end -> "ς", "İ" -> "i" + U+0307). No accent stripping, no
    other normalization: the model's own normalizer (NFKC by default) runs
    after it.
    """
    return tf.strings.lower(strings, encoding="utf-8")


class SentencePieceTokenizer(tf.Module):
    """Strings -> SentencePiece ids, and back.

    model_file: a SentencePiece `.model` (e.g. from
    `kerasbert.text.vocab_builder.build_sentencepiece_model` or ALBERT's
    `30k-clean.model`); its bytes are embedded, so an exported SavedModel
    does not need the file. lower_case: lower-case the text first (ALBERT's
    do_lower_case), see `lower_utf8`.
    """

    def __init__(self, model_file, lower_case=False, name=None):
        super().__init__(name=name)
        self.model_file = str(model_file)
        self.lower_case = lower_case
        with open(model_file, "rb") as f:
            model = f.read()
        self._tokenizer = tf_text.SentencepieceTokenizer(
            model=model, out_type=tf.int32, add_bos=False, add_eos=False)
        with tf.init_scope():
            ids = tf.range(self._tokenizer.vocab_size())
            pieces = [p.decode("utf-8") for p in self._tokenizer.id_to_string(ids).numpy()]
        self.vocabulary = Vocabulary(pieces, SENTENCEPIECE_SPECIALS, word_prefix=WORD_PREFIX)

    def tokenize(self, strings):
        """strings [batch] -> int32 RaggedTensor [batch, (tokens)]; a scalar ->
        int32 [tokens] (as WordPieceTokenizer): the text's pieces alone, no
        [CLS]/[SEP]."""
        strings = tf.convert_to_tensor(strings, dtype=tf.string)
        if self.lower_case:
            strings = lower_utf8(strings)
        return self._tokenizer.tokenize(strings)

    def detokenize(self, ids):
        """int ids [batch, (tokens)] (ragged or dense) -> strings [batch]."""
        return self._tokenizer.detokenize(ids)

    def get_config(self):
        return {"model_file": self.model_file, "lower_case": self.lower_case}
