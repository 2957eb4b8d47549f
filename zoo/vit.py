"""ViT (Dosovitskiy et al., 2020): pre-LN encoder over image patches.

Forward pass: images -> embeddings (patches by a strided convolution, class
token, position embeddings) -> transformer (pre-LN blocks) -> layer_norm ->
sequence_output; pooled_output is the class token after the final LN (or,
with `representation_size`, a dense + tanh of it: HF `pooler`, JAX
`pre_logits`).
"""

import keras

from kerasbert.layers import PatchEmbeddings, Pooler, TransformerStack
from kerasbert.layers.precision import norm_policy
from zoo.backbone import Backbone, block_parameters, dense_parameters
from zoo.registry import Weights, register_family, register_presets


@keras.saving.register_keras_serializable(package="zoo")
class VitBackbone(Backbone):
    """Vision Transformer encoder.

    Input `images`: float32 [batch, height, width, channels], already
    resized to `image_size` and normalized. Outputs `sequence_output`,
    `pooled_output`, `encoder_outputs` (before the final LN), and attention
    scores/probabilities when asked.
    """

    # DeiT (zoo.deit) is this encoder with a distillation token after the
    # class token; its subclass sets this instead of copying the wiring.
    distillation_token = False

    def __init__(
        self,
        image_size,
        patch_size,
        num_layers,
        hidden_size,
        num_heads,
        intermediate_size,
        num_channels=3,
        activation="gelu",
        dropout=0.0,
        attention_dropout=0.0,
        layer_norm_epsilon=1e-12,
        representation_size=None,
        output_embeddings=False,
        return_attention_scores=False,
        dtype=None,
        **kwargs,
    ):
        image_size = tuple(image_size) if isinstance(image_size, (list, tuple)) else (
            image_size, image_size)
        images = keras.Input(shape=image_size + (num_channels,), name="images")
        distilled = type(self).distillation_token
        x = PatchEmbeddings(
            hidden_size, patch_size, image_size=image_size, num_channels=num_channels,
            dropout=dropout, distillation_token=distilled, dtype=dtype, name="embeddings",
        )(images)
        encoded = TransformerStack(
            num_layers,
            num_heads=num_heads,
            intermediate_size=intermediate_size,
            activation=activation,
            dropout=dropout,
            attention_dropout=attention_dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            norm_first=True,
            dtype=dtype,
            name="transformer",
        )(x, return_attention_scores=return_attention_scores)
        hidden_states = encoded["hidden_states"]
        sequence_output = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=norm_policy(dtype), name="layer_norm"
        )(hidden_states[-1])
        if representation_size is None:
            pooled_output = sequence_output[:, 0, :]
        else:
            pooled_output = Pooler(representation_size, dtype=dtype, name="pooler")(
                sequence_output
            )
        outputs = {
            "sequence_output": sequence_output,
            "pooled_output": pooled_output,
            "encoder_outputs": ([x] if output_embeddings else []) + hidden_states,
        }
        if distilled:  # the distillation token after the final LN (no pooler)
            outputs["distillation_output"] = sequence_output[:, 1, :]
        if return_attention_scores:
            outputs["attention_scores"] = encoded["attention_scores"]
            outputs["attention_probs"] = encoded["attention_probs"]
        super().__init__(inputs=images, outputs=outputs, dtype=dtype, **kwargs)
        self._remember_arguments(locals())

    @staticmethod
    def count_parameters(image_size, patch_size, num_layers, hidden_size,
                         intermediate_size, num_channels=3, representation_size=None, **_):
        height, width = image_size if isinstance(image_size, (list, tuple)) else (
            image_size, image_size)
        patches = (height // patch_size) * (width // patch_size)
        count = dense_parameters(patch_size * patch_size * num_channels, hidden_size)
        count += hidden_size * (1 + 1 + patches)  # class token + positions
        count += num_layers * block_parameters(hidden_size, intermediate_size)
        count += 2 * hidden_size  # final layer norm
        if representation_size is not None:
            count += dense_parameters(hidden_size, representation_size)
        return count


register_family("vit", VitBackbone)


def _vit(patch_size, num_layers, hidden_size, num_heads):
    return dict(
        image_size=224,
        patch_size=patch_size,
        num_layers=num_layers,
        hidden_size=hidden_size,
        num_heads=num_heads,
        intermediate_size=4 * hidden_size,
    )


_PRESETS = [
    ("vit_base_patch16_224", _vit(16, 12, 768, 12), 85_798_656,
     "ViT-B/16 at 224x224, ImageNet-21k pretrained, ImageNet-1k fine-tuned."),
    ("vit_base_patch32_224", _vit(32, 12, 768, 12), 87_455_232,
     "ViT-B/32 at 224x224 (published weights: ImageNet-21k, with pre-logits)."),
    ("vit_large_patch16_224", _vit(16, 24, 1024, 16), 303_301_632,
     "ViT-L/16 at 224x224, ImageNet-21k pretrained, ImageNet-1k fine-tuned."),
    ("vit_large_patch32_224", _vit(32, 24, 1024, 16), 305_510_400,
     "ViT-L/32 at 224x224 (published weights: ImageNet-21k, with pre-logits)."),
    ("vit_huge_patch14_224", _vit(14, 32, 1280, 16), 630_764_800,
     "ViT-H/14 at 224x224 (published weights: ImageNet-21k, with pre-logits)."),
    ("vit_tiny_patch2_8",
     dict(image_size=8, patch_size=2, num_channels=1, num_layers=4, hidden_size=64,
          num_heads=4, intermediate_size=128, dropout=0.1),
     135_488, "Small ViT for 8x8 grayscale images (scikit-learn digits): the runner's default."),
    ("vit_test_tiny",
     dict(image_size=32, patch_size=8, num_layers=2, hidden_size=16, num_heads=2,
          intermediate_size=32),
     7_856, "Tiny random ViT (32x32 images, 8x8 patches) for tests (not published)."),
]

_VIT_21K = "https://storage.googleapis.com/vit_models/imagenet21k/"

# B/16 and L/16: ImageNet-1k fine-tuned at 224 (Hugging Face's conversions).
# B/32, L/32 and H/14 are published at 224 only as ImageNet-21k pretraining,
# with the pre-logits layer (a pooler, representation_size = hidden size):
# the Hub's conversion first, then Google's original .npz. B/16 is pinned to
# the commit of main seen in public sources; for the others none was found.
_WEIGHTS = {
    "vit_base_patch16_224": Weights(
        ("hf://google/vit-base-patch16-224@3f49326eb077187dfe1c2a2bb15fbd74e6ab91e3",)),
    "vit_large_patch16_224": Weights(("hf://google/vit-large-patch16-224",)),
    "vit_base_patch32_224": Weights(("hf://google/vit-base-patch32-224-in21k",
                                     f"{_VIT_21K}ViT-B_32.npz")),
    "vit_large_patch32_224": Weights(("hf://google/vit-large-patch32-224-in21k",
                                      f"{_VIT_21K}ViT-L_32.npz")),
    "vit_huge_patch14_224": Weights(("hf://google/vit-huge-patch14-224-in21k",
                                     f"{_VIT_21K}ViT-H_14.npz")),
}

register_presets("vit", _PRESETS, _WEIGHTS)
