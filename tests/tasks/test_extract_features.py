"""extract_features: the written features equal a direct forward pass of the
backbone + FeaturePooling, across batch boundaries, in .npy and TFRecord;
bad input and failed writes give clear errors and no partial output."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import zoo
from kerasbert.layers import FeaturePooling
from kerasbert.text import WordPieceTokenizer
from tasks.tools import features
from tasks.training import runner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEQUENCE_LENGTH = 12
BATCH_SIZE = 3  # 7 texts: batches of 3, 3 and a partial 1
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "good", "bad", "film",
              "movie", "plot", "was", "is", "very", "not", "great", "and", "made", ".", ",",
              "!", "##s", "##ly"]
TEXTS = ["The film was good.", "a bad movie", "Very, very great plot!", "not good",
         "the movies were badly made and the plot was not great at all, really, not at all",
         "good", "a film"]  # the fifth is longer than SEQUENCE_LENGTH: truncated
SECOND = ["good", "not a film", "bad plot", "the movie", "great", "a very bad film", "is"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny 4-layer BERT saved as model.keras with its vocab.txt beside it."""
    folder = tmp_path_factory.mktemp("checkpoint")
    (folder / "vocab.txt").write_text("\n".join(VOCABULARY) + "\n")
    zoo.save_tokenizer(WordPieceTokenizer(str(folder / "vocab.txt"), lower_case=True), folder)
    backbone = zoo.build("bert_tiny_uncased", num_layers=4, hidden_size=16, num_heads=2,
                         intermediate_size=32, vocab_size=len(VOCABULARY),
                         max_sequence_length=32)
    path = folder / "model.keras"
    backbone.save(path)
    return str(path)


@pytest.fixture(scope="module")
def loaded(checkpoint):
    return (zoo.load(checkpoint),
            zoo.load_preprocessor(checkpoint, sequence_length=SEQUENCE_LENGTH))


def direct(backbone, preprocessor, pooling, *columns):
    """Backbone + FeaturePooling on all texts at once, eagerly."""
    inputs = preprocessor(*columns)
    outputs = backbone(inputs, training=False)
    pooled = FeaturePooling(pooling)(outputs["encoder_outputs"], input_mask=inputs["input_mask"])
    return np.asarray(pooled), {name: np.asarray(value) for name, value in inputs.items()}


@pytest.mark.parametrize("pooling", ["mean", "last4_concat", "all_layers"])
def test_runner_npy_equals_a_direct_forward_pass(tmp_path, checkpoint, loaded, pooling):
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(TEXTS) + "\n")
    output = tmp_path / "out" / "features.npy"
    result = runner.run(runner.RunSettings(
        task="extract_features", init_checkpoint=checkpoint, data=str(data),
        sequence_length=SEQUENCE_LENGTH, batch_size=BATCH_SIZE, options={"pooling": pooling, "features_output": str(output)},
        model_dir=str(tmp_path / "run")))
    expected, inputs = direct(*loaded, pooling, TEXTS)
    assert np.abs(expected).max() > 0.1  # real numbers, not zeros
    written = np.load(output)
    assert written.dtype == np.float32 and written.shape == expected.shape
    np.testing.assert_allclose(written, expected, atol=1e-5)
    assert result["count"] == 7 and result["shape"] == list(expected.shape)
    assert result["pooling"] == pooling and result["output"] == str(output)
    mask_file = tmp_path / "out" / "features.mask.npy"
    if pooling == "mean":
        assert expected.shape == (7, 16) and not mask_file.exists()
    else:
        assert expected.shape == ((7, SEQUENCE_LENGTH, 64) if pooling == "last4_concat"
                                  else (7, SEQUENCE_LENGTH, 4, 16))
        mask = np.load(mask_file)
        assert mask.dtype == np.int8
        np.testing.assert_array_equal(mask, inputs["input_mask"])
        assert mask[4].all() and mask[5].sum() == 3  # truncated; [CLS] good [SEP]
        assert not written[mask == 0].any()  # zero at padding
    assert sorted(os.listdir(tmp_path / "out")) == sorted(
        ["features.npy"] + (["features.mask.npy"] if pooling != "mean" else []))


def test_tfrecord_of_pairs_round_trips(tmp_path, loaded):
    data = tmp_path / "pairs.tsv"
    data.write_text("premise\thypothesis\n" + "".join(f"{a}\t{b}\n"
                                                      for a, b in zip(TEXTS, SECOND)))
    columns = features.read_texts(str(data), ("premise", "hypothesis"))
    assert columns == [TEXTS, SECOND]
    backbone, preprocessor = loaded
    output = tmp_path / "features.tfrecord"
    result = features.extract(backbone, preprocessor, columns, output, pooling="last4_sum",
                              batch_size=BATCH_SIZE)
    expected, inputs = direct(backbone, preprocessor, "last4_sum", TEXTS, SECOND)
    rows = features.parse_tfrecord(str(output))
    assert len(rows) == 7 and result["shape"] == [7, SEQUENCE_LENGTH, 16]
    tokens = np.array(VOCABULARY)
    for i, row in enumerate(rows):
        assert (row["text"], row["text_b"]) == (TEXTS[i], SECOND[i])
        assert row["features"].shape == (SEQUENCE_LENGTH, 16)
        np.testing.assert_allclose(row["features"], expected[i], atol=1e-5)
        np.testing.assert_array_equal(row["input_mask"], inputs["input_mask"][i])
        real = inputs["input_word_ids"][i][inputs["input_mask"][i] > 0]
        assert row["tokens"] == list(tokens[real])
    assert rows[1]["tokens"] == ["[CLS]", "a", "bad", "movie", "[SEP]", "not", "a", "film",
                                 "[SEP]"]
    assert not os.path.exists(str(output) + ".tmp")


@pytest.mark.heavy
def test_command_line_on_the_embedded_default_with_a_preset(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "tasks.run", "--task=extract_features", "--model=bert_test_tiny",
         "--vocab_size=200", "--sequence_length=16", "--batch_size=50", "--pooling=cls",
         f"--model_dir={tmp_path / 'run'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(run.stdout[run.stdout.index("{"):])
    output = str(tmp_path / "run" / "features.npy")
    assert summary["output"] == output and summary["count"] == 128
    assert np.load(output).shape == (128, 16)
    assert os.path.exists(tmp_path / "run" / "vocab.txt")  # learned from the texts


def test_unknown_extension_is_a_clear_error(tmp_path, checkpoint):
    with pytest.raises(ValueError, match=r"\.npy.*\.tfrecord"):
        runner.run(runner.RunSettings(task="extract_features", init_checkpoint=checkpoint,
                                      options={"features_output":
                                               str(tmp_path / "features.csv")},
                                      model_dir=str(tmp_path / "run")))
    assert not os.path.exists(tmp_path / "features.csv")


def test_empty_line_is_an_error_naming_it(tmp_path, checkpoint):
    data = tmp_path / "texts.txt"
    data.write_text("good film\nbad plot\n\nnot great\n")
    with pytest.raises(ValueError, match=r"texts\.txt: line 3 is empty"):
        runner.run(runner.RunSettings(task="extract_features", init_checkpoint=checkpoint,
                                      data=str(data), model_dir=str(tmp_path / "run")))
    table = tmp_path / "texts.csv"
    table.write_text("text\ngood film\n  \n")
    with pytest.raises(ValueError, match=r"row 2, field 'text' is empty"):
        features.read_texts(str(table))
    assert not os.path.exists(tmp_path / "run" / "features.npy")


@pytest.mark.parametrize("name", ["features.npy", "features.tfrecord"])
def test_interrupted_write_leaves_the_old_output_and_no_partial_file(tmp_path, loaded,
                                                                     monkeypatch, name):
    output = tmp_path / name
    output.write_bytes(b"previous run")
    real_batches = features._encoded_batches

    def interrupted(*args):
        for step, batch in enumerate(real_batches(*args)):
            if step == 1:
                raise KeyboardInterrupt  # after one batch was written
            yield batch

    monkeypatch.setattr(features, "_encoded_batches", interrupted)
    with pytest.raises(KeyboardInterrupt):
        features.extract(*loaded, [TEXTS], output, pooling="weighted", batch_size=BATCH_SIZE)
    assert sorted(os.listdir(tmp_path)) == [name]
    assert output.read_bytes() == b"previous run"
