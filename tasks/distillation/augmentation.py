"""TinyBERT's data augmentation: variants of a sentence with words a masked LM proposes.

Jiao et al. 2019, "TinyBERT" section 3.3 / Algorithm 1; the reference is
huawei-noah/Pretrained-Language-Model, TinyBERT/data_augmentation.py. What
this module takes from it:

- Words are BERT's basic-tokenizer words (lower-cased for an uncased
  vocabulary, punctuation split off); a word is a candidate for replacement
  when it is made of letters a-z only (case-insensitively) and is not a stop
  word (the reference's list, which is NLTK's English list: `DEFAULT_STOP_WORDS`).
- A word that is a single WordPiece is masked and the masked LM reads the
  pair (copy with the word masked, original sentence):
  `[CLS] w1 .. [MASK] .. wn [SEP] w1 .. wn [SEP]`, segment ids 0 up to and
  including the first [SEP], 1 after it. The top M=15 predictions at the
  masked position, minus tokens starting with "##", are its candidates.
- A variant is drawn N times (N=20 here; the reference uses 10-30 by task,
  `GLUE_COPIES`): for every eligible word, pick one of its candidates
  uniformly, and substitute it with probability p=0.4. Variants are the
  words joined by single spaces; identical ones are kept once.
- Pair tasks: every text field is augmented on its own, the other fields
  unchanged (`GLUE_FIELDS`).

Where this differs:

- Words split into several WordPieces keep their word: the reference takes
  their M nearest GloVe neighbours, and there is no GloVe here.
- Candidates also drop special tokens, bracketed tokens ("[unused0]"), ids
  beyond the tokenizer's vocabulary and the word itself (the reference keeps
  them, so "replacing" a word by itself or by [UNK] was possible).
- A variant equal to the original words (no substitution happened) is
  dropped; the reference compares variants with the raw input string, so
  the unchanged, re-tokenized sentence usually made it in as a "variant".
- Pair rows: the original row comes once, then the variants of each field
  with the other fields original (the reference writes the original row
  once per field, and its second field's rows carry the first field's last
  variant, a side effect of editing the row in place).
- The masked-LM input is cut to `sequence_length` (the reference: 512);
  a word whose mask falls beyond it keeps its word. The masked-LM calls are
  batched over all words of all texts (the reference calls once per word).
"""

import re

import numpy as np
import tensorflow as tf

# The reference's StopWordsList (NLTK's English stop words).
DEFAULT_STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
yourselves he him his himself she she's her hers herself it it's its itself they them their
theirs themselves this that that'll these those am is are was were be been being have has had
having do does did doing a an the and but if or because as until while of at by for with about
against between into through during before after above below to from up down in out on off
over under again further then once here there all any both each few more most other some such
no nor not only own same so than too very s t can will just don don't should should've now d
ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn
hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't
shouldn shouldn't wasn wasn't weren weren't won won't wouldn wouldn't 's 're
""".split())

# The reference's fields per GLUE task (it reads TSV columns; these are the
# TFDS glue feature names of the same columns) and its copies N per task.
GLUE_FIELDS = {
    "cola": ("sentence",), "sst2": ("sentence",), "mrpc": ("sentence1", "sentence2"),
    "stsb": ("sentence1", "sentence2"), "qqp": ("question1", "question2"),
    "mnli": ("premise", "hypothesis"), "qnli": ("question", "sentence"),
    "rte": ("sentence1", "sentence2"),
}
GLUE_COPIES = {"cola": 30, "sst2": 20, "mrpc": 30, "stsb": 30, "qqp": 10, "mnli": 10,
               "qnli": 20, "rte": 30}

_LETTERS = re.compile(r"[a-z]+")


def _is_word(word):
    """The reference's `_is_valid`: letters a-z only, case-insensitively."""
    return _LETTERS.fullmatch(word.lower()) is not None


class MlmAugmenter:
    """Sentence -> variants with words replaced by masked-LM predictions.

    mlm_model: a Keras model taking {input_word_ids, input_mask,
    input_type_ids} int32 [b, s] and returning a dict with `mlm_logits`
    [b, s, vocab] (`zoo.load(path, with_head=True)`). tokenizer: a
    WordPieceTokenizer of that model's vocabulary. copies: draws per text
    (at most this many variants). probability: chance to replace each
    eligible word in a draw. top_k: predictions read per masked word.
    sequence_length: longest masked-LM input. batch_size: masked-LM rows per
    call. seed: the sampling generator's seed; results depend on it and on
    the sequence of calls, and a fresh augmenter with the same seed repeats
    them. stop_words: lower-case words never replaced.
    """

    def __init__(self, mlm_model, tokenizer, copies=20, probability=0.4, top_k=15,
                 sequence_length=128, batch_size=64, seed=0,
                 stop_words=DEFAULT_STOP_WORDS):
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {probability}.")
        if sequence_length < 5:
            raise ValueError(f"sequence_length must be at least 5, got {sequence_length}.")
        self.mlm_model = mlm_model
        self.tokenizer = tokenizer
        self.copies = int(copies)
        self.probability = float(probability)
        self.top_k = int(top_k)
        self.sequence_length = int(sequence_length)
        self.batch_size = int(batch_size)
        self.seed = seed
        self.stop_words = frozenset(word.lower() for word in stop_words)
        self._rng = np.random.default_rng(seed)

        vocabulary = tokenizer.vocabulary
        self._tokens = list(vocabulary.tokens)
        self._cls = vocabulary.id_of("cls")
        self._sep = vocabulary.id_of("sep")
        self._pad = vocabulary.id_of("pad")
        self._mask = vocabulary.id_of("mask")
        prefix = vocabulary.continuation_prefix or "##"
        specials = set(vocabulary.special_ids)
        self._excluded = np.array(
            [index in specials or token.startswith(prefix)
             or (len(token) > 2 and token.startswith("[") and token.endswith("]"))
             for index, token in enumerate(self._tokens)], dtype=bool)
        # split_words gives special tokens typed in the text as control
        # characters; map them back to the tokens they stand for.
        special_tokens = list(vocabulary.specials.values())
        stand_ins = tokenizer.split_words(tf.constant(special_tokens)).to_list()
        self._stand_ins = {word[0].decode("utf-8"): token
                           for word, token in zip(stand_ins, special_tokens) if len(word) == 1}
        spec = tf.TensorSpec([None, None], tf.int32)
        self._predict = tf.function(self._top_predictions, input_signature=[
            spec, spec, spec, tf.TensorSpec([None], tf.int32)])

    # -- words and candidates ----------------------------------------------

    def split(self, text):
        """The words of `text` as the tokenizer sees them (normalized, punctuation split)."""
        return self._split([text])[0]

    def _split(self, texts):
        if not texts:
            return []
        words = self.tokenizer.split_words(tf.constant(list(texts), tf.string)).to_list()
        return [[self._stand_ins.get(w, w) for w in (word.decode("utf-8") for word in row)]
                for row in words]

    def candidates(self, words):
        """Per word: its replacement candidates, [] when the word is kept.

        words: a list of words (or a string, split as `split` does).
        """
        if isinstance(words, str):
            words = self.split(words)
        return self._candidates([list(words)])[0]

    def _eligible(self, word):
        return _is_word(word) and word.lower() not in self.stop_words

    def _candidates(self, texts):
        """texts: lists of words -> per text, per word, candidate lists. Batched."""
        flat = [word for words in texts for word in words]
        pieces = self.tokenizer.tokenize(tf.constant(flat, tf.string)).to_list() if flat else []
        result, rows, start = [], [], 0
        for words in texts:
            word_pieces = pieces[start:start + len(words)]
            start += len(words)
            result.append([[] for _ in words])
            ids = [piece for p in word_pieces for piece in p]
            offset = 0
            for index, (word, p) in enumerate(zip(words, word_pieces)):
                position = 1 + offset  # after [CLS]
                offset += len(p)
                if len(p) != 1 or not self._eligible(word) or position >= self.sequence_length:
                    continue
                rows.append((len(result) - 1, index, ids, position))
        if not rows:
            return result
        # Similar lengths together, less padding.
        rows.sort(key=lambda row: len(row[2]))
        for begin in range(0, len(rows), self.batch_size):
            batch = rows[begin:begin + self.batch_size]
            inputs = [self.masked_lm_input(ids, position) for _, _, ids, position in batch]
            width = max(len(word_ids) for word_ids, _ in inputs)
            word_ids = np.full((len(batch), width), self._pad, np.int32)
            type_ids = np.zeros((len(batch), width), np.int32)
            mask = np.zeros((len(batch), width), np.int32)
            for row, (ids, types) in enumerate(inputs):
                word_ids[row, :len(ids)] = ids
                type_ids[row, :len(types)] = types
                mask[row, :len(ids)] = 1
            positions = np.array([position for *_, position in batch], np.int32)
            top = self._predict(word_ids, mask, type_ids, positions).numpy()
            for (text, index, ids, position), predictions in zip(batch, top):
                own = ids[position - 1]
                result[text][index] = [
                    self._tokens[p] for p in predictions
                    if p < len(self._tokens) and p != own and not self._excluded[p]]
        return result

    def masked_lm_input(self, ids, position):
        """The reference's masked-LM input for the piece at `position` (1 + its index in ids).

        Returns (word ids, type ids): `[CLS] ids-with-[MASK] [SEP] ids [SEP]`,
        types 0 through the first [SEP], 1 after; cut to sequence_length.
        """
        masked = list(ids)
        masked[position - 1] = self._mask
        first = [self._cls] + masked + [self._sep]
        second = list(ids) + [self._sep]
        word_ids = (first + second)[:self.sequence_length]
        type_ids = ([0] * len(first) + [1] * len(second))[:self.sequence_length]
        return word_ids, type_ids

    def _top_predictions(self, word_ids, mask, type_ids, positions):
        outputs = self.mlm_model(
            {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids},
            training=False)
        logits = tf.gather(outputs["mlm_logits"], positions, batch_dims=1)
        return tf.math.top_k(logits, k=min(self.top_k, logits.shape[-1])).indices

    # -- sampling -------------------------------------------------------------

    def _variants(self, words, candidates):
        """`copies` draws; distinct variants that differ from the words, in draw order."""
        eligible = [i for i, c in enumerate(candidates) if c]
        if not eligible or self.copies <= 0:
            return []
        sizes = np.array([len(candidates[i]) for i in eligible])
        picks = self._rng.integers(0, sizes, size=(self.copies, len(eligible)))
        replace = self._rng.random((self.copies, len(eligible))) < self.probability
        original = " ".join(words)
        seen, variants = {original}, []
        for draw in range(self.copies):
            new = list(words)
            for column, index in enumerate(eligible):
                if replace[draw, column]:
                    new[index] = candidates[index][picks[draw, column]]
            sentence = " ".join(new)
            if sentence not in seen:
                seen.add(sentence)
                variants.append(sentence)
        return variants

    def augment_many(self, texts):
        """[augment(text) for text in texts], with the masked-LM calls batched across texts."""
        texts = list(texts)
        words = self._split(texts)
        unique = list(dict.fromkeys(tuple(w) for w in words))
        found = dict(zip(unique, self._candidates([list(w) for w in unique])))
        return [[text] + self._variants(w, found[tuple(w)]) for text, w in zip(texts, words)]

    def augment(self, text):
        """[text] + up to `copies` distinct variants (words joined by spaces)."""
        return self.augment_many([text])[0]


def iter_augmented_rows(rows, fields, augmenter, chunk_size=256):
    """augment_rows as a generator, augmenting `chunk_size` rows at a time."""
    if isinstance(fields, str):
        fields = (fields,)
    fields = tuple(fields)
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == chunk_size:
            yield from _augment_chunk(chunk, fields, augmenter)
            chunk = []
    if chunk:
        yield from _augment_chunk(chunk, fields, augmenter)


def _augment_chunk(rows, fields, augmenter):
    texts = [row[field] for row in rows for field in fields if row[field]]
    augmented = iter(augmenter.augment_many(texts))
    for row in rows:
        yield dict(row)
        for field in fields:
            if not row[field]:
                continue
            for variant in next(augmented)[1:]:
                yield {**row, field: variant}


def augment_rows(rows, fields, augmenter):
    """Rows (dicts) -> each row followed by its variants.

    fields: the text field(s) to augment (`GLUE_FIELDS[task]`). Each field
    is augmented on its own: its variants come with every other key (labels,
    the other text) as in the row. Empty or None fields are left alone.
    """
    return list(iter_augmented_rows(rows, fields, augmenter))
