"""DistilBERT (Sanh et al., 2019): BERT without segment embeddings or pooler."""

import keras

from zoo.registry import Weights, register_family, register_presets
from zoo.backbone import forwarded_arguments
from zoo.text_backbone import TextBackbone


@keras.saving.register_keras_serializable(package="zoo")
class DistilBertBackbone(TextBackbone):
    """DistilBERT encoder. Takes `input_type_ids` like every text backbone
    and ignores it; has no `pooled_output` (heads read the first token)."""

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
        layer_norm_epsilon=1e-12,
        output_embeddings=False,
        return_attention_scores=False,
        dtype=None,
        **kwargs,
    ):
        super().__init__(
            **forwarded_arguments(locals()), type_vocab_size=0, use_pooler=False
        )
        self._remember_arguments(locals())

    @classmethod
    def count_parameters(cls, vocab_size, num_layers, hidden_size, intermediate_size,
                         max_sequence_length=512, **_):
        return cls.text_parameters(
            vocab_size, num_layers, hidden_size, intermediate_size,
            max_sequence_length=max_sequence_length, type_vocab_size=0,
            use_pooler=False,
        )


register_family("distilbert", DistilBertBackbone)

_BASE = dict(num_layers=6, hidden_size=768, num_heads=12, intermediate_size=3072)

_PRESETS = [
    ("distilbert_base_uncased", dict(vocab_size=30522, **_BASE), 66_362_880,
     "DistilBERT base (L6 H768), uncased English, distilled from bert_base_uncased."),
    ("distilbert_base_cased", dict(vocab_size=28996, **_BASE), 65_190_912,
     "DistilBERT base (L6 H768), cased English, distilled from bert_base_cased."),
    ("distilbert_test_tiny",
     dict(vocab_size=100, num_layers=2, hidden_size=16, num_heads=2,
          intermediate_size=32, max_sequence_length=32),
     6_592, "Tiny random DistilBERT for tests (not a published model)."),
]

_WEIGHTS = {  # pinned to the commit of main seen in public sources
    "distilbert_base_uncased": Weights(
        ("hf://distilbert/distilbert-base-uncased@12040accade4e8a0f71eabdb258fecc2e7e948be",),
        lower_case=True),
    "distilbert_base_cased": Weights(
        ("hf://distilbert/distilbert-base-cased@6ea81172465e8b0ad3fddeed32b986cdcdcffcf0",),
        lower_case=False),
}

register_presets("distilbert", _PRESETS, _WEIGHTS)
