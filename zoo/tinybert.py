"""TinyBERT (Jiao et al., 2019) students: BERT-shaped, plus `fit_dense`.

`fit_dense` projects the student's hidden states to the teacher's width for
the hidden-state distillation loss. It exists only when
`teacher_hidden_size` is set; published parameter counts exclude it, as
Hugging Face's BertModel does.
"""

import keras

from zoo.registry import Weights, register_family, register_presets
from zoo.backbone import dense_parameters, forwarded_arguments
from zoo.text_backbone import TextBackbone


@keras.saving.register_keras_serializable(package="zoo")
class TinyBertBackbone(TextBackbone):
    """BERT-shaped student. With `teacher_hidden_size`, adds the output
    `fit_dense_outputs`: every entry of `encoder_outputs` projected by the
    shared `fit_dense` layer to the teacher's width."""

    def __init__(
        self,
        vocab_size,
        num_layers,
        hidden_size,
        num_heads,
        intermediate_size,
        teacher_hidden_size=None,
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
        def fit_dense_outputs(outputs):
            if teacher_hidden_size is None:
                return {}
            fit_dense = keras.layers.Dense(
                teacher_hidden_size, dtype=dtype, name="fit_dense"
            )
            return {
                "fit_dense_outputs": [fit_dense(x) for x in outputs["encoder_outputs"]]
            }

        super().__init__(
            **forwarded_arguments(locals(), drop=("teacher_hidden_size", "fit_dense_outputs")),
            extra_outputs=fit_dense_outputs,
        )
        self._remember_arguments(locals())

    @classmethod
    def count_parameters(cls, vocab_size, num_layers, hidden_size, intermediate_size,
                         teacher_hidden_size=None, max_sequence_length=512,
                         type_vocab_size=2, **_):
        count = cls.text_parameters(
            vocab_size, num_layers, hidden_size, intermediate_size,
            max_sequence_length=max_sequence_length, type_vocab_size=type_vocab_size,
        )
        if teacher_hidden_size is not None:
            count += dense_parameters(hidden_size, teacher_hidden_size)
        return count


register_family("tinybert", TinyBertBackbone)

_PRESETS = [
    ("tinybert_4l_312d",
     dict(vocab_size=30522, num_layers=4, hidden_size=312, num_heads=12,
          intermediate_size=1200),
     14_350_248,
     "TinyBERT general student (L4 H312 I1200), uncased English."),
    ("tinybert_6l_768d",
     dict(vocab_size=30522, num_layers=6, hidden_size=768, num_heads=12,
          intermediate_size=3072),
     66_955_008,
     "TinyBERT general student (L6 H768), uncased English."),
    ("tinybert_test_tiny",
     dict(vocab_size=100, num_layers=2, hidden_size=8, num_heads=2,
          intermediate_size=16, max_sequence_length=32),
     2_360, "Tiny random TinyBERT student for tests (not a published model)."),
]

# Huawei's general-distillation students (before task distillation).
# Pinned to the commit of main seen in public sources.
_WEIGHTS = {
    "tinybert_4l_312d": Weights(
        ("hf://huawei-noah/TinyBERT_General_4L_312D@4d2f8cf0079689fb3a1e27972aa29ec4c171ceed",),
        lower_case=True),
    "tinybert_6l_768d": Weights(
        ("hf://huawei-noah/TinyBERT_General_6L_768D@8b6152f3be8ab89055dea2d040cebb9591d97ef6",),
        lower_case=True),
}

register_presets("tinybert", _PRESETS, _WEIGHTS)
