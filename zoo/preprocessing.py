"""`zoo.load_preprocessor(path)`: the tokenizer and packer a checkpoint was trained with.

Finds the vocabulary beside the weights and the casing in the checkpoint's
own files, in this order:
  SentencePiece model  spiece.model, or another *.model (ALBERT TF1: 30k-clean.model)
  WordPiece vocabulary vocab.txt, keras-hub's assets/tokenizer/vocabulary.txt,
                       or the vocab inside a Hugging Face tokenizer.json
  casing               tokenizer_config.json (do_lower_case, strip_accents), the
                       normalizer of tokenizer.json, keras-hub's tokenizer config;
                       failing all, a WordPiece vocabulary with no upper-case
                       entry is uncased (an uncased vocabulary cannot hold one).
"""

import glob
import json
import os
import shutil

from kerasbert.text.preprocessor import Preprocessor
from zoo.convert import sentence_transformers

_WORDPIECE_FILES = ("vocab.txt", os.path.join("assets", "tokenizer", "vocabulary.txt"))


def _read_json(folder, name):
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return None
    with open(path) as file:
        return json.load(file)


def _hf_normalizer_casing(tokenizer_json):
    """(lowercase, strip_accents) from a HF tokenizer.json's BertNormalizer."""
    normalizer = (tokenizer_json or {}).get("normalizer") or {}
    for step in [normalizer] + list(normalizer.get("normalizers", [])):
        if step.get("type") == "BertNormalizer":
            return step.get("lowercase"), step.get("strip_accents")
    return None, None


def _casing(folder, tokens):
    """(lower_case, strip_accents) from the checkpoint's files; see the module docstring."""
    config = _read_json(folder, "tokenizer_config.json") or {}
    if "do_lower_case" in config:
        return config["do_lower_case"], config.get("strip_accents")
    tokenizer_json = _read_json(folder, "tokenizer.json") or {}
    if "config" in tokenizer_json and "lowercase" in tokenizer_json["config"]:  # keras-hub
        keras_hub_config = tokenizer_json["config"]
        return keras_hub_config["lowercase"], keras_hub_config.get("strip_accents")
    lowercase, strip_accents = _hf_normalizer_casing(tokenizer_json)
    if lowercase is not None:
        return lowercase, strip_accents
    if tokens is None:
        return None, None
    has_upper = any(any(c.isupper() for c in t) for t in tokens if not t.startswith("["))
    return not has_upper, None


def _wordpiece_vocabulary(folder):
    """The WordPiece token list in `folder`, or None."""
    for name in _WORDPIECE_FILES:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as file:
                return [line.rstrip("\n") for line in file]
    model = (_read_json(folder, "tokenizer.json") or {}).get("model") or {}
    if model.get("type") == "WordPiece":
        vocab = model["vocab"]
        return sorted(vocab, key=vocab.get)
    return None


def _sentencepiece_model(folder):
    named = os.path.join(folder, "spiece.model")
    if os.path.exists(named):
        return named
    models = sorted(glob.glob(os.path.join(folder, "*.model")))
    return models[0] if models else None


def load_tokenizer(path):
    """The tokenizer of the checkpoint at `path` (a folder, or a file in one)."""
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if sentence_transformers.is_sentence_transformers_folder(folder):
        tokenizer = _tokenizer_in(sentence_transformers.transformer_folder(folder), path)
        sentence_transformers.check_casing(folder, tokenizer.lower_case)
        return tokenizer
    return _tokenizer_in(folder, path)


def _tokenizer_in(folder, path):
    """The tokenizer whose files are in `folder` (`path` names it in errors)."""
    from kerasbert.text.sentencepiece import SentencePieceTokenizer
    from kerasbert.text.wordpiece import WordPieceTokenizer

    model_file = _sentencepiece_model(folder)
    if model_file is not None:
        lower_case, _ = _casing(folder, None)
        return SentencePieceTokenizer(model_file, lower_case=bool(lower_case))
    tokens = _wordpiece_vocabulary(folder)
    if tokens is not None:
        lower_case, strip_accents = _casing(folder, tokens)
        return WordPieceTokenizer(tokens, lower_case=lower_case, strip_accents=strip_accents)
    raise FileNotFoundError(
        f"No vocabulary beside {path!r}: expected vocab.txt, spiece.model (or another "
        "SentencePiece .model), a Hugging Face tokenizer.json, or keras-hub's "
        "assets/tokenizer/vocabulary.txt."
    )


def load_preprocessor(path, sequence_length=None, truncation="longest_first", pad_to="fixed",
                      head_length=None):
    """Strings -> model inputs for the checkpoint at `path`; see Preprocessor.

    sequence_length: default 128, or a Sentence-Transformers folder's own
        max_seq_length (its embeddings were made with that truncation).
    """
    if sequence_length is None:
        folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        if sentence_transformers.is_sentence_transformers_folder(folder):
            sequence_length = sentence_transformers.max_sequence_length(folder)
        sequence_length = sequence_length or 128
    return Preprocessor(load_tokenizer(path), sequence_length=sequence_length,
                        truncation=truncation, pad_to=pad_to, head_length=head_length)


def save_tokenizer(tokenizer, folder):
    """Writes `tokenizer`'s files into `folder` as `load_tokenizer` reads them:
    vocab.txt (WordPiece) or spiece.model (SentencePiece), and
    tokenizer_config.json with the casing. Returns the vocabulary file."""
    from kerasbert.text.sentencepiece import SentencePieceTokenizer

    os.makedirs(folder, exist_ok=True)
    if isinstance(tokenizer, SentencePieceTokenizer):
        target = os.path.join(folder, "spiece.model")
        if os.path.abspath(tokenizer.model_file) != os.path.abspath(target):
            shutil.copyfile(tokenizer.model_file, target + ".tmp")
            os.replace(target + ".tmp", target)
        casing = {"do_lower_case": bool(tokenizer.lower_case)}
    else:
        target = os.path.join(folder, "vocab.txt")
        with open(target + ".tmp", "w", encoding="utf-8") as file:
            file.writelines(token + "\n" for token in tokenizer.vocabulary.tokens)
        os.replace(target + ".tmp", target)
        casing = {"do_lower_case": tokenizer.lower_case,
                  "strip_accents": tokenizer.strip_accents}
    config_file = os.path.join(folder, "tokenizer_config.json")
    with open(config_file + ".tmp", "w") as file:
        json.dump(casing, file, indent=2)
    os.replace(config_file + ".tmp", config_file)
    return target
