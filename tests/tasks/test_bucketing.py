"""Length bucketing of text fine-tuning batches (tasks.data.pipeline.Bucketing).

Every test goes through TextClassificationTask.build_dataset with
options["bucket"]; the label of example i is i (labels "0".."n-1"), so
batches can be traced back to their examples.
"""

import collections
import csv

import numpy as np
import pytest
import tensorflow as tf

from kerasbert.text import Preprocessor, WordPieceTokenizer, build_wordpiece_vocabulary
from tasks.base import TaskConfig
from tasks.classification import MultiLabelTask, TextClassificationTask
from tasks.data.pipeline import bucket_lengths, bucket_lengths_option, make_dataset

WORDS = "the of and to in is was for on that with as by at from his her they this had".split()
SEQUENCE_LENGTH, BATCH, WINDOW = 64, 8, 4
BUCKETS = [16, 32, 64]


def skewed_texts(count, rng):
    """Mostly short texts, some longer than SEQUENCE_LENGTH (truncated)."""
    lengths = np.minimum(rng.geometric(1 / 12, count), 90)
    return [" ".join(rng.choice(WORDS, n)) for n in lengths]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bucketing")
    rng = np.random.default_rng(0)
    count = 40 * BATCH  # 10 windows: an epoch is whole windows
    rows = list(zip(skewed_texts(count, rng), skewed_texts(count, rng), map(str, range(count))))
    with open(folder / "train.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["text_a", "text_b", "label"])
        writer.writerows(rows)
    vocab_file = str(folder / "vocab.txt")
    build_wordpiece_vocabulary([r[0] for r in rows], 100, lower_case=True, output_file=vocab_file)
    preprocessor = Preprocessor(WordPieceTokenizer(vocab_file), sequence_length=SEQUENCE_LENGTH)
    return dict(folder=str(folder), rows=rows, preprocessor=preprocessor)


def task(setup, fields=("text_a",), **options):
    options = {"bucket": True, "bucket_window": WINDOW,
               "labels": [r[2] for r in setup["rows"]], **options}
    return TextClassificationTask(TaskConfig(data=setup["folder"], text_fields=fields,
                                             sequence_length=SEQUENCE_LENGTH, options=options))


def batches(setup, count, start_step=0, fields=("text_a",), seed=0, **options):
    dataset = task(setup, fields, **options).build_dataset(
        "train", setup["preprocessor"], BATCH, training=True, start_step=start_step, seed=seed)
    return [(tf.nest.map_structure(np.asarray, x), np.asarray(y))
            for x, y in dataset.take(count)]


EPOCH = 40  # batches


@pytest.fixture(scope="module")
def reference(setup):
    """Two epochs of batches from step 0, for single texts and for pairs."""
    return {fields: batches(setup, 2 * EPOCH, fields=fields)
            for fields in (("text_a",), ("text_a", "text_b"))}


def test_bucket_lengths():
    assert bucket_lengths(128) == [16, 32, 64, 128]
    assert bucket_lengths(100) == [16, 32, 64, 100]
    assert bucket_lengths(16) == [16]
    assert bucket_lengths(128, [64, 24, 24, 512]) == [24, 64, 128]
    options = TextClassificationTask.Options
    assert bucket_lengths_option(options(bucket=True), 64) == [16, 32, 64]
    assert bucket_lengths_option(options(bucket_lengths=(20, 40)), 64) == [20, 40, 64]
    assert bucket_lengths_option(options(), 64) is None


@pytest.mark.parametrize("fields", [("text_a",), ("text_a", "text_b")])
def test_width_is_the_smallest_bucket_holding_the_longest_example(reference, fields):
    seen = collections.Counter()
    for x, _ in reference[fields]:
        width = x["input_word_ids"].shape[1]
        longest = x["input_mask"].sum(1).max()
        assert width in BUCKETS and width >= longest
        assert width == min(b for b in BUCKETS if b >= longest)
        seen[width] += 1
    assert len(seen) == len(BUCKETS), seen  # the data uses every bucket


@pytest.mark.parametrize("fields", [("text_a",), ("text_a", "text_b")])
def test_no_example_lost_or_duplicated(setup, reference, fields):
    count = len(setup["rows"])
    assert count == EPOCH * BATCH  # an epoch is 10 whole windows
    labels = [y for _, y in reference[fields]]
    first, second = np.concatenate(labels[:EPOCH]), np.concatenate(labels[EPOCH:])
    assert sorted(first) == list(range(count)) and sorted(second) == list(range(count))
    assert not np.array_equal(first, second)  # reshuffled each epoch


def test_same_stream_as_without_bucketing(setup):
    # Windows hold the same examples as the same steps without bucketing,
    # also when a window straddles an epoch's end (odd window of 3).
    steps = 3 * 15
    bucketed = np.concatenate([y for _, y in batches(setup, steps, bucket_window=3)])
    plain = make_dataset({"label": np.arange(len(setup["rows"]))}, BATCH, True,
                         lambda batch: batch["label"])
    plain = np.concatenate([np.asarray(y) for y in plain.take(steps)])
    for start in range(0, steps * BATCH, 3 * BATCH):
        window = slice(start, start + 3 * BATCH)
        assert sorted(bucketed[window]) == sorted(plain[window])


@pytest.mark.parametrize("fields", [("text_a",), ("text_a", "text_b")])
def test_outputs_equal_fixed_padding_without_the_padding(setup, reference, fields):
    preprocessor = setup["preprocessor"]
    pad = preprocessor.vocabulary.id_of("pad")
    texts = [[r[0] for r in setup["rows"]], [r[1] for r in setup["rows"]]][:len(fields)]
    fixed = {k: np.asarray(v) for k, v in preprocessor(*texts).items()}
    checked = 0
    for x, ids in reference[fields]:
        for row, example in enumerate(ids):
            length = x["input_mask"][row].sum()
            for name in ("input_word_ids", "input_mask", "input_type_ids"):
                ours, theirs = x[name][row], fixed[name][example]
                np.testing.assert_array_equal(ours[:length], theirs[:length])
                assert theirs[length:].tolist() == [pad if name == "input_word_ids" else 0] * (
                    SEQUENCE_LENGTH - length)
                assert ours[length:].tolist() == [pad if name == "input_word_ids" else 0] * (
                    len(ours) - length)
            checked += 1
    assert checked == 2 * EPOCH * BATCH
    assert fixed["input_mask"].sum(1).max() == SEQUENCE_LENGTH  # truncation was exercised


def test_resume_yields_the_same_batches(setup, reference):
    # Mid first window, a window's start, mid window, the next epoch (at
    # step 40) mid window: batches start.. of a run from step 0, shapes included.
    count = 6
    full = reference[("text_a",)]
    for start in (3, WINDOW, 2 * WINDOW + 1, EPOCH + 2):
        resumed = batches(setup, count, start_step=start)
        for (x, y), (x0, y0) in zip(resumed, full[start:start + count], strict=True):
            np.testing.assert_array_equal(y, y0)
            for name in x:
                np.testing.assert_array_equal(x[name], x0[name])


def test_evaluation_keeps_fixed_padding_and_order(setup):
    dataset = task(setup).build_dataset("train", setup["preprocessor"], BATCH, training=False)
    x, y = next(iter(dataset))
    assert x["input_word_ids"].shape == (BATCH, SEQUENCE_LENGTH)
    assert y.numpy().tolist() == list(range(BATCH))


def test_multi_label_targets_follow_their_examples(setup):
    config = task(setup)
    multi = MultiLabelTask(config.config)
    dataset = multi.build_dataset("train", setup["preprocessor"], BATCH, training=True)
    assert dataset.element_spec[1].shape == (BATCH, len(setup["rows"]))
    x, y = next(iter(dataset))
    plain = batches(setup, 1)[0]  # the same first batch from the single-label task
    np.testing.assert_array_equal(np.argmax(y, axis=1), plain[1])
    np.testing.assert_array_equal(x["input_word_ids"], plain[0]["input_word_ids"])


def test_preprocessor_length(setup):
    preprocessor = setup["preprocessor"]
    texts = ["the of and", "to in is was for on"]
    fixed = preprocessor(texts)
    for width in (16, 12, SEQUENCE_LENGTH):
        ours = preprocessor(texts, length=width)
        for name, value in ours.items():
            assert value.shape == (2, width)
            np.testing.assert_array_equal(value, fixed[name][:, :width])
    with pytest.raises(tf.errors.InvalidArgumentError, match="shorter than the longest"):
        preprocessor(texts, length=4)
    longest = Preprocessor(preprocessor.tokenizer, SEQUENCE_LENGTH, pad_to="longest")
    np.testing.assert_array_equal(longest(texts, length=20)["input_word_ids"],
                                  fixed["input_word_ids"][:, :20])


def test_fine_tuning_on_buckets(setup):
    # model.fit takes batches of several widths (one trace each at most).
    import zoo

    config = task(setup)
    backbone = zoo.build("bert_tiny_uncased", vocab_size=setup["preprocessor"].vocabulary.size,
                         max_sequence_length=SEQUENCE_LENGTH)
    model = config.build_model(backbone)
    model.compile("adam", loss=config.build_losses())
    dataset = config.build_dataset("train", setup["preprocessor"], BATCH, training=True)
    history = model.fit(dataset, steps_per_epoch=2 * WINDOW, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
