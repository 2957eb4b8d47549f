"""BERT's WordPiece tokenizer as TensorFlow ops, equal to Hugging Face's.

`WordPieceTokenizer` gives the ids of `tokenizers.BertWordPieceTokenizer`
(the Rust fast tokenizer, `add_special_tokens=False`) with nothing but
TensorFlow and tensorflow-text ops, so it runs in `tf.data`, in a
`tf.function` and in an exported SavedModel. It reproduces the reference
pipeline step by step (tokenizers/src/normalizers/bert.rs,
pre_tokenizers/bert.rs, models/wordpiece):

1. Special tokens typed in the raw text ("x[SEP]y") are cut out before
   normalization, case-sensitively, and become their ids.
2. BertNormalizer: drop NUL, U+FFFD and control characters (Cc but \\t \\n \\r,
   Cf, Co, Cs), map whitespace to " "; put spaces around CJK ideographs; if
   strip_accents: NFD and drop nonspacing marks (Mn); then, if lower_case,
   lowercase each character (Rust's `char::to_lowercase`).
3. BertPreTokenizer: split on whitespace, isolate every punctuation character
   (ASCII punctuation and Unicode P*).
4. WordPiece, greedy longest match first with "##" continuations; a word of
   more than `max_chars_per_word` characters, or one the vocabulary cannot
   spell, becomes [UNK].

Not tf_text.BertTokenizer(lower_case=True): it case-folds with NFKC, which
also rewrites full-width letters, ligatures, superscripts... the reference
does not. Known residual differences come from Unicode versions: the
reference's character classes (punctuation, Cf, Mn) come from Unicode 8
tables, RE2's and ICU's here are newer, so characters assigned since 2015 in
those categories may be treated differently.

`KerasHubWordPieceTokenizer` reads text as keras-hub's WordPieceTokenizer
does instead (NFKC case folding, special tokens typed in the text read as
text), so a keras-hub preset gets the ids keras-hub gives it.
"""

import re

import tensorflow as tf
import tensorflow_text as tf_text

from kerasbert.text.vocabulary import ROLES, WORDPIECE_SPECIALS, Vocabulary

# Control characters the reference removes: Cc except \t \n \r (they are
# whitespace), Cf, Co, Cs, plus U+FFFD. NUL is in Cc.
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\p{Cf}\p{Co}\p{Cs}\x{fffd}]"
# Whitespace surviving that filter (Rust's char::is_whitespace): \t \n \r, Z*.
_WHITESPACE = r"[\t\n\r\p{Z}]"
# BERT's CJK ideograph blocks as the reference spells them (its 0x2B920 where
# Google's BERT has 0x2B820 is kept: U+2B820..2B91F stay inside words).
_CJK = (r"([\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
        r"\x{2B740}-\x{2B81F}\x{2B920}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}])")
_PUNCTUATION = r"[!-/:-@\[-`{-~\p{P}]"
# After cleaning, the only whitespace left is " ".
_SPLIT = " |" + _PUNCTUATION
# Stand-ins for special tokens cut from the raw text. Normalization deletes
# every control character from ordinary text, so these only ever come from a
# special token, and the WordPiece vocabulary below spells them as its ids.
_STAND_INS = {role: chr(1 + index) for index, role in enumerate(ROLES)}


def bert_normalize(text, lower_case=True, strip_accents=True):
    """BertNormalizer on a string tensor: clean, space CJK, strip accents, lower-case."""
    text = tf.strings.regex_replace(text, _CONTROL, "")
    text = tf.strings.regex_replace(text, _WHITESPACE, " ")
    text = tf.strings.regex_replace(text, _CJK, r" \1 ")
    if strip_accents:
        text = tf_text.normalize_utf8(text, "NFD")
        text = tf.strings.regex_replace(text, r"\p{Mn}", "")
    if lower_case:
        # tf.strings.lower (ICU) maps a word-final Σ to ς; Rust's
        # per-character lowercase always gives σ.
        text = tf.strings.regex_replace(text, "Σ", "σ")
        text = tf.strings.lower(text, encoding="utf-8")
    return text


def read_vocabulary(vocab_file):
    """Tokens of a vocab.txt, read as the reference reads it (split on
    newlines, trailing whitespace trimmed)."""
    with tf.io.gfile.GFile(vocab_file, "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.rstrip() for line in lines]


class WordPieceTokenizer(tf.Module):
    """Strings -> WordPiece ids, in the graph, with Hugging Face's ids.

    vocab_file: vocab.txt, one token per line, id = line number, or the list
    of tokens itself (a Hugging Face tokenizer.json holds no vocab.txt); it
    must hold [CLS] [SEP] [PAD] [MASK] [UNK]. lower_case: lowercase the text (for an
    uncased vocabulary). strip_accents: None follows lower_case, as in
    BertWordPieceTokenizer. max_chars_per_word: longer words become [UNK].
    """

    pair_separators = 1  # [CLS] A [SEP] B [SEP]

    def __init__(self, vocab_file, lower_case=True, strip_accents=None,
                 max_chars_per_word=100, name=None):
        super().__init__(name=name)
        self.vocab_file = list(vocab_file) if isinstance(vocab_file, (list, tuple)) else str(
            vocab_file)
        self.lower_case = bool(lower_case)
        self.strip_accents = strip_accents
        self.max_chars_per_word = int(max_chars_per_word)
        tokens = (self.vocab_file if isinstance(self.vocab_file, list)
                  else read_vocabulary(self.vocab_file))
        self.vocabulary = Vocabulary(tokens, WORDPIECE_SPECIALS, continuation_prefix="##")
        self._specials = {WORDPIECE_SPECIALS[role]: _STAND_INS[role] for role in ROLES}
        self._special_pattern = "|".join(re.escape(token) for token in self._specials)
        # The special tokens' entries are spelled as their stand-ins, so a word
        # of text can never match them (brackets are split off anyway).
        spelled = [self._specials.get(token, token) for token in tokens]
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=spelled, suffix_indicator="##",
            max_bytes_per_word=4 * self.max_chars_per_word,  # we count characters
            token_out_type=tf.int32, unknown_token=_STAND_INS["unk"],
            no_pretokenization=True)
        self._tokens = tf.constant(tokens)

    @property
    def do_strip_accents(self):
        return self.lower_case if self.strip_accents is None else bool(self.strip_accents)

    def get_config(self):
        return {"vocab_file": self.vocab_file, "lower_case": self.lower_case,
                "strip_accents": self.strip_accents,
                "max_chars_per_word": self.max_chars_per_word}

    def normalize(self, text):
        """BertNormalizer on a string tensor (no special-token handling)."""
        return bert_normalize(text, self.lower_case, self.do_strip_accents)

    def split_words(self, strings):
        """strings [batch] -> words [batch, (words)] as the reference's WordPiece sees them.

        Special tokens are their stand-ins, too-long words the [UNK] stand-in.
        """
        # tensorflow-text's regex_split ends a string at a NUL byte: NUL travels
        # as a private-use character, which normalization drops as it drops NUL.
        strings = tf.strings.regex_replace(strings, "\x00", "\U000F0001")
        pieces = tf_text.regex_split(strings, self._special_pattern, self._special_pattern)
        raw = pieces.flat_values
        text = self.normalize(raw)
        for token, stand_in in self._specials.items():
            text = tf.where(raw == token, stand_in, text)
        words = tf_text.regex_split(text, _SPLIT, _PUNCTUATION)
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > self.max_chars_per_word
        words = words.with_flat_values(
            tf.where(too_long, _STAND_INS["unk"], words.flat_values))
        return pieces.with_flat_values(words).merge_dims(1, 2)

    def tokenize(self, strings):
        """strings [batch] -> int32 RaggedTensor [batch, (tokens)]; a scalar -> int32 [tokens].

        The text alone: no [CLS]/[SEP] (packing adds them).
        """
        strings = tf.convert_to_tensor(strings, tf.string)
        if strings.shape.rank == 0:
            return self.tokenize(strings[tf.newaxis])[0]
        if strings.shape.rank != 1:
            raise ValueError(
                f"tokenize takes a scalar or a vector of strings, got shape {strings.shape}.")
        words = self.split_words(strings)
        ids = self._wordpiece.tokenize(words.flat_values)
        return words.with_flat_values(ids).merge_dims(1, 2)

    def tokenize_words(self, words, text_start=None):
        """words [n] -> int32 RaggedTensor [n, (tokens)]: each word's pieces as
        it reads inside running text (tagging and QA map labels to words).
        text_start (bool [n], words that open their text) changes nothing here."""
        return self.tokenize(words)  # WordPiece splits text at whitespace first

    def __call__(self, strings):
        return self.tokenize(strings)

    def detokenize(self, ids):
        """ids [batch, (tokens)] (ragged or dense) -> strings [batch]; [tokens] -> a scalar.

        Like Hugging Face's WordPiece decoder with clean-up off and special
        tokens kept (a dense batch shows its [PAD]s): tokens joined by spaces,
        "##" continuations glued to the token before. Lowercasing, accents and
        the spaces around punctuation are not undone.
        """
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.convert_to_tensor(ids)
        tokens = tf.gather(self._tokens, ids)
        text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        return tf.strings.regex_replace(text, " ##", "")


# keras-hub's WordPieceTokenizer (keras_hub/src/tokenizers/word_piece_tokenizer.py,
# its TensorFlow path), pattern for pattern. RE2's \s is ASCII whitespace only.
_KERAS_HUB_WHITESPACE = r"\s|\p{Cc}|\p{Cf}"
_KERAS_HUB_PUNCTUATION = r"[!-/]|[:-@]|[\[-`]|[{-~]|[\p{P}]"
_KERAS_HUB_CJK = (r"[\x{4E00}-\x{9FFF}]|[\x{3400}-\x{4DBF}]|[\x{20000}-\x{2A6DF}]|"
                  r"[\x{2A700}-\x{2B73F}]|[\x{2B740}-\x{2B81F}]|[\x{2B820}-\x{2CEAF}]|"
                  r"[\x{F900}-\x{FAFF}]|[\x{2F800}-\x{2FA1F}]")
_KERAS_HUB_MAX_BYTES_PER_WORD = 100  # tf_text.FastWordpieceTokenizer's default there
# The special tokens keras-hub's BERT, DistilBERT and ELECTRA tokenizers keep
# whole in the text when special_tokens_in_strings is set ([UNK] is not one).
_KERAS_HUB_SPECIAL_ROLES = ("cls", "sep", "pad", "mask")


class KerasHubWordPieceTokenizer(WordPieceTokenizer):
    """WordPiece with keras-hub's ids, for its presets' vocabularies.

    keras-hub's WordPieceTokenizer reads text otherwise than BERT's reference
    (and `WordPieceTokenizer`): CJK ideographs spaced; if strip_accents, NFD
    and no nonspacing marks; split at ASCII whitespace, control and format
    characters (U+00A0, U+3000, U+2028 stay inside words) and at punctuation,
    kept; then, if lower_case, each word NFKC-case-folded (tf_text.case_fold_utf8:
    full-width letters become ASCII, 'ß' 'ss', '…' '...', ignorable characters
    dropped), where the reference lower-cases; U+FFFD kept. Special tokens
    typed in the text are text ("[SEP]" is '[', 'sep', ']') unless
    special_tokens_in_strings; words of more than 100 bytes become [UNK].
    """

    def __init__(self, vocab_file, lower_case=False, strip_accents=False, split_on_cjk=True,
                 special_tokens_in_strings=False, name=None):
        super().__init__(vocab_file, lower_case=lower_case, strip_accents=bool(strip_accents),
                         max_chars_per_word=_KERAS_HUB_MAX_BYTES_PER_WORD, name=name)
        self.split_on_cjk = bool(split_on_cjk)
        self.special_tokens_in_strings = bool(special_tokens_in_strings)
        specials = [WORDPIECE_SPECIALS[role] for role in _KERAS_HUB_SPECIAL_ROLES]
        self._kept_pattern = "|".join(re.escape(token) for token in specials)

    def get_config(self):
        config = super().get_config()
        del config["max_chars_per_word"]
        config.update(split_on_cjk=self.split_on_cjk,
                      special_tokens_in_strings=self.special_tokens_in_strings)
        return config

    def split_words(self, strings):
        """strings [batch] -> words [batch, (words)], as keras-hub pretokenizes;
        special tokens are their stand-ins, too-long words the [UNK] stand-in."""
        # NUL is a separator here (\p{Cc}); regex_split would end the string at it.
        text = tf.strings.regex_replace(strings, "\x00", " ")
        if self.split_on_cjk:
            text = tf.strings.regex_replace(text, _KERAS_HUB_CJK, r" \0 ")
        if self.do_strip_accents:
            text = tf_text.normalize_utf8(text, "NFD")
            text = tf.strings.regex_replace(text, r"\p{Mn}", "")
        special = [self._kept_pattern] if self.special_tokens_in_strings else []
        cjk = [_KERAS_HUB_CJK] if self.split_on_cjk else []
        words = tf_text.regex_split(
            text, "|".join(special + [_KERAS_HUB_WHITESPACE, _KERAS_HUB_PUNCTUATION] + cjk),
            "|".join(special + [_KERAS_HUB_PUNCTUATION] + cjk))
        raw = words.flat_values
        text = tf_text.case_fold_utf8(raw) if self.lower_case else raw
        if self.special_tokens_in_strings:
            for role in _KERAS_HUB_SPECIAL_ROLES:
                text = tf.where(raw == WORDPIECE_SPECIALS[role], _STAND_INS[role], text)
        too_long = tf.strings.length(text) > _KERAS_HUB_MAX_BYTES_PER_WORD
        return words.with_flat_values(tf.where(too_long, _STAND_INS["unk"], text))
