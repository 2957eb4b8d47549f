"""Named Transformer architectures: backbones per family and a registry."""

from zoo import albert, bert, distilbert, tinybert, vit  # registers the presets
from zoo.albert import AlbertBackbone
from zoo.bert import BertBackbone
from zoo.distilbert import DistilBertBackbone
from zoo.registry import Preset, available, build, families, get_preset
from zoo.tinybert import TinyBertBackbone
from zoo.vit import VitBackbone

__all__ = [
    "AlbertBackbone",
    "BertBackbone",
    "DistilBertBackbone",
    "Preset",
    "TinyBertBackbone",
    "VitBackbone",
    "available",
    "build",
    "families",
    "get_preset",
]
