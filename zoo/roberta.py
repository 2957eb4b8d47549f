"""RoBERTa (Liu et al., 2019): BERT's post-LN encoder, trained without NSP on
byte-level BPE text. Differences from BERT a checkpoint depends on: positions
count from padding_id + 1 (fairseq; padding tokens take position padding_id),
one segment row added to every token, layer-norm epsilon 1e-5."""

import keras

from zoo.backbone import forwarded_arguments
from zoo.registry import Weights, register_family, register_presets
from zoo.text_backbone import TextBackbone


@keras.saving.register_keras_serializable(package="zoo")
class RobertaBackbone(TextBackbone):
    """RoBERTa encoder. max_sequence_length counts usable positions (512 for
    the published models, whose position table has 514 rows); `input_type_ids`
    are accepted and ignored (the one segment row is added everywhere)."""

    # Hugging Face's RobertaModel has a pooler, kept so checkpoints load whole;
    # fairseq trained none, so sentence-level heads read `<s>` as HF's do.
    pooler_is_trained = False

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
        padding_id=1,
        layer_norm_epsilon=1e-5,
        output_embeddings=False,
        return_attention_scores=False,
        dtype=None,
        **kwargs,
    ):
        super().__init__(type_vocab_size=1, **forwarded_arguments(locals()))
        self._remember_arguments(locals())

    @staticmethod
    def vocabulary_arguments(vocabulary):
        # fairseq positions count from the padding id of the vocabulary in use.
        return {"vocab_size": vocabulary.size, "padding_id": vocabulary.id_of("pad")}

    @classmethod
    def count_parameters(cls, vocab_size, num_layers, hidden_size, intermediate_size,
                         max_sequence_length=512, padding_id=1, **_):
        return cls.text_parameters(
            vocab_size, num_layers, hidden_size, intermediate_size,
            max_sequence_length=max_sequence_length + padding_id + 1, type_vocab_size=1,
        )


@keras.saving.register_keras_serializable(package="zoo")
class XlmRobertaBackbone(RobertaBackbone):
    """XLM-RoBERTa (Conneau et al., 2019): RoBERTa's architecture over a
    250k SentencePiece vocabulary in 100 languages (fairseq ids); its own class
    so checkpoints are written back as XLM-RoBERTa."""


register_family("roberta", RobertaBackbone)
register_family("xlm_roberta", XlmRobertaBackbone)


def _roberta(num_layers, hidden_size):
    return dict(vocab_size=50265, num_layers=num_layers, hidden_size=hidden_size,
                num_heads=hidden_size // 64, intermediate_size=4 * hidden_size)


_PRESETS = [
    ("roberta_base", _roberta(12, 768), 124_645_632,
     "RoBERTa base (L12 H768), English, byte-level BPE."),
    ("roberta_large", _roberta(24, 1024), 355_359_744,
     "RoBERTa large (L24 H1024), English, byte-level BPE."),
    ("distilroberta_base", _roberta(6, 768), 82_118_400,
     "DistilRoBERTa base (L6 H768), distilled from RoBERTa base."),
    ("roberta_test_tiny",
     dict(vocab_size=100, num_layers=2, hidden_size=16, num_heads=2, intermediate_size=32,
          max_sequence_length=32),
     6_912, "Tiny random RoBERTa for tests and demos (not a published model)."),
]

# No public commit of main was found for these repos: the handles follow main.
_WEIGHTS = {
    "roberta_base": Weights(("hf://FacebookAI/roberta-base",)),
    "roberta_large": Weights(("hf://FacebookAI/roberta-large",)),
    "distilroberta_base": Weights(("hf://distilbert/distilroberta-base",)),
}

register_presets("roberta", _PRESETS, _WEIGHTS)


def _xlm_roberta(num_layers, hidden_size):
    return dict(_roberta(num_layers, hidden_size), vocab_size=250002)


register_presets("xlm_roberta", [
    ("xlm_roberta_base", _xlm_roberta(12, 768), 278_043_648,
     "XLM-RoBERTa base (L12 H768), 100 languages, SentencePiece."),
    ("xlm_roberta_large", _xlm_roberta(24, 1024), 559_890_432,
     "XLM-RoBERTa large (L24 H1024), 100 languages, SentencePiece."),
], {
    "xlm_roberta_base": Weights(("hf://FacebookAI/xlm-roberta-base",)),
    "xlm_roberta_large": Weights(("hf://FacebookAI/xlm-roberta-large",)),
})
