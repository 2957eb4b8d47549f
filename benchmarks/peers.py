"""The same BERT encoder in three libraries, as zero-argument timed calls.

Each `make_*` returns (call, info): `call()` runs the model the way its
users run it and blocks until the results exist:
- inference: Keras `model.predict` for kerasbert and keras-hub, an eager
  `torch.no_grad()` forward for Hugging Face (bfloat16 through
  `torch.autocast`);
- training: Keras `model.fit` for kerasbert and keras-hub, an eager
  forward/backward/AdamW step for Hugging Face.
All three get random weights of the same shape and the same token ids.
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
SHAPES = {shape.name: shape for shape in (BERT_BASE, BERT_TINY, QUICK)}


def token_ids(shape, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, shape.vocab, (shape.batch, shape.sequence)).astype(np.int32)
    return ids, np.ones_like(ids), np.zeros_like(ids)


def kerasbert_backbone(shape, dtype="float32", dropout=0.0):
    import zoo

    model = zoo.BertBackbone(vocab_size=shape.vocab, num_layers=shape.layers,
                             hidden_size=shape.hidden, num_heads=shape.heads,
                             intermediate_size=shape.intermediate, dropout=dropout,
                             attention_dropout=dropout, dtype=_policy(dtype))
    names = ("input_word_ids", "input_mask", "input_type_ids")
    return model, dict(zip(names, token_ids(shape))), "pooled_output"


def keras_hub_backbone(shape, dtype="float32", dropout=0.0):
    import keras_hub

    model = keras_hub.models.BertBackbone(
        vocabulary_size=shape.vocab, num_layers=shape.layers, num_heads=shape.heads,
        hidden_dim=shape.hidden, intermediate_dim=shape.intermediate, dropout=dropout,
        dtype=_policy(dtype))
    names = ("token_ids", "padding_mask", "segment_ids")
    return model, dict(zip(names, token_ids(shape))), "pooled_output"


KERAS_BACKBONES = {"kerasbert": kerasbert_backbone, "keras-hub": keras_hub_backbone}


def _policy(dtype):
    return None if dtype == "float32" else f"mixed_{dtype}"


def make_predict(library, shape, dtype="float32"):
    """A Keras library's `model.predict` on one batch (what its users call)."""
    model, inputs, _ = KERAS_BACKBONES[library](shape, dtype)

    def call():
        model.predict(inputs, batch_size=shape.batch, verbose=0)

    return call, {"library": library, "dtype": dtype, "parameters": model.count_params()}


def make_fit(library, shape, dtype="float32", steps=1):
    """A Keras library's `model.fit` over `steps` batches: the backbone (with
    dropout 0.1, as fine-tuning runs it), a 2-class head on the pooled
    output, sparse cross-entropy, and each library's fine-tuning optimizer:
    kerasbert's `tasks.training.optimization.create_optimizer` (AdamW with warmup,
    weight decay and global-norm clipping, what `tasks.run` trains with) in
    the `kerasbert.models.Model` its tasks build; keras.optimizers.AdamW in a
    keras.Model for keras-hub. `info["steps"]` says how many steps one call
    runs."""
    import keras

    backbone, inputs, pooled = KERAS_BACKBONES[library](shape, dtype, dropout=0.1)
    logits = keras.layers.Dense(2, dtype=_policy(dtype))(backbone.output[pooled])
    if library == "kerasbert":
        from kerasbert import models
        from tasks.training import optimization

        model = models.Model(backbone.input, logits)
        optimizer = optimization.create_optimizer(1e-5, 10 ** 6, warmup_steps=100)
    else:
        model = keras.Model(backbone.input, logits)
        optimizer = keras.optimizers.AdamW(1e-5)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = {name: np.tile(value, (steps, 1)) for name, value in inputs.items()}
    y = np.arange(shape.batch * steps) % 2

    def call():
        model.fit(x, y, batch_size=shape.batch, epochs=1, shuffle=False, verbose=0)

    return call, {"library": library, "dtype": dtype, "parameters": model.count_params(),
                  "steps": steps}


def _hugging_face_model(shape):
    try:
        import torch
        import transformers
    except ImportError:
        return None
    config = transformers.BertConfig(
        vocab_size=shape.vocab, hidden_size=shape.hidden, num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads, intermediate_size=shape.intermediate,
        max_position_embeddings=max(512, shape.sequence))
    inputs = dict(zip(("input_ids", "attention_mask", "token_type_ids"),
                      (torch.from_numpy(a).long() for a in token_ids(shape))))
    return torch, transformers.BertModel(config), inputs


def make_hugging_face_predict(shape, dtype="float32"):
    """An eager `torch.no_grad()` forward (bfloat16 through autocast); None
    when torch or transformers is not installed."""
    made = _hugging_face_model(shape)
    if made is None:
        return None
    torch, model, inputs = made
    model.eval()

    def call():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16,
                                             enabled=dtype == "bfloat16"):
            model(**inputs)

    return call, {"library": "hugging-face", "dtype": dtype,
                  "parameters": sum(p.numel() for p in model.parameters())}


def make_hugging_face_train(shape, dtype="float32", steps=1):
    """The same training step in eager PyTorch (AdamW, dropout 0.1, a
    2-class head on the pooler); None without torch or transformers."""
    made = _hugging_face_model(shape)
    if made is None:
        return None
    torch, model, inputs = made
    head = torch.nn.Linear(shape.hidden, 2)
    model.train()
    parameters = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=1e-5)
    labels = torch.arange(shape.batch) % 2

    def call():
        for _ in range(steps):
            optimizer.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
                logits = head(model(**inputs).pooler_output)
            torch.nn.functional.cross_entropy(logits.float(), labels).backward()
            optimizer.step()

    return call, {"library": "hugging-face", "dtype": dtype, "steps": steps,
                  "parameters": sum(p.numel() for p in parameters)}
