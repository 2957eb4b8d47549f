import numpy as np
import pytest
import tensorflow as tf

from kerasbert.text.packing import InputPacker

CLS, SEP, PAD = 101, 102, 0


def pack(sequence_length, a, b=None, **kwargs):
    packer = InputPacker(sequence_length, CLS, SEP, PAD, **kwargs)
    result = packer(tf.ragged.constant(a), None if b is None else tf.ragged.constant(b))
    return {name: value.numpy().tolist() for name, value in result.items()}


def test_single_text_fits_and_pads():
    packed = pack(6, [[1, 2, 3]])
    assert packed == {"input_word_ids": [[CLS, 1, 2, 3, SEP, PAD]],
                      "input_mask": [[1, 1, 1, 1, 1, 0]],
                      "input_type_ids": [[0, 0, 0, 0, 0, 0]]}


@pytest.mark.parametrize("truncation,expected", [
    ("longest_first", [CLS, 1, 2, 3, 4, SEP]),
    ("head", [CLS, 1, 2, 3, 4, SEP]),
    ("tail", [CLS, 6, 7, 8, 9, SEP]),
    ("head+tail", [CLS, 1, 7, 8, 9, SEP]),  # head_length = budget // 4 = 1
])
def test_single_text_truncation_policies(truncation, expected):
    assert pack(6, [[1, 2, 3, 4, 5, 6, 7, 8, 9]], truncation=truncation)["input_word_ids"] == [
        expected]


def test_head_plus_tail_with_explicit_head_length():
    packed = pack(8, [list(range(1, 13))], truncation="head+tail", head_length=2)
    assert packed["input_word_ids"] == [[CLS, 1, 2, 9, 10, 11, 12, SEP]]


@pytest.mark.parametrize("truncation,expected_ids", [
    # A=7, B=3, budget 7: only A is cut (to 4)
    ("longest_first", [CLS, 1, 2, 3, 4, SEP, 11, 12, 13, SEP]),
    ("head", [CLS, 1, 2, 3, 4, SEP, 11, 12, 13, SEP]),
    ("tail", [CLS, 4, 5, 6, 7, SEP, 11, 12, 13, SEP]),
    ("head+tail", [CLS, 1, 5, 6, 7, SEP, 11, 12, 13, SEP]),
])
def test_pair_truncation_policies(truncation, expected_ids):
    packed = pack(10, [[1, 2, 3, 4, 5, 6, 7]], [[11, 12, 13]], truncation=truncation)
    assert packed["input_word_ids"] == [expected_ids]
    assert packed["input_type_ids"] == [[0, 0, 0, 0, 0, 0, 1, 1, 1, 1]]
    assert packed["input_mask"] == [[1] * 10]


def test_pair_both_cut_gives_odd_token_to_the_longer():
    # A=6, B=8, budget 5: both cut, A 2, B 3
    packed = pack(8, [[1, 2, 3, 4, 5, 6]], [[11, 12, 13, 14, 15, 16, 17, 18]])
    assert packed["input_word_ids"] == [[CLS, 1, 2, SEP, 11, 12, 13, SEP]]


def test_pad_to_longest_for_bucketing():
    packed = pack(16, [[1, 2], [1, 2, 3, 4]], pad_to="longest")
    assert packed["input_word_ids"] == [[CLS, 1, 2, SEP, PAD, PAD], [CLS, 1, 2, 3, 4, SEP]]


def test_dense_and_empty_inputs():
    packer = InputPacker(5, CLS, SEP, PAD)
    packed = packer(tf.ragged.constant([[], [7]], dtype=tf.int32))
    assert packed["input_word_ids"].numpy().tolist() == [[CLS, SEP, 0, 0, 0], [CLS, 7, SEP, 0, 0]]
    packed = packer(np.array([[1, 2, 3, 4]]))
    assert packed["input_word_ids"].numpy().tolist() == [[CLS, 1, 2, 3, SEP]]


def test_works_in_tf_data_and_tf_function():
    packer = InputPacker(6, CLS, SEP, PAD)
    dataset = tf.data.Dataset.from_tensor_slices(tf.ragged.constant([[1, 2], [3, 4, 5, 6, 7]]))
    batch = next(iter(dataset.batch(2).map(packer)))
    assert batch["input_word_ids"].shape == (2, 6)
    compiled = tf.function(packer)
    assert compiled(tf.ragged.constant([[1]]))["input_word_ids"].numpy().tolist() == [
        [CLS, 1, SEP, 0, 0, 0]]


def test_pairs_in_tf_data():
    packer = InputPacker(8, CLS, SEP, PAD)
    columns = {"a": tf.ragged.constant([[1, 2, 3, 4, 5, 6], [1]]),
               "b": tf.ragged.constant([[11, 12, 13, 14, 15, 16, 17, 18], [11]])}
    batch = next(iter(tf.data.Dataset.from_tensor_slices(columns).batch(2).map(
        lambda x: packer(x["a"], x["b"]))))
    assert batch["input_word_ids"].numpy().tolist() == [
        [CLS, 1, 2, SEP, 11, 12, 13, SEP], [CLS, 1, SEP, 11, SEP, 0, 0, 0]]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="head\\+tail"):
        InputPacker(8, CLS, SEP, PAD, truncation="middle")
    with pytest.raises(ValueError, match="no room"):
        InputPacker(2, CLS, SEP, PAD)


def test_longest_first_equals_hugging_face_tokenizers():
    """Every length combination around the budget, against the tokenizers library."""
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3}
    vocab.update({f"w{i}": 4 + i for i in range(40)})
    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = tokenizers.processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    for sequence_length in (9, 10):
        tokenizer.enable_truncation(max_length=sequence_length)
        tokenizer.enable_padding(length=sequence_length, pad_id=0)
        lengths = [(a, b) for a in range(0, 14) for b in range(0, 14)]
        texts_a = [" ".join(f"w{i}" for i in range(a)) for a, _ in lengths]
        texts_b = [" ".join(f"w{20 + i}" for i in range(b)) for _, b in lengths]
        expected = tokenizer.encode_batch(list(zip(texts_a, texts_b)))
        ids_a = tf.ragged.constant([[4 + i for i in range(a)] for a, _ in lengths], tf.int32)
        ids_b = tf.ragged.constant([[24 + i for i in range(b)] for _, b in lengths], tf.int32)
        packed = InputPacker(sequence_length, 2, 3, 0)(ids_a, ids_b)
        assert packed["input_word_ids"].numpy().tolist() == [e.ids for e in expected]
        assert packed["input_type_ids"].numpy().tolist() == [e.type_ids for e in expected]
        assert packed["input_mask"].numpy().tolist() == [e.attention_mask for e in expected]
