"""Tokenizer files from a Hugging Face tokenizer.json, for the in-graph tokenizers.

transformers 5 saves ALBERT, XLM-RoBERTa and RoBERTa tokenizers as
tokenizer.json alone. What the in-graph tokenizers read is rebuilt from it
once and cached under $KERASBERT_CACHE/tokenizers/<sha256 of tokenizer.json>/
(written whole or not at all):
- a Unigram model (ALBERT, XLM-R): a SentencePiece .model holding its pieces,
  scores and precompiled normalization charsmap;
- a BPE model (RoBERTa): vocab.json and merges.txt.
"""

import base64
import hashlib
import json
import os
import tempfile

from kerasbert.text.sentencepiece import FAIRSEQ_FIRST

_NORMAL, _UNKNOWN, _CONTROL = 1, 2, 3  # sentencepiece ModelProto.SentencePiece.Type
_UNIGRAM = 1  # TrainerSpec.ModelType


def model_type(tokenizer_json):
    """"Unigram", "BPE", "WordPiece", ... of a parsed tokenizer.json (None: none)."""
    return (tokenizer_json or {}).get("model", {}).get("type")


def sentencepiece_model(path, fairseq):
    """The cached .model rebuilt from the Unigram tokenizer.json at `path`.

    fairseq: the vocabulary is XLM-RoBERTa's (<s> <pad> </s> <unk>, pieces,
    <mask>): the model gets SentencePiece's own layout back (<unk> <s> </s>,
    pieces), which SentencePieceTokenizer(fairseq_ids=True) maps again.
    """
    name = "sentencepiece.bpe.model" if fairseq else "spiece.model"  # as the hubs name them
    folder = _cached(path, [name],
                     lambda parsed: {name: _proto(parsed, fairseq).SerializeToString()})
    return os.path.join(folder, name)


def bpe_files(path):
    """(vocab.json, merges.txt) cached from the BPE tokenizer.json at `path`."""
    def files(parsed):
        model = parsed["model"]
        merges = [" ".join(m) if isinstance(m, list) else m for m in model["merges"]]
        return {"vocab.json": json.dumps(model["vocab"], ensure_ascii=False).encode("utf-8"),
                "merges.txt": ("#version: 0.2\n" + "\n".join(merges) + "\n").encode("utf-8")}

    folder = _cached(path, ["vocab.json", "merges.txt"], files)
    return os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")


def _cached(path, names, make_files):
    """The cache folder of tokenizer.json `path` holding the files `names`;
    when one is missing, make_files(parsed json) -> {name: bytes} makes them
    (once: later loads read the cache), each written whole or not at all."""
    from zoo.hub.archives import cache_root

    with open(path, "rb") as file:
        content = file.read()
    folder = os.path.join(cache_root(), "tokenizers", hashlib.sha256(content).hexdigest()[:32])
    if all(os.path.exists(os.path.join(folder, name)) for name in names):
        return folder
    os.makedirs(folder, exist_ok=True)
    for name, data in make_files(json.loads(content)).items():
        handle, temporary = tempfile.mkstemp(suffix=".tmp", dir=folder)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, os.path.join(folder, name))
    return folder


def _proto(tokenizer_json, fairseq):
    from sentencepiece import sentencepiece_model_pb2

    model = tokenizer_json["model"]
    vocab = [(piece, float(score)) for piece, score in model["vocab"]]
    special = {token["content"] for token in tokenizer_json.get("added_tokens", [])
               if token.get("special")}
    if fairseq:
        if tuple(piece for piece, _ in vocab[:4]) != FAIRSEQ_FIRST or vocab[-1][0] != "<mask>":
            raise ValueError("An XLM-RoBERTa tokenizer.json starts with <s> <pad> </s> <unk> "
                             "and ends with <mask>; this one does not.")
        entries = [("<unk>", 0.0, _UNKNOWN), ("<s>", 0.0, _CONTROL), ("</s>", 0.0, _CONTROL)]
        entries += [(piece, score, _NORMAL) for piece, score in vocab[4:-1]]
        unk_id, bos_id, eos_id = 0, 1, 2
    else:
        unk_id = model.get("unk_id", 0)
        entries = [(piece, score, _UNKNOWN if index == unk_id else
                    _CONTROL if piece in special else _NORMAL)
                   for index, (piece, score) in enumerate(vocab)]
        bos_id = eos_id = -1
    proto = sentencepiece_model_pb2.ModelProto()
    for piece, score, kind in entries:
        proto.pieces.add(piece=piece, score=score, type=kind)
    proto.trainer_spec.model_type = _UNIGRAM
    proto.trainer_spec.vocab_size = len(entries)
    proto.trainer_spec.unk_id, proto.trainer_spec.bos_id = unk_id, bos_id
    proto.trainer_spec.eos_id, proto.trainer_spec.pad_id = eos_id, -1
    normalizer = proto.normalizer_spec
    normalizer.name = "nmt_nfkc"
    normalizer.precompiled_charsmap = _charsmap(tokenizer_json.get("normalizer"))
    normalizer.add_dummy_prefix = True
    normalizer.remove_extra_whitespaces = True
    normalizer.escape_whitespaces = True
    return proto


def _charsmap(normalizer):
    """The base64 precompiled charsmap of a Precompiled normalizer (alone or in a Sequence)."""
    if not normalizer:
        return b""
    if normalizer.get("type") == "Precompiled":
        return base64.b64decode(normalizer["precompiled_charsmap"])
    for inner in normalizer.get("normalizers", []):
        found = _charsmap(inner)
        if found:
            return found
    return b""
