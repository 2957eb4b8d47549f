"""RoBERTa (byte-level BPE), XLM-RoBERTa (fairseq SentencePiece) and ELECTRA
(WordPiece, no pooler) through `tasks.run`'s tagging, question-answering
and multi-label runs, from Hugging Face folders written here (a random
tiny backbone saved by zoo.save_hf, a tokenizer trained on the task texts),
and the taggers and QA models exported and served in one TensorFlow-only
process.

What the families change on the way: RoBERTa tags words read after a space
(`tokenize_words`, add_prefix_space for served text) and packs QA as
`<s> question </s></s> window </s>`; XLM-R shifts SentencePiece ids by
fairseq's; both count positions from the padding id; sentence-level heads
read the first token (ELECTRA has no pooler, RoBERTa's was never trained).
"""

import csv
import json
import os

import keras
import numpy as np
import pytest

import zoo
from export.verify import call_exports_in_fresh_process
from tasks.data import conll, squad
from tasks.training import metrics, runner
from tests.tasks import synthetic
from tests.tasks.test_tagging import lexicon_tags

FAMILIES = ("roberta", "xlm_roberta", "electra")
FAIRSEQ_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
EPOCHS = 6
# QA's question dependence is learned late and not on every run within 6
# epochs (RoBERTa once stayed at 64 exact match, below the 67 of ignoring the
# question, where other runs reached 93-98); 10 gave 98 on each run seen.
QA_EPOCHS = 10
QA_OPTIONS = {"doc_stride": 8}


def task_texts(colors_folder):
    """The synthetic NER, QA and multi-label sets' texts: what the tokenizers learn from."""
    ner = [" ".join(example["tokens"]) for example in conll.synthetic("train")]
    qa = squad.synthetic_examples(400, seed=5)
    with open(colors_folder / "train.csv", encoding="utf-8", newline="") as file:
        colors = [row[0] for row in csv.reader(file)][1:]
    return ner + [e["question"] for e in qa] + [e["context"] for e in qa] + colors


def train_tokenizer(family, texts, folder):
    """The family's kind of tokenizer, trained on `texts` into `folder`, as zoo reads it."""
    if family == "roberta":
        import tokenizers

        trainer = tokenizers.ByteLevelBPETokenizer()
        trainer.train_from_iterator(texts, vocab_size=1000, special_tokens=FAIRSEQ_SPECIALS)
        trainer.save_model(str(folder))  # vocab.json + merges.txt
    elif family == "xlm_roberta":
        import sentencepiece as spm

        # BPE (XLM-R's file is "sentencepiece.bpe.model"): on these few, repetitive
        # texts a unigram model stops at ~130 pieces, splitting most words.
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_prefix=str(folder / "spm"), vocab_size=400,
            model_type="bpe", character_coverage=1.0, num_threads=1, minloglevel=2)
        os.replace(folder / "spm.model", folder / "sentencepiece.bpe.model")
        os.remove(folder / "spm.vocab")
    else:
        from kerasbert.text import build_wordpiece_vocabulary

        build_wordpiece_vocabulary(texts, 1000, lower_case=True,
                                   output_file=str(folder / "vocab.txt"))
    return zoo.load_preprocessor(str(folder)).tokenizer


def write_checkpoint(family, folder, colors_folder):
    """A random tiny backbone of `family` as a Hugging Face folder, with its tokenizer."""
    tokenizer_folder = folder.parent / "tokenizer"
    tokenizer_folder.mkdir()
    tokenizer = train_tokenizer(family, task_texts(colors_folder), tokenizer_folder)
    vocab_size = tokenizer.vocabulary.size
    preset = "electra_test_tiny" if family == "electra" else "roberta_test_tiny"
    arguments = dict(zoo.get_preset(preset).arguments, vocab_size=vocab_size,
                     max_sequence_length=64, hidden_size=32, intermediate_size=64,
                     num_heads=2, dropout=0.0, attention_dropout=0.0)
    if family == "electra":
        # As wide as the hidden size: at random init, a projection from
        # narrower embeddings (kernel std 0.02) shrinks them ~10x and the
        # tagging task's context takes far longer to learn (F1 0.67-0.95
        # after 6 epochs, against 0.995). Published checkpoints are trained;
        # the factorized path is HF-equal (tests/zoo) and pretrains
        # (--objective=electra).
        arguments["embedding_size"] = None
    backbone = zoo.registry.families()[family](**arguments, name=family)
    zoo.save_hf(backbone, str(folder))
    zoo.save_tokenizer(tokenizer, str(folder))
    with open(folder / "config.json") as file:
        assert json.load(file)["model_type"] == {"xlm_roberta": "xlm-roberta"}.get(family, family)


def run(task, folder, model_dir, num_epochs, **settings):
    return runner.run(runner.RunSettings(
        task=task, init_checkpoint=str(folder), model_dir=str(model_dir), sequence_length=32,
        batch_size=32, num_epochs=num_epochs, learning_rate=5e-3, weight_decay=0.0,
        steps_per_loop=10_000, seed=0, **settings))  # one loop: one evaluation


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """{family: (folder, tagging result, QA result, multi-label result)}: each family's runs."""
    colors = synthetic.color_multilabel(tmp_path_factory.mktemp("colors"))
    results = {}
    for family in FAMILIES:
        base = tmp_path_factory.mktemp(family)
        folder = base / "checkpoint"
        write_checkpoint(family, folder, colors)
        tagging = run("tagging", folder, base / "tagging", EPOCHS,
                      export_dir=str(base / "exports" / "ner"))
        qa = run("question_answering", folder, base / "qa", QA_EPOCHS,
                 options=QA_OPTIONS, export_dir=str(base / "exports" / "qa"))
        multilabel = run("multilabel", folder, base / "multilabel", None, data=str(colors),
                         train_steps=450)
        results[family] = (base, tagging, qa, multilabel)
    return results


@pytest.mark.heavy
@pytest.mark.parametrize("family", FAMILIES)
def test_tagging_learns_context_dependent_entities(trained, family):
    """As tests/tasks/test_tagging.py's BERT: names and places are entities
    only after a trigger word, so a word list (no context) scores ~0.81 F1.
    Measured after 6 epochs: F1 0.997-0.999."""
    base, tagging, _, _ = trained[family]
    held_out = conll.synthetic("validation")
    lexicon = metrics.entity_f1([e["tags"] for e in held_out],
                                [lexicon_tags(e["tokens"]) for e in held_out])["f1"]
    scores = tagging["final"]
    print(f"{family}: tagging {scores}, word-list F1 {lexicon:.3f}")
    assert scores["f1"] > 0.95 and scores["f1"] > lexicon + 0.1
    backbone = zoo.load(str(base / "tagging" / "model.keras"))
    assert type(backbone) is zoo.registry.families()[family]


@pytest.mark.heavy
@pytest.mark.parametrize("family", FAMILIES)
def test_question_answering_learns_synthetic_reading(trained, family):
    """As tests/tasks/test_question_answering.py's BERT: ignoring the question
    gives at most 67% exact match overall, 50% on the answerable ones.
    Measured after 10 epochs: exact match 98, answerable 97."""
    _, _, qa, _ = trained[family]
    scores = qa["final"]
    print(f"{family}: QA {scores}")
    assert scores["exact_match"] > 85 and scores["HasAns_exact_match"] > 80


@pytest.mark.heavy
def test_exports_serve_raw_text_in_a_fresh_process(trained):
    """Raw text in, in a process with only TensorFlow and tensorflow-text's
    ops: each tagger gives every word the tag the task predicts for it
    (RoBERTa's first word included: the run saved add_prefix_space); each
    QA model gives the task's decoding (answer text, character offsets,
    score, null score) on the held-out split and on long contexts (three or
    more windows, answer in the last, capitals, accents and punctuation:
    `synthetic.long_reading_examples`), all windows of a context in one call."""
    from tasks.base import TaskConfig
    from tasks.question_answering import QuestionAnsweringTask
    from tasks.tagging import TaggingTask

    held_out = conll.synthetic("validation")[:8]  # the tagging runs' eval split
    texts = np.array([" ".join(example["tokens"]) for example in held_out], dtype=object)
    qa_task = QuestionAnsweringTask(TaskConfig(data="", sequence_length=32, options=QA_OPTIONS))
    questions = (qa_task.examples("validation")
                 + synthetic.long_reading_examples(40, seed=7, styled=False)
                 + synthetic.long_reading_examples(40, seed=8))
    calls = {}
    for family in FAMILIES:
        calls[trained[family][1]["export"]] = {"serving_default": {"text": texts}}
        calls[trained[family][2]["export"]] = {"serving_default": {
            "text": np.array([e["question"] for e in questions], dtype=object),
            "text_b": np.array([e["context"] for e in questions], dtype=object)}}
    served = call_exports_in_fresh_process(calls)
    for family in FAMILIES:
        base, tagging, qa, _ = trained[family]
        model_dir = base / "tagging"
        preprocessor = zoo.load_preprocessor(str(model_dir / "model.keras"), sequence_length=32)
        if family == "roberta":
            assert preprocessor.tokenizer.add_prefix_space
        model = keras.saving.load_model(model_dir / "model.keras")
        task = TaggingTask(TaskConfig(data="", sequence_length=32))
        expected = task.predict_tags(model, "validation", preprocessor, batch_size=64)[:8]
        tags = served[tagging["export"]]["serving_default"]["tags"].astype(str)
        got = [[tag for tag in row if tag] for row in tags]
        assert got == expected, family
        check_served_answers(family, qa_task, base / "qa", questions,
                             served[qa["export"]]["serving_default"])


def check_served_answers(family, task, model_dir, questions, served):
    """The served QA outputs equal the task's decoding of the same questions."""
    preprocessor = zoo.load_preprocessor(str(model_dir / "model.keras"), sequence_length=32)
    model = keras.saving.load_model(model_dir / "model.keras")
    decoded = task.answer(model, questions, preprocessor, 64, version_2=True)
    answers = served["answer"].astype(object)
    answers = np.array([answer.decode("utf-8") for answer in answers], dtype=object)
    same = ((answers == decoded["answer"])
            & (served["answer_char_start"] == decoded["answer_char_start"])
            & (served["answer_char_end"] == decoded["answer_char_end"]))
    assert same.all(), (family, [(q["id"], a, d) for q, a, d, ok in zip(
        questions, answers, decoded["answer"], same) if not ok][:5])
    for name in ("score", "null_score"):
        np.testing.assert_allclose(served[name], decoded[name], atol=1e-4, err_msg=family)
    for answer, start, end, question in zip(answers, served["answer_char_start"],
                                            served["answer_char_end"], questions):
        assert answer == (question["context"][start:end] if start >= 0 else "")

    # Long contexts: three or more windows, the answer in the last.
    for kind in ("plain", "styled"):
        long = [i for i, q in enumerate(questions) if q["id"].startswith(f"long-{kind}")]
        windows = np.bincount(task.windows_of([questions[i] for i in long],
                                              preprocessor).example_index)
        assert windows.min() >= 3, (family, windows)
        answerable = [i for i in long if not questions[i]["is_impossible"]]
        right = np.mean([answers[i] == questions[i]["answers"][0] for i in answerable])
        silent = np.mean([answers[i] == "" for i in long if questions[i]["is_impossible"]])
        print(f"{family}: {kind} long contexts ({windows.min()}-{windows.max()} windows) "
              f"answered right {right:.2f}, no-answer questions answered \"\" {silent:.2f}")
        if kind == "plain":  # the task's own words: what the model learned to read
            # Trained on contexts of one or two windows. Measured: right 0.59-0.71
            # (RoBERTa), 0.68 (XLM-R), 0.94 (ELECTRA); no-answer 1.0. Styled
            # words the tokenizers never saw: right 0.35-0.69, no-answer 0.36-0.79.
            assert right >= 0.4 and silent >= 0.9, (family, right, silent)


@pytest.mark.heavy
@pytest.mark.parametrize("family", FAMILIES)
def test_multilabel_classification_reads_the_text(trained, family):
    """The sentence-level head (on the first token: ELECTRA has no pooler,
    RoBERTa's and XLM-R's was never trained) learns the colors named in a
    text, any subset.
    Predicting every color scores micro-F1 ~0.67; measured 1.0 after 300
    steps (0.74 on RoBERTa's untrained pooler after 600), but one run on a
    loaded machine left RoBERTa at 0.84 after 300: 450 are run."""
    scores = trained[family][3]["final"]
    print(f"{family}: multi-label {scores}")
    assert scores["micro_f1"] > 0.9
