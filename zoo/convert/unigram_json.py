"""A SentencePiece model from a Hugging Face tokenizer.json with a Unigram model.

transformers 5 saves ALBERT and XLM-RoBERTa tokenizers as tokenizer.json
alone (no .model file). Its Unigram vocabulary (pieces and scores) and the
precompiled normalization charsmap are what a SentencePiece unigram model
holds, so one is rebuilt from them and cached under
$KERASBERT_CACHE/sentencepiece/<sha256 of tokenizer.json>.model; the in-graph
SentencePieceTokenizer reads it as any .model file.
"""

import base64
import hashlib
import json
import os
import tempfile

_NORMAL, _UNKNOWN, _CONTROL = 1, 2, 3  # sentencepiece ModelProto.SentencePiece.Type
_UNIGRAM = 1  # TrainerSpec.ModelType
FAIRSEQ_FIRST = ("<s>", "<pad>", "</s>", "<unk>")


def is_unigram(tokenizer_json):
    return (tokenizer_json or {}).get("model", {}).get("type") == "Unigram"


def model_file(tokenizer_json_path, fairseq):
    """The cached .model file rebuilt from `tokenizer_json_path`.

    fairseq: the vocabulary is XLM-RoBERTa's (<s> <pad> </s> <unk>, pieces,
    <mask>): the model gets SentencePiece's own layout back (<unk> <s> </s>,
    pieces), which SentencePieceTokenizer(fairseq_ids=True) maps again.
    """
    from zoo.hub.archives import cache_root

    with open(tokenizer_json_path, "rb") as file:
        content = file.read()
    folder = os.path.join(cache_root(), "sentencepiece")
    path = os.path.join(folder, f"{hashlib.sha256(content).hexdigest()[:32]}"
                                f"{'-fairseq' if fairseq else ''}.model")
    if not os.path.exists(path):
        proto = _proto(json.loads(content), fairseq)
        os.makedirs(folder, exist_ok=True)
        handle, temporary = tempfile.mkstemp(suffix=".model.tmp", dir=folder)
        with os.fdopen(handle, "wb") as file:
            file.write(proto.SerializeToString())
        os.replace(temporary, path)  # whole or absent
    return path


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
