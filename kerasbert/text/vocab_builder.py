"""Learn a vocabulary from raw text, to train a model from scratch.

WordPiece (BERT): `build_wordpiece_vocabulary` -> vocab.txt.
SentencePiece (ALBERT): `build_sentencepiece_model` -> .model file.
Both put the special tokens where `kerasbert.text.vocabulary` expects them.
"""

import tensorflow as tf
from tensorflow_text.tools.wordpiece_vocab.bert_vocab_from_dataset import (
    bert_vocab_from_dataset,
)

from kerasbert.text.sentencepiece import lower_utf8
from kerasbert.text.wordpiece import bert_normalize

WORDPIECE_RESERVED = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SENTENCEPIECE_CONTROL = ["[CLS]", "[SEP]", "[MASK]"]


def build_wordpiece_vocabulary(lines, vocab_size, lower_case=True, output_file=None):
    """Learns a WordPiece vocabulary of at most ~vocab_size tokens from lines.

    Uses tensorflow-text's BERT vocabulary learner (BERT's word splitting on
    whitespace, punctuation and CJK characters, then WordPiece). Returns the
    tokens, [PAD] [UNK] [CLS] [SEP] [MASK] first ([PAD] = 0), and writes
    them one per line to output_file (a vocab.txt) when given.
    """
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(list(lines), tf.string))
    dataset = dataset.batch(1024)
    if lower_case:
        dataset = dataset.map(bert_normalize)  # as WordPieceTokenizer(lower_case=True)
    # The learner's own lower_case is NFKC case folding (e.g. "ß" -> "ss",
    # full-width -> ASCII), unlike BERT's, so we normalize above instead.
    vocab = bert_vocab_from_dataset(
        dataset, vocab_size, WORDPIECE_RESERVED,
        bert_tokenizer_params={"lower_case": False})
    if output_file is not None:
        with open(output_file, "w", encoding="utf-8") as f:
            f.writelines(token + "\n" for token in vocab)
    return vocab


def build_sentencepiece_model(lines, vocab_size, model_prefix, model_type="unigram",
                              lower_case=False, **options):
    """Trains a SentencePiece model on lines; returns the `.model` path.

    Ids as ALBERT's: <pad>=0, <unk>=1, [CLS]=2, [SEP]=3, [MASK]=4 (control
    symbols: text spelling "[MASK]" is not the mask token), no BOS/EOS.
    Single-threaded and unshuffled, so the same lines give the same model.
    lower_case: lower-case the lines first, as `SentencePieceTokenizer`
    does with lower_case=True. options: more `SentencePieceTrainer` flags.
    """
    import sentencepiece as spm

    lines = list(lines)
    if lower_case:
        lines = [s.decode("utf-8") for s in lower_utf8(tf.constant(lines, tf.string)).numpy()]
    spm.set_random_generator_seed(0)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=str(model_prefix),
        vocab_size=vocab_size, model_type=model_type,
        pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
        control_symbols=SENTENCEPIECE_CONTROL,
        num_threads=1, shuffle_input_sentence=False, minloglevel=2, **options)
    return f"{model_prefix}.model"
