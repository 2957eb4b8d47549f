"""A tokenizer's vocabulary: tokens by id, special tokens by role, word starts.

Both tokenizers hold one, and the packer and the MLM masker read the ids
they need from it, so nothing downstream hard-codes an id.
"""

import numpy as np

ROLES = ("cls", "sep", "pad", "mask", "unk")
WORDPIECE_SPECIALS = {"cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "mask": "[MASK]",
                      "unk": "[UNK]"}
SENTENCEPIECE_SPECIALS = {"cls": "[CLS]", "sep": "[SEP]", "pad": "<pad>", "mask": "[MASK]",
                          "unk": "<unk>"}
FAIRSEQ_SPECIALS = {"cls": "<s>", "sep": "</s>", "pad": "<pad>", "mask": "<mask>",
                    "unk": "<unk>"}


class Vocabulary:
    """tokens: list of strings, index = id. specials: role -> token."""

    def __init__(self, tokens, specials, continuation_prefix=None, word_prefix=None):
        self.tokens = list(tokens)
        self._ids = {token: index for index, token in enumerate(self.tokens)}
        missing = [token for token in specials.values() if token not in self._ids]
        if missing:
            raise ValueError(
                f"The vocabulary lacks the special tokens {missing}; a BERT-style model "
                f"needs {sorted(specials.values())}. Build the vocabulary with them "
                "(kerasbert.text.build_wordpiece_vocabulary / build_sentencepiece_model "
                "add them)."
            )
        self.specials = dict(specials)
        self.continuation_prefix = continuation_prefix  # WordPiece: "##"
        self.word_prefix = word_prefix  # SentencePiece: "\u2581"

    def __len__(self):
        return len(self.tokens)

    @property
    def size(self):
        return len(self.tokens)

    def token_to_id(self, token):
        try:
            return self._ids[token]
        except KeyError:
            raise KeyError(f"{token!r} is not in the vocabulary.") from None

    def id_to_token(self, index):
        return self.tokens[index]

    def id_of(self, role):
        """The id of a special token by role: cls, sep, pad, mask, unk."""
        return self._ids[self.specials[role]]

    @property
    def special_ids(self):
        return sorted(self.id_of(role) for role in self.specials)

    def word_start_table(self):
        """bool [size]: True where a token begins a word (whole-word masking).

        WordPiece: every token not starting with "##". SentencePiece: tokens
        starting with "\u2581", plus special tokens.
        """
        special = set(self.special_ids)
        if self.continuation_prefix is not None:
            starts = [not t.startswith(self.continuation_prefix) for t in self.tokens]
        else:
            starts = [t.startswith(self.word_prefix) or i in special
                      for i, t in enumerate(self.tokens)]
        return np.array(starts, dtype=bool)
