"""Keras 3 building blocks of Transformer encoders."""

from kerasbert.layers.activations import get_activation
from kerasbert.layers.attention import MultiHeadAttention
from kerasbert.layers.choices import FlattenChoices, MultipleChoiceHead
from kerasbert.layers.embeddings import (
    PatchEmbeddings,
    SharedTextEmbeddings,
    TextEmbeddings,
    interpolate_position_embeddings,
)
from kerasbert.layers.encoder import TransformerBlock, TransformerStack
from kerasbert.layers.heads import ClassificationHead, MaskedLMHead, Pooler, SpanHead
from kerasbert.layers.pooling import FeaturePooling
from kerasbert.layers.pretraining import PredictionSlots, TiedMaskedLMHead
from kerasbert.layers.whitening import Whitening

__all__ = [
    "FeaturePooling",
    "FlattenChoices",
    "MultipleChoiceHead",
    "PredictionSlots",
    "TiedMaskedLMHead",
    "ClassificationHead",
    "SpanHead",
    "MaskedLMHead",
    "MultiHeadAttention",
    "PatchEmbeddings",
    "SharedTextEmbeddings",
    "Pooler",
    "TextEmbeddings",
    "TransformerBlock",
    "TransformerStack",
    "Whitening",
    "get_activation",
    "interpolate_position_embeddings",
]
