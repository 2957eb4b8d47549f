"""Google TF1 checkpoints (google-research/bert and ALBERT releases).

A checkpoint prefix (`bert_model.ckpt`, ALBERT's `model.ckpt-best`, a
fine-tuning run's `model.ckpt-<step>`) with `bert_config.json` or
`albert_config.json` beside it. TF1 kernels are already [in, out]; only the
`output_weights` of the sentence and classification heads are [out, in].
The configs' "gelu" is the tanh approximation (modeling.py), layer norm
epsilon 1e-12.
"""

import collections.abc
import glob
import json
import os
import re

from zoo.convert.assemble import build_and_load
from zoo.convert.hf import backbone_arguments as hf_backbone_arguments
from zoo.convert.table import Rule, transpose

# ------------------------------------------------------------------ tables


def dense(source, target):
    return [Rule(f"{source}/kernel", f"{target}/kernel"),
            Rule(f"{source}/bias", f"{target}/bias")]


def norm(source, target):
    return [Rule(f"{source}/gamma", f"{target}/gamma"),
            Rule(f"{source}/beta", f"{target}/beta")]


def output_layer(source, target):
    """run_pretraining / run_classifier heads: `output_weights` [out, in]."""
    return [Rule(f"{source}output_weights", f"{target}/kernel", transpose),
            Rule(f"{source}output_bias", f"{target}/bias")]


def _embeddings():
    return [Rule(f"bert/embeddings/{theirs}", f"embeddings/{ours}/embeddings")
            for theirs, ours in (("word_embeddings", "token_embedding"),
                                 ("token_type_embeddings", "segment_embedding"),
                                 ("position_embeddings", "position_embedding"))
            ] + norm("bert/embeddings/LayerNorm", "embeddings/layer_norm")


def _block(source_names, target="transformer/layer_{i}"):
    """A TransformerBlock from {our sublayer: TF1 scope}."""
    table = []
    for ours in ("attention/query", "attention/key", "attention/value", "attention/output",
                 "intermediate", "output"):
        table += dense(source_names[ours], f"{target}/{ours}")
    for ours in ("attention_layer_norm", "output_layer_norm"):
        table += norm(source_names[ours], f"{target}/{ours}")
    return table


_BERT_LAYER = "bert/encoder/layer_{i}"
BERT = (
    _embeddings()
    + _block({
        "attention/query": f"{_BERT_LAYER}/attention/self/query",
        "attention/key": f"{_BERT_LAYER}/attention/self/key",
        "attention/value": f"{_BERT_LAYER}/attention/self/value",
        "attention/output": f"{_BERT_LAYER}/attention/output/dense",
        "attention_layer_norm": f"{_BERT_LAYER}/attention/output/LayerNorm",
        "intermediate": f"{_BERT_LAYER}/intermediate/dense",
        "output": f"{_BERT_LAYER}/output/dense",
        "output_layer_norm": f"{_BERT_LAYER}/output/LayerNorm",
    })
    + dense("bert/pooler/dense", "pooler")
)

_ALBERT_LAYER = "bert/encoder/transformer/group_{i}/inner_group_0"
ALBERT = (  # {i} runs over groups, not layers
    _embeddings()
    + dense("bert/encoder/embedding_hidden_mapping_in", "embeddings/embedding_projection")
    + _block({
        "attention/query": f"{_ALBERT_LAYER}/attention_1/self/query",
        "attention/key": f"{_ALBERT_LAYER}/attention_1/self/key",
        "attention/value": f"{_ALBERT_LAYER}/attention_1/self/value",
        "attention/output": f"{_ALBERT_LAYER}/attention_1/output/dense",
        "attention_layer_norm": f"{_ALBERT_LAYER}/LayerNorm",
        "intermediate": f"{_ALBERT_LAYER}/ffn_1/intermediate/dense",
        "output": f"{_ALBERT_LAYER}/ffn_1/intermediate/output/dense",
        "output_layer_norm": f"{_ALBERT_LAYER}/LayerNorm_1",
    })
    + dense("bert/pooler/dense", "pooler")
)

BACKBONES = {"bert": BERT, "albert": ALBERT}

MLM_HEAD = (dense("cls/predictions/transform/dense", "mlm_head/transform")
            + norm("cls/predictions/transform/LayerNorm", "mlm_head/layer_norm")
            + [Rule("cls/predictions/output_bias", "mlm_head/bias")])
SENTENCE_HEADS = {  # cls/seq_relationship is NSP in BERT, SOP in ALBERT
    family: (kind, output_layer("cls/seq_relationship/", f"{kind}_head"))
    for family, kind in (("bert", "nsp"), ("albert", "sop"))
}
CLASSIFIER = output_layer("", "classifier")  # run_classifier.py: top-level names

LEFT_OUT = [
    ("global_step", "training step counter, not a weight"),
    ("*/adam_m", "optimizer slot (AdamWeightDecay / LAMB), not a weight"),
    ("*/adam_v", "optimizer slot (AdamWeightDecay / LAMB), not a weight"),
    ("*/Adam*", "optimizer slot (tf.train.AdamOptimizer), not a weight"),
    ("beta?_power", "optimizer state (tf.train.AdamOptimizer), not a weight"),
    ("cls/squad/*", "question-answering head: not loaded by zoo.load"),
]

# ------------------------------------------------------------------- files

_CONFIG_NAMES = ("albert_config.json", "bert_config.json")
_PREFERRED = ("bert_model.ckpt", "model.ckpt-best")  # the names of released models


def _step(prefix):
    match = re.search(r"-(\d+)$", prefix)
    return int(match.group(1)) if match else -1


def _from_state_file(folder):
    """The latest checkpoint named by TF1's `checkpoint` file, if it is here."""
    state = os.path.join(folder, "checkpoint")
    if not os.path.isfile(state):
        return None
    with open(state) as file:
        match = re.search(r'^model_checkpoint_path:\s*"(.*)"', file.read(), re.M)
    if match:  # the recorded path may be relative or from another machine
        recorded = match.group(1)
        for prefix in (os.path.join(folder, recorded),
                       os.path.join(folder, os.path.basename(recorded))):
            if os.path.exists(prefix + ".index"):
                return prefix
    return None


def find_tf1_checkpoint(path):
    """The checkpoint prefix at `path` (a prefix, its .index file or a folder), or None.

    In a folder: the checkpoint TF1's `checkpoint` file names, else a released
    model's name (bert_model.ckpt, model.ckpt-best), else the latest step.
    """
    if path.endswith(".index") and os.path.isfile(path):
        path = path[: -len(".index")]
    if os.path.exists(path + ".index"):
        return path
    if not os.path.isdir(path):
        return None
    prefixes = [index[: -len(".index")]
                for index in glob.glob(os.path.join(path, "*.ckpt*.index"))]
    if not prefixes:
        return None
    return _from_state_file(path) or max(
        prefixes, key=lambda p: (os.path.basename(p) in _PREFERRED, _step(p), p))


def read_config(prefix):
    """(file name, dict) of the config beside the checkpoint."""
    folder = os.path.dirname(prefix)
    for name in _CONFIG_NAMES:
        if os.path.exists(os.path.join(folder, name)):
            with open(os.path.join(folder, name)) as file:
                return name, json.load(file)
    raise FileNotFoundError(
        f"No {' or '.join(_CONFIG_NAMES)} beside the TF1 checkpoint {prefix}: copy the "
        "config of the model it was trained from into that folder."
    )


class Checkpoint(collections.abc.Mapping):
    """name -> array of a TF1 checkpoint, read on access, so optimizer slots
    (twice the model's size) are never read."""

    def __init__(self, prefix):
        import tensorflow as tf

        self._reader = tf.train.load_checkpoint(prefix)
        self.shapes = self._reader.get_variable_to_shape_map()

    def __getitem__(self, name):
        if name not in self.shapes:
            raise KeyError(name)
        return self._reader.get_tensor(name)

    def __iter__(self):
        return iter(self.shapes)

    def __len__(self):
        return len(self.shapes)


# -------------------------------------------------------------------- load


def activation(config):
    """TF1 modeling.py's "gelu" is the tanh approximation; other names are ours."""
    name = config.get("hidden_act", "gelu")
    return "gelu_tanh" if name == "gelu" else name


def detect_family(config_name, config):
    """ALBERT by its config's name or its `embedding_size` (some keep bert_config.json)."""
    if config_name == "albert_config.json" or "embedding_size" in config:
        return "albert"
    return "bert"


def backbone_arguments(family, config):
    """kerasbert constructor arguments; the TF1 configs use Hugging Face's field names."""
    arguments = hf_backbone_arguments(family, {**config, "hidden_act": activation(config)}, {})
    arguments["layer_norm_epsilon"] = 1e-12
    return arguments


def find_heads(family, config, shapes):
    """Heads present in the checkpoint: (BackboneWithHeads arguments, table)."""
    arguments, table = {}, []
    if MLM_HEAD[0].source in shapes:
        arguments["mlm_head"] = dict(activation=activation(config), layer_norm_epsilon=1e-12)
        table += MLM_HEAD
    kind, rules = SENTENCE_HEADS[family]
    if rules[0].source in shapes:
        arguments["sentence_head"] = kind
        table += rules
    if CLASSIFIER[0].source in shapes:  # run_classifier.py drops 10% before it
        num_classes = int(shapes[CLASSIFIER[0].source][0])
        arguments["classifier"] = dict(num_classes=num_classes, input="pooled", dropout=0.1)
        table += CLASSIFIER
    return arguments, table


def load_tf1(path, with_head=False, **overrides):
    """(model, LoadReport) from a TF1 checkpoint prefix or its folder."""
    prefix = find_tf1_checkpoint(path)
    if prefix is None:
        raise FileNotFoundError(f"No TF1 checkpoint (*.ckpt*.index) at {path!r}.")
    config_name, config = read_config(prefix)
    family = detect_family(config_name, config)
    arguments = backbone_arguments(family, config)
    checkpoint = Checkpoint(prefix)
    return build_and_load(family, arguments, overrides, checkpoint, BACKBONES[family],
                          find_heads(family, config, checkpoint.shapes), with_head, LEFT_OUT,
                          description=f"TF1 checkpoint {prefix}")
