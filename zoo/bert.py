"""BERT (Devlin et al., 2018): post-LN encoder with a tanh pooler."""

import keras

from zoo.registry import Weights, register_family, register_presets
from zoo.backbone import forwarded_arguments
from zoo.text_backbone import TextBackbone


@keras.saving.register_keras_serializable(package="zoo")
class BertBackbone(TextBackbone):
    """BERT encoder. `activation="gelu"` is the exact erf GELU (Hugging Face);
    google-research/bert's checkpoints use "gelu_tanh"."""

    def __init__(
        self,
        vocab_size,
        num_layers,
        hidden_size,
        num_heads,
        intermediate_size,
        activation="gelu",
        dropout=0.1,
        attention_dropout=0.1,
        max_sequence_length=512,
        type_vocab_size=2,
        layer_norm_epsilon=1e-12,
        output_embeddings=False,
        return_attention_scores=False,
        dtype=None,
        **kwargs,
    ):
        super().__init__(**forwarded_arguments(locals()))
        self._remember_arguments(locals())

    @classmethod
    def count_parameters(cls, vocab_size, num_layers, hidden_size, intermediate_size,
                         max_sequence_length=512, type_vocab_size=2, **_):
        return cls.text_parameters(
            vocab_size, num_layers, hidden_size, intermediate_size,
            max_sequence_length=max_sequence_length, type_vocab_size=type_vocab_size,
        )


register_family("bert", BertBackbone)


def _bert(num_layers, hidden_size, vocab_size=30522):
    return dict(
        vocab_size=vocab_size,
        num_layers=num_layers,
        hidden_size=hidden_size,
        num_heads=hidden_size // 64,
        intermediate_size=4 * hidden_size,
    )


_PRESETS = [
    ("bert_tiny_uncased", _bert(2, 128), 4_385_920,
     "BERT tiny (L2 H128), uncased English, from Well-Read Students (Turc et al.)."),
    ("bert_mini_uncased", _bert(4, 256), 11_170_560,
     "BERT mini (L4 H256), uncased English, from Well-Read Students."),
    ("bert_small_uncased", _bert(4, 512), 28_763_648,
     "BERT small (L4 H512), uncased English, from Well-Read Students."),
    ("bert_medium_uncased", _bert(8, 512), 41_373_184,
     "BERT medium (L8 H512), uncased English, from Well-Read Students."),
    ("bert_base_uncased", _bert(12, 768), 109_482_240,
     "BERT base (L12 H768), uncased English."),
    ("bert_base_cased", _bert(12, 768, vocab_size=28996), 108_310_272,
     "BERT base (L12 H768), cased English."),
    ("bert_large_uncased", _bert(24, 1024), 335_141_888,
     "BERT large (L24 H1024), uncased English."),
    ("bert_base_multilingual_cased", _bert(12, 768, vocab_size=119547), 177_853_440,
     "BERT base (L12 H768), cased, 104 languages."),
    ("bert_test_tiny",
     dict(vocab_size=100, num_layers=2, hidden_size=16, num_heads=2,
          intermediate_size=32, max_sequence_length=32),
     6_896, "Tiny random BERT for tests and demos (not a published model)."),
]

_GOOGLE = "https://storage.googleapis.com/bert_models/"


def _small_bert(layers, hidden, heads, revision=None):
    """Well-Read Students' small BERTs: on the Hub and in Google's 2020 archives."""
    name = f"uncased_L-{layers}_H-{hidden}_A-{heads}"
    handle = f"hf://google/bert_{name}" + (f"@{revision}" if revision else "")
    return Weights((handle, f"{_GOOGLE}2020_02_20/{name}.zip"), lower_case=True)


# Hub handles pinned to the commit of main seen in public sources; where
# none was found (small and medium) the handle follows main.
_WEIGHTS = {
    "bert_tiny_uncased": _small_bert(2, 128, 2, "30b0a37ccaaa32f332884b96992754e246e48c5f"),
    "bert_mini_uncased": _small_bert(4, 256, 4, "387825ce42dbb39b87911cdf8e383ee3b25184f8"),
    "bert_small_uncased": _small_bert(4, 512, 8),
    "bert_medium_uncased": _small_bert(8, 512, 8),
    "bert_base_uncased": Weights(
        ("hf://google-bert/bert-base-uncased@86b5e0934494bd15c9632b12f734a8a67f723594",
         f"{_GOOGLE}2018_10_18/uncased_L-12_H-768_A-12.zip"), lower_case=True),
    "bert_base_cased": Weights(
        ("hf://google-bert/bert-base-cased@cd5ef92a9fb2f889e972770a36d4ed042daf221e",
         f"{_GOOGLE}2018_10_18/cased_L-12_H-768_A-12.zip"), lower_case=False),
    "bert_large_uncased": Weights(
        ("hf://google-bert/bert-large-uncased@6da4b6a26a1877e173fca3225479512db81a5e5b",
         f"{_GOOGLE}2018_10_18/uncased_L-24_H-1024_A-16.zip"), lower_case=True),
    "bert_base_multilingual_cased": Weights(
        ("hf://google-bert/bert-base-multilingual-cased@"
         "3f076fdb1ab68d5b2880cb87a0886f315b8146f8",
         f"{_GOOGLE}2018_11_23/multi_cased_L-12_H-768_A-12.zip"), lower_case=False),
}

register_presets("bert", _PRESETS, _WEIGHTS)
