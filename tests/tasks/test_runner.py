"""The runner fine-tunes a real checkpoint folder with the performance flags on."""

import json
import os

import numpy as np
import pytest

from tasks.training import runner
from tests.tasks import synthetic
from tests.zoo.hub_server import HubServer, point_client_at
from tests.text_corpus import training_corpus

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")


def hf_checkpoint(folder):
    """A random BERT saved by transformers, with its tokenizer (as users have them)."""
    folder.mkdir()
    trainer = tokenizers.BertWordPieceTokenizer(lowercase=True)
    trainer.train_from_iterator(training_corpus() + ["good bad red green blue"] * 10,
                                vocab_size=400,
                                special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    trainer.save_model(str(folder))
    transformers.BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
    config = transformers.BertConfig(vocab_size=trainer.get_vocab_size(), hidden_size=32,
                                     num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(str(folder))
    return folder


@pytest.mark.heavy
def test_init_checkpoint_with_bfloat16_xla_and_bucketing(tmp_path, monkeypatch):
    """Also: the checkpoint comes through a hub handle (a loopback Hub), and
    --push_to_hub uploads the trained encoder with a card of the run's metrics."""
    checkpoint = hf_checkpoint(tmp_path / "bert")
    data = synthetic.color_multilabel(tmp_path / "data", train=300, validation=60)
    with HubServer() as hub:
        hub.add_repo("org/bert", checkpoint)
        point_client_at(monkeypatch, hub.url, tmp_path / "hf_home")
        monkeypatch.setenv("HF_TOKEN", hub.token)
        settings = runner.RunSettings(
            task="multilabel", init_checkpoint="hf://org/bert", data=str(data),
            model_dir=str(tmp_path / "run"), sequence_length=32, train_steps=40,
            steps_per_loop=20, batch_size=16, learning_rate=1e-3, mixed_precision="bfloat16",
            jit_compile=True, options={"bucket": True}, push_to_hub="me/colors")
        result = runner.run(settings)
        _check_pushed(result["pushed"], tmp_path / "run")
    assert result["step"] == 40
    assert set(result["final"]) == {"micro_f1", "macro_f1"}
    with open(tmp_path / "run" / "metrics.json") as file:
        assert json.load(file)["step"] == 40
    assert os.path.exists(tmp_path / "run" / "model.keras")
    # The checkpoint's own vocabulary, not one learned from the data, is
    # written beside the model: model_dir reloads as a checkpoint.
    with open(tmp_path / "run" / "vocab.txt") as written, open(checkpoint / "vocab.txt") as own:
        assert written.read().split() == own.read().split()
    import zoo

    reloaded = zoo.load_preprocessor(str(tmp_path / "run" / "model.keras"), sequence_length=32)
    original = zoo.load_preprocessor(str(checkpoint), sequence_length=32)
    texts = ["Red and GREEN, blue!", "good bad"]
    for name, ids in reloaded(texts).items():
        np.testing.assert_array_equal(ids, original(texts)[name])


def _check_pushed(handle, run):
    """The pushed repo holds the run's encoder and tokenizer, and a card of its metrics."""
    import huggingface_hub
    import keras

    import zoo

    keras.config.set_dtype_policy("float32")
    pushed, trained = zoo.load(handle), zoo.load(str(run))
    for a, b in zip(pushed.get_weights(), trained.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    texts = ["Red and GREEN, blue!"]
    for name, ids in zoo.load_preprocessor(str(run))(texts).items():
        np.testing.assert_array_equal(zoo.load_preprocessor(handle)(texts)[name], ids)
    card = open(huggingface_hub.hf_hub_download("me/colors", "README.md")).read()
    with open(run / "metrics.json") as file:
        micro_f1 = json.load(file)["final"]["micro_f1"]
    assert "- Task: `multilabel`" in card and "- Started from: `hf://org/bert`" in card
    assert f"| micro_f1 | {micro_f1:.4f} |" in card


def test_float16_gets_loss_scaling(tmp_path, monkeypatch):
    import keras

    from tasks.training import loop

    seen = {}
    original = loop.train

    def spy(task, model, optimizer, *args, **kwargs):
        result = original(task, model, optimizer, *args, **kwargs)
        seen["optimizer"] = model.optimizer
        return result

    monkeypatch.setattr(loop, "train", spy)
    settings = runner.RunSettings(model="vit_test_tiny", model_dir=str(tmp_path / "run"),
                                  train_steps=4, steps_per_loop=4, batch_size=8,
                                  mixed_precision="float16")
    result = runner.run(settings)
    assert isinstance(seen["optimizer"], keras.optimizers.LossScaleOptimizer)
    assert result["final"]["top1_accuracy"] >= 0.0


def test_push_to_hub_without_a_token_fails_before_training(tmp_path, monkeypatch):
    from zoo.hub import AccessError

    point_client_at(monkeypatch, "http://127.0.0.1:9", tmp_path / "hf_home")  # no token
    settings = runner.RunSettings(model="vit_test_tiny", model_dir=str(tmp_path / "run"),
                                  push_to_hub="me/digits")
    with pytest.raises(AccessError, match="hf://me/digits needs a token with write access"):
        runner.run(settings)
    assert not os.path.exists(tmp_path / "run")
