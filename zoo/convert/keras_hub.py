"""keras-hub presets: folders written by `backbone.save_to_preset(dir)`.

The weights file's keys come from layer classes and creation order, not
names, so the preset is read the way keras-hub reads it: keras-hub builds
its backbone, and its variables are mapped by their paths. keras-hub's BERT,
ALBERT and ELECTRA use the tanh GELU (transformers' ELECTRA the exact one)
and DistilBERT, ViT, DeiT, RoBERTa and XLM-RoBERTa the exact one; the converted
model uses the same, so outputs match keras-hub's.

keras-hub's RoBERTa and XLM-RoBERTa number positions from 0 whatever the
ids, in a table of max_sequence_length rows (its converter drops the
padding_id + 1 rows fairseq reserves); kerasbert's count the tokens that are
not padding from padding_id + 1, as fairseq and transformers do. The table
is loaded padding_id + 1 rows down (those rows zero, as fairseq's padding
row is), so every token before the first padding token gets the same row
as in keras-hub, and outputs are equal on right-padded inputs (what
keras-hub's preprocessors make) at every real token. They cannot be equal
at the padding slots (keras-hub gives them positions too, kerasbert
padding_id's row; no head reads them) nor after a padding id inside the
text (left padding), where kerasbert follows fairseq.
padding_id is the `<pad>` id of the preset's tokenizer vocabulary (1 for
RoBERTa's and, fixed, XLM-R's). keras-hub's ELECTRA has a `pooled_dense` that
ELECTRA itself (and kerasbert's backbone) does not: it is left out.
"""

import json
import os
import re

import numpy as np

from zoo.convert.assemble import build_and_load
from zoo.convert.table import ConversionError, Rule, identity

_CLASSES = {
    "keras_hub>BertBackbone": "bert",
    "keras_hub>AlbertBackbone": "albert",
    "keras_hub>DistilBertBackbone": "distilbert",
    "keras_hub>ViTBackbone": "vit",
    "keras_hub>DeiTBackbone": "deit",
    "keras_hub>RobertaBackbone": "roberta",
    "keras_hub>XLMRobertaBackbone": "xlm_roberta",
    "keras_hub>ElectraBackbone": "electra",
}


def is_keras_hub_preset(path):
    config = os.path.join(path, "config.json")
    if not (os.path.isdir(path) and os.path.exists(config)):
        return False
    with open(config) as file:
        registered = json.load(file).get("registered_name", "")
    return str(registered).startswith("keras_hub>")


def _merge_heads(x):
    return x.reshape(x.shape[0], -1) if x.ndim == 3 else x.reshape(-1)  # [H,n,h]/[n,h]


def _merge_output(x):
    return x.reshape(-1, x.shape[-1])  # [n, h, H] -> [H, H]


def _dense(source, target, kernel=identity, bias=identity):
    return [Rule(f"{source}/kernel", f"{target}/kernel", kernel),
            Rule(f"{source}/bias", f"{target}/bias", bias)]


def _norm(source, target):
    return [Rule(f"{source}/gamma", f"{target}/gamma"), Rule(f"{source}/beta", f"{target}/beta")]


def _block(names, target="transformer/layer_{i}"):
    table = []
    for ours in ("query", "key", "value"):
        table += _dense(names[ours], f"{target}/attention/{ours}", _merge_heads, _merge_heads)
    table += _dense(names["output"], f"{target}/attention/output", _merge_output)
    table += _norm(names["attention_layer_norm"], f"{target}/attention_layer_norm")
    table += _dense(names["intermediate"], f"{target}/intermediate")
    table += _dense(names["ffn_output"], f"{target}/output")
    table += _norm(names["output_layer_norm"], f"{target}/output_layer_norm")
    return table


def _encoder_block(layer):
    return _block({
        "query": f"{layer}/self_attention_layer/query",
        "key": f"{layer}/self_attention_layer/key",
        "value": f"{layer}/self_attention_layer/value",
        "output": f"{layer}/self_attention_layer/attention_output",
        "attention_layer_norm": f"{layer}/self_attention_layer_norm",
        "intermediate": f"{layer}/feedforward_intermediate_dense",
        "ffn_output": f"{layer}/feedforward_output_dense",
        "output_layer_norm": f"{layer}/feedforward_layer_norm",
    })


def _embedding(source, target):
    return [Rule(f"{source}/embeddings", f"embeddings/{target}/embeddings")]


_TEXT_EMBEDDINGS = (_embedding("token_embedding", "token_embedding")
                    + _embedding("segment_embedding", "segment_embedding")
                    + _embedding("position_embedding", "position_embedding")
                    + _norm("embeddings_layer_norm", "embeddings/layer_norm"))

TABLES = {
    "bert": _TEXT_EMBEDDINGS + _encoder_block("transformer_layer_{i}")
    + _dense("pooled_dense", "pooler"),
    "albert": _TEXT_EMBEDDINGS + _dense("embedding_projection", "embeddings/embedding_projection")
    + _encoder_block("group_{i}_inner_layer_0") + _dense("pooled_dense", "pooler"),
    "distilbert": _embedding("token_and_position_embedding/token_embedding", "token_embedding")
    + _embedding("token_and_position_embedding/position_embedding", "position_embedding")
    + _norm("embeddings_layer_norm", "embeddings/layer_norm")
    + _encoder_block("transformer_layer_{i}"),
    "vit": [
        Rule("vit_patching_and_embedding/class_token", "embeddings/class_token"),
        Rule("vit_patching_and_embedding/patch_embedding/kernel", "embeddings/projection/kernel"),
        Rule("vit_patching_and_embedding/patch_embedding/bias", "embeddings/projection/bias"),
        Rule("vit_patching_and_embedding/position_embedding/embeddings",
             "embeddings/position_embeddings", lambda x: x[None]),
    ] + _block({
        "query": "vit_encoder/layer_{i}/mha/query",
        "key": "vit_encoder/layer_{i}/mha/key",
        "value": "vit_encoder/layer_{i}/mha/value",
        "output": "vit_encoder/layer_{i}/mha/attention_output",
        "attention_layer_norm": "vit_encoder/layer_{i}/ln_1",
        "intermediate": "vit_encoder/layer_{i}/mlp/dense_1",
        "ffn_output": "vit_encoder/layer_{i}/mlp/dense_2",
        "output_layer_norm": "vit_encoder/layer_{i}/ln_2",
    }) + _norm("vit_encoder/ln", "layer_norm"),
}

# keras-hub's DeiTBackbone: tokens and positions as ours ([class, distillation,
# patches]); its blocks are numbered from 1 like ViT's (read_preset renumbers).
TABLES["deit"] = [
    Rule("deit_patching_and_embedding/class_token", "embeddings/class_token"),
    Rule("deit_patching_and_embedding/distillation_token", "embeddings/distillation_token"),
    Rule("deit_patching_and_embedding/position_embedding", "embeddings/position_embeddings"),
    Rule("deit_patching_and_embedding/patch_embedding/kernel", "embeddings/projection/kernel"),
    Rule("deit_patching_and_embedding/patch_embedding/bias", "embeddings/projection/bias"),
] + _block({
    "query": "deit_encoder/layer_{i}/mha/query",
    "key": "deit_encoder/layer_{i}/mha/key",
    "value": "deit_encoder/layer_{i}/mha/value",
    "output": "deit_encoder/layer_{i}/mha/attention_output",
    "attention_layer_norm": "deit_encoder/layer_{i}/ln_1",
    "intermediate": "deit_encoder/layer_{i}/mlp/dense",
    "ffn_output": "deit_encoder/layer_{i}/output_layer/output",
    "output_layer_norm": "deit_encoder/layer_{i}/ln_2",
}) + _norm("deit_encoder/ln", "layer_norm")


def roberta_table(padding_id=1):
    """keras-hub RoBERTa / XLM-RoBERTa: positions padding_id + 1 rows down (see
    the module docstring); the one segment row zero, as keras-hub adds none."""
    def fairseq_positions(rows):
        return np.concatenate([np.zeros((padding_id + 1, rows.shape[1]), rows.dtype), rows])

    def no_segments(token_table):
        return np.zeros((1, token_table.shape[1]), token_table.dtype)

    return ([Rule("embeddings/token_embedding/embeddings", "embeddings/token_embedding/embeddings"),
             Rule("embeddings/token_embedding/embeddings",
                  "embeddings/segment_embedding/embeddings", no_segments),
             Rule("embeddings/position_embedding/embeddings",
                  "embeddings/position_embedding/embeddings", fairseq_positions)]
            + _norm("embeddings_layer_norm", "embeddings/layer_norm")
            + _encoder_block("transformer_layer_{i}"))


def electra_table(projected=True):
    """keras-hub ELECTRA: BERT's names, the projection only when E != H."""
    return (_TEXT_EMBEDDINGS
            + (_dense("embeddings_projection", "embeddings/embedding_projection")
               if projected else [])
            + _encoder_block("transformer_layer_{i}"))


def table(family, arguments):
    """The rules for a preset of `family` built with `arguments`."""
    if family in ("roberta", "xlm_roberta"):
        return roberta_table(arguments["padding_id"])
    if family == "electra":
        return electra_table(arguments["embedding_size"] is not None)
    return TABLES[family]


def _require(condition, message):
    if not condition:
        raise ConversionError(message)


def backbone_arguments(family, c, padding_id=1):
    """kerasbert constructor arguments from a keras-hub backbone config
    (padding_id: RoBERTa's, from the preset's tokenizer; see `preset_padding_id`)."""
    if family == "deit":  # keras-hub's DeiT: exact GELU (keras' "gelu"), as ours
        patch = tuple(c["patch_size"]) if isinstance(c["patch_size"], (list, tuple)) else (
            c["patch_size"], c["patch_size"])
        _require(patch[0] == patch[1], "keras-hub DeiT with non-square patches is not supported.")
        _require(c.get("use_mha_bias", True) and c.get("data_format") in (None, "channels_last"),
                 "keras-hub DeiT without attention biases or with channels_first images is "
                 "not supported.")
        return dict(
            image_size=tuple(c["image_shape"][:2]), num_channels=c["image_shape"][2],
            patch_size=patch[0], num_layers=c["num_layers"], hidden_size=c["hidden_dim"],
            num_heads=c["num_heads"], intermediate_size=c["intermediate_dim"], activation="gelu",
            dropout=c.get("dropout_rate", 0.0), attention_dropout=c.get("attention_dropout", 0.0),
            layer_norm_epsilon=c.get("layer_norm_epsilon", 1e-6),
        )
    if family == "vit":
        patch = c["patch_size"]
        patch = patch if isinstance(patch, int) else patch[0]
        _require(c.get("use_class_token", True) and c.get("use_mha_bias", True)
                 and c.get("use_mlp_bias", True) and c.get("use_patch_bias", True),
                 "keras-hub ViT without class token or biases is not supported.")
        _require(isinstance(c["patch_size"], int) or c["patch_size"][0] == c["patch_size"][1],
                 "keras-hub ViT with non-square patches is not supported.")
        return dict(
            image_size=tuple(c["image_shape"][:2]), num_channels=c["image_shape"][2],
            patch_size=patch, num_layers=c["num_layers"], hidden_size=c["hidden_dim"],
            num_heads=c["num_heads"], intermediate_size=c["mlp_dim"], activation="gelu",
            dropout=c.get("dropout_rate", 0.0), attention_dropout=c.get("attention_dropout", 0.0),
            layer_norm_epsilon=c.get("layer_norm_epsilon", 1e-6),
        )
    exact_gelu = family in ("distilbert", "roberta", "xlm_roberta")
    arguments = dict(
        # ELECTRA's config says vocab_size, the others vocabulary_size.
        vocab_size=c["vocab_size"] if family == "electra" else c["vocabulary_size"],
        num_layers=c["num_layers"], hidden_size=c["hidden_dim"],
        num_heads=c["num_heads"], intermediate_size=c["intermediate_dim"],
        dropout=c.get("dropout", 0.1), attention_dropout=c.get("dropout", 0.1),
        max_sequence_length=c.get("max_sequence_length", 512),
        activation="gelu" if exact_gelu else "gelu_tanh",
    )
    if family in ("roberta", "xlm_roberta"):
        arguments.update(padding_id=padding_id, layer_norm_epsilon=1e-5)
        return arguments
    if family != "distilbert":
        arguments["type_vocab_size"] = c.get("num_segments", 2)
    if family == "electra":  # a projection only when the widths differ, as keras-hub has it
        arguments["embedding_size"] = (None if c["embedding_dim"] == c["hidden_dim"]
                                       else c["embedding_dim"])
    if family == "albert":
        _require(c.get("num_inner_repetitions", 1) == 1,
                 "keras-hub ALBERT with num_inner_repetitions != 1 is not supported.")
        arguments.update(embedding_size=c["embedding_dim"], num_groups=c["num_groups"])
    return arguments


def read_preset(path):
    """(family, keras-hub config, variable path -> array) of a preset folder."""
    try:
        import keras_hub
    except ImportError:
        raise ImportError("Reading a keras-hub preset needs keras-hub: "
                          "pip install keras-hub==0.32.*") from None
    with open(os.path.join(path, "config.json")) as file:
        registered = json.load(file)["registered_name"]
    if registered not in _CLASSES:
        raise ConversionError(f"{path}: keras-hub class {registered} is not supported; "
                              f"zoo.load reads {', '.join(sorted(_CLASSES))}.")
    # An absolute path: a bare name like a built-in preset would go to Kaggle.
    backbone = keras_hub.models.Backbone.from_preset(os.path.abspath(path))
    state = {}
    for variable in backbone.weights:
        # ViT blocks are numbered from 1 (transformer_block_1); ours from 0.
        name = re.sub(r"transformer_block_(\d+)",
                      lambda m: f"layer_{int(m.group(1)) - 1}", variable.path)
        state[name] = np.asarray(variable.numpy())
    return _CLASSES[registered], backbone.get_config(), state


_ELECTRA_POOLER = [("pooled_dense/*", "keras-hub's ELECTRA pooler: ELECTRA has none (its "
                    "heads read the first token), nor has kerasbert's")]


def preset_padding_id(path, family):
    """RoBERTa's padding id: `<pad>` in the preset's byte-level BPE vocabulary
    (assets/tokenizer/vocabulary.json), else 1 (RoBERTa's; XLM-R's is always 1,
    keras-hub's XLMRobertaTokenizer fixes the fairseq ids)."""
    vocabulary = os.path.join(path, "assets", "tokenizer", "vocabulary.json")
    if family != "roberta" or not os.path.exists(vocabulary):
        return 1
    with open(vocabulary, encoding="utf-8") as file:
        return json.load(file).get("<pad>", 1)


def load_keras_hub(path, with_head=False, **overrides):
    """(model, LoadReport) from a keras-hub preset folder."""
    family, config, state = read_preset(path)
    arguments = backbone_arguments(family, config, padding_id=preset_padding_id(path, family))
    fairseq = family in ("roberta", "xlm_roberta")
    model, report = build_and_load(family, arguments, overrides, state,
                                   table(family, {**arguments, **overrides}),
                                   with_head=with_head,
                                   left_out=_ELECTRA_POOLER if family == "electra" else (),
                                   description=f"keras-hub preset {path}",
                                   keep_initialised=("pooler/",) if fairseq else ())
    if fairseq:
        report.left_out.append(("pooler", "keras-hub's RoBERTa has none (its classifier reads "
                                "the first token): the pooler keeps its random "
                                "initialisation, as transformers' does without one"))
    if os.path.exists(os.path.join(path, "task.json")):
        report.left_out.append(("task.weights.h5", "keras-hub task heads are not loaded"))
    return model, report
