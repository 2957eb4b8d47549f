"""Byte-level BPE (GPT-2, RoBERTa) as TensorFlow ops, in tf.data and SavedModels.

Three steps, each in the graph:
1. Pre-tokenization with GPT-2's pattern ('s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+|
   ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+). RE2 has no lookahead, so
   `\\s+(?!\\S)` is done in two passes: a marker goes before the last
   whitespace character of every run that a non-space follows (that
   character then starts the next piece, as the lookahead leaves it), the
   text is split at the markers, and each part is split by the pattern
   without the lookahead alternative.
2. Every byte of a piece becomes GPT-2's printable stand-in (bytes_to_unicode:
   a space is "Ġ").
3. BPE merges inside each piece: a SentencePiece BPE model is built from
   vocab.json and merges.txt, each merged token scored by its merge's rank
   (earlier merges first) with no normalization, and tensorflow-text's
   SentencePiece op runs it.
"""

import json

import tensorflow as tf
import tensorflow_text as tf_text

from kerasbert.text.vocabulary import FAIRSEQ_SPECIALS, Vocabulary

# Unicode White_Space, as the reference tokenizers' \s (RE2's \s is ASCII only).
_SPACE = (r"\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}"
          r"\x{202F}\x{205F}\x{3000}")
_MARK = "\U000F0000"  # a private-use character: where the lookahead would stop
# tensorflow-text's regex_split ends a string at a NUL byte: NUL travels as
# another private-use character (a symbol too, as NUL is for the pattern).
_NUL = "\U000F0001"
_PIECES = (rf"'s|'t|'re|'ve|'m|'ll|'d| ?\p{{L}}+| ?\p{{N}}+| ?[^{_SPACE}\p{{L}}\p{{N}}]+"
           rf"|[{_SPACE}]+")


def bytes_to_unicode():
    """GPT-2's map of the 256 bytes to printable characters (byte -> str)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    mapping, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            mapping[byte] = chr(byte)
        else:
            mapping[byte] = chr(256 + extra)
            extra += 1
    return mapping


def pre_tokenize(strings):
    """strings [batch] -> ragged pieces [batch, (pieces)] as GPT-2's pattern splits them."""
    strings = tf.strings.regex_replace(strings, "\x00", _NUL)
    marked = tf.strings.regex_replace(strings, rf"([{_SPACE}])([^{_SPACE}])", _MARK + r"\1\2")
    parts = tf_text.regex_split(marked, _MARK)  # [batch, (parts)]
    pieces = tf_text.regex_split(parts, _PIECES, keep_delim_regex_pattern=_PIECES)
    return tf.ragged.map_flat_values(tf.strings.regex_replace, pieces.merge_dims(1, 2),
                                     _NUL, "\x00")


class ByteLevelBpeTokenizer(tf.Module):
    """Strings -> byte-level BPE ids (RoBERTa's vocab.json + merges.txt).

    add_prefix_space: a space before the text, so its first word is read as
    it is mid-sentence (Hugging Face's option; RoBERTa's default is off).
    The vocabulary's special tokens are fairseq's (<s> </s> <pad> <unk>
    <mask>); pairs pack as <s> A </s></s> B </s>.
    """

    pair_separators = 2
    lower_case = False  # byte-level BPE reads the text as it is

    def __init__(self, vocab_file, merges_file, add_prefix_space=False, name=None):
        super().__init__(name=name)
        self.vocab_file, self.merges_file = str(vocab_file), str(merges_file)
        self.add_prefix_space = add_prefix_space
        with open(vocab_file, encoding="utf-8") as file:
            ids = json.load(file)
        tokens = [None] * len(ids)
        for token, index in ids.items():
            tokens[index] = token
        if None in tokens:
            raise ValueError(f"{vocab_file}: the ids are not 0..{len(ids) - 1}.")
        with open(merges_file, encoding="utf-8") as file:
            merges = [line.rstrip("\n") for line in file]
        merges = [line for line in merges if line and not line.startswith("#version")]
        self.vocabulary = Vocabulary(tokens, FAIRSEQ_SPECIALS, word_prefix="Ġ")
        self._sentencepiece = tf_text.SentencepieceTokenizer(
            model=_bpe_model(tokens, merges, self.vocabulary), out_type=tf.int32)
        raw = [bytes([b]) for b in range(256)]
        stand_ins = [char.encode("utf-8") for char in bytes_to_unicode().values()]
        with tf.init_scope():
            self._byte_map = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(raw, stand_ins), default_value="")
            self._byte_unmap = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(stand_ins, raw), default_value="")

    def tokenize(self, strings):
        """strings [batch] -> int32 RaggedTensor [batch, (tokens)]; a scalar -> [tokens]."""
        strings = tf.convert_to_tensor(strings, dtype=tf.string)
        if strings.shape.rank == 0:
            return self.tokenize(strings[None])[0]
        if self.add_prefix_space:  # unless it starts with one already, as the reference does
            strings = tf.strings.regex_replace(strings, "^([^ ])", r" \1")
        pieces = pre_tokenize(strings)  # [batch, (pieces)]
        mapped = tf.strings.reduce_join(tf.ragged.map_flat_values(
            self._byte_map.lookup, tf.strings.bytes_split(pieces.flat_values)), axis=-1)
        ids = self._sentencepiece.tokenize(mapped)  # [pieces, (ids)]: merges stay in a piece
        return pieces.with_flat_values(ids).merge_dims(1, 2)

    def tokenize_words(self, words, text_start=None):
        """words [n] -> int32 RaggedTensor [n, (tokens)]: each word's pieces as
        it reads inside running text (tagging and QA map labels to words).
        text_start: optional bool [n], words that open their text (read as
        `tokenize` reads a text's start)."""
        # After a space, as mid-sentence: Hugging Face's is_split_into_words
        # with add_prefix_space=True, how RoBERTa taggers are trained.
        words = tf.convert_to_tensor(words, tf.string)
        space = " " if text_start is None else tf.where(text_start, "", " ")
        return self.tokenize(tf.strings.join([space, words]))

    def detokenize(self, ids):
        """int ids [batch, (tokens)] -> strings [batch], special tokens dropped."""
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(ids))
        specials = tf.constant(self.vocabulary.special_ids, ids.dtype)
        ids = tf.ragged.boolean_mask(ids, tf.ragged.map_flat_values(
            lambda v: ~tf.reduce_any(tf.equal(v[:, None], specials[None]), axis=1), ids))
        mapped = tf.strings.unicode_split(self._sentencepiece.detokenize(ids), "UTF-8")
        return tf.strings.reduce_join(
            tf.ragged.map_flat_values(self._byte_unmap.lookup, mapped), axis=-1)

    def get_config(self):
        return {"vocab_file": self.vocab_file, "merges_file": self.merges_file,
                "add_prefix_space": self.add_prefix_space}


def _bpe_model(tokens, merges, vocabulary):
    """A serialized SentencePiece BPE model that merges as `merges` rank them."""
    from sentencepiece import sentencepiece_model_pb2

    rank = {}
    for index, merge in enumerate(merges):
        left, right = merge.split(" ")
        rank.setdefault(left + right, index)
    specials = set(vocabulary.specials.values())
    proto = sentencepiece_model_pb2.ModelProto()
    unk = vocabulary.id_of("unk")
    for index, token in enumerate(tokens):
        kind = 2 if index == unk else 3 if token in specials else 1  # UNKNOWN, CONTROL, NORMAL
        score = -float(rank[token]) - 1.0 if token in rank else 0.0
        proto.pieces.add(piece=token, score=score, type=kind)
    proto.trainer_spec.model_type = 2  # BPE
    proto.trainer_spec.vocab_size = len(tokens)
    proto.trainer_spec.unk_id = unk
    proto.trainer_spec.bos_id = proto.trainer_spec.eos_id = proto.trainer_spec.pad_id = -1
    normalizer = proto.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = False
    normalizer.remove_extra_whitespaces = False
    normalizer.escape_whitespaces = False
    return proto.SerializeToString()

