"""WordPieceTokenizer against Hugging Face's Rust BertWordPieceTokenizer.

Vocabularies are trained here with `tokenizers` on tests/text_corpus.py;
nothing is downloaded. On tests.text_corpus.corpus() (2,200 lines) every line
gives HF's ids, cased and uncased; so do 20,000 lines with an 8,000-token
vocabulary for every lower_case/strip_accents combination. No line is
allowed to differ.

Known differences, none of them in these corpora: the reference classifies
characters with Unicode 8 tables (unicode_categories crate), RE2/ICU here are
newer, and TF's ICU lowercases fewer recent letters than Rust. Over all 1.1M
code points, 684 (uncased) / 149 (cased) differ, every one assigned after
Unicode 8 (e.g. U+061D ARABIC END OF TEXT MARK, Quranic marks U+0898-08E1,
U+2E43-2E5D, Vithkuqi capitals) or recategorized since (U+166D, U+1734).
test_every_character_of_common_blocks pins the blocks where they agree.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf
from tokenizers import BertWordPieceTokenizer
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer

from kerasbert.text.vocabulary import Vocabulary
from kerasbert.text.wordpiece import WordPieceTokenizer
from tests.text_corpus import WORDS, corpus, training_corpus

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_vocab(directory, lines, vocab_size, lower_case, strip_accents=None):
    trainer = BertWordPieceTokenizer(lowercase=lower_case, strip_accents=strip_accents)
    trainer.train_from_iterator(lines, vocab_size=vocab_size, special_tokens=SPECIALS,
                                show_progress=False)
    os.makedirs(directory, exist_ok=True)
    return trainer.save_model(str(directory))[0]


def hf_ids(vocab_file, lines, lower_case, strip_accents=None):
    reference = BertWordPieceTokenizer(vocab_file, lowercase=lower_case,
                                       strip_accents=strip_accents)
    return [e.ids for e in reference.encode_batch(lines, add_special_tokens=False)]


def assert_same_ids(got, want, lines):
    differing = [i for i in range(len(lines)) if got[i] != want[i]]
    assert not differing, [(lines[i], got[i], want[i]) for i in differing[:5]]


@pytest.fixture(scope="module", params=[True, False], ids=["uncased", "cased"])
def trained(request, tmp_path_factory):
    lower_case = request.param
    directory = tmp_path_factory.mktemp("uncased" if lower_case else "cased")
    return train_vocab(directory, training_corpus(), 2000, lower_case), lower_case


@pytest.fixture(scope="module")
def uncased(tmp_path_factory):
    vocab_file = train_vocab(tmp_path_factory.mktemp("vocab"), training_corpus(), 2000, True)
    return WordPieceTokenizer(vocab_file)


def test_corpus_ids_equal_hugging_face(trained):
    vocab_file, lower_case = trained
    lines = corpus()
    tokenizer = WordPieceTokenizer(vocab_file, lower_case=lower_case)
    got = tokenizer.tokenize(tf.constant(lines))
    assert got.dtype == tf.int32 and isinstance(got, tf.RaggedTensor)
    assert_same_ids(got.to_list(), hf_ids(vocab_file, lines, lower_case), lines)


@pytest.mark.parametrize("lower_case, strip_accents",
                         [(True, None), (False, None), (True, False), (False, True)])
def test_bigger_vocabulary_and_corpus_equal_hugging_face(tmp_path, lower_case, strip_accents):
    # 8,000 tokens learnt from the varied corpus itself (CJK, emoji, URLs...).
    vocab_file = train_vocab(tmp_path, training_corpus() + corpus(6000, seed=7), 8000,
                             lower_case, strip_accents)
    lines = corpus(20000, seed=3)
    tokenizer = WordPieceTokenizer(vocab_file, lower_case, strip_accents)
    assert len(tokenizer.vocabulary) == 8000
    want = hf_ids(vocab_file, lines, lower_case, strip_accents)
    assert_same_ids(tokenizer.tokenize(lines).to_list(), want, lines)


def test_every_character_of_common_blocks(trained):
    """Each code point alone between two letters splits into HF's words.

    Latin, Greek, Cyrillic, Hebrew, IPA, combining marks, general punctuation,
    symbols, CJK and Hangul, full-width forms, emoji, CJK extensions.
    """
    vocab_file, lower_case = trained
    blocks = [(0x1, 0x5FF), (0x1E00, 0x2BFF), (0x3000, 0x9FFF), (0xAC00, 0xD7A3),
              (0xF900, 0xFFFF), (0x1F000, 0x1FAFF), (0x20000, 0x2FA1F)]
    lines = ["a" + chr(c) + "B" for a, b in blocks for c in range(a, b + 1)]
    normalizer = BertNormalizer(lowercase=lower_case, strip_accents=None)
    pre_tokenizer = BertPreTokenizer()
    want = [[w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line))]
            for line in lines]
    tokenizer = WordPieceTokenizer(vocab_file, lower_case=lower_case)
    got = [[w.decode() for w in words] for words in
           tokenizer.split_words(tf.constant(lines)).to_list()]
    assert_same_ids(got, want, lines)


@pytest.fixture(scope="module")
def small_vocab(tmp_path_factory):
    tokens = SPECIALS + ["the", "cafe", "Café", "zur", "##ich", "naive", "σασ", ",", "!", "[",
                         "]", "sep", "我", "爱", "x", "y", "a", "##a", "ж", "##ж", "hello",
                         "##world"]
    path = tmp_path_factory.mktemp("small") / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("text, lower_case, expected", [
    ("Café, ZÜRICH!", True, ["cafe", ",", "zur", "##ich", "!"]),
    ("Café the", False, ["Café", "the"]),
    ("cafe Café", False, ["cafe", "Café"]),
    ("NAÏVE", True, ["naive"]),
    ("ΣΑΣ", True, ["σασ"]),  # Rust lowercases a final Σ to σ, not ς
    ("我爱x", True, ["我", "爱", "x"]),
    ("x[SEP]y [CLS][MASK]", True, ["x", "[SEP]", "y", "[CLS]", "[MASK]"]),
    ("[sep] [SEP]", False, ["[", "sep", "]", "[SEP]"]),
    ("[UNK] [PAD]", True, ["[UNK]", "[PAD]"]),
    ("the qqq", True, ["the", "[UNK]"]),
    ("a" * 100, True, ["a"] + ["##a"] * 99),
    ("a" * 101, True, ["[UNK]"]),
    ("ж" * 100, True, ["ж"] + ["##ж"] * 99),  # 200 bytes, but 100 characters
    ("a\u200ba\x07 hello\u00adworld", True, ["a", "##a", "hello", "##world"]),
    ("", True, []),
    (" \t\n\u3000 ", True, []),
])
def test_examples(small_vocab, text, lower_case, expected):
    tokenizer = WordPieceTokenizer(small_vocab, lower_case=lower_case)
    ids = tokenizer.tokenize([text])
    assert [tokenizer.vocabulary.id_to_token(i) for i in ids[0].numpy()] == expected
    assert ids.to_list() == hf_ids(small_vocab, [text], lower_case)


def test_scalar_gives_one_row(uncased):
    ids = uncased.tokenize("the model")
    assert isinstance(ids, tf.Tensor) and ids.shape.rank == 1
    assert ids.numpy().tolist() == uncased.tokenize(["the model"])[0].numpy().tolist()


def test_in_tf_data_map(uncased):
    lines = corpus(40)
    expected = uncased.tokenize(lines).to_list()
    batched = tf.data.Dataset.from_tensor_slices(lines).batch(8).map(uncased.tokenize)
    assert [row for batch in batched for row in batch.to_list()] == expected
    single = tf.data.Dataset.from_tensor_slices(lines).map(uncased.tokenize)
    assert [row.numpy().tolist() for row in single] == expected


def test_in_tf_function_with_input_signature(uncased):
    tokenize = tf.function(uncased.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    lines = corpus(30)
    assert tokenize(tf.constant(lines)).to_list() == uncased.tokenize(lines).to_list()
    assert tokenize(tf.constant([], tf.string)).to_list() == []


def test_detokenize_round_trip(uncased):
    # Glued pairs ("theof") are not in the vocabulary: they need "##" pieces.
    lines = [" ".join(WORDS[i:i + 6] + [WORDS[i] + WORDS[i + 1]]) for i in range(0, 120, 7)]
    ids = uncased.tokenize(lines)
    assert any(uncased.vocabulary.id_to_token(i).startswith("##")
               for i in ids.flat_values.numpy())
    assert [t.decode() for t in uncased.detokenize(ids).numpy()] == lines
    dense = ids[:1].to_tensor()
    assert uncased.detokenize(dense).numpy()[0].decode() == lines[0]
    assert uncased.detokenize(ids[0]).numpy().decode() == lines[0]


def test_vocabulary_and_config(uncased):
    assert isinstance(uncased.vocabulary, Vocabulary)
    assert uncased.vocabulary.id_of("sep") == uncased.vocabulary.token_to_id("[SEP]")
    assert uncased.vocabulary.continuation_prefix == "##"
    assert uncased.lower_case is True and uncased.vocab_file.endswith("vocab.txt")
    config = uncased.get_config()
    assert config == {"vocab_file": uncased.vocab_file, "lower_case": True,
                      "strip_accents": None, "max_chars_per_word": 100}
    lines = corpus(20)
    assert (WordPieceTokenizer(**config).tokenize(lines).to_list()
            == uncased.tokenize(lines).to_list())


def test_missing_special_token_is_a_clear_error(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\nthe\n", encoding="utf-8")
    with pytest.raises(ValueError, match="special tokens"):
        WordPieceTokenizer(str(path))


def test_saved_model_loads_in_a_fresh_process(tmp_path, trained):
    # The vocabulary file is deleted before loading: it lives in the SavedModel.
    vocab_file, lower_case = trained
    copy = shutil.copy(vocab_file, tmp_path / "vocab.txt")
    module = tf.Module()
    module.tokenizer = WordPieceTokenizer(copy, lower_case=lower_case)
    module.tokenize = tf.function(module.tokenizer.tokenize,
                                  input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(tmp_path / "saved"))
    os.remove(copy)
    lines = corpus(200)
    (tmp_path / "lines.json").write_text(json.dumps(lines))
    script = (
        "import json, sys, tensorflow as tf, tensorflow_text\n"
        "m = tf.saved_model.load('saved')\n"
        "ids = m.tokenize(tf.constant(json.load(open('lines.json'))))\n"
        "assert not [n for n in sys.modules if n.startswith(('kerasbert', 'tokenizers'))]\n"
        "print(json.dumps(ids.to_list()))\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ids = json.loads(result.stdout.strip().splitlines()[-1])
    assert_same_ids(ids, hf_ids(vocab_file, lines, lower_case), lines)


def test_keras_hub_reading_equals_keras_hub(trained):
    """KerasHubWordPieceTokenizer gives keras-hub 0.32's WordPiece ids (its
    BertTokenizer, in tf.data as in eager) on the varied corpus, every line,
    where the reference's differ (NFKC case folding, special tokens as text).
    Here with accents stripped, CJK not split, special tokens kept whole;
    tests/zoo/test_convert_keras_hub.py has keras-hub's defaults."""
    keras_hub = pytest.importorskip("keras_hub")
    from kerasbert.text.wordpiece import KerasHubWordPieceTokenizer

    vocab_file, lower_case = trained
    strip_accents = True
    options = dict(strip_accents=strip_accents, split_on_cjk=False,
                   special_tokens_in_strings=True)
    reference = keras_hub.models.BertTokenizer(vocabulary=vocab_file, lowercase=lower_case,
                                               **options)
    tokenizer = KerasHubWordPieceTokenizer(vocab_file, lower_case=lower_case, **options)
    lines = corpus() + ["ｆｕｌｌ straße…", "x[SEP]y [UNK]", "é" * 50, "é" * 51]
    got = tokenizer.tokenize(lines).to_list()
    assert_same_ids(got, tf.function(reference)(tf.constant(lines)).to_list(), lines)
    assert_same_ids(got, [list(row) for row in reference(lines)], lines)
    assert got != hf_ids(vocab_file, lines, lower_case, strip_accents)
    config = tokenizer.get_config()
    assert KerasHubWordPieceTokenizer(**config).tokenize(lines[:20]).to_list() == got[:20]
