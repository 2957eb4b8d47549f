"""Raw text -> the three model inputs with only LiteRT's kernels: builtins
plus tensorflow-text's TFLite ops (`tflite_registrar.SELECT_TFTEXT_OPS`).

LiteRT has no regular expressions, no Unicode normalization or case
mapping, and the Python interpreters (TensorFlow 2.21's and ai-edge-litert
2.3's) run no Flex (SELECT_TF_OPS) kernels. So a tokenizer goes inside a
.tflite file only where one of tensorflow-text's TFLite kernels gives
exactly the project's ids:

  SentencePiece, unigram, the text given to the model as it is (no ALBERT
      cleanup, no lower-casing; XLM-R's fairseq ids included): tensorflow-
      text's FastSentencepieceTokenize, which reads the model's own
      normalizer; the fairseq shift is arithmetic.
  WordPiece: no. Our normalization (Hugging Face's BertNormalizer: control
      characters dropped, CJK spaced, NFD, per-character lower-casing,
      special tokens typed in the text cut out) needs regex and ICU ops;
      FastBertNormalize case-folds with NFKC instead ("ß" -> "ss",
      full-width letters, "…") and FastWordpieceTokenize splits "[SEP]".
  ALBERT's cleanup, lower_case, SentencePiece BPE, byte-level BPE: no
      (regex and case mapping; FastSentencepieceTokenize reads a BPE model
      as a unigram one and gives other ids).

`text_support(tokenizer)` says which, with the reason; `LiteRtPreprocessor`
tokenizes and packs as `kerasbert.text.Preprocessor` does, padding to the
sequence length with dense index arithmetic instead of ragged ops (RaggedRange
and RaggedGather have no LiteRT kernel).
"""

import tensorflow as tf
import tensorflow_text as tf_text

from kerasbert.text.packing import pair_lengths

_UNIGRAM = 1  # sentencepiece ModelProto.TrainerSpec.UNIGRAM
_FAIRSEQ_UNK = 3  # kerasbert.text.sentencepiece: the model's <unk> (0) is fairseq's 3


def text_support(tokenizer):
    """(True, "") when `tokenizer` runs inside a .tflite file with its exact ids,
    else (False, why not)."""
    from kerasbert.text import SentencePieceTokenizer

    name = type(tokenizer).__name__
    if not isinstance(tokenizer, SentencePieceTokenizer):
        reasons = {
            "WordPieceTokenizer": "WordPiece's normalization (Hugging Face's BertNormalizer) "
                                  "needs regex and Unicode case-mapping ops LiteRT lacks; "
                                  "tensorflow-text's FastBertNormalize folds case with NFKC "
                                  "and gives other ids",
            "KerasHubWordPieceTokenizer": "keras-hub's WordPiece splits words with regex ops "
                                          "LiteRT lacks",
            "ByteLevelBpeTokenizer": "byte-level BPE pre-tokenizes with a regex LiteRT lacks",
        }
        return False, reasons.get(name, f"{name} has no LiteRT kernel")
    if tokenizer.albert_normalization:
        return False, ("ALBERT's text cleanup (spaces collapsed, accents stripped) needs "
                       "regex and Unicode normalization ops LiteRT lacks")
    if tokenizer.lower_case:
        return False, "lower-casing needs a Unicode case-mapping op LiteRT lacks"
    if _model_type(tokenizer.model_file) != _UNIGRAM:
        return False, ("tensorflow-text's LiteRT SentencePiece kernel reads only unigram "
                       "models (it gives a BPE model other ids)")
    return True, ""


def _model_type(model_file):
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    with open(model_file, "rb") as file:
        proto.ParseFromString(file.read())
    return proto.trainer_spec.model_type


class LiteRtPreprocessor(tf.Module):
    """`kerasbert.text.Preprocessor`'s ids from LiteRT-convertible ops.

    preprocessor: the model's Preprocessor (its tokenizer must pass
    `text_support`). Called with one or two string tensors [batch], returns
    `input_word_ids`, `input_mask`, `input_type_ids` int32 [batch, seq].
    """

    def __init__(self, preprocessor, name=None):
        super().__init__(name=name)
        supported, reason = text_support(preprocessor.tokenizer)
        if not supported:
            raise ValueError(f"Raw text cannot go into a LiteRT model: {reason}.")
        tokenizer = preprocessor.tokenizer
        with open(tokenizer.model_file, "rb") as file:
            self._sentencepiece = tf_text.FastSentencepieceTokenizer(file.read())
        self._fairseq_ids = tokenizer.fairseq_ids
        self._packer = preprocessor.packer

    def tokenize(self, text):
        """strings [batch] -> (flat ids int32 [tokens], row starts int32 [batch + 1])."""
        ids = self._sentencepiece.tokenize(text)
        values = tf.cast(ids.flat_values, tf.int32)
        if self._fairseq_ids:
            values = tf.where(values == 0, _FAIRSEQ_UNK, values + 1)
        return values, tf.cast(ids.row_splits, tf.int32)

    def __call__(self, text, text_b=None):
        segments = [self.tokenize(t) for t in ([text] if text_b is None else [text, text_b])]
        return pack(self._packer, segments)


def pack(packer, segments):
    """InputPacker's output from (flat ids, row starts) per text, with dense ops.

    Position p of a row holds [CLS] at 0, then text A's kept tokens, its
    separators, text B's kept tokens and its [SEP], then padding. The q-th
    kept token of a text of `length` tokens keeping `keep` is token q while
    q < head (the policy's head part), else token length - keep + q.
    """
    length = packer.sequence_length
    lengths = [starts[1:] - starts[:-1] for _, starts in segments]
    if len(segments) == 1:
        budget = length - 2
        keeps = [tf.minimum(lengths[0], budget)]
        separators = [1]
    else:
        budget = length - 2 - packer.pair_separators
        keeps = list(pair_lengths(lengths[0], lengths[1], budget))
        separators = [packer.pair_separators, 1]
    head_length = packer.head_length_within(budget)

    position = tf.range(length, dtype=tf.int32)[None, :]  # [1, seq]
    word_ids = tf.fill(tf.shape(position + keeps[0][:, None]), packer.pad_id)
    type_ids = tf.zeros_like(word_ids)
    word_ids = tf.where(position == 0, packer.cls_id, word_ids)
    start = tf.ones_like(keeps[0])  # where each text begins in the row
    for index, ((values, starts), text_length, keep, count) in enumerate(
            zip(segments, lengths, keeps, separators)):
        kept = position - start[:, None]  # q
        inside = (kept >= 0) & (kept < keep[:, None])
        head = _head(packer.truncation, keep, head_length)
        source = tf.where(kept < head[:, None], kept, (text_length - keep)[:, None] + kept)
        # One padding id after the values: an empty batch still has something
        # to gather, and positions outside the text read it.
        padded = tf.concat([values, [packer.pad_id]], axis=0)
        flat = tf.where(inside, starts[:-1, None] + source, tf.shape(values)[0])
        word_ids = tf.where(inside, tf.gather(padded, flat), word_ids)
        end = start + keep
        is_separator = (position >= end[:, None]) & (position < (end + count)[:, None])
        word_ids = tf.where(is_separator, packer.sep_id, word_ids)
        if index == 1:
            type_ids = tf.where(inside | is_separator, 1, type_ids)
        start = end + count
    mask = tf.cast(position < start[:, None], tf.int32)
    return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids}


def _head(truncation, keep, head_length):
    """How many of the kept tokens come from the text's start."""
    if truncation in ("longest_first", "head"):
        return keep
    if truncation == "tail":
        return tf.zeros_like(keep)
    return tf.minimum(keep, head_length)  # head+tail
