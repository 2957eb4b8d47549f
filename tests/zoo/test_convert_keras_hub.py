"""keras-hub presets: zoo.load equals keras-hub's own outputs (tanh GELU and all),
and zoo.load_preprocessor its tokenizers' ids (RoBERTa's byte-level BPE, XLM-R's
SentencePiece, ELECTRA's WordPiece) on the varied corpus."""


import numpy as np
import pytest
import tensorflow as tf

import zoo
from tests.text_corpus import corpus, training_corpus
from zoo.convert.table import ConversionError

keras_hub = pytest.importorskip("keras_hub")

TEXT = dict(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16,
            intermediate_dim=32, max_sequence_length=24)
BACKBONES = {
    "bert": lambda: keras_hub.models.BertBackbone(**TEXT),
    "albert": lambda: keras_hub.models.AlbertBackbone(**dict(TEXT, num_layers=4), num_groups=2,
                                                      embedding_dim=8),
    "distilbert": lambda: keras_hub.models.DistilBertBackbone(**TEXT),
    "vit": lambda: keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=8,
                                                num_layers=2, num_heads=2, hidden_dim=16,
                                                mlp_dim=32),
    "roberta": lambda: keras_hub.models.RobertaBackbone(**TEXT),
    "xlm_roberta": lambda: keras_hub.models.XLMRobertaBackbone(**TEXT),
    "electra": lambda: keras_hub.models.ElectraBackbone(
        **{key.replace("vocabulary_size", "vocab_size"): value for key, value in TEXT.items()},
        embedding_dim=8),
}
# keras-hub numbers RoBERTa's positions from 0 whatever the ids, kerasbert as
# fairseq does (see zoo.convert.keras_hub): the same at every real token of a
# right-padded batch, not at the padding slots.
FAIRSEQ = ("roberta", "xlm_roberta")
EXACT_GELU = ("distilbert", "vit", "roberta", "xlm_roberta")


def perturb(backbone, seed=0):
    """Non-trivial biases and norms, so every weight is exercised."""
    rng = np.random.default_rng(seed)
    for weight in backbone.weights:
        weight.assign(weight.numpy() + rng.normal(0, 0.1, weight.shape).astype("float32"))


def inputs(family):
    rng = np.random.default_rng(3)
    if family == "vit":
        images = rng.normal(size=(2, 32, 32, 3)).astype("float32")
        return images, images
    ids = rng.integers(1, 50, (2, 10)).astype("int32")
    mask = np.ones_like(ids)
    mask[0, 7:] = 0
    if family in FAIRSEQ:  # text never holds <pad> (1); keras-hub pads with it
        ids = np.where(ids == 1, 4, ids)
        ids[0, 7:] = 1
    segments = np.zeros_like(ids)
    segments[:, 5:] = 1
    ours = {"input_word_ids": ids, "input_mask": mask, "input_type_ids": segments}
    theirs = {"token_ids": ids, "padding_mask": mask}
    if family not in ("distilbert",) + FAIRSEQ:
        theirs["segment_ids"] = segments
    return ours, theirs


@pytest.fixture(scope="module", params=sorted(BACKBONES))
def preset(request, tmp_path_factory):
    family = request.param
    backbone = BACKBONES[family]()
    perturb(backbone)
    folder = str(tmp_path_factory.mktemp(f"keras_hub_{family}"))
    backbone.save_to_preset(folder)
    return family, backbone, folder


def test_outputs_equal_keras_hub(preset):
    family, backbone, folder = preset
    model = zoo.load(folder)
    assert isinstance(model, zoo.registry.families()[family])
    ours, theirs = inputs(family)
    expected = backbone(theirs)
    outputs = model(ours)
    sequence = expected["sequence_output"] if isinstance(expected, dict) else expected
    difference = np.abs(outputs["sequence_output"] - np.asarray(sequence))
    if family in FAIRSEQ:
        difference = difference[ours["input_mask"] == 1]
    difference = float(difference.max())
    print(family, "max abs difference", difference)
    assert difference <= 1e-5
    if family in ("bert", "albert"):
        np.testing.assert_allclose(outputs["pooled_output"], expected["pooled_output"], atol=1e-5)


def test_activation_follows_keras_hub(preset):
    family, _, folder = preset
    expected = "gelu" if family in EXACT_GELU else "gelu_tanh"
    assert zoo.load(folder).activation == expected


def test_with_head_wraps_the_backbone(preset):
    _, _, folder = preset
    model = zoo.load(folder, with_head=True)
    assert isinstance(model, zoo.BackboneWithHeads)


def test_mismatched_weights_are_refused(tmp_path):
    other = keras_hub.models.BertBackbone(**dict(TEXT, hidden_dim=8, intermediate_dim=16))
    other.save_to_preset(str(tmp_path))
    from zoo.convert import keras_hub as converter
    from zoo.convert.table import assign

    family, config, state = converter.read_preset(str(tmp_path))
    model = zoo.build("bert_test_tiny", vocab_size=50, max_sequence_length=24)
    with pytest.raises(ConversionError, match=r"token_embedding/embeddings.*\(50, 8\)"):
        assign(model, converter.TABLES["bert"], state, 2)


def test_electra_same_width_and_its_pooler(tmp_path):
    """E == H: no projection, as keras-hub builds none; keras-hub's pooled_dense
    (ELECTRA has no pooler) is reported as left out."""
    backbone = keras_hub.models.ElectraBackbone(
        vocab_size=50, num_layers=2, num_heads=2, hidden_dim=16, embedding_dim=16,
        intermediate_dim=32, max_sequence_length=24)
    perturb(backbone)
    backbone.save_to_preset(str(tmp_path))
    model, report = zoo.loading.load_with_report(str(tmp_path))
    assert model.get_config()["embedding_size"] is None
    assert {"pooled_dense/kernel", "pooled_dense/bias"} <= {name for name, _ in report.left_out}
    ours, theirs = inputs("electra")
    np.testing.assert_allclose(model(ours)["sequence_output"],
                               backbone(theirs)["sequence_output"], atol=1e-5)


# --- Presets with their tokenizers: text in, the same ids and outputs ---------

BPE_SPECIALS = ["<s>", "</s>", "<unk>", "<pad>", "<mask>"]  # <pad> = 3, not RoBERTa's 1


def _tokenizer(family, folder):
    """A keras-hub tokenizer over a vocabulary learnt here from the corpus."""
    import sentencepiece as spm
    import tokenizers

    if family == "roberta":
        trainer = tokenizers.ByteLevelBPETokenizer()
        trainer.train_from_iterator(training_corpus() + corpus(seed=3), vocab_size=600,
                                    special_tokens=BPE_SPECIALS, show_progress=False)
        vocab, merges = trainer.save_model(str(folder))
        return keras_hub.models.RobertaTokenizer(vocabulary=vocab, merges=merges)
    if family == "xlm_roberta":  # sentencepiece's own ids: <unk>=0, <s>=1, </s>=2
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(training_corpus()), model_prefix=str(folder / "spm"),
            vocab_size=400, model_type="unigram", character_coverage=1.0, minloglevel=2)
        return keras_hub.models.XLMRobertaTokenizer(proto=str(folder / "spm.model"))
    trainer = tokenizers.BertWordPieceTokenizer(lowercase=True)
    trainer.train_from_iterator(training_corpus(), vocab_size=800, show_progress=False,
                                special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    vocab = trainer.save_model(str(folder))[0]
    return keras_hub.models.ElectraTokenizer(vocabulary=vocab, lowercase=True)


@pytest.fixture(scope="module", params=["roberta", "xlm_roberta", "electra"])
def text_preset(request, tmp_path_factory):
    """The family, the preset folder (a backbone as wide as the tokenizer's
    vocabulary, and the tokenizer), and keras-hub's backbone, tokenizer, its
    tf.data path traced once (as keras-hub's preprocessors run it) and packer."""
    family = request.param
    tokenizer = _tokenizer(family, tmp_path_factory.mktemp(f"{family}_vocabulary"))
    config = dict(TEXT, vocabulary_size=tokenizer.vocabulary_size(), max_sequence_length=32)
    if family == "electra":
        config["vocab_size"] = config.pop("vocabulary_size")
        backbone = keras_hub.models.ElectraBackbone(**config, embedding_dim=8)
        # keras-hub has no ELECTRA preprocessor: its BERT preprocessor's packer
        packer = keras_hub.layers.MultiSegmentPacker(
            24, tokenizer.cls_token_id, tokenizer.sep_token_id, pad_value=tokenizer.pad_token_id)
    else:
        backbone = {"roberta": keras_hub.models.RobertaBackbone,
                    "xlm_roberta": keras_hub.models.XLMRobertaBackbone}[family](**config)
        preprocessor = {"roberta": keras_hub.models.RobertaTextClassifierPreprocessor,
                        "xlm_roberta": keras_hub.models.XLMRobertaTextClassifierPreprocessor}[
            family](tokenizer, sequence_length=24)
        preprocessor.build(None)
        packer = preprocessor.packer  # <s> A </s></s> B </s>
    perturb(backbone, seed=1)
    folder = tmp_path_factory.mktemp(f"keras_hub_{family}_preset")
    backbone.save_to_preset(str(folder))
    tokenizer.save_to_preset(str(folder))
    tokenize = tf.function(tokenizer, input_signature=[tf.TensorSpec([None], tf.string)])
    return dict(family=family, folder=str(folder), backbone=backbone, tokenizer=tokenizer,
                tokenize=tokenize, packer=packer)


def _non_ascii_whitespace(line):
    return any(character.isspace() and ord(character) > 127 for character in line)


def test_tokenizer_ids_equal_keras_hub(text_preset):
    """On the varied corpus, keras-hub's ids as its tf.data path makes them
    (keras-hub's preprocessors run there). Every line for SentencePiece and
    WordPiece (whose NFKC case folding, ASCII-only whitespace and special tokens
    read as text kerasbert's KerasHubWordPieceTokenizer follows). RoBERTa's BPE
    keeps GPT-2's pre-tokenization, as fairseq and Hugging Face have it: keras-hub
    emulates its lookahead otherwise next to non-ASCII whitespace (a space before
    U+00A0 or U+2028), the only lines allowed to differ. (keras-hub's eager
    BytePairTokenizer splits with Llama 3's pattern, another reading again.)"""
    family = text_preset["family"]
    tokenizer = zoo.load_preprocessor(text_preset["folder"]).tokenizer
    expected_class = {"roberta": "ByteLevelBpeTokenizer", "xlm_roberta": "SentencePieceTokenizer",
                      "electra": "KerasHubWordPieceTokenizer"}[family]
    assert type(tokenizer).__name__ == expected_class
    lines = corpus()
    got = tokenizer.tokenize(lines).to_list()
    expected = []  # in batches: keras-hub's BPE merges each batch's words in one loop
    for start in range(0, len(lines), 200):
        expected += text_preset["tokenize"](tf.constant(lines[start:start + 200])).to_list()
    differing = [lines[i] for i in range(len(lines)) if got[i] != expected[i]]
    print(family, f"{len(lines)} lines, {len(differing)} differ from keras-hub's")
    if family == "roberta":
        assert len(differing) <= len(lines) // 100
        assert all(_non_ascii_whitespace(line) for line in differing), differing[:3]
    else:
        assert differing == [], differing[:3]


def test_text_to_outputs_equal_keras_hub(text_preset):
    """Texts through each library's preprocessing and model: the same packed
    ids, mask and segments, and sequence outputs within 1e-5 at every real
    token; single texts truncated and padded, pairs padded (RoBERTa's <pad> is
    3 here). Pairs that need cutting are not compared: keras-hub cuts them
    round-robin, kerasbert as Hugging Face's longest_first, which differ by a
    token when both texts are cut to an odd budget."""
    family, tokenizer, packer = (text_preset[key] for key in ("family", "tokenizer", "packer"))
    lines = corpus(60, seed=9)[1:]
    short = [line for line in lines if len(line) < 25]
    batches = [(lines[:8], None), (short[0:12:2], short[1:12:2])]
    model = zoo.load(text_preset["folder"])
    if family == "roberta":
        assert model.get_config()["padding_id"] == 3 == tokenizer.pad_token_id
    preprocessor = zoo.load_preprocessor(text_preset["folder"], sequence_length=24)
    for first, second in batches:
        segments = [text_preset["tokenize"](tf.constant(texts))
                    for texts in (first, second) if texts is not None]
        ids, segment_ids = (np.asarray(x) for x in packer(tuple(segments)))
        ours = preprocessor(first, second)
        mask = ours["input_mask"].numpy()
        np.testing.assert_array_equal(ours["input_word_ids"], ids)
        np.testing.assert_array_equal(mask, ids != tokenizer.pad_token_id)
        assert mask.min() == 0 and mask.max() == 1  # some rows padded
        theirs = {"token_ids": ids, "padding_mask": mask}
        if family == "electra":
            np.testing.assert_array_equal(ours["input_type_ids"], segment_ids)
            theirs["segment_ids"] = segment_ids
        expected = text_preset["backbone"](theirs)
        expected = np.asarray(expected["sequence_output"] if family == "electra" else expected)
        difference = np.abs(model(ours)["sequence_output"].numpy() - expected)[mask == 1].max()
        print(family, "text -> sequence_output max abs difference", difference)
        assert difference <= 1e-5


@pytest.mark.parametrize("text_preset", ["electra"], indirect=True)
def test_keras_hub_wordpiece_saved_and_reloaded(text_preset, tmp_path):
    """save_tokenizer keeps keras-hub's reading of text (a tasks.run model_dir
    trained from a keras-hub preset serves with the ids it trained on)."""
    tokenizer = zoo.load_preprocessor(text_preset["folder"]).tokenizer
    zoo.save_tokenizer(tokenizer, str(tmp_path))
    again = zoo.load_preprocessor(str(tmp_path)).tokenizer
    assert type(again) is type(tokenizer) and again.get_config()["lower_case"] is True
    lines = corpus(300, seed=2)
    assert again.tokenize(lines).to_list() == tokenizer.tokenize(lines).to_list()
