"""BERT (Devlin et al., 2018): post-LN encoder with a tanh pooler."""

import keras

from zoo.registry import register_family, register_presets
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

register_presets("bert", _PRESETS)
