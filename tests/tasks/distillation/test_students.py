"""Student initialisation and layer maps."""

import numpy as np
import pytest

import zoo
from tasks.distillation.students import (check_layer_map, default_student_layers,
                                         distilbert_student, uniform_layer_map)


def test_default_layers_are_distilberts():
    assert default_student_layers(12) == [0, 2, 4, 7, 9, 11]
    assert default_student_layers(4) == [0, 3]
    assert default_student_layers(24, 6) == [0, 5, 9, 14, 18, 23]
    assert default_student_layers(2) == [0]


def test_uniform_layer_map():
    assert uniform_layer_map(12, 4) == [3, 6, 9, 12]
    assert uniform_layer_map(12, 6) == [2, 4, 6, 8, 10, 12]
    assert uniform_layer_map(4, 2) == [2, 4]
    assert check_layer_map(["1", "3"], 4, 2) == [1, 3]
    with pytest.raises(ValueError, match="has 3 entries"):
        check_layer_map([1, 2, 3], 4, 2)
    with pytest.raises(ValueError, match="not teacher layers"):
        check_layer_map([0, 5], 4, 2)


def test_distilbert_student_copies_exactly_the_mapped_layers():
    teacher = zoo.build("bert_test_tiny", num_layers=6)
    student = distilbert_student(teacher, layers=[0, 3, 5])
    assert isinstance(student, zoo.DistilBertBackbone)
    assert (student.num_layers, student.hidden_size, student.num_heads) == (3, 16, 2)
    teacher_stack = teacher.get_layer("transformer")
    student_stack = student.get_layer("transformer")
    for student_index, teacher_index in enumerate([0, 3, 5]):
        copied = student_stack.block_for_layer(student_index).get_weights()
        source = teacher_stack.block_for_layer(teacher_index).get_weights()
        assert len(copied) == len(source) == 16
        for a, b in zip(copied, source):
            np.testing.assert_array_equal(a, b)
        # ... and not any other teacher layer's.
        other = teacher_stack.block_for_layer((teacher_index + 1) % 6).get_weights()
        assert not np.array_equal(copied[0], other[0])
    for part in ("token_embedding", "position_embedding", "layer_norm"):
        for a, b in zip(getattr(student.get_layer("embeddings"), part).get_weights(),
                        getattr(teacher.get_layer("embeddings"), part).get_weights()):
            np.testing.assert_array_equal(a, b)
    # No segment embeddings and no pooler, as in DistilBERT.
    assert student.get_layer("embeddings").segment_embedding is None
    assert "pooled_output" not in student.output
    assert student.count_params() == zoo.DistilBertBackbone.count_parameters(
        vocab_size=100, num_layers=3, hidden_size=16, intermediate_size=32,
        max_sequence_length=32)


def test_distilbert_student_equals_teacher_blocks_on_inputs():
    # With segment ids 0 the teacher's embedding output differs from the
    # student's only by segment embedding 0; with it zeroed they agree, so
    # a student copying every layer reproduces the teacher exactly.
    teacher = zoo.build("bert_test_tiny", dropout=0.0)
    embeddings = teacher.get_layer("embeddings")
    embeddings.segment_embedding.set_weights([np.zeros((2, 16), np.float32)])
    student = distilbert_student(teacher, layers=[0, 1])
    inputs = {"input_word_ids": np.array([[2, 5, 9, 3, 0]], np.int32),
              "input_mask": np.array([[1, 1, 1, 1, 0]], np.int32),
              "input_type_ids": np.zeros((1, 5), np.int32)}
    np.testing.assert_allclose(student(inputs)["sequence_output"],
                               teacher(inputs)["sequence_output"], atol=1e-6)


def test_distilbert_student_refuses_albert_and_bad_layers():
    with pytest.raises(ValueError, match="factorized embeddings or shared layers"):
        distilbert_student(zoo.build("albert_test_tiny"))
    with pytest.raises(ValueError, match=r"\[7\] are not layers"):
        distilbert_student(zoo.build("bert_test_tiny"), layers=[0, 7])
