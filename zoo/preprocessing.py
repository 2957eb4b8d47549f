"""`zoo.load_preprocessor(path)`: the tokenizer and packer a checkpoint was trained with.

Finds the vocabulary beside the weights and the casing in the checkpoint's
own files, in this order:
  SentencePiece model  spiece.model, or another *.model (ALBERT TF1: 30k-clean.model),
                       keras-hub's XLM-R assets/tokenizer/vocabulary.spm (fairseq ids)
  WordPiece vocabulary vocab.txt, keras-hub's assets/tokenizer/vocabulary.txt (read as
                       keras-hub reads text: KerasHubWordPieceTokenizer),
                       or the vocab inside a Hugging Face tokenizer.json
  byte-level BPE       vocab.json + merges.txt, keras-hub's assets/tokenizer/
                       vocabulary.json + merges.txt, or a BPE tokenizer.json
  casing               lower_case= when given, or the preset's when the weights are
                       a registry preset's (zoo.load_preprocessor("bert_base_uncased"));
                       else tokenizer_config.json (do_lower_case, strip_accents), the
                       normalizer of tokenizer.json, keras-hub's tokenizer config;
                       else the folder's name when Google's release scheme gives it
                       (uncased_L-12_H-768_A-12, multi_cased_..., as google-research/
                       bert's validate_case_matches_checkpoint reads it: Google's TF1
                       folders hold no tokenizer config); else the WordPiece
                       vocabulary or SentencePiece pieces: none of its entries changes
                       when lower-cased in an uncased one (ALBERT's 30k-clean.model;
                       'ℝ' has no lower case), thousands do in a cased one.
The decision and its reason are logged.
"""

import glob
import json
import os
import re
import shutil

from absl import logging

from kerasbert.text.preprocessor import Preprocessor
from zoo import pretrained
from zoo.convert import sentence_transformers

_KERAS_HUB_ASSETS = os.path.join("assets", "tokenizer")  # beside keras-hub's tokenizer.json
_WORDPIECE_FILES = ("vocab.txt", os.path.join(_KERAS_HUB_ASSETS, "vocabulary.txt"))


def _read_json(folder, name):
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return None
    with open(path) as file:
        return json.load(file)


def _keras_hub_tokenizer(folder):
    """(class, config) of a keras-hub preset's tokenizer.json, e.g.
    ("keras_hub>RobertaTokenizer", {...}); (None, {}) for any other folder."""
    saved = _read_json(folder, "tokenizer.json") or {}
    registered = str(saved.get("registered_name") or "")
    if not registered.startswith("keras_hub>"):
        return None, {}
    return registered, saved.get("config") or {}


def _hf_normalizer_casing(tokenizer_json):
    """(lowercase, strip_accents) from a HF tokenizer.json's BertNormalizer."""
    normalizer = (tokenizer_json or {}).get("normalizer") or {}
    for step in [normalizer] + list(normalizer.get("normalizers", [])):
        if step.get("type") == "BertNormalizer":
            return step.get("lowercase"), step.get("strip_accents")
    return None, None


# Google's release folders, as google-research/bert names them and its
# validate_case_matches_checkpoint reads them: [prefix_](un)cased_L-<layers>_H-<hidden>_A-<heads>,
# e.g. uncased_L-12_H-768_A-12, multi_cased_L-12_H-768_A-12, wwm_uncased_L-24_H-1024_A-16,
# the small BERTs' uncased_L-2_H-128_A-2, TF Hub's bert_en_uncased_L-12_H-768_A-12.
_GOOGLE_RELEASE_NAME = re.compile(r"(?:[a-z]+_)*(uncased|cased)_L-\d+_H-\d+_A-\d+")
# Google's two lower-cased releases whose names do not say so (its lower_models list).
_GOOGLE_UNCASED_RELEASES = ("multilingual_L-12_H-768_A-12", "chinese_L-12_H-768_A-12")
# [CLS], [unused0], <pad>: upper-case or not, in cased and uncased vocabularies alike.
_SPECIAL_TOKEN = re.compile(r"\[[^\]]*\]|<[^>]*>")
# An entry counts as upper-case when lower-casing changes it: uncased vocabularies
# hold symbols str.isupper() calls upper-case but str.lower() leaves alone ('ℝ',
# '##ℝ' in bert-base-uncased), and cased ones in any script ('Москва') are seen.
# A vocabulary learned on cased text holds its capital letters as entries of their own,
# alone and as '##' continuations, besides capitalised words: thousands in bert-base-cased
# or multi_cased. Fewer entries than the 26 letters could as well be words added by hand
# to an uncased vocabulary's [unused] slots, so that decision is logged as a guess.
_CASED_MIN_UPPER_ENTRIES = 26


def _stated_casing(folder):
    """(lower_case, strip_accents, file) as the tokenizer files in `folder` state
    them; lower_case is None when none does."""
    config = _read_json(folder, "tokenizer_config.json") or {}
    if "do_lower_case" in config:
        return config["do_lower_case"], config.get("strip_accents"), "tokenizer_config.json"
    tokenizer_json = _read_json(folder, "tokenizer.json") or {}
    if "config" in tokenizer_json and "lowercase" in tokenizer_json["config"]:  # keras-hub
        keras_hub_config = tokenizer_json["config"]
        return (keras_hub_config["lowercase"], keras_hub_config.get("strip_accents"),
                "keras-hub's tokenizer.json")
    keras_hub_class, _ = _keras_hub_tokenizer(folder)
    if keras_hub_class is not None:  # keras-hub lower-cases only where its config says so
        return False, None, f"keras-hub's tokenizer.json ({keras_hub_class} has no lowercase)"
    lowercase, strip_accents = _hf_normalizer_casing(tokenizer_json)
    return lowercase, strip_accents, "the normalizer of tokenizer.json"


def _casing_from_name(folder):
    """(lower_case, reason) when `folder` is named as Google names its releases, else
    (None, None): its TF1 folders hold vocab.txt and bert_config.json, no casing."""
    name = os.path.basename(os.path.abspath(folder))
    match = _GOOGLE_RELEASE_NAME.fullmatch(name)
    if match is None and name not in _GOOGLE_UNCASED_RELEASES:
        return None, None
    lower_case = match is None or match.group(1) == "uncased"
    return lower_case, (f"folder name {name!r}, as google-research/bert's "
                        "validate_case_matches_checkpoint reads it")


def _casing_from_vocabulary(tokens):
    """(lower_case, reason, guessed) from a WordPiece vocabulary or SentencePiece's
    pieces: lower-cased text never makes an entry with an upper-case letter, cased
    text makes thousands."""
    upper = [t for t in tokens if t != t.lower() and not _SPECIAL_TOKEN.fullmatch(t)]
    if not upper:
        return True, f"no upper-case entry among {len(tokens):,}", False
    if len(upper) >= _CASED_MIN_UPPER_ENTRIES:
        return False, f"{len(upper):,} entries with upper-case letters", False
    # Only a tokenizer that keeps the case can reach such entries: cased, but say so.
    return False, (f"a guess from only {len(upper)} entries with upper-case letters "
                   f"({', '.join(map(repr, upper[:5]))}), few enough to be added by hand "
                   "to an uncased vocabulary; pass lower_case= to decide"), True


def _casing_name(lower_case):
    return "uncased" if lower_case else "cased"


def _casing(folder, tokens, lower_case=None):
    """(lower_case, strip_accents) for the tokenizer in `folder` whose vocabulary (or
    SentencePiece pieces) `tokens()` returns (read only when needed), decided and logged
    in the module docstring's order. strip_accents None follows lower_case (Hugging
    Face's default); a file's own strip_accents stays under lower_case=, as under
    transformers' from_pretrained(..., do_lower_case=)."""
    stated_lower_case, strip_accents, stated_in = _stated_casing(folder)
    doubtful = False
    if lower_case is not None:
        reason = "lower_case= given"
    elif stated_lower_case is not None:
        lower_case, reason = stated_lower_case, f"stated in {stated_in}"
    else:
        lower_case, reason = _casing_from_name(folder)
        read_lower_case, read_reason, guessed = _casing_from_vocabulary(tokens())
        if lower_case is None:
            lower_case, reason, doubtful = read_lower_case, read_reason, guessed
        elif read_lower_case != lower_case and not guessed:
            # The name decides, as in Google's code; a renamed folder would mislead it.
            reason += (f", though the vocabulary reads {_casing_name(read_lower_case)}: "
                       f"{read_reason}; pass lower_case= if the name is wrong")
            doubtful = True
    log = logging.warning if doubtful else logging.info
    log("Tokenizer in %s: %s (%s).", folder, _casing_name(lower_case), reason)
    return lower_case, strip_accents


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


def _sentencepiece_pieces(model_file):
    """The pieces of a SentencePiece model: like a WordPiece vocabulary, those of a
    model trained on lower-cased text (ALBERT's 30k-clean.model) have no capitals."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=model_file)
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


def _is_xlm_roberta(folder, model_file):
    """XLM-RoBERTa's SentencePiece (fairseq ids), not ALBERT's: as its file is
    named, or as the folder's configs say."""
    tokenizer_class = (_read_json(folder, "tokenizer_config.json") or {}).get(
        "tokenizer_class") or ""
    model_type = (_read_json(folder, "config.json") or {}).get("model_type")
    return (os.path.basename(model_file or "") == _XLM_ROBERTA_MODEL
            or tokenizer_class.startswith("XLMRoberta") or model_type == "xlm-roberta"
            or _keras_hub_tokenizer(folder)[0] == _KERAS_HUB_XLM_ROBERTA)


_XLM_ROBERTA_MODEL = "sentencepiece.bpe.model"
# keras-hub's XLMRobertaTokenizer saves its proto as assets/tokenizer/vocabulary.spm
# and gives it fairseq's ids. (ALBERT's keras-hub tokenizer saves one too, read
# without ALBERT's normalization: not detected here.)
_KERAS_HUB_XLM_ROBERTA = "keras_hub>XLMRobertaTokenizer"


def _byte_level_bpe(folder):
    """RoBERTa's byte-level BPE tokenizer: vocab.json + merges.txt, keras-hub's
    assets/tokenizer/vocabulary.json + merges.txt, or a tokenizer.json with a
    BPE model (rewritten as those two in the cache)."""
    from kerasbert.text.bpe import ByteLevelBpeTokenizer
    from zoo.convert import tokenizer_json

    config = _read_json(folder, "tokenizer_config.json") or {}
    options = {"add_prefix_space": bool(config.get("add_prefix_space", False))}
    vocab, merges = os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")
    if os.path.exists(vocab) and os.path.exists(merges):
        return ByteLevelBpeTokenizer(vocab, merges, **options)
    keras_hub_class, keras_hub_config = _keras_hub_tokenizer(folder)
    vocab, merges = (os.path.join(folder, _KERAS_HUB_ASSETS, name)
                     for name in ("vocabulary.json", "merges.txt"))
    if keras_hub_class is not None and os.path.exists(vocab) and os.path.exists(merges):
        return ByteLevelBpeTokenizer(vocab, merges, add_prefix_space=bool(
            keras_hub_config.get("add_prefix_space", False)))
    if tokenizer_json.model_type(_read_json(folder, "tokenizer.json")) == "BPE":
        return ByteLevelBpeTokenizer(
            *tokenizer_json.bpe_files(os.path.join(folder, "tokenizer.json")), **options)
    return None


def _keras_hub_wordpiece_options(folder):
    """KerasHubWordPieceTokenizer's options when the folder's WordPiece vocabulary
    is a keras-hub preset's (assets/tokenizer/vocabulary.txt beside keras-hub's
    tokenizer.json), or was saved from one (`save_tokenizer`); else None: the
    reference's (Hugging Face's) WordPiece."""
    saved = (_read_json(folder, "tokenizer_config.json") or {}).get(_KERAS_HUB_WORDPIECE)
    if saved is not None:
        return dict(saved)
    keras_hub_class, config = _keras_hub_tokenizer(folder)
    if keras_hub_class is None or not os.path.exists(
            os.path.join(folder, _KERAS_HUB_ASSETS, "vocabulary.txt")):
        return None
    unsupported = {key: config[key] for key, supported in (
        ("split", True), ("suffix_indicator", "##"), ("oov_token", "[UNK]"))
        if config.get(key, supported) != supported}
    if config.get("special_tokens"):
        unsupported["special_tokens"] = config["special_tokens"]
    if unsupported:
        raise ValueError(f"{folder}: keras-hub's {keras_hub_class} with {unsupported} is not "
                         "supported (kerasbert reads split=True, '##', [UNK], no extra "
                         "special tokens).")
    return {"split_on_cjk": bool(config.get("split_on_cjk", True)),
            "special_tokens_in_strings": bool(config.get("special_tokens_in_strings", False))}


# tokenizer_config.json's key for a KerasHubWordPieceTokenizer's own options.
_KERAS_HUB_WORDPIECE = "keras_hub_wordpiece"


def _albert_normalization(folder):
    """ALBERT's text cleanup as the folder's tokenizer_config.json states it
    (Hugging Face's remove_space and keep_accents); without one, the original
    ALBERT's (google-research/albert): spaces collapsed, accents stripped."""
    config = _read_json(folder, "tokenizer_config.json") or {}
    return {"albert_normalization": bool(config.get("remove_space", True)),
            "keep_accents": bool(config.get("keep_accents", False))}


def _sentencepiece_model(folder):
    """The folder's SentencePiece .model file, or one rebuilt from a Unigram
    tokenizer.json (transformers 5 saves ALBERT and XLM-R tokenizers so)."""
    from zoo.convert import tokenizer_json

    named = os.path.join(folder, "spiece.model")
    if os.path.exists(named):
        return named
    models = sorted(glob.glob(os.path.join(folder, "*.model")))
    if models:
        return models[0]
    keras_hub_proto = os.path.join(folder, _KERAS_HUB_ASSETS, "vocabulary.spm")
    if _keras_hub_tokenizer(folder)[0] == _KERAS_HUB_XLM_ROBERTA and os.path.exists(
            keras_hub_proto):
        return keras_hub_proto
    if tokenizer_json.model_type(_read_json(folder, "tokenizer.json")) == "Unigram":
        return tokenizer_json.sentencepiece_model(os.path.join(folder, "tokenizer.json"),
                                                  fairseq=_is_xlm_roberta(folder, None))
    return None


def _locate(path, lower_case):
    """(local path, lower_case) of a path, hub handle or preset name: a preset's
    published casing decides unless `lower_case` is given."""
    located = pretrained.locate(path)
    if lower_case is None and located.lower_case is not None:
        lower_case = located.lower_case
        logging.info("Tokenizer of preset %s: %s, as the preset was published.",
                     located.preset.name, _casing_name(lower_case))
    return located.path, lower_case


def load_tokenizer(path, lower_case=None):
    """The tokenizer of the checkpoint at `path` (a folder, or a file in one; a hub
    handle or a preset name for its published weights).

    lower_case: True or False decides the casing over anything the folder says
        (a registry preset knows its own); None infers it, see the module docstring.
    """
    return _tokenizer_at(*_locate(path, lower_case))


def _tokenizer_at(path, lower_case):
    """The tokenizer of the checkpoint at the local `path`."""
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if sentence_transformers.is_sentence_transformers_folder(folder):
        tokenizer = _tokenizer_in(sentence_transformers.transformer_folder(folder), path,
                                  lower_case)
        sentence_transformers.check_casing(folder, tokenizer.lower_case)
        return tokenizer
    return _tokenizer_in(folder, path, lower_case)


def _tokenizer_in(folder, path, lower_case=None):
    """The tokenizer whose files are in `folder` (`path` names it in errors)."""
    from kerasbert.text.sentencepiece import SentencePieceTokenizer
    from kerasbert.text.wordpiece import KerasHubWordPieceTokenizer, WordPieceTokenizer

    model_file = _sentencepiece_model(folder)
    if model_file is not None:
        lower_case, _ = _casing(folder, lambda: _sentencepiece_pieces(model_file), lower_case)
        if _is_xlm_roberta(folder, model_file):
            return SentencePieceTokenizer(model_file, lower_case=bool(lower_case),
                                          fairseq_ids=True)
        return SentencePieceTokenizer(model_file, lower_case=bool(lower_case),
                                      **_albert_normalization(folder))
    tokens = _wordpiece_vocabulary(folder)
    if tokens is not None:
        lower_case, strip_accents = _casing(folder, lambda: tokens, lower_case)
        keras_hub_options = _keras_hub_wordpiece_options(folder)
        if keras_hub_options is not None:
            return KerasHubWordPieceTokenizer(tokens, lower_case=lower_case,
                                              strip_accents=bool(strip_accents),
                                              **keras_hub_options)
        return WordPieceTokenizer(tokens, lower_case=lower_case, strip_accents=strip_accents)
    bpe = _byte_level_bpe(folder)
    if bpe is not None:
        return bpe
    raise FileNotFoundError(
        f"No vocabulary beside {path!r}: expected vocab.txt, spiece.model (or another "
        "SentencePiece .model), vocab.json + merges.txt, a Hugging Face tokenizer.json, "
        "or keras-hub's assets/tokenizer/ (vocabulary.txt, vocabulary.json + merges.txt, "
        "or XLM-R's vocabulary.spm)."
    )


def load_preprocessor(path, sequence_length=None, truncation="longest_first", pad_to="fixed",
                      head_length=None, lower_case=None):
    """Strings -> model inputs for the checkpoint at `path`; see Preprocessor.

    sequence_length: default 128, or a Sentence-Transformers folder's own
        max_seq_length (its embeddings were made with that truncation).
    lower_case: the casing, over what the folder says; see `load_tokenizer`.
    """
    path, lower_case = _locate(path, lower_case)
    if sequence_length is None:
        folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
        if sentence_transformers.is_sentence_transformers_folder(folder):
            sequence_length = sentence_transformers.max_sequence_length(folder)
        sequence_length = sequence_length or 128
    return Preprocessor(_tokenizer_at(path, lower_case), sequence_length=sequence_length,
                        truncation=truncation, pad_to=pad_to, head_length=head_length)


def save_tokenizer(tokenizer, folder):
    """Writes `tokenizer`'s files into `folder` as `load_tokenizer` reads them:
    vocab.txt (WordPiece) or spiece.model (SentencePiece), and
    tokenizer_config.json with the casing. Returns the vocabulary file."""
    from kerasbert.text.sentencepiece import SentencePieceTokenizer
    from kerasbert.text.wordpiece import KerasHubWordPieceTokenizer

    from kerasbert.text.bpe import ByteLevelBpeTokenizer

    os.makedirs(folder, exist_ok=True)
    if isinstance(tokenizer, ByteLevelBpeTokenizer):
        for source, name in ((tokenizer.vocab_file, "vocab.json"),
                             (tokenizer.merges_file, "merges.txt")):
            target = os.path.join(folder, name)
            if os.path.abspath(source) != os.path.abspath(target):
                shutil.copyfile(source, target + ".tmp")
                os.replace(target + ".tmp", target)
        casing = {"tokenizer_class": "RobertaTokenizer",
                  "add_prefix_space": tokenizer.add_prefix_space}
        target = os.path.join(folder, "vocab.json")
    elif isinstance(tokenizer, SentencePieceTokenizer):
        fairseq = tokenizer.fairseq_ids
        target = os.path.join(folder, _XLM_ROBERTA_MODEL if fairseq else "spiece.model")
        if os.path.abspath(tokenizer.model_file) != os.path.abspath(target):
            shutil.copyfile(tokenizer.model_file, target + ".tmp")
            os.replace(target + ".tmp", target)
        casing = ({"do_lower_case": bool(tokenizer.lower_case),
                   "tokenizer_class": "XLMRobertaTokenizer"} if fairseq else
                  {"do_lower_case": bool(tokenizer.lower_case),
                   "remove_space": bool(tokenizer.albert_normalization),
                   "keep_accents": bool(tokenizer.keep_accents)})
    else:
        target = os.path.join(folder, "vocab.txt")
        with open(target + ".tmp", "w", encoding="utf-8") as file:
            file.writelines(token + "\n" for token in tokenizer.vocabulary.tokens)
        os.replace(target + ".tmp", target)
        casing = {"do_lower_case": tokenizer.lower_case,
                  "strip_accents": tokenizer.strip_accents}
        if isinstance(tokenizer, KerasHubWordPieceTokenizer):  # keras-hub's reading of text
            casing[_KERAS_HUB_WORDPIECE] = {
                "split_on_cjk": tokenizer.split_on_cjk,
                "special_tokens_in_strings": tokenizer.special_tokens_in_strings}
    config_file = os.path.join(folder, "tokenizer_config.json")
    with open(config_file + ".tmp", "w") as file:
        json.dump(casing, file, indent=2)
    os.replace(config_file + ".tmp", config_file)
    return target
