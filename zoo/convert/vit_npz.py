"""Original ViT .npz checkpoints (google-research/vision_transformer, JAX/Flax names).

These files (`ViT-B_16.npz`, `imagenet21k/ViT-L_32.npz`, ...) hold only the
parameters, no config, so the architecture is read from the shapes:

  hidden size H, patch size P, channels C   `embedding/kernel` [P, P, C, H]
  layers            the `Transformer/encoderblock_{i}` names
  heads n           `.../MultiHeadDotProductAttention_1/query/kernel` [H, n, h]
  MLP size          `.../MlpBlock_3/Dense_0/kernel` [H, I]
  image size        sqrt(N) * P from `Transformer/posembed_input/pos_embedding`
                    [1, N + 1, H] (square images; the checkpoint's own size)
  representation_size  `pre_logits/kernel` [H, R], present in ImageNet-21k models
  classes           `head/kernel` [H or R, classes]

Fixed by the original code rather than the file: LayerNorm epsilon 1e-6 and
the activation, flax `nn.gelu`, whose default is the tanh approximation, so
the model uses "gelu_tanh". (timm and Hugging Face ports of the same weights
use the exact erf GELU; outputs differ at the ~1e-4 level.) Pixel
preprocessing (resize, scale to [-1, 1]) is not part of the backbone.

The head reads the class token after the final LayerNorm, or, when the file
has `pre_logits`, the backbone's `pooled_output` (tanh(pre_logits(cls))), as
the JAX model does.
"""

import math
import re
import zipfile

import numpy as np

from zoo.convert.assemble import build_and_load
from zoo.convert.table import ConversionError, Rule, identity

_BLOCK = "Transformer/encoderblock_{i}"
_ATTENTION = f"{_BLOCK}/MultiHeadDotProductAttention_1"
_LAYER = "transformer/layer_{i}"


def _merge_heads_out(kernel):
    """[H, n, h] -> [H, n*h] (query, key, value kernels)."""
    return kernel.reshape(kernel.shape[0], -1)


def _merge_heads_in(kernel):
    """[n, h, H] -> [n*h, H] (output kernel)."""
    return kernel.reshape(-1, kernel.shape[-1])


def _flatten(bias):
    """[n, h] -> [n*h] (query, key, value biases)."""
    return bias.reshape(-1)


def dense(source, target, kernel=identity, bias=identity):
    return [Rule(f"{source}/kernel", f"{target}/kernel", kernel),
            Rule(f"{source}/bias", f"{target}/bias", bias)]


def norm(source, target):
    return [Rule(f"{source}/scale", f"{target}/gamma"), Rule(f"{source}/bias", f"{target}/beta")]


VIT = (
    [Rule("cls", "embeddings/class_token"),
     Rule("Transformer/posembed_input/pos_embedding", "embeddings/position_embeddings")]
    + dense("embedding", "embeddings/projection")  # [P, P, C, H] is already Conv2D's layout
    + norm(f"{_BLOCK}/LayerNorm_0", f"{_LAYER}/attention_layer_norm")
    + dense(f"{_ATTENTION}/query", f"{_LAYER}/attention/query", _merge_heads_out, _flatten)
    + dense(f"{_ATTENTION}/key", f"{_LAYER}/attention/key", _merge_heads_out, _flatten)
    + dense(f"{_ATTENTION}/value", f"{_LAYER}/attention/value", _merge_heads_out, _flatten)
    + dense(f"{_ATTENTION}/out", f"{_LAYER}/attention/output", _merge_heads_in)
    + norm(f"{_BLOCK}/LayerNorm_2", f"{_LAYER}/output_layer_norm")
    + dense(f"{_BLOCK}/MlpBlock_3/Dense_0", f"{_LAYER}/intermediate")
    + dense(f"{_BLOCK}/MlpBlock_3/Dense_1", f"{_LAYER}/output")
    + norm("Transformer/encoder_norm", "layer_norm")
)
PRE_LOGITS = dense("pre_logits", "pooler")
HEAD = dense("head", "classifier")

_QUERY = f"{_ATTENTION}/query/kernel".format(i=0)
_MLP = f"{_BLOCK}/MlpBlock_3/Dense_0/kernel".format(i=0)
_POSITIONS = "Transformer/posembed_input/pos_embedding"
_REQUIRED = ("embedding/kernel", "cls", _POSITIONS, _QUERY, _MLP)


def read_npz(path):
    """name -> array of every entry in the .npz."""
    try:
        data = np.load(path)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ConversionError(f"{path} is not a readable .npz archive: {error}") from error
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ConversionError(f"{path} is not a readable .npz archive: it holds one array.")
    with data:
        return {name: data[name] for name in data.files}


def backbone_arguments(state, description):
    """VitBackbone arguments inferred from the shapes in `state`."""
    missing = [name for name in _REQUIRED if name not in state]
    if missing:
        found = sorted(state)[:10]
        raise ConversionError(
            f"{description} is not an original ViT .npz (google-research/vision_transformer): "
            f"missing {missing}. Expected {list(_REQUIRED)} among its keys; found "
            f"{found}{' ...' if len(state) > 10 else ''}. (Hybrid ResNet+ViT, Mixer and "
            "class-token-free 'gap' models are not supported.)"
        )
    kernel = state["embedding/kernel"]
    if kernel.ndim != 4 or kernel.shape[0] != kernel.shape[1]:
        raise ConversionError(f"embedding/kernel is {kernel.shape}; expected [P, P, C, H].")
    patch_size, _, num_channels, hidden_size = kernel.shape
    patches = state[_POSITIONS].shape[1] - 1
    side = math.isqrt(patches)
    if side * side != patches:
        raise ConversionError(f"{_POSITIONS} has {patches} patch positions (+1 class token): "
                              "not a square grid, so the image size cannot be inferred.")
    blocks = {int(m.group(1)) for name in state
              if (m := re.match(r"Transformer/encoderblock_(\d+)/", name))}
    arguments = dict(
        image_size=int(side * patch_size), patch_size=int(patch_size),
        num_channels=int(num_channels), hidden_size=int(hidden_size),
        num_layers=max(blocks) + 1, num_heads=int(state[_QUERY].shape[1]),
        intermediate_size=int(state[_MLP].shape[1]),
        activation="gelu_tanh", layer_norm_epsilon=1e-6, dropout=0.0, attention_dropout=0.0,
    )
    if "pre_logits/kernel" in state:
        arguments["representation_size"] = int(state["pre_logits/kernel"].shape[1])
    return arguments


def load_vit_npz(path, with_head=False, **overrides):
    """(model, LoadReport) from an original ViT .npz; see the module docstring."""
    description = f"ViT .npz {path}"
    state = read_npz(path)
    arguments = backbone_arguments(state, description)
    table = VIT + (PRE_LOGITS if "representation_size" in arguments else [])
    heads = ({}, [])
    if "head/kernel" in state:
        # 21k models classify the pre-logits pooler's output, others the class token.
        pooled = "representation_size" in arguments
        heads = (dict(classifier=dict(num_classes=int(state["head/kernel"].shape[1]),
                                      input="pooled" if pooled else "first_token",
                                      dropout=0.0)), HEAD)
    return build_and_load("vit", arguments, overrides, state, table, heads, with_head,
                          description=description)
