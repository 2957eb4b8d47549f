"""Vocabularies learned from scratch: special tokens in place, size, coverage."""

import unicodedata

import pytest
import sentencepiece as spm
from tokenizers import BertWordPieceTokenizer

from kerasbert.text.vocab_builder import (
    WORDPIECE_RESERVED,
    build_sentencepiece_model,
    build_wordpiece_vocabulary,
)
from tests import text_corpus

VOCAB_SIZE = 500


@pytest.fixture(scope="module", params=[True, False], ids=["uncased", "cased"])
def wordpiece(request, tmp_path_factory):
    vocab_file = tmp_path_factory.mktemp("wordpiece") / "vocab.txt"
    vocab = build_wordpiece_vocabulary(text_corpus.training_corpus(), VOCAB_SIZE,
                                       lower_case=request.param, output_file=vocab_file)
    return request.param, vocab, str(vocab_file)


def test_reserved_tokens_first_and_size(wordpiece):
    _, vocab, vocab_file = wordpiece
    assert vocab[:5] == WORDPIECE_RESERVED
    assert abs(len(vocab) - VOCAB_SIZE) <= 0.2 * VOCAB_SIZE
    assert len(set(vocab)) == len(vocab)
    with open(vocab_file, encoding="utf-8") as f:
        assert f.read().splitlines() == vocab


def test_wordpiece_covers_the_corpus(wordpiece):
    lower_case, _, vocab_file = wordpiece
    tokenizer = BertWordPieceTokenizer(vocab_file, lowercase=lower_case)
    encodings = tokenizer.encode_batch(text_corpus.training_corpus(), add_special_tokens=False)
    tokens = [t for e in encodings for t in e.tokens]
    assert sum(t == "[UNK]" for t in tokens) < 0.01 * len(tokens)


def test_case_and_accents(wordpiece):
    lower_case, vocab, _ = wordpiece
    learned = vocab[len(WORDPIECE_RESERVED):]
    has_upper = [t for t in learned if t != t.lower()]
    has_marks = [t for t in learned if any(unicodedata.category(c) == "Mn"
                                           for c in unicodedata.normalize("NFD", t))]
    if lower_case:
        assert not has_upper and not has_marks
    else:
        assert has_upper and has_marks


@pytest.mark.parametrize("model_type, vocab_size", [("unigram", 300), ("bpe", 1000)])
def test_sentencepiece_model_has_albert_ids(tmp_path, model_type, vocab_size):
    lines = text_corpus.training_corpus()
    path = build_sentencepiece_model(lines, vocab_size, tmp_path / "a", model_type=model_type)
    sp = spm.SentencePieceProcessor(model_file=path)
    assert sp.get_piece_size() == vocab_size
    assert [sp.id_to_piece(i) for i in range(5)] == ["<pad>", "<unk>", "[CLS]", "[SEP]",
                                                     "[MASK]"]
    assert (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, -1, -1)
    again = spm.SentencePieceProcessor(model_file=build_sentencepiece_model(
        lines, vocab_size, tmp_path / "b", model_type=model_type))
    assert [(sp.id_to_piece(i), sp.get_score(i)) for i in range(vocab_size)] == [
        (again.id_to_piece(i), again.get_score(i)) for i in range(vocab_size)]  # deterministic


def test_sentencepiece_lower_case(tmp_path):
    path = build_sentencepiece_model(text_corpus.training_corpus(), 300, tmp_path / "m",
                                     lower_case=True)
    sp = spm.SentencePieceProcessor(model_file=path)
    pieces = [sp.id_to_piece(i) for i in range(5, sp.get_piece_size())]
    assert not [p for p in pieces if p != p.lower()]
