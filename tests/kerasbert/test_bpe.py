"""ByteLevelBpeTokenizer: RoBERTa's byte-level BPE as TensorFlow ops, against
Hugging Face's RobertaTokenizerFast on a BPE trained here by the `tokenizers`
library (the varied corpus: accents, CJK, emoji, control and zero-width
characters, runs of spaces and line breaks, 100+ character words)."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from kerasbert.text import ByteLevelBpeTokenizer, Preprocessor
from tests import text_corpus

tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
PAIR_COUNT = 20


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """vocab.json + merges.txt of a 1,500-token byte-level BPE."""
    path = tmp_path_factory.mktemp("bpe")
    trainer = tokenizers.ByteLevelBPETokenizer()
    trainer.train_from_iterator(text_corpus.training_corpus() + text_corpus.corpus(seed=3),
                                vocab_size=1500, special_tokens=SPECIALS)
    trainer.save_model(str(path))
    return path


def reference(folder, **options):
    return transformers.RobertaTokenizerFast.from_pretrained(str(folder), **options)


@pytest.mark.parametrize("add_prefix_space", [False, True])
def test_ids_equal_roberta_tokenizer_fast(folder, add_prefix_space):
    ours = ByteLevelBpeTokenizer(folder / "vocab.json", folder / "merges.txt",
                                 add_prefix_space=add_prefix_space)
    theirs = reference(folder, add_prefix_space=add_prefix_space)
    lines = text_corpus.corpus() + ["  two  spaces  ", "tab\tand\nline", "x" * 300,
                                    "l'été, don't, we'll", "١٢٣ مرحبا", "\u0000\u001f"]
    got = ours.tokenize(lines).to_list()
    expected = [theirs(line, add_special_tokens=False, split_special_tokens=True)["input_ids"]
                for line in lines]
    different = [lines[i] for i in range(len(lines)) if got[i] != expected[i]]
    print(f"add_prefix_space={add_prefix_space}: {len(lines)} lines, {len(different)} differ")
    assert different == []
    assert [ours.vocabulary.id_of(role) for role in ("cls", "pad", "sep", "unk", "mask")] == [
        0, 1, 2, 3, 4]


def test_pairs_pack_as_fairseq_and_text_round_trips(folder):
    ours = ByteLevelBpeTokenizer(folder / "vocab.json", folder / "merges.txt")
    theirs = reference(folder)
    lines = text_corpus.corpus(lines=2 * PAIR_COUNT + 1)[1:]
    pairs = list(zip(lines[0::2], lines[1::2]))
    packed = Preprocessor(ours, sequence_length=24)([a for a, _ in pairs], [b for _, b in pairs])
    for row, (a, b) in enumerate(pairs):
        length = int(packed["input_mask"][row].numpy().sum())
        assert packed["input_word_ids"][row, :length].numpy().tolist() == theirs(
            a, b, truncation="longest_first", max_length=24,
            split_special_tokens=True)["input_ids"], (a, b)
    decoded = ours.detokenize(ours.tokenize(lines)).numpy()
    assert [text.decode("utf-8") for text in decoded] == lines  # byte-level: lossless
    assert ours.tokenize("a scalar").shape.rank == 1


def test_words_read_as_in_running_text(folder):
    """Tagging's words: each after a space, as Hugging Face's is_split_into_words
    with add_prefix_space=True; QA's context words: the context's own ids."""
    from tasks.question_answering import tokenize_contexts

    ours = ByteLevelBpeTokenizer(folder / "vocab.json", folder / "merges.txt")
    theirs = reference(folder, add_prefix_space=True)
    sentences = [line.split() for line in text_corpus.corpus(lines=40, seed=11)]
    sentences = [words for words in sentences if words]
    for words in sentences:
        got = ours.tokenize_words(words).flat_values.numpy().tolist()
        assert got == theirs(words, is_split_into_words=True, add_special_tokens=False,
                             split_special_tokens=True)["input_ids"], words
    contexts = [" ".join(words) for words in sentences]
    for context, (ids, spans) in zip(contexts, tokenize_contexts(ours, contexts)):
        assert ids.tolist() == ours.tokenize(context).numpy().tolist(), context
        assert len(spans) == len(ids)


def test_question_answering_windows_pack_as_hugging_face_pairs(folder):
    """A question and a context that fit one window: the QA task's features are
    RobertaTokenizerFast's `<s> question </s></s> context </s>`."""
    from tasks.question_answering import build_features

    ours = ByteLevelBpeTokenizer(folder / "vocab.json", folder / "merges.txt")
    theirs = reference(folder)
    lines = [" ".join(line.split()) for line in text_corpus.corpus(lines=12, seed=5)]
    examples = [{"question": q, "context": c, "answers": [], "answer_starts": [],
                 "is_impossible": True} for q, c in zip(lines[0::2], lines[1::2]) if q and c]
    features = build_features(examples, ours, sequence_length=512, max_query_length=512)
    assert len(features) == len(examples)  # one window each
    for row, example in enumerate(examples):
        length = int(features.inputs["input_mask"][row].sum())
        assert features.inputs["input_word_ids"][row, :length].tolist() == theirs(
            example["question"], example["context"])["input_ids"]


def test_zoo_reads_the_folder_and_transformers_5_tokenizer_json(folder, tmp_path):
    """A folder with vocab.json + merges.txt, and one with the tokenizer.json
    alone that transformers 5's save_pretrained writes, load alike; a
    SavedModel of the tokenizer runs in a process with only TensorFlow and
    tensorflow-text."""
    from zoo.preprocessing import load_tokenizer, save_tokenizer

    saved = tmp_path / "hf"
    reference(folder).save_pretrained(str(saved))
    for name in ("vocab.json", "merges.txt"):
        if (saved / name).exists():
            os.remove(saved / name)
    lines = text_corpus.corpus(lines=200)
    direct = load_tokenizer(str(folder)).tokenize(lines).to_list()
    assert load_tokenizer(str(saved)).tokenize(lines).to_list() == direct
    again = tmp_path / "again"
    save_tokenizer(load_tokenizer(str(saved)), str(again))
    assert load_tokenizer(str(again)).tokenize(lines).to_list() == direct

    module = tf.Module()
    module.tokenizer = load_tokenizer(str(again))
    module.tokenize = tf.function(module.tokenizer.tokenize,
                                  input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(tmp_path / "saved"))
    script = (
        "import json, sys, tensorflow as tf, tensorflow_text\n"
        f"m = tf.saved_model.load({str(tmp_path / 'saved')!r})\n"
        f"ids = m.tokenize(tf.constant({lines[:20]!r}))\n"
        "assert not [n for n in sys.modules if n.startswith('kerasbert')]\n"
        "print(json.dumps(ids.to_list()))\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == direct[:20]


def test_roberta_folder_from_raw_text_equals_transformers(folder, tmp_path):
    """A random RobertaModel saved with its tokenizer: zoo.load_preprocessor and
    zoo.load on raw strings (single texts and pairs, padded with id 1) give
    transformers' outputs from its own tokenizer."""
    import numpy as np
    import torch

    import zoo

    theirs = reference(folder)
    theirs.save_pretrained(str(tmp_path))
    torch.manual_seed(0)
    config = transformers.RobertaConfig(vocab_size=len(theirs), hidden_size=32,
                                        num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=37, max_position_embeddings=34,
                                        type_vocab_size=1)
    model = transformers.RobertaModel(config).eval()
    model.save_pretrained(str(tmp_path))
    texts = ["Hello world, this is RoBERTa.", "café 😀 日本語", "short"]
    others = ["A second text", "and another one that is longer than the first", "x"]
    preprocessor = zoo.load_preprocessor(str(tmp_path), sequence_length=32)
    ours = zoo.load(str(tmp_path))
    for batch in ([texts], [texts, others]):
        inputs = preprocessor(*batch)
        encoded = theirs(*batch, padding="max_length", max_length=32, truncation=True,
                         return_tensors="pt")
        np.testing.assert_array_equal(inputs["input_word_ids"].numpy(), encoded["input_ids"])
        with torch.no_grad():
            expected = model(input_ids=encoded["input_ids"],
                             attention_mask=encoded["attention_mask"]).last_hidden_state
        np.testing.assert_allclose(ours(inputs)["sequence_output"], expected.numpy(), atol=1e-5)
