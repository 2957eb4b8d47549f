"""SentencePiece tokenization in the TensorFlow graph (ALBERT-style models).

Wraps `tensorflow_text.SentencepieceTokenizer`, so tokenization runs in
tf.data, in tf.function and inside an exported SavedModel, which needs only
tensorflow and tensorflow_text to load.
"""

import functools

import tensorflow as tf
import tensorflow_text as tf_text

from kerasbert.text.vocabulary import FAIRSEQ_SPECIALS, SENTENCEPIECE_SPECIALS, Vocabulary

# fairseq's ids over a SentencePiece model (XLM-RoBERTa): <s> <pad> </s> <unk>
# first, every other piece one id later than in the model, <mask> last.
FAIRSEQ_FIRST = ("<s>", "<pad>", "</s>", "<unk>")
_FAIRSEQ_UNK = 3

WORD_PREFIX = "\u2581"


@functools.cache
def _combining_class():
    """An RE2 class of the characters with a nonzero canonical combining class:
    what unicodedata.combining() drops in the reference (\\p{Mn} would also drop
    e.g. Devanagari vowel signs, whose class is 0)."""
    import unicodedata

    ranges, start = [], None
    for code in range(0x110000):
        combining = unicodedata.combining(chr(code)) != 0
        if combining and start is None:
            start = code
        elif not combining and start is not None:
            ranges.append((start, code - 1))
            start = None
    return "[" + "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}"
                         for a, b in ranges) + "]"


@functools.cache
def python_whitespace():
    """Python's str.split() whitespace (the reference's remove_space); RE2's \\s is ASCII."""
    return "".join(f"\\x{{{code:X}}}" for code in range(0x110000) if chr(code).isspace())


def albert_normalize(strings, remove_space=True, keep_accents=False, lower_case=False):
    """ALBERT's text cleanup before SentencePiece, in graph (google-research/
    albert's `preprocess_text`, Hugging Face's AlbertTokenizer(Fast)).

    remove_space: whitespace runs become one space, none at the ends.
    Always: `` and '' become ". keep_accents=False: NFKD, then the combining
    marks (nonzero combining class) dropped, so "café" -> "cafe". lower_case:
    see `lower_utf8`. SentencePiece's own normalizer (NFKC) runs after.
    """
    if remove_space:
        strings = tf.strings.regex_replace(strings, f"[{python_whitespace()}]+", " ")
        strings = tf.strings.regex_replace(strings, "^ | $", "")
    strings = tf.strings.regex_replace(strings, "``|''", '"')
    if not keep_accents:
        strings = tf_text.normalize_utf8(strings, "NFKD")
        strings = tf.strings.regex_replace(strings, _combining_class(), "")
    if lower_case:
        strings = lower_utf8(strings)
    return strings


def lower_utf8(strings):
    """Lower-cases strings as `lower_case=True` does, in graph.

    `tf.strings.lower(encoding="utf-8")`: ICU's full Unicode lower-case
    mapping in the root locale, the same as Python's `str.lower()` (e.g. "Σ"
    at a word's end -> "ς", "İ" -> "i" + U+0307). No accent stripping, no
    other normalization: the model's own normalizer (NFKC by default) runs
    after it.
    """
    # tf.strings.lower ends a string at a NUL byte: NUL travels as a private-use character.
    strings = tf.strings.regex_replace(strings, "\x00", "\U000F0001")
    return tf.strings.regex_replace(tf.strings.lower(strings, encoding="utf-8"),
                                    "\U000F0001", "\x00")


class SentencePieceTokenizer(tf.Module):
    """Strings -> SentencePiece ids, and back.

    model_file: a SentencePiece `.model` (e.g. from
    `kerasbert.text.vocab_builder.build_sentencepiece_model` or ALBERT's
    `30k-clean.model`); its bytes are embedded, so an exported SavedModel
    does not need the file. lower_case: lower-case the text first (ALBERT's
    do_lower_case), see `lower_utf8`.
    albert_normalization: ALBERT's cleanup first (`albert_normalize`: spaces
    collapsed, `` and '' as ", accents stripped unless keep_accents), as
    the published ALBERT tokenizers do; off, the text goes to the model as is.
    fairseq_ids: XLM-RoBERTa's ids (fairseq's dictionary over the model):
    <s>=0, <pad>=1, </s>=2, <unk>=3, the model's pieces from its id 3 on one
    id later, <mask> last; the model's own <unk> (0), <s> and </s> are not
    pieces.
    """

    def __init__(self, model_file, lower_case=False, albert_normalization=False,
                 keep_accents=False, fairseq_ids=False, name=None):
        super().__init__(name=name)
        self.model_file = str(model_file)
        self.lower_case = lower_case
        self.albert_normalization = albert_normalization
        self.keep_accents = keep_accents
        self.fairseq_ids = fairseq_ids
        self.pair_separators = 2 if fairseq_ids else 1  # fairseq: <s> A </s></s> B </s>
        with open(model_file, "rb") as f:
            model = f.read()
        self._tokenizer = tf_text.SentencepieceTokenizer(
            model=model, out_type=tf.int32, add_bos=False, add_eos=False)
        with tf.init_scope():
            ids = tf.range(self._tokenizer.vocab_size())
            pieces = [p.decode("utf-8") for p in self._tokenizer.id_to_string(ids).numpy()]
        if fairseq_ids:
            pieces = [*FAIRSEQ_FIRST, *pieces[3:], "<mask>"]
        self.vocabulary = Vocabulary(pieces, FAIRSEQ_SPECIALS if fairseq_ids
                                     else SENTENCEPIECE_SPECIALS, word_prefix=WORD_PREFIX)

    def tokenize(self, strings):
        """strings [batch] -> int32 RaggedTensor [batch, (tokens)]; a scalar ->
        int32 [tokens] (as WordPieceTokenizer): the text's pieces alone, no
        [CLS]/[SEP]."""
        strings = tf.convert_to_tensor(strings, dtype=tf.string)
        if self.albert_normalization:
            strings = albert_normalize(strings, keep_accents=self.keep_accents,
                                       lower_case=self.lower_case)
        elif self.lower_case:
            strings = lower_utf8(strings)
        ids = self._tokenizer.tokenize(strings)
        if self.fairseq_ids:  # the model's <unk> (0) is fairseq's 3; the rest shift by one
            shift = lambda v: tf.where(v == 0, _FAIRSEQ_UNK, v + 1)  # noqa: E731
            ids = tf.ragged.map_flat_values(shift, ids) if isinstance(
                ids, tf.RaggedTensor) else shift(ids)
        return ids

    def tokenize_words(self, words, text_start=None):
        """words [n] -> int32 RaggedTensor [n, (tokens)]: each word's pieces as
        it reads inside running text (tagging and QA map labels to words).
        text_start (bool [n], words that open their text) changes nothing here."""
        return self.tokenize(words)  # the dummy prefix gives every word its "\u2581"

    def detokenize(self, ids):
        """int ids [batch, (tokens)] (ragged or dense) -> strings [batch]."""
        if self.fairseq_ids:  # back to the model's ids; <s> <pad> </s> <mask> dropped
            if not isinstance(ids, tf.RaggedTensor):
                ids = tf.ragged.constant(ids) if isinstance(ids, list) else \
                    tf.RaggedTensor.from_tensor(tf.convert_to_tensor(ids))
            ids = tf.ragged.boolean_mask(ids, (ids >= _FAIRSEQ_UNK)
                                         & (ids < self.vocabulary.size - 1))
            ids = tf.ragged.map_flat_values(
                lambda v: tf.where(v == _FAIRSEQ_UNK, 0, v - 1), ids)
        return self._tokenizer.detokenize(ids)

    def get_config(self):
        return {"model_file": self.model_file, "lower_case": self.lower_case,
                "albert_normalization": self.albert_normalization,
                "keep_accents": self.keep_accents, "fairseq_ids": self.fairseq_ids}
