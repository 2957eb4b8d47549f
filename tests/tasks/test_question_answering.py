"""Span question answering: windows and labels, decoding, readers, and learning."""

import json

import keras
import numpy as np
import pytest

import zoo
from kerasbert.text import Preprocessor, WordPieceTokenizer
from tasks.base import TaskConfig
from tasks.data import squad
from tasks.question_answering import (QuestionAnsweringTask, answer_token_span, build_features,
                                      decode_answers, tokenize_contexts)

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "what", "is", "?", "the", "cat", "sat",
         "(", ")", "-", ".", "19", "##95", "1943", "play", "##ing", "cafe", "猫"]
CLS, SEP, PAD = 2, 3, 0
QUESTION = [5, 6, 7]  # what is ?
# 12 tokens: the cat sat ( 19 ##95 - 1943 ) play ##ing .
CONTEXT = "The cat sat (1995-1943) playing."
CONTEXT_IDS = [8, 9, 10, 11, 15, 16, 13, 17, 12, 18, 19, 14]


def example(id_, answer=None, start=None, impossible=False):
    return dict(id=id_, question="what is ?", context=CONTEXT,
                answers=[answer] if answer else [], answer_starts=[start] if answer else [],
                is_impossible=impossible)


@pytest.fixture(scope="module")
def tokenizer():
    return WordPieceTokenizer(VOCAB)


# Features.

def test_context_tokens_know_their_characters(tokenizer):
    (ids, spans), (ids_2, spans_2), (ids_3, spans_3), (ids_4, spans_4) = tokenize_contexts(
        tokenizer, [CONTEXT, "Café  qqq the", "猫cat", "naïve\u00a0Cat\u3000the\u2028猫"])
    assert ids.tolist() == CONTEXT_IDS
    assert spans.tolist() == [[0, 3], [4, 7], [8, 11], [12, 13], [13, 15], [15, 17], [17, 18],
                              [18, 22], [22, 23], [24, 28], [28, 31], [31, 32]]
    # Accents stripped and lower-cased in place; [UNK] covers its whole word.
    assert ids_2.tolist() == [20, 1, 8]
    assert spans_2.tolist() == [[0, 4], [6, 9], [10, 13]]
    # CJK characters are words of their own inside a whitespace word.
    assert ids_3.tolist() == [21, 9]
    assert spans_3.tolist() == [[0, 1], [1, 4]]
    # Offsets count characters, not bytes; Unicode whitespace separates words
    # as Python's str.split does.
    assert ids_4.tolist() == [1, 9, 8, 21]
    assert spans_4.tolist() == [[0, 5], [6, 9], [10, 13], [14, 15]]
    # Answers in characters -> tokens, also inside a word's pieces.
    assert answer_token_span(spans, 13, "1995") == (4, 5)
    assert answer_token_span(spans, 12, "(1995") == (3, 5)
    assert answer_token_span(spans, 24, "playing") == (9, 10)
    assert answer_token_span(spans, 40, "beyond") is None


def test_windows_overlap_by_doc_stride(tokenizer):
    """Windows of 5 context tokens overlapping by 2 start at 0, 3, 6, 9; a
    context that fits takes one window whatever the stride; a stride no
    window can take is refused, at the task's start when it is in the flags."""
    short = dict(example("q"), context="the cat")
    assert build_features([example("q")], tokenizer, 11, doc_stride=2).doc_start.tolist() == [
        0, 3, 6, 9]
    assert build_features([short], tokenizer, 11, doc_stride=9).doc_start.tolist() == [0]
    with pytest.raises(ValueError, match="doc_stride=5 must be smaller"):
        build_features([example("q")], tokenizer, 11, doc_stride=5)
    with pytest.raises(ValueError, match="lower --doc_stride"):
        QuestionAnsweringTask(TaskConfig(sequence_length=128, options={"doc_stride": 128}))
    # The default suits the length: a third of it, at most 128.
    task = QuestionAnsweringTask(TaskConfig(sequence_length=128))
    assert task.doc_stride(128) == 42 and task.doc_stride(384) == 128


def test_features_windows_and_positions(tokenizer):
    """Question 3 tokens + 3 specials in 11: windows of 5 context tokens,
    overlapping by 2 (starts 0, 3, 6, 9); the context begins at position 5."""
    examples = [example("split", "1995", 13),  # tokens 4-5: cut by window 0, whole in 1
                example("twice", "playing", 24),  # tokens 9-10: whole in windows 2 and 3
                example("long", "sat (1995-1943) playing", 8),  # 9 tokens: in no window
                example("none", impossible=True)]
    features = build_features(examples, tokenizer, sequence_length=11, doc_stride=2)
    assert len(features) == 16
    assert features.example_index.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    assert features.doc_start.tolist()[:4] == [0, 3, 6, 9]
    assert features.context_length.tolist()[:4] == [5, 5, 5, 3]
    assert set(features.context_start.tolist()) == {5}
    assert features.start_positions.tolist() == [0, 6, 0, 0, 0, 0, 8, 5] + [0] * 8
    assert features.end_positions.tolist() == [0, 7, 0, 0, 0, 0, 9, 6] + [0] * 8

    head = [CLS] + QUESTION + [SEP]
    windows = [CONTEXT_IDS[0:5], CONTEXT_IDS[3:8], CONTEXT_IDS[6:11], CONTEXT_IDS[9:12]]
    expected = [head + window + [SEP] + [PAD] * (5 - len(window)) for window in windows]
    np.testing.assert_array_equal(features.inputs["input_word_ids"][:4], expected)
    np.testing.assert_array_equal(features.inputs["input_mask"][3], [1] * 9 + [0] * 2)
    np.testing.assert_array_equal(features.inputs["input_type_ids"][3],
                                  [0] * 5 + [1] * 4 + [0] * 2)


def test_long_questions_are_cut_to_max_query_length(tokenizer):
    long_question = dict(example("q", "1995", 13), question="what is the cat ?")
    features = build_features([long_question], tokenizer, sequence_length=11, doc_stride=2,
                              max_query_length=3)
    np.testing.assert_array_equal(features.inputs["input_word_ids"][1],
                                  [CLS, 5, 6, 8, SEP, 11, 15, 16, 13, 17, SEP])
    assert (features.start_positions[1], features.end_positions[1]) == (6, 7)


# Decoding.

def test_decoding_picks_the_best_valid_span(tokenizer):
    """One window (sequence 20): context tokens at positions 5..16."""
    [features] = [build_features([example("q")], tokenizer, 20)]
    start, end = np.zeros((1, 20)), np.zeros((1, 20))
    start[0, 1] = end[0, 2] = 20.0  # in the question: never an answer
    start[0, 17] = end[0, 17] = 30.0  # the final [SEP]: never an answer
    start[0, 5], end[0, 16] = 6.0, 6.0  # "The ... playing." 12 tokens, score 12
    start[0, 9], end[0, 10] = 5.0, 5.0  # "1995" (pieces 19 ##95), score 10
    start[0, 0] = end[0, 0] = 7.0  # null score 14

    def decode(**options):
        return decode_answers([example("q")], features, start, end, **options)["q"]

    assert decode() == CONTEXT
    assert decode(max_answer_length=6) == "The cat sat (1995"  # (5, 10): 6 + 5
    assert decode(max_answer_length=2) == "1995"
    assert decode(n_best_size=1) == ""  # the top start and end are the [SEP]: no span
    # SQuAD v2.0: "" when null score - best span score (14 - 12) > threshold.
    assert decode(version_2=True) == ""
    assert decode(version_2=True, null_score_threshold=2.5) == CONTEXT


def test_decoding_across_windows_and_the_v2_null_score(tokenizer):
    """Four windows (as in test_features_windows_and_positions)."""
    features = build_features([example("q")], tokenizer, sequence_length=11, doc_stride=2)
    start, end = np.zeros((4, 11)), np.zeros((4, 11))
    start[1, 6], end[1, 7] = 2.0, 2.0  # window 1: "1995", score 4
    start[2, 8], end[2, 9] = 3.0, 3.0  # window 2: "playing", score 6
    start[3, 5], end[3, 6] = 1.0, 1.0  # window 3: "playing" again, score 2
    # Null scores 2, 4, 3, 1: the example's is the lowest, 1 (window 3).
    start[:, 0] = end[:, 0] = [1.0, 2.0, 1.5, 0.5]

    def decode(**options):
        return decode_answers([example("q")], features, start, end, **options)["q"]

    assert decode() == "playing"
    assert decode(version_2=True) == "playing"  # 1 - 6 = -5 <= 0
    assert decode(version_2=True, null_score_threshold=-4.5) == "playing"  # not window 0's 2
    assert decode(version_2=True, null_score_threshold=-5.5) == ""


# Readers.

def test_reads_squad_json_v1_and_v2(tmp_path):
    data = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{
        "context": CONTEXT,
        "qas": [{"id": "a", "question": "what is ?", "is_impossible": False,
                 "answers": [{"text": "1995", "answer_start": 13},
                             {"text": "1995-1943", "answer_start": 13}]},
                {"id": "b", "question": "what is not ?", "is_impossible": True,
                 "answers": [], "plausible_answers": [{"text": "cat", "answer_start": 4}]}]}]}]}
    (tmp_path / "train-v2.0.json").write_text(json.dumps(data))
    (tmp_path / "dev-v2.0.json").write_text(json.dumps(data))
    examples = squad.load_squad(str(tmp_path), "validation")
    assert examples == [
        dict(id="a", question="what is ?", context=CONTEXT, answers=["1995", "1995-1943"],
             answer_starts=[13, 13], is_impossible=False),
        dict(id="b", question="what is not ?", context=CONTEXT, answers=[], answer_starts=[],
             is_impossible=True)]
    # v1.1 has no is_impossible.
    del data["data"][0]["paragraphs"][0]["qas"][0]["is_impossible"]
    (tmp_path / "v1.json").write_text(json.dumps(data))
    assert squad.read_squad_json(str(tmp_path / "v1.json"))[0]["is_impossible"] is False


@pytest.mark.parametrize("name", ["squad/v1.1", "squad/v2.0"])
def test_reads_tfds_squad(name, tokenizer):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
        examples = squad.load_tfds(name, "validation")
    assert len(examples) == 3
    for row in examples:
        assert isinstance(row["id"], str) and isinstance(row["context"], str)
        assert all(isinstance(text, str) for text in row["answers"])
        assert all(isinstance(start, int) for start in row["answer_starts"])
        assert isinstance(row["is_impossible"], bool)
    # Random mock answers fall anywhere: features still build.
    features = build_features(examples, tokenizer, sequence_length=32, doc_stride=8)
    assert len(features) >= 3


# Learning.

@pytest.mark.heavy
def test_learns_synthetic_reading_with_unanswerable_questions():
    """A tiny BERT from scratch learns the embedded synthetic task (v2.0 style).

    `squad.synthetic_examples`: "what follows|precedes MARKER ?" over 2-4
    sentences, a third of the questions unanswerable (no marker sentence).
    Sequence length 24 with doc_stride 8 splits the longer contexts into two
    windows, so windowing and decoding across windows are on the path.
    Chance levels on the held-out split (~190 answerable, ~110 not):
    a random span of at most 30 tokens: exact match < 5%; ignoring the
    question (always one side of the marker): answerable EM <= 50%, overall
    EM <= 67% (all unanswerable right plus half the rest); never answering:
    overall EM ~37%, answerable 0%. Measured: EM ~93-99, answerable EM ~90.
    """
    keras.utils.set_random_seed(0)
    task = QuestionAnsweringTask(TaskConfig(data="", sequence_length=24,
                                            options={"doc_stride": 8}))
    vocabulary = squad.synthetic_vocabulary()
    preprocessor = Preprocessor(WordPieceTokenizer(vocabulary), sequence_length=24)
    backbone = zoo.build("bert_test_tiny", vocab_size=len(vocabulary), num_layers=2,
                         hidden_size=32, num_heads=2, intermediate_size=64,
                         max_sequence_length=24, dropout=0.0, attention_dropout=0.0)
    model = task.build_model(backbone)
    model.compile(keras.optimizers.Adam(3e-3), loss=task.build_losses(),
                  metrics=task.build_metrics())
    train = task.features("train", preprocessor)
    assert len(train) > len(task.examples("train"))  # some contexts take two windows
    batch_size = 32
    model.fit(task.build_dataset("train", preprocessor, batch_size, training=True),
              steps_per_epoch=len(train) // batch_size, epochs=10, verbose=0)

    scores = task.evaluate(model, "validation", preprocessor, batch_size=64)
    print(f"held-out scores {scores}")
    assert scores["exact_match"] > 80
    assert scores["f1"] > 85
    assert scores["HasAns_exact_match"] > 70
    assert scores["NoAns_exact_match"] > 90
    assert task.primary_metric == "f1"
