"""Hugging Face model folders: load into kerasbert, and write back.

Configuration comes from `config.json`, weights from the folder's
safetensors or .bin files. Heads are recognised by their weights and the
config's `architectures`.
"""

import json
import os
import re
import shutil
import tempfile

import numpy as np

from kerasbert.layers.activations import TANH_GELU_NAMES
from zoo import registry
from zoo.convert import hf_tables
from zoo.convert.hf_files import read_state_dict, weight_file
from zoo.convert.safetensors_io import write_safetensors
from zoo.convert.assemble import build_and_load
from zoo.convert.table import ConversionError, extract
from zoo.heads import BackboneWithHeads

_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")


def is_hf_folder(path):
    return (os.path.isdir(path) and os.path.exists(os.path.join(path, "config.json"))
            and weight_file(path) is not None)


def read_config(folder):
    with open(os.path.join(folder, "config.json")) as file:
        return json.load(file)


# ---------------------------------------------------------------- families


def detect_family(config, state):
    """bert, tinybert, albert, distilbert, roberta, vit or deit, from the config (and keys)."""
    model_type = config.get("model_type")
    if model_type is None:  # old configs: infer from their fields
        if "patch_size" in config:
            model_type = "vit"
        elif "embedding_size" in config:
            model_type = "albert"
        elif "n_layers" in config:
            model_type = "distilbert"
        elif "num_hidden_layers" in config:
            model_type = "bert"
    if model_type == "bert" and any(k.startswith("fit_dense.") for k in state):
        return "tinybert"
    if model_type == "xlm-roberta":
        return "xlm_roberta"
    if model_type not in ("bert", "albert", "distilbert", "electra", "roberta", "vit", "deit"):
        raise ConversionError(
            f"Unsupported model_type {model_type!r} in config.json; zoo.load reads "
            "bert, albert, distilbert, electra, roberta, xlm-roberta, vit and deit (TinyBERT is "
            "bert with fit_dense)."
        )
    return model_type


# Sequence classifiers whose head is dense + activation on the first token,
# then out_proj: the activation by family (ELECTRA's is GELU, RoBERTa's tanh).
_OUT_PROJ_ACTIVATIONS = {"roberta": "tanh", "xlm_roberta": "tanh", "electra": "gelu"}


def _require(condition, message):
    if not condition:
        raise ConversionError(message)


def backbone_arguments(family, config, state):
    """kerasbert constructor arguments from a Hugging Face config."""
    c = config
    if family == "distilbert":
        return dict(
            vocab_size=c["vocab_size"], num_layers=c["n_layers"], hidden_size=c["dim"],
            num_heads=c["n_heads"], intermediate_size=c["hidden_dim"],
            activation=c.get("activation", "gelu"), dropout=c.get("dropout", 0.1),
            attention_dropout=c.get("attention_dropout", 0.1),
            max_sequence_length=c.get("max_position_embeddings", 512),
        )
    arguments = dict(
        num_layers=c["num_hidden_layers"], hidden_size=c["hidden_size"],
        num_heads=c["num_attention_heads"], intermediate_size=c["intermediate_size"],
        activation=c.get("hidden_act", "gelu"),
        dropout=c.get("hidden_dropout_prob", 0.1),
        attention_dropout=c.get("attention_probs_dropout_prob", 0.1),
        layer_norm_epsilon=c.get("layer_norm_eps", 1e-12),
    )
    if family in ("vit", "deit"):
        _require(c.get("qkv_bias", True), "ViT configs with qkv_bias=false are not supported.")
        arguments.update(
            image_size=c.get("image_size", 224), patch_size=c.get("patch_size", 16),
            num_channels=c.get("num_channels", 3),
            dropout=c.get("hidden_dropout_prob", 0.0),
            attention_dropout=c.get("attention_probs_dropout_prob", 0.0),
        )
        if "pooler.dense.weight" in state:
            _require(c.get("pooler_act", "tanh") == "tanh", "Only a tanh ViT pooler is supported.")
            arguments["representation_size"] = state["pooler.dense.weight"].shape[0]
        return arguments
    _require(c.get("position_embedding_type", "absolute") == "absolute",
             f"position_embedding_type={c.get('position_embedding_type')!r}: only "
             "absolute position embeddings are supported.")
    if family in ("roberta", "xlm_roberta"):
        # fairseq positions: the table has padding_id + 1 rows before the first one used.
        _require(c.get("type_vocab_size", 1) == 1, "RoBERTa with type_vocab_size != 1 is "
                 "not supported (no published model has segment embeddings).")
        padding_id = c.get("pad_token_id", 1)
        arguments.update(
            vocab_size=c["vocab_size"], padding_id=padding_id,
            max_sequence_length=c.get("max_position_embeddings", 514) - padding_id - 1,
            layer_norm_epsilon=c.get("layer_norm_eps", 1e-5),
        )
        return arguments
    arguments.update(
        vocab_size=c["vocab_size"],
        max_sequence_length=c.get("max_position_embeddings", 512),
        type_vocab_size=c.get("type_vocab_size", 2),
    )
    if family == "albert":
        _require(c.get("inner_group_num", 1) == 1,
                 "ALBERT with inner_group_num != 1 is not supported (no published model uses it).")
        arguments.update(embedding_size=c.get("embedding_size", 128),
                         num_groups=c.get("num_hidden_groups", 1))
    if family == "tinybert":
        arguments["teacher_hidden_size"] = state["fit_dense.weight"].shape[0]
    if family == "electra":  # a projection only when the widths differ, as transformers has it
        embedding_size = c.get("embedding_size", c["hidden_size"])
        arguments["embedding_size"] = (None if embedding_size == c["hidden_size"]
                                       else embedding_size)
    return arguments


def _hf_activation(name):
    """Our activation name as transformers' ACT2FN knows it: every tanh GELU
    (keras-hub's and TF1's "gelu_tanh" included) is "gelu_new"."""
    return "gelu_new" if name in TANH_GELU_NAMES else name


def hf_config(family, arguments):
    """The inverse of `backbone_arguments`: a Hugging Face config dict."""
    a = dict(arguments, activation=_hf_activation(arguments["activation"]))
    if family == "distilbert":
        return dict(
            model_type="distilbert", vocab_size=a["vocab_size"], dim=a["hidden_size"],
            n_layers=a["num_layers"], n_heads=a["num_heads"],
            hidden_dim=a["intermediate_size"], activation=a["activation"],
            dropout=a["dropout"], attention_dropout=a["attention_dropout"],
            max_position_embeddings=a["max_sequence_length"],
        )
    config = dict(
        model_type={"vit": "vit", "deit": "deit", "albert": "albert", "roberta": "roberta",
                    "xlm_roberta": "xlm-roberta", "electra": "electra"}.get(family, "bert"),
        hidden_size=a["hidden_size"], num_hidden_layers=a["num_layers"],
        num_attention_heads=a["num_heads"], intermediate_size=a["intermediate_size"],
        hidden_act=a["activation"], hidden_dropout_prob=a["dropout"],
        attention_probs_dropout_prob=a["attention_dropout"],
        layer_norm_eps=a["layer_norm_epsilon"],
    )
    if family in ("vit", "deit"):
        height, width = a["image_size"]
        config.update(image_size=height if height == width else [height, width],
                      patch_size=a["patch_size"], num_channels=a["num_channels"],
                      qkv_bias=True)
        if a["representation_size"] is not None:
            _require(a["representation_size"] == a["hidden_size"],
                     "Hugging Face ViT's pooler keeps the hidden size; this model's "
                     "representation_size differs.")
        return config
    if family in ("roberta", "xlm_roberta"):
        config.update(vocab_size=a["vocab_size"], pad_token_id=a["padding_id"],
                      bos_token_id=0, eos_token_id=2, type_vocab_size=1,
                      max_position_embeddings=a["max_sequence_length"] + a["padding_id"] + 1,
                      position_embedding_type="absolute")
        return config
    config.update(vocab_size=a["vocab_size"], max_position_embeddings=a["max_sequence_length"],
                  type_vocab_size=a["type_vocab_size"], position_embedding_type="absolute")
    if family == "albert":
        config.update(embedding_size=a["embedding_size"], num_hidden_groups=a["num_groups"],
                      inner_group_num=1)
    if family == "electra":
        config.update(embedding_size=a["embedding_size"] or a["hidden_size"])
    return config


# ------------------------------------------------------------------- state


def normalize_state(state, family):
    """Removes the base-model prefix and renames old LayerNorm gamma/beta."""
    prefix = hf_tables.BASE_PREFIXES[family]
    normalized = {}
    for name, value in state.items():
        if name.startswith(prefix):
            name = name[len(prefix):]
        if re.search(r"(LayerNorm|layer_norm|layernorm)[^.]*\.(gamma|beta)$", name):
            name = name[: name.rfind(".")] + (".weight" if name.endswith("gamma") else ".bias")
        normalized[name] = value
    return normalized


def _classifier_kind(config):
    architectures = " ".join(config.get("architectures") or [])
    for kind in ("TokenClassification", "MultipleChoice"):
        if kind in architectures:
            return kind
    return "SequenceClassification"


def _classifier_dropout(family, config):
    """The dropout transformers puts before a (sequence or token) classifier."""
    if family == "distilbert":
        return config.get("dropout", 0.1)
    if family == "albert":
        return config.get("classifier_dropout_prob", 0.1)
    dropout = config.get("classifier_dropout")
    return config.get("hidden_dropout_prob", 0.1) if dropout is None else dropout


def _labels(config, num_classes):
    id2label = config.get("id2label") or {}
    names = [id2label.get(str(i), id2label.get(i)) for i in range(num_classes)]
    return None if None in names else names


def find_heads(family, config, state):
    """Heads present in `state`: (BackboneWithHeads arguments, table, left out)."""
    arguments, table, left_out = {}, [], []
    mlm = hf_tables.MLM_HEADS.get(family)
    if mlm and mlm[0].source in state:
        epsilon = 1e-12 if family == "distilbert" else config.get("layer_norm_eps", 1e-12)
        activation = config.get("activation" if family == "distilbert" else "hidden_act", "gelu")
        if family == "electra":  # ElectraGeneratorPredictions: GELU whatever hidden_act says
            activation = "gelu"
        arguments["mlm_head"] = dict(activation=activation, layer_norm_epsilon=epsilon)
        table += mlm
    if family in hf_tables.SENTENCE_HEADS:
        kind, rules = hf_tables.SENTENCE_HEADS[family]
        if rules[0].source in state:
            arguments["sentence_head"] = kind
            table += rules
    if "discriminator_predictions.dense.weight" in state:  # ElectraForPreTraining
        arguments["rtd_head"] = dict(activation=config.get("hidden_act", "gelu"))
        table += hf_tables.RTD_HEAD
    if "classifier.out_proj.weight" in state:  # Roberta/ElectraForSequenceClassification
        num_classes = int(state["classifier.out_proj.weight"].shape[0])
        dropout = config.get("classifier_dropout")
        arguments["classifier"] = dict(
            num_classes=num_classes, label_names=_labels(config, num_classes),
            input="first_token", pre_classifier=True,
            pre_classifier_activation=_OUT_PROJ_ACTIVATIONS[family],
            dropout=config.get("hidden_dropout_prob", 0.1) if dropout is None else dropout)
        table += hf_tables.OUT_PROJ_CLASSIFIER
    if "cls_classifier.weight" in state:  # DeiTForImageClassificationWithTeacher
        num_classes = int(state["cls_classifier.weight"].shape[0])
        arguments["classifier"] = dict(
            num_classes=num_classes, label_names=_labels(config, num_classes),
            input="class_and_distillation", dropout=0.0)
        table += hf_tables.TEACHER_CLASSIFIER
    if "qa_outputs.weight" in state:
        arguments["span_head"] = {}
        table += hf_tables.SPAN_HEAD
    if "classifier.weight" in state:
        kind = _classifier_kind(config)
        if kind == "TokenClassification":
            num_classes = int(state["classifier.weight"].shape[0])
            arguments["token_classifier"] = dict(
                num_classes=num_classes, label_names=_labels(config, num_classes),
                dropout=_classifier_dropout(family, config))
            table += hf_tables.TOKEN_CLASSIFIER
        elif kind != "SequenceClassification":
            left_out.append(("classifier.*", f"{kind} head: not loaded by zoo.load"))
        else:
            num_classes = state["classifier.weight"].shape[0]
            classifier = dict(num_classes=int(num_classes), label_names=_labels(config, num_classes))
            if family == "distilbert":
                classifier.update(input="first_token", pre_classifier=True,
                                  dropout=config.get("seq_classif_dropout", 0.2))
                table += hf_tables.PRE_CLASSIFIER
            elif family in ("vit", "deit"):
                classifier.update(input="first_token", dropout=0.0)
            else:
                classifier.update(dropout=_classifier_dropout(family, config))
            arguments["classifier"] = classifier
            table += hf_tables.CLASSIFIER
    return arguments, table, left_out


def _check_tied(family, state):
    """Tied decoder copies must equal the embeddings; returns their names."""
    names = [n for n in hf_tables.TIED.get(family, ()) if n in state]
    for name in names:
        if name.endswith("weight"):
            tied_to = state["embeddings.word_embeddings.weight"]
            if state[name].shape != tied_to.shape or not np.array_equal(state[name], tied_to):
                raise ConversionError(
                    f"{name} differs from embeddings.word_embeddings.weight: the MLM "
                    "decoder is not tied to the embeddings, which kerasbert requires."
                )
    return names


# -------------------------------------------------------------------- load


def load_hf(folder, with_head=False, **overrides):
    """(model, LoadReport) from a Hugging Face folder."""
    config = read_config(folder)
    raw = read_state_dict(folder)
    family = detect_family(config, raw)
    state = normalize_state(raw, family)
    arguments = backbone_arguments(family, config, state)
    table = list(hf_tables.BACKBONES[family])
    if family in ("vit", "deit") and "representation_size" in arguments:
        table += hf_tables.VIT_POOLER
    if family == "electra" and arguments["embedding_size"] is not None:
        table += hf_tables.ELECTRA_PROJECTION
    head_arguments, head_table, left_out = find_heads(family, config, state)
    left_out += [(name, "buffer, not a weight") for name in _BUFFERS]
    left_out += [(name, "tied to embeddings.word_embeddings") for name in
                 _check_tied(family, state)]
    table, missing_pooler = _without_missing_pooler(table, state)
    model, report = build_and_load(family, arguments, overrides, state, table,
                                   (head_arguments, head_table), with_head, left_out,
                                   description=f"Hugging Face checkpoint {folder}",
                                   keep_initialised=("pooler/",) if missing_pooler else ())
    if missing_pooler:
        report.left_out.append((missing_pooler, "not in the checkpoint (BertForMaskedLM and "
                                "add_pooling_layer=False models have none): the pooler keeps "
                                "its random initialisation, as transformers does"))
    return model, report


def _without_missing_pooler(table, state):
    """(table, None), or (table without the pooler rules, their source) when a
    text checkpoint has no pooler, so the backbone's pooler stays random."""
    pooler = [rule for rule in table if rule.target.startswith("pooler/")]
    if not pooler or any(rule.source in state for rule in pooler):
        return table, None
    return [rule for rule in table if rule not in pooler], pooler[0].source.rsplit(".", 1)[0]


# -------------------------------------------------------------------- save

_ARCHITECTURES = {
    ("bert", "mlm", "nsp"): "BertForPreTraining",
    ("bert", "mlm"): "BertForMaskedLM",
    ("bert", "nsp"): "BertForNextSentencePrediction",
    ("bert", "classifier"): "BertForSequenceClassification",
    ("bert",): "BertModel",
    ("albert", "mlm", "sop"): "AlbertForPreTraining",
    ("albert", "mlm"): "AlbertForMaskedLM",
    ("albert", "classifier"): "AlbertForSequenceClassification",
    ("albert",): "AlbertModel",
    ("distilbert", "mlm"): "DistilBertForMaskedLM",
    ("distilbert", "classifier"): "DistilBertForSequenceClassification",
    ("distilbert",): "DistilBertModel",
    ("roberta", "mlm"): "RobertaForMaskedLM",
    ("roberta", "classifier"): "RobertaForSequenceClassification",
    ("xlm_roberta", "classifier"): "XLMRobertaForSequenceClassification",
    ("roberta",): "RobertaModel",
    ("electra",): "ElectraModel",
    ("electra", "classifier"): "ElectraForSequenceClassification",
    ("electra", "mlm"): "ElectraForMaskedLM",  # the generators
    ("electra", "rtd"): "ElectraForPreTraining",  # the discriminators
    ("xlm_roberta", "mlm"): "XLMRobertaForMaskedLM",
    ("xlm_roberta",): "XLMRobertaModel",
    ("vit", "classifier"): "ViTForImageClassification",
    ("vit",): "ViTModel",
    ("deit", "classifier"): "DeiTForImageClassification",
    ("deit", "classifier_with_distillation"): "DeiTForImageClassificationWithTeacher",
    ("deit",): "DeiTModel",
}


# Token classification and extractive QA: one class per text family.
_CLASS_PREFIXES = {"bert": "Bert", "albert": "Albert", "distilbert": "DistilBert",
                   "roberta": "Roberta", "xlm_roberta": "XLMRoberta", "electra": "Electra"}
for _family, _prefix in _CLASS_PREFIXES.items():
    _ARCHITECTURES[(_family, "token_classifier")] = f"{_prefix}ForTokenClassification"
    _ARCHITECTURES[(_family, "span_head")] = f"{_prefix}ForQuestionAnswering"


def _family_of(backbone):
    for family, backbone_class in registry.families().items():
        if type(backbone) is backbone_class:
            return family
    raise ValueError(f"{type(backbone).__name__} is not a zoo backbone.")


def save_hf(model, out_dir):
    """Writes `model` as a Hugging Face folder: config.json + model.safetensors.

    A backbone becomes the base model (BertModel, ViTModel, ...); a
    BackboneWithHeads the matching *ForPreTraining / *ForMaskedLM /
    *ForSequenceClassification. The folder appears whole or not at all.
    """
    heads = model if isinstance(model, BackboneWithHeads) else None
    backbone = heads.backbone if heads else model
    family = _family_of(backbone)
    arguments = backbone.get_config()
    config = hf_config(family, arguments)
    count = arguments.get("num_groups") or arguments["num_layers"]
    state = extract(backbone, hf_tables.BACKBONES[family], count)
    if family in ("vit", "deit") and arguments["representation_size"] is not None:
        state.update(extract(backbone, hf_tables.VIT_POOLER, count))
    if family == "electra" and arguments["embedding_size"] is not None:
        state.update(extract(backbone, hf_tables.ELECTRA_PROJECTION, count))

    present = []
    if heads is not None and (heads.mlm_head or heads.sentence_head or heads.classifier
                              or heads.token_classifier or heads.span_head is not None
                              or heads.rtd_head):
        prefix = hf_tables.BASE_PREFIXES[family]
        state = {name if name.startswith(hf_tables.TOP_LEVEL) else prefix + name: value
                 for name, value in state.items()}
        if heads.mlm_head:
            if family == "electra" and heads.mlm_head.get("activation", "gelu") != "gelu":
                raise ValueError("Hugging Face's ElectraForMaskedLM transforms with the exact "
                                 "GELU whatever hidden_act says; this model's MLM head uses "
                                 f"{heads.mlm_head['activation']!r}.")
            present.append("mlm")
            state.update(extract(model, hf_tables.MLM_HEADS[family], count))
        if heads.sentence_head:
            present.append(heads.sentence_head)
            state.update(extract(model, hf_tables.SENTENCE_HEADS[family][1], count))
        if heads.classifier:
            with_distillation = heads.classifier.get("input") == "class_and_distillation"
            if family in ("vit", "deit") and (arguments["representation_size"] is not None or not (
                    with_distillation or heads.classifier.get("input") == "first_token")):
                raise ValueError(
                    "Hugging Face's ViT/DeiT image classifiers classify the class token "
                    "with no pooler; this model's classifier reads a pre-logits pooler "
                    "(a JAX 21k checkpoint?), which they cannot express.")
            present.append("classifier_with_distillation" if with_distillation else "classifier")
            if with_distillation:  # DeiT's class-token and distillation-token heads
                state.update(extract(model, hf_tables.TEACHER_CLASSIFIER, count))
            elif family in _OUT_PROJ_ACTIVATIONS:
                activation = _OUT_PROJ_ACTIVATIONS[family]
                if heads.classifier.get("pre_classifier_activation") != activation:
                    raise ValueError(f"Hugging Face's {family} classifier is a dense + "
                                     f"{activation} on the first token, then out_proj; this "
                                     "model's classifier is not.")
                state.update(extract(model, hf_tables.OUT_PROJ_CLASSIFIER, count))
            else:
                state.update(extract(model, hf_tables.CLASSIFIER, count))
                if heads.classifier.get("pre_classifier"):
                    state.update(extract(model, hf_tables.PRE_CLASSIFIER, count))
            config.update(_classifier_config(family, heads.classifier))
        if heads.token_classifier:
            present.append("token_classifier")
            state.update(extract(model, hf_tables.TOKEN_CLASSIFIER, count))
            config.update(_classifier_config(family, heads.token_classifier, token_level=True))
        if heads.span_head is not None:
            present.append("span_head")
            state.update(extract(model, hf_tables.SPAN_HEAD, count))
            config.update(num_labels=2)
        if heads.rtd_head:
            if (_hf_activation(heads.rtd_head.get("activation", "gelu"))
                    != _hf_activation(arguments["activation"])):
                raise ValueError("Hugging Face's ElectraForPreTraining head uses the "
                                 f"encoder's hidden_act ({arguments['activation']!r}); this "
                                 f"model's uses {heads.rtd_head['activation']!r}.")
            present.append("rtd")
            state.update(extract(model, hf_tables.RTD_HEAD, count))
    key = ("bert" if family == "tinybert" else family, *present)
    if key not in _ARCHITECTURES:
        raise ValueError(f"Hugging Face has no model class for a {family} with heads "
                         f"{present}; save the backbone or one head at a time.")
    config["architectures"] = [_ARCHITECTURES[key]]

    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".save_hf-", dir=parent)
    try:
        write_safetensors(state, os.path.join(staging, "model.safetensors"),
                          metadata={"format": "pt"})
        with open(os.path.join(staging, "config.json"), "w") as file:
            json.dump(config, file, indent=2, sort_keys=True)
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _classifier_config(family, classifier, token_level=False):
    labels = classifier.get("label_names") or [
        f"LABEL_{i}" for i in range(classifier["num_classes"])]
    config = dict(num_labels=classifier["num_classes"],
                  id2label={str(i): name for i, name in enumerate(labels)},
                  label2id={name: i for i, name in enumerate(labels)})
    dropout = classifier.get("dropout", 0.1)
    if family == "distilbert" and token_level:
        return config  # DistilBertForTokenClassification's dropout is the backbone's
    field = {"distilbert": "seq_classif_dropout", "albert": "classifier_dropout_prob",
             "bert": "classifier_dropout", "tinybert": "classifier_dropout",
             "roberta": "classifier_dropout", "xlm_roberta": "classifier_dropout",
             "electra": "classifier_dropout"}.get(family)
    if field:
        config[field] = dropout
    return config
