"""Hugging Face state-dict names <-> kerasbert variables, one table per family.

Source names are the base model's (prefix `bert.`/`albert.`/... removed;
LayerNorm `gamma`/`beta` renamed `weight`/`bias`). PyTorch Linear weights are
[out, in] and are transposed into Keras kernels.
"""

import numpy as np

from zoo.convert.table import Rule, transpose


def dense(source, target):
    return [Rule(f"{source}.weight", f"{target}/kernel", transpose),
            Rule(f"{source}.bias", f"{target}/bias")]


def norm(source, target):
    return [Rule(f"{source}.weight", f"{target}/gamma"),
            Rule(f"{source}.bias", f"{target}/beta")]


def embedding(source, target):
    return [Rule(f"{source}.weight", f"embeddings/{target}/embeddings")]


def _block(source_names, target="transformer/layer_{i}"):
    """A TransformerBlock from {our sublayer: source prefix}."""
    table = []
    for ours in ("query", "key", "value", "output"):
        table += dense(source_names[f"attention/{ours}"], f"{target}/attention/{ours}")
    table += norm(source_names["attention_layer_norm"], f"{target}/attention_layer_norm")
    table += dense(source_names["intermediate"], f"{target}/intermediate")
    table += dense(source_names["output"], f"{target}/output")
    table += norm(source_names["output_layer_norm"], f"{target}/output_layer_norm")
    return table


BERT = (
    embedding("embeddings.word_embeddings", "token_embedding")
    + embedding("embeddings.token_type_embeddings", "segment_embedding")
    + embedding("embeddings.position_embeddings", "position_embedding")
    + norm("embeddings.LayerNorm", "embeddings/layer_norm")
    + _block({
        "attention/query": "encoder.layer.{i}.attention.self.query",
        "attention/key": "encoder.layer.{i}.attention.self.key",
        "attention/value": "encoder.layer.{i}.attention.self.value",
        "attention/output": "encoder.layer.{i}.attention.output.dense",
        "attention_layer_norm": "encoder.layer.{i}.attention.output.LayerNorm",
        "intermediate": "encoder.layer.{i}.intermediate.dense",
        "output": "encoder.layer.{i}.output.dense",
        "output_layer_norm": "encoder.layer.{i}.output.LayerNorm",
    })
    + dense("pooler.dense", "pooler")
)

TINYBERT = BERT + dense("fit_dense", "fit_dense")

_ALBERT_LAYER = "encoder.albert_layer_groups.{i}.albert_layers.0"
ALBERT = (  # {i} runs over groups, not layers
    embedding("embeddings.word_embeddings", "token_embedding")
    + embedding("embeddings.token_type_embeddings", "segment_embedding")
    + embedding("embeddings.position_embeddings", "position_embedding")
    + norm("embeddings.LayerNorm", "embeddings/layer_norm")
    + dense("encoder.embedding_hidden_mapping_in", "embeddings/embedding_projection")
    + _block({
        "attention/query": f"{_ALBERT_LAYER}.attention.query",
        "attention/key": f"{_ALBERT_LAYER}.attention.key",
        "attention/value": f"{_ALBERT_LAYER}.attention.value",
        "attention/output": f"{_ALBERT_LAYER}.attention.dense",
        "attention_layer_norm": f"{_ALBERT_LAYER}.attention.LayerNorm",
        "intermediate": f"{_ALBERT_LAYER}.ffn",
        "output": f"{_ALBERT_LAYER}.ffn_output",
        "output_layer_norm": f"{_ALBERT_LAYER}.full_layer_layer_norm",
    })
    + dense("pooler", "pooler")
)

DISTILBERT = (
    embedding("embeddings.word_embeddings", "token_embedding")
    + embedding("embeddings.position_embeddings", "position_embedding")
    + norm("embeddings.LayerNorm", "embeddings/layer_norm")
    + _block({
        "attention/query": "transformer.layer.{i}.attention.q_lin",
        "attention/key": "transformer.layer.{i}.attention.k_lin",
        "attention/value": "transformer.layer.{i}.attention.v_lin",
        "attention/output": "transformer.layer.{i}.attention.out_lin",
        "attention_layer_norm": "transformer.layer.{i}.sa_layer_norm",
        "intermediate": "transformer.layer.{i}.ffn.lin1",
        "output": "transformer.layer.{i}.ffn.lin2",
        "output_layer_norm": "transformer.layer.{i}.output_layer_norm",
    })
)


def _conv_to_keras(weight):
    return np.transpose(weight, (2, 3, 1, 0))  # [H, C, P, P] -> [P, P, C, H]


def _conv_to_torch(kernel):
    return np.transpose(kernel, (3, 2, 0, 1))


VIT = (
    [Rule("embeddings.cls_token", "embeddings/class_token"),
     Rule("embeddings.position_embeddings", "embeddings/position_embeddings"),
     Rule("embeddings.patch_embeddings.projection.weight", "embeddings/projection/kernel",
          _conv_to_keras, _conv_to_torch),
     Rule("embeddings.patch_embeddings.projection.bias", "embeddings/projection/bias")]
    + _block({
        "attention/query": "encoder.layer.{i}.attention.attention.query",
        "attention/key": "encoder.layer.{i}.attention.attention.key",
        "attention/value": "encoder.layer.{i}.attention.attention.value",
        "attention/output": "encoder.layer.{i}.attention.output.dense",
        "attention_layer_norm": "encoder.layer.{i}.layernorm_before",
        "intermediate": "encoder.layer.{i}.intermediate.dense",
        "output": "encoder.layer.{i}.output.dense",
        "output_layer_norm": "encoder.layer.{i}.layernorm_after",
    })
    + norm("layernorm", "layer_norm")
)
VIT_POOLER = dense("pooler.dense", "pooler")

# DeiTModel: ViT's names (position embeddings with 2 + patches rows) plus the
# distillation token.
DEIT = VIT + [Rule("embeddings.distillation_token", "embeddings/distillation_token")]

# ElectraModel: BERT's names, no pooler, and a projection when E != H.
ELECTRA = [rule for rule in BERT if not rule.source.startswith("pooler.")]
ELECTRA_PROJECTION = dense("embeddings_project", "embeddings/embedding_projection")

BACKBONES = {
    "bert": BERT, "tinybert": TINYBERT, "albert": ALBERT,
    "distilbert": DISTILBERT, "electra": ELECTRA, "roberta": BERT, "xlm_roberta": BERT,
    "vit": VIT, "deit": DEIT,
}


def _mlm(transform, layer_norm, bias):
    return (dense(transform, "mlm_head/transform") + norm(layer_norm, "mlm_head/layer_norm")
            + [Rule(bias, "mlm_head/bias")])


# Head tables, keyed by head; names carry no base-model prefix.
MLM_HEADS = {
    "bert": _mlm("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm",
                 "cls.predictions.bias"),
    "albert": _mlm("predictions.dense", "predictions.LayerNorm", "predictions.bias"),
    "distilbert": _mlm("vocab_transform", "vocab_layer_norm", "vocab_projector.bias"),
    "roberta": _mlm("lm_head.dense", "lm_head.layer_norm", "lm_head.bias"),
    # ElectraForMaskedLM (the generators): dense H -> E, GELU, LN, then
    # generator_lm_head decodes with the E-wide word embeddings.
    "electra": _mlm("generator_predictions.dense", "generator_predictions.LayerNorm",
                    "generator_lm_head.bias"),
}
MLM_HEADS["tinybert"] = MLM_HEADS["bert"]
MLM_HEADS["xlm_roberta"] = MLM_HEADS["roberta"]

# Tied copies of the token embeddings (and of the MLM bias) some files keep.
TIED = {
    "bert": ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias"),
    "albert": ("predictions.decoder.weight", "predictions.decoder.bias"),
    "distilbert": ("vocab_projector.weight",),
    "roberta": ("lm_head.decoder.weight", "lm_head.decoder.bias"),
    "electra": ("generator_lm_head.weight",),
}
TIED["tinybert"] = TIED["bert"]
TIED["xlm_roberta"] = TIED["roberta"]

SENTENCE_HEADS = {
    "bert": ("nsp", dense("cls.seq_relationship", "nsp_head")),
    "albert": ("sop", dense("sop_classifier.classifier", "sop_head")),
}
SENTENCE_HEADS["tinybert"] = SENTENCE_HEADS["bert"]

CLASSIFIER = dense("classifier", "classifier")
PRE_CLASSIFIER = dense("pre_classifier", "pre_classifier")
# Roberta/ElectraClassificationHead: dense + activation on the first token, then out_proj.
OUT_PROJ_CLASSIFIER = dense("classifier.dense", "pre_classifier") + dense(
    "classifier.out_proj", "classifier")
# DeiTForImageClassificationWithTeacher: a head on the class token, one on the
# distillation token (BackboneWithHeads' "class_and_distillation" classifier).
TEACHER_CLASSIFIER = dense("cls_classifier", "classifier") + dense(
    "distillation_classifier", "distillation_classifier")

# *ForTokenClassification and *ForQuestionAnswering, every text family: the
# tagging and question-answering tasks' heads.
TOKEN_CLASSIFIER = dense("classifier", "tagging_head/classifier")
SPAN_HEAD = dense("qa_outputs", "span_head/span")

# ElectraForPreTraining (the discriminators): replaced-token detection.
RTD_HEAD = dense("discriminator_predictions.dense", "rtd_head/pre_classifier") + dense(
    "discriminator_predictions.dense_prediction", "rtd_head/classifier")

# Backbone weights that live outside the base model in a checkpoint with heads
# (TinyBertForPreTraining keeps fit_dense beside `bert.`).
TOP_LEVEL = ("fit_dense.",)

BASE_PREFIXES = {
    "bert": "bert.", "tinybert": "bert.", "albert": "albert.",
    "distilbert": "distilbert.", "electra": "electra.", "roberta": "roberta.",
    "xlm_roberta": "roberta.", "vit": "vit.", "deit": "deit.",
}
