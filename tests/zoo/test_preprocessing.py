"""zoo.load_preprocessor: the checkpoint's own tokenizer and casing, equal to the reference's."""

import json
import os

import numpy as np
import pytest

import zoo
from kerasbert.text import SentencePieceTokenizer, WordPieceTokenizer
from tests.text_corpus import corpus, training_corpus

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def learn_vocab(folder, lowercase):
    trainer = tokenizers.BertWordPieceTokenizer(lowercase=lowercase)
    trainer.train_from_iterator(training_corpus(), vocab_size=2000, special_tokens=SPECIALS)
    trainer.save_model(str(folder))
    return str(folder / "vocab.txt")


@pytest.fixture(scope="module", params=[True, False], ids=["uncased", "cased"])
def hf_folder(request, tmp_path_factory):
    """A folder as transformers 5 writes it: tokenizer.json + tokenizer_config.json only."""
    lowercase = request.param
    folder = tmp_path_factory.mktemp("hf_tokenizer")
    vocab = learn_vocab(folder, lowercase)
    tokenizer = transformers.BertTokenizer(vocab, do_lower_case=lowercase)
    os.remove(vocab)
    tokenizer.save_pretrained(str(folder))
    assert sorted(os.listdir(folder)) == ["tokenizer.json", "tokenizer_config.json"]
    return folder, lowercase, transformers.AutoTokenizer.from_pretrained(str(folder))


def test_pairs_equal_transformers_tokenizer(hf_folder):
    folder, lowercase, reference = hf_folder
    preprocessor = zoo.load_preprocessor(str(folder), sequence_length=24)
    assert isinstance(preprocessor.tokenizer, WordPieceTokenizer)
    assert preprocessor.tokenizer.lower_case == lowercase
    lines = corpus(400, seed=3)
    first, second = lines[:200], lines[200:]
    ours = preprocessor(first, second)
    theirs = reference(first, second, truncation=True, max_length=24, padding="max_length")
    assert ours["input_word_ids"].numpy().tolist() == theirs["input_ids"]
    assert ours["input_type_ids"].numpy().tolist() == theirs["token_type_ids"]
    assert ours["input_mask"].numpy().tolist() == theirs["attention_mask"]


def test_single_texts_and_scalars(hf_folder):
    folder, _, reference = hf_folder
    preprocessor = zoo.load_preprocessor(str(folder), sequence_length=16)
    lines = corpus(100, seed=4)
    theirs = reference(lines, truncation=True, max_length=16, padding="max_length")
    assert preprocessor(lines)["input_word_ids"].numpy().tolist() == theirs["input_ids"]
    single = preprocessor(lines[1])
    assert single["input_word_ids"].numpy().tolist() == theirs["input_ids"][1]


def test_vocab_txt_casing_inferred_from_the_vocabulary(tmp_path):
    """A TF1 release folder: vocab.txt and no tokenizer config."""
    learn_vocab(tmp_path, lowercase=False)
    assert zoo.load_preprocessor(str(tmp_path)).tokenizer.lower_case is False
    uncased = tmp_path / "uncased"
    uncased.mkdir()
    learn_vocab(uncased, lowercase=True)
    assert zoo.load_preprocessor(str(uncased / "bert_model.ckpt")).tokenizer.lower_case is True


def test_tokenizer_config_decides_casing(tmp_path):
    learn_vocab(tmp_path, lowercase=True)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    assert zoo.load_preprocessor(str(tmp_path)).tokenizer.lower_case is False


def test_keras_hub_preset_folder(tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    vocab = learn_vocab(tmp_path, lowercase=True)
    reference = keras_hub.tokenizers.BertTokenizer(vocabulary=vocab, lowercase=True)
    reference.save_to_preset(str(tmp_path / "preset"))
    preprocessor = zoo.load_preprocessor(str(tmp_path / "preset"), sequence_length=12)
    # keras-hub's config: lowercase, but no accent stripping
    assert preprocessor.tokenizer.lower_case is True
    assert preprocessor.tokenizer.do_strip_accents is False
    expected = np.asarray(reference("Hello café the model")).tolist()
    packed = preprocessor("Hello café the model")["input_word_ids"].numpy().tolist()
    assert packed[1: len(expected) + 1] == expected


def test_sentencepiece_folder(tmp_path):
    from kerasbert.text import build_sentencepiece_model

    model = build_sentencepiece_model(training_corpus(), 300, str(tmp_path / "spiece"),
                                      lower_case=True)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    preprocessor = zoo.load_preprocessor(str(tmp_path), sequence_length=10)
    assert isinstance(preprocessor.tokenizer, SentencePieceTokenizer)
    assert preprocessor.tokenizer.lower_case is True
    import sentencepiece

    ids = sentencepiece.SentencePieceProcessor(model_file=model).encode("the model")
    packed = preprocessor(["The Model"])["input_word_ids"].numpy()[0].tolist()
    assert packed[: len(ids) + 2] == [2] + ids + [3]  # [CLS]=2, [SEP]=3


def test_no_vocabulary_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.txt, spiece.model"):
        zoo.load_preprocessor(str(tmp_path))


def test_text_to_backbone(hf_folder):
    folder, _, _ = hf_folder
    preprocessor = zoo.load_preprocessor(str(folder), sequence_length=16)
    model = zoo.build("bert_test_tiny", vocab_size=preprocessor.vocabulary.size)
    outputs = model(preprocessor(["a first text", "and a second one"]))
    assert outputs["pooled_output"].shape == (2, 16)
    assert np.all(np.isfinite(outputs["sequence_output"]))
