"""Named Transformer architectures: backbones per family and a registry."""

from zoo import (albert, bert, deit, distilbert, electra, roberta,  # noqa: F401 (presets)
                 tinybert, vit)
from zoo import hub, pretrained
from zoo.albert import AlbertBackbone
from zoo.bert import BertBackbone
from zoo.deit import DeitBackbone
from zoo.distilbert import DistilBertBackbone
from zoo.electra import ElectraBackbone
from zoo.heads import BackboneWithHeads
from zoo.loading import load
from zoo.pretrained import resolve
from zoo.publish import push_to_hub
from zoo.preprocessing import load_preprocessor, save_tokenizer
from zoo.registry import Preset, Weights, available, build, families, get_preset
from zoo.roberta import RobertaBackbone, XlmRobertaBackbone
from zoo.sentence_encoder import SentenceEncoder
from zoo.tinybert import TinyBertBackbone
from zoo.vit import VitBackbone

__all__ = [
    "AlbertBackbone",
    "BackboneWithHeads",
    "BertBackbone",
    "DeitBackbone",
    "DistilBertBackbone",
    "ElectraBackbone",
    "Preset",
    "RobertaBackbone",
    "SentenceEncoder",
    "TinyBertBackbone",
    "VitBackbone",
    "XlmRobertaBackbone",
    "Weights",
    "available",
    "build",
    "families",
    "get_preset",
    "hub",
    "pretrained",
    "load",
    "load_preprocessor",
    "push_to_hub",
    "resolve",
    "save_tokenizer",
    "save_hf",
]


def save_hf(model, out_dir):
    """Writes a backbone (or BackboneWithHeads) as a Hugging Face folder."""
    from zoo.convert.hf import save_hf as _save_hf

    if isinstance(model, SentenceEncoder):
        raise ValueError("zoo.save_hf writes a Hugging Face model folder, which has no place "
                         "for a sentence encoder's pooling and normalization: save "
                         "encoder.backbone with it, or the whole encoder with encoder.save("
                         "'encoder.keras').")
    return _save_hf(model, out_dir)
