"""Sentence-Transformers folders: a Hugging Face model plus its pooling.

A folder saved by `SentenceTransformer.save` lists its modules in
`modules.json`, in order:
  Transformer  the Hugging Face model (path "" = the folder itself, or an
               older "0_Transformer" subfolder); its longest input is
               sentence_bert_config.json's max_seq_length or the tokenizer's
               model_max_length
  Pooling      1_Pooling/config.json: `pooling_mode` ("mean", or a list), or
               the older `pooling_mode_mean_tokens`-style booleans
  Normalize    L2 normalization (no files)
`zoo.load` turns it into a `SentenceEncoder` with the same embeddings.
Modules that change the numbers in other ways (Dense, prompts excluded from
the pooling, other pooling modes) are refused by name rather than skipped.
"""

import json
import os

from zoo.convert.table import ConversionError

MODULES_FILE = "modules.json"
# Sentence-Transformers' legacy boolean keys, in its concatenation order.
_LEGACY_POOLING_KEYS = (("pooling_mode_cls_token", "cls"), ("pooling_mode_max_tokens", "max"),
                        ("pooling_mode_mean_tokens", "mean"),
                        ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"),
                        ("pooling_mode_weightedmean_tokens", "weightedmean"),
                        ("pooling_mode_lasttoken", "lasttoken"))
_SUPPORTED_POOLINGS = ("cls", "mean", "max")


def is_sentence_transformers_folder(path):
    return os.path.isdir(path) and os.path.exists(os.path.join(path, MODULES_FILE))


def _read_json(path):
    with open(path) as file:
        return json.load(file)


def read_modules(folder):
    """[(kind, absolute path)] in order; kind is the module class's name."""
    modules = _read_json(os.path.join(folder, MODULES_FILE))
    return [(module["type"].rsplit(".", 1)[-1], os.path.join(folder, module.get("path", "")))
            for module in sorted(modules, key=lambda m: m.get("idx", 0))]


def transformer_folder(folder):
    """The folder of the Hugging Face model (and its tokenizer) inside `folder`."""
    for kind, path in read_modules(folder):
        if kind == "Transformer":
            return path
    raise ConversionError(f"{folder}/{MODULES_FILE} lists no Transformer module; zoo.load "
                          "reads Sentence-Transformers folders built on a Hugging Face model.")


def max_sequence_length(folder):
    """The longest input the folder's model reads, as Sentence-Transformers
    decides it: sentence_bert_config.json's max_seq_length (2.x-5.x folders),
    else the tokenizer's model_max_length (6.x), else the model's positions."""
    transformer = transformer_folder(folder)
    for name, key in (("sentence_bert_config.json", "max_seq_length"),
                      ("tokenizer_config.json", "model_max_length"),
                      ("config.json", "max_position_embeddings")):
        path = os.path.join(transformer, name)
        value = _read_json(path).get(key) if os.path.exists(path) else None
        # transformers writes a huge placeholder when a tokenizer has no limit.
        if isinstance(value, int) and 0 < value < 100_000:
            return value
    return None


def check_casing(folder, tokenizer_lower_cases):
    """Sentence-Transformers lower-cases texts itself before a cased tokenizer
    when sentence_bert_config.json says do_lower_case; zoo's tokenizers
    lower-case only as uncased BERT does (accents stripped too), which would
    give other tokens, so such a folder is refused rather than misread."""
    config_file = os.path.join(transformer_folder(folder), "sentence_bert_config.json")
    wants_lower = os.path.exists(config_file) and _read_json(config_file).get("do_lower_case")
    if wants_lower and not tokenizer_lower_cases:
        raise ConversionError(
            f"{config_file} sets do_lower_case on a cased tokenizer: Sentence-Transformers "
            "lower-cases the text before tokenizing, which zoo's tokenizers do not do.")


def pooling_modes(config):
    """Sentence-Transformers' Pooling config -> a list of our pooling names."""
    if "pooling_mode" in config:
        modes = config["pooling_mode"]
        modes = [modes] if isinstance(modes, str) else list(modes)
    else:
        modes = [mode for key, mode in _LEGACY_POOLING_KEYS if config.get(key)] or ["mean"]
    unsupported = [mode for mode in modes if mode not in _SUPPORTED_POOLINGS]
    if unsupported:
        raise ConversionError(f"Pooling mode(s) {unsupported} are not supported; zoo.load "
                              f"reads Sentence-Transformers poolings {_SUPPORTED_POOLINGS}.")
    if config.get("include_prompt", True) is False:
        raise ConversionError("This Pooling excludes prompt tokens (include_prompt=false), "
                              "which zoo's SentenceEncoder does not do.")
    return modes


def encoder_arguments(folder):
    """(transformer folder, SentenceEncoder arguments) from modules.json."""
    arguments = {"pooling": "cls", "normalize": False}
    transformer, pooled = None, False
    for kind, path in read_modules(folder):
        if kind == "Transformer" and transformer is None:
            transformer = path
        elif kind == "Pooling" and transformer is not None and not pooled:
            modes = pooling_modes(_read_json(os.path.join(path, "config.json")))
            arguments["pooling"] = modes[0] if len(modes) == 1 else modes
            pooled = True
        elif kind == "Normalize" and pooled:
            arguments["normalize"] = True
        else:
            raise ConversionError(
                f"Module {kind} at {path!r} (in {folder}/{MODULES_FILE}) is not supported: "
                "zoo.load reads Transformer -> Pooling -> optional Normalize.")
    if transformer is None or not pooled:
        raise ConversionError(f"{folder}/{MODULES_FILE} needs a Transformer and a Pooling "
                              "module; found " + ", ".join(k for k, _ in read_modules(folder)))
    return transformer, arguments


def load_sentence_transformers(folder, with_head=False, **overrides):
    """(SentenceEncoder, LoadReport) from a Sentence-Transformers folder."""
    from zoo.convert.hf import load_hf
    from zoo.sentence_encoder import SentenceEncoder

    if with_head:
        raise ValueError(f"{folder} is a Sentence-Transformers model: it has no MLM or "
                         "classification heads. Load it without with_head=True.")
    transformer, arguments = encoder_arguments(folder)
    backbone, report = load_hf(transformer, **overrides)
    encoder = SentenceEncoder(backbone, name=f"{backbone.name}_sentence_encoder", **arguments)
    report.source = (f"Sentence-Transformers model {folder} (pooling {arguments['pooling']}, "
                     f"normalize {arguments['normalize']})")
    return encoder, report


def save_sentence_transformers(encoder, folder, max_sequence_length):
    """Adds the Sentence-Transformers files to a Hugging Face folder of
    `encoder.backbone` (zoo.save_hf): modules.json (Transformer -> Pooling ->
    Normalize when the encoder normalizes), 1_Pooling/config.json and
    sentence_bert_config.json, so the sentence-transformers library and
    zoo.load read the folder as this encoder."""
    if encoder.whitening:
        raise ValueError("Sentence-Transformers has no whitening module: this encoder's "
                         "whitening cannot be written; push or save it as .keras instead.")
    poolings = [encoder.pooling] if isinstance(encoder.pooling, str) else list(encoder.pooling)
    order = [mode for _, mode in _LEGACY_POOLING_KEYS if mode in poolings]
    if poolings != order:
        raise ValueError(f"Sentence-Transformers concatenates poolings in the order {order}, "
                         f"this encoder in the order {poolings}: its embeddings cannot be "
                         "written as a Sentence-Transformers folder.")
    modules = [{"idx": 0, "name": "0", "path": "",
                "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling"}]
    if encoder.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
    pooling = {"word_embedding_dimension": encoder.backbone.hidden_size,
               **{key: mode in poolings for key, mode in _LEGACY_POOLING_KEYS},
               "include_prompt": True}
    os.makedirs(os.path.join(folder, "1_Pooling"), exist_ok=True)
    for name, content in ((MODULES_FILE, modules),
                          (os.path.join("1_Pooling", "config.json"), pooling),
                          ("sentence_bert_config.json",
                           {"max_seq_length": int(max_sequence_length), "do_lower_case": False})):
        with open(os.path.join(folder, name), "w") as file:
            json.dump(content, file, indent=2)
