"""ALBERT (Lan et al., 2019): factorized embeddings and shared layers."""

import keras

from zoo.registry import Weights, register_family, register_presets
from zoo.backbone import forwarded_arguments
from zoo.text_backbone import TextBackbone


@keras.saving.register_keras_serializable(package="zoo")
class AlbertBackbone(TextBackbone):
    """ALBERT encoder: E-wide embeddings projected to H, and `num_groups`
    distinct blocks shared across `num_layers` layers (1 = all share one)."""

    def __init__(
        self,
        vocab_size,
        num_layers,
        hidden_size,
        num_heads,
        intermediate_size,
        embedding_size=128,
        num_groups=1,
        activation="gelu_new",
        dropout=0.0,
        attention_dropout=0.0,
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
                         embedding_size=128, num_groups=1, max_sequence_length=512,
                         type_vocab_size=2, **_):
        return cls.text_parameters(
            vocab_size, num_layers, hidden_size, intermediate_size,
            max_sequence_length=max_sequence_length, type_vocab_size=type_vocab_size,
            embedding_size=embedding_size, num_groups=num_groups,
        )


register_family("albert", AlbertBackbone)


def _albert(num_layers, hidden_size, num_heads):
    return dict(
        vocab_size=30000,
        num_layers=num_layers,
        hidden_size=hidden_size,
        num_heads=num_heads,
        intermediate_size=4 * hidden_size,
    )


_PRESETS = [
    ("albert_base_v2", _albert(12, 768, 12), 11_683_584,
     "ALBERT base v2 (L12 H768 E128, one shared layer), uncased English."),
    ("albert_large_v2", _albert(24, 1024, 16), 17_683_968,
     "ALBERT large v2 (L24 H1024 E128, one shared layer), uncased English."),
    ("albert_xlarge_v2", _albert(24, 2048, 16), 58_724_864,
     "ALBERT xlarge v2 (L24 H2048 E128, one shared layer), uncased English."),
    ("albert_xxlarge_v2", _albert(12, 4096, 64), 222_595_584,
     "ALBERT xxlarge v2 (L12 H4096 E128, one shared layer), uncased English."),
    ("albert_test_tiny",
     dict(vocab_size=100, num_layers=4, hidden_size=16, num_heads=2,
          intermediate_size=32, embedding_size=8, num_groups=2,
          max_sequence_length=32),
     5_952, "Tiny random ALBERT (4 layers, 2 groups) for tests (not published)."),
]

# ALBERT v2 on the Hub, and Google's TF1 archives (SentencePiece, lower-cased).
# base is pinned to the commit of main seen in public sources; for the
# others none was found and the handle follows main.
_REVISIONS = {"base": "@8e2f239c5f8a2c0f253781ca60135db913e5c80c"}
_WEIGHTS = {
    f"albert_{size}_v2": Weights(
        (f"hf://albert/albert-{size}-v2{_REVISIONS.get(size, '')}",
         f"https://storage.googleapis.com/albert_models/albert_{size}_v2.tar.gz"),
        lower_case=True)
    for size in ("base", "large", "xlarge", "xxlarge")
}

register_presets("albert", _PRESETS, _WEIGHTS)
