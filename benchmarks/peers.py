"""The same BERT encoder in three libraries, as zero-argument timed calls.

Each `make_*` returns (call, info): `call()` runs one batch through the
model the way its users run it (Keras `model.predict` for kerasbert and
keras-hub, an eager `torch.no_grad()` forward for Hugging Face, bfloat16
through `torch.autocast`) and blocks until the outputs exist. All three
get random weights of the same shape and the same token ids.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Shape:
    """An encoder shape and a batch: what is timed."""

    name: str
    layers: int
    hidden: int
    heads: int
    intermediate: int
    batch: int
    sequence: int
    vocab: int = 30522

    def flops(self):
        """Forward FLOPs of the encoder: 2*L*(4h^2 + 2h*i)*tokens + 4*L*s^2*h*batch."""
        tokens = self.batch * self.sequence
        return (2 * self.layers * (4 * self.hidden ** 2 + 2 * self.hidden * self.intermediate)
                * tokens + 4 * self.layers * self.sequence ** 2 * self.hidden * self.batch)


BERT_BASE = Shape("bert_base", 12, 768, 12, 3072, batch=8, sequence=128)
BERT_TINY = Shape("bert_tiny", 2, 128, 2, 512, batch=32, sequence=128)
QUICK = Shape("test_tiny", 2, 16, 2, 32, batch=2, sequence=16, vocab=100)


def token_ids(shape, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, shape.vocab, (shape.batch, shape.sequence)).astype(np.int32)
    return ids, np.ones_like(ids), np.zeros_like(ids)


def make_kerasbert(shape, dtype="float32"):
    import zoo

    model = zoo.BertBackbone(vocab_size=shape.vocab, num_layers=shape.layers,
                             hidden_size=shape.hidden, num_heads=shape.heads,
                             intermediate_size=shape.intermediate, dropout=0.0,
                             dtype=None if dtype == "float32" else f"mixed_{dtype}")
    ids, mask, types = token_ids(shape)
    inputs = {"input_word_ids": ids, "input_mask": mask, "input_type_ids": types}

    def call():
        model.predict(inputs, batch_size=shape.batch, verbose=0)

    return call, {"library": "kerasbert", "parameters": model.count_params()}


def make_keras_hub(shape, dtype="float32"):
    import keras_hub

    model = keras_hub.models.BertBackbone(
        vocabulary_size=shape.vocab, num_layers=shape.layers, num_heads=shape.heads,
        hidden_dim=shape.hidden, intermediate_dim=shape.intermediate, dropout=0.0,
        dtype=None if dtype == "float32" else f"mixed_{dtype}")
    ids, mask, types = token_ids(shape)
    inputs = {"token_ids": ids, "padding_mask": mask, "segment_ids": types}

    def call():
        model.predict(inputs, batch_size=shape.batch, verbose=0)

    return call, {"library": "keras-hub", "parameters": model.count_params()}


def make_hugging_face(shape, dtype="float32"):
    """None when torch or transformers is not installed."""
    try:
        import torch
        import transformers
    except ImportError:
        return None
    config = transformers.BertConfig(
        vocab_size=shape.vocab, hidden_size=shape.hidden, num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads, intermediate_size=shape.intermediate,
        max_position_embeddings=max(512, shape.sequence))
    model = transformers.BertModel(config).eval()
    ids, mask, types = (torch.from_numpy(a).long() for a in token_ids(shape))

    def call():
        with torch.no_grad():
            if dtype == "bfloat16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    model(input_ids=ids, attention_mask=mask, token_type_ids=types)
            else:
                model(input_ids=ids, attention_mask=mask, token_type_ids=types)

    return call, {"library": "hugging-face",
                  "parameters": sum(p.numel() for p in model.parameters())}
