"""ELECTRA (Clark et al., 2020): BERT's post-LN blocks without a pooler; the
embeddings are `embedding_size` wide and projected to the hidden size when
the two differ, as in ALBERT. Discriminators and generators are both
ElectraBackbones: a generator's tables are as wide as its discriminator's,
which it shared in pretraining."""

import keras

from zoo.backbone import forwarded_arguments
from zoo.registry import Weights, register_family, register_presets
from zoo.text_backbone import TextBackbone


@keras.saving.register_keras_serializable(package="zoo")
class ElectraBackbone(TextBackbone):
    """ELECTRA encoder (a discriminator or a generator). embedding_size None:
    as wide as the hidden size, no projection. No pooled_output: ELECTRA's
    heads read the first token."""

    def __init__(
        self,
        vocab_size,
        num_layers,
        hidden_size,
        num_heads,
        intermediate_size,
        embedding_size=None,
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
        super().__init__(use_pooler=False, **forwarded_arguments(locals()))
        self._remember_arguments(locals())

    @classmethod
    def count_parameters(cls, vocab_size, num_layers, hidden_size, intermediate_size,
                         embedding_size=None, max_sequence_length=512, type_vocab_size=2, **_):
        return cls.text_parameters(
            vocab_size, num_layers, hidden_size, intermediate_size,
            max_sequence_length=max_sequence_length, type_vocab_size=type_vocab_size,
            embedding_size=embedding_size, use_pooler=False,
        )


register_family("electra", ElectraBackbone)


def _electra(num_layers, hidden_size, embedding_size=None):
    return dict(vocab_size=30522, num_layers=num_layers, hidden_size=hidden_size,
                num_heads=hidden_size // 64, intermediate_size=4 * hidden_size,
                embedding_size=embedding_size)


_PRESETS = [
    ("electra_small_discriminator", _electra(12, 256, embedding_size=128), 13_483_008,
     "ELECTRA small discriminator (L12 H256, embeddings 128), uncased English."),
    ("electra_base_discriminator", _electra(12, 768), 108_891_648,
     "ELECTRA base discriminator (L12 H768), uncased English."),
    ("electra_large_discriminator", _electra(24, 1024), 334_092_288,
     "ELECTRA large discriminator (L24 H1024), uncased English."),
    # The published generators: hidden 256 (a quarter of large, a third of
    # base, as wide as small), read the discriminator's embedding_size-wide
    # tables (they were shared in pretraining), so base and large project.
    ("electra_small_generator", _electra(12, 256, embedding_size=128), 13_483_008,
     "ELECTRA small generator (L12 H256, embeddings 128), uncased English: an MLM."),
    ("electra_base_generator", _electra(12, 256, embedding_size=768), 33_511_168,
     "ELECTRA base generator (L12 H256, embeddings 768), uncased English: an MLM."),
    ("electra_large_generator", _electra(24, 256, embedding_size=1024), 50_999_552,
     "ELECTRA large generator (L24 H256, embeddings 1024), uncased English: an MLM."),
    ("electra_test_tiny",
     dict(vocab_size=100, num_layers=2, hidden_size=16, num_heads=2, intermediate_size=32,
          embedding_size=8, max_sequence_length=32),
     5_680, "Tiny random ELECTRA (factorized embeddings) for tests (not a published model)."),
]

# No public commit of main was found for these repos: the handles follow main.
_WEIGHTS = {
    f"electra_{size}_{network}": Weights(
        (f"hf://google/electra-{size}-{network}",), lower_case=True)
    for size in ("small", "base", "large") for network in ("discriminator", "generator")
}

register_presets("electra", _PRESETS, _WEIGHTS)
