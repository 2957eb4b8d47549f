"""DeiT (Touvron et al., 2021): ViT with a distillation token.

Forward pass: ViT's (zoo.vit), with a second learned token after the class
token: [class, distillation, patches] + position embeddings (patches + 2
rows) -> pre-LN blocks -> layer_norm -> sequence_output. pooled_output is
the class token after the final LN (or, with `representation_size`, HF
DeiTModel's dense + tanh pooler on it); distillation_output is the
distillation token after the final LN, which a DeiT's second head reads.

Presets: the distilled DeiTs (Hugging Face DeiTForImageClassificationWithTeacher)
are this family. The non-distilled ones (facebook/deit-*-patch16-224) have no
distillation token: they are ViTs trained with DeiT's recipe, published as
ViTForImageClassification, so their presets build a VitBackbone.
"""

import keras
import numpy as np

from zoo.registry import Weights, register_family, register_presets
from zoo.vit import VitBackbone


@keras.saving.register_keras_serializable(package="zoo")
class DeitBackbone(VitBackbone):
    """Data-efficient image Transformer encoder: VitBackbone's arguments,
    inputs and outputs, plus `distillation_output` [batch, H]."""

    distillation_token = True

    @staticmethod
    def count_parameters(hidden_size, **arguments):
        # ViT's count plus the distillation token and its position row.
        return VitBackbone.count_parameters(hidden_size=hidden_size, **arguments) + 2 * hidden_size


register_family("deit", DeitBackbone)


def from_vit(backbone, **overrides):
    """A DeitBackbone with `backbone`'s (a VitBackbone's) weights and a new
    distillation token: the class token's value and position, a start for
    training a ViT checkpoint as a DeiT student."""
    if type(backbone) is not VitBackbone:
        raise ValueError(f"from_vit takes a VitBackbone, not a {type(backbone).__name__}.")
    config = {**backbone.get_config(), **overrides}
    config["name"] = overrides.get("name", f"{backbone.name}_deit")
    deit = DeitBackbone.from_config(config)
    for layer in backbone.layers:
        if layer.weights and layer.name != "embeddings":
            deit.get_layer(layer.name).set_weights(layer.get_weights())
    source, target = backbone.get_layer("embeddings"), deit.get_layer("embeddings")
    target.projection.set_weights(source.projection.get_weights())
    class_token = source.class_token.numpy()
    positions = source.position_embeddings.numpy()
    target.class_token.assign(class_token)
    target.distillation_token_embedding.assign(class_token)
    target.position_embeddings.assign(np.concatenate([positions[:, :1], positions], axis=1))
    return deit


def _deit(hidden_size, num_heads):
    return dict(image_size=224, patch_size=16, num_layers=12, hidden_size=hidden_size,
                num_heads=num_heads, intermediate_size=4 * hidden_size)


_SIZES = {"tiny": ("Ti", 192, 3), "small": ("S", 384, 6), "base": ("B", 768, 12)}
_DISTILLED = [
    ("deit_tiny_distilled_patch16_224", _deit(192, 3), 5_524_800),
    ("deit_small_distilled_patch16_224", _deit(384, 6), 21_666_432),
    ("deit_base_distilled_patch16_224", _deit(768, 12), 85_800_192),
]
_PLAIN = [
    ("deit_tiny_patch16_224", _deit(192, 3), 5_524_416),
    ("deit_small_patch16_224", _deit(384, 6), 21_665_664),
    ("deit_base_patch16_224", _deit(768, 12), 85_798_656),
]


def _description(name, distilled):
    short = _SIZES[name.split("_")[1]][0]
    if distilled:
        return (f"DeiT-{short}/16 distilled at 224x224, ImageNet-1k (class and distillation "
                "heads; RegNetY teacher).")
    return (f"DeiT-{short}/16 at 224x224, ImageNet-1k, no distillation token (a ViT: "
            "published as ViTForImageClassification).")


_WEIGHTS = {name: Weights((f"hf://facebook/{name.replace('_', '-')}",))
            for name, _, _ in _DISTILLED + _PLAIN}

register_presets("deit", [
    (name, arguments, parameters, _description(name, True))
    for name, arguments, parameters in _DISTILLED
] + [
    ("deit_tiny_patch2_8",
     dict(image_size=8, patch_size=2, num_channels=1, num_layers=4, hidden_size=64,
          num_heads=4, intermediate_size=128, dropout=0.1),
     135_616, "Small DeiT for 8x8 grayscale images (scikit-learn digits): distill_deit's "
     "default student."),
    ("deit_test_tiny",
     dict(image_size=32, patch_size=8, num_layers=2, hidden_size=16, num_heads=2,
          intermediate_size=32),
     7_888, "Tiny random DeiT (32x32 images, 8x8 patches) for tests (not published)."),
], {name: _WEIGHTS[name] for name, _, _ in _DISTILLED})

register_presets("vit", [(name, arguments, parameters, _description(name, False))
                         for name, arguments, parameters in _PLAIN],
                 {name: _WEIGHTS[name] for name, _, _ in _PLAIN})
