"""`zoo.load(path)`: a backbone (or backbone + heads) from any checkpoint format.

`path` may also be a hub handle (hf://, kaggle://, an archive URL) or a
preset name (its published weights): zoo.pretrained finds it on disk first.

The format is detected from what is on disk:
  Hugging Face folder   config.json + model.safetensors / pytorch_model.bin
  keras-hub preset      config.json naming a keras_hub> class + model.weights.h5
  Google TF1 checkpoint bert_model.ckpt(.index) + bert_config.json / albert_config.json
  ViT .npz              the original JAX checkpoints
  Sentence-Transformers modules.json + a Hugging Face model + 1_Pooling: a
                        SentenceEncoder (backbone, pooling, normalization)
  .keras                our own saved models: a backbone, a backbone with heads, a
                        sentence encoder, or a task model saved by tasks.run (its
                        backbone is returned); a tasks.run model_dir means its
                        model.keras
"""

import os

import keras
from absl import logging

from zoo import pretrained
from zoo.heads import BackboneWithHeads

FORMATS = ("sentence_transformers", "hf", "keras_hub", "tf1", "vit_npz", "keras")
OVERRIDES = ("dtype", "dropout", "attention_dropout", "output_embeddings",
             "return_attention_scores")


def detect_format(path):
    """One of FORMATS, or an error saying what was found."""
    from zoo.convert import hf, keras_hub, sentence_transformers, tf1

    if os.path.isfile(path) and path.endswith(".keras"):
        return "keras"
    if os.path.isfile(path) and path.endswith(".npz"):
        return "vit_npz"
    if keras_hub.is_keras_hub_preset(path):
        return "keras_hub"
    if sentence_transformers.is_sentence_transformers_folder(path):
        return "sentence_transformers"  # before "hf": the model sits in the same folder
    if hf.is_hf_folder(path):
        return "hf"
    if tf1.find_tf1_checkpoint(path) is not None:
        return "tf1"
    if os.path.isfile(os.path.join(path, "model.keras")):
        return "keras"  # a tasks.run model_dir: its model.keras
    if not os.path.exists(path) and not os.path.exists(path + ".index"):
        raise FileNotFoundError(f"No checkpoint at {path!r}.")
    listing = sorted(os.listdir(path))[:20] if os.path.isdir(path) else [path]
    raise ValueError(
        f"Cannot tell the checkpoint format of {path!r} (found: {listing}). zoo.load "
        "reads a Hugging Face folder (config.json + model.safetensors or "
        "pytorch_model.bin), a Sentence-Transformers folder (modules.json), a keras-hub "
        "preset folder, a TF1 checkpoint "
        "(bert_model.ckpt + bert_config.json), a ViT .npz, or a .keras file."
    )


def load_with_report(path, with_head=False, **overrides):
    """(model, LoadReport or None) — `load` plus what was loaded and left out."""
    unknown = set(overrides) - set(OVERRIDES)
    if unknown:
        raise ValueError(f"zoo.load cannot override {sorted(unknown)}: the checkpoint's "
                         f"config decides the architecture. Allowed: {', '.join(OVERRIDES)}.")
    path = pretrained.resolve(path)
    kind = detect_format(path)
    if kind == "keras":
        if os.path.isdir(path):
            path = os.path.join(path, "model.keras")
        return _load_keras(path, with_head, overrides), None
    from zoo.convert import hf, keras_hub, sentence_transformers, tf1, vit_npz

    loader = {"hf": hf.load_hf, "keras_hub": keras_hub.load_keras_hub,
              "tf1": tf1.load_tf1, "vit_npz": vit_npz.load_vit_npz,
              "sentence_transformers": sentence_transformers.load_sentence_transformers}[kind]
    return loader(path, with_head=with_head, **overrides)


def load(path, with_head=False, **overrides):
    """The model stored at `path`, with its weights: a backbone, or for a
    Sentence-Transformers folder (or a saved one) a `SentenceEncoder`.

    path: a checkpoint on disk (see the module docstring), a hub handle
        (hf://OWNER/NAME[@REVISION], kaggle://..., https://...zip), or a
        preset name for its published weights (zoo.build gives the random
        architecture).

    with_head: also the checkpoint's heads (MLM, NSP/SOP, classification);
        the result is a `BackboneWithHeads` whose outputs add `mlm_logits`,
        `nsp_logits`/`sop_logits` and `logits`.
    overrides: arguments that change no weight: `dtype` (a Keras dtype
        policy such as "mixed_bfloat16"), `dropout`, `attention_dropout`,
        `output_embeddings`, `return_attention_scores`.
    """
    model, report = load_with_report(path, with_head=with_head, **overrides)
    if report is not None:
        logging.info(report.summary())
    return model


def _task_backbone(model, path, with_head):
    """The one zoo backbone inside a saved task model (tasks.run's model.keras)."""
    from zoo.backbone import backbone_of

    try:
        backbone = backbone_of(model)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    if with_head:
        raise ValueError(f"{path} is a task model: its heads are the task's, not a "
                         "checkpoint's. Load it whole with keras.saving.load_model, or its "
                         "backbone with zoo.load(path).")
    return backbone


def _load_keras(path, with_head, overrides):
    from zoo.backbone import Backbone, WrapsBackbone
    from zoo.sentence_encoder import SentenceEncoder

    model = keras.saving.load_model(path)
    if isinstance(model, SentenceEncoder) and with_head:
        raise ValueError(f"{path} holds a sentence encoder: it has no checkpoint heads. "
                         "Load it without with_head=True.")
    if not isinstance(model, (Backbone, WrapsBackbone)):
        model = _task_backbone(model, path, with_head)
    if overrides:
        model = _with_overrides(model, overrides)
    if isinstance(model, BackboneWithHeads) and not with_head:
        return model.backbone
    if with_head and not isinstance(model, BackboneWithHeads):
        return BackboneWithHeads(model, name=f"{model.name}_with_heads")
    return model


def _with_overrides(model, overrides):
    """`model` rebuilt around its backbone with `overrides` (no weight changes)."""
    from zoo.backbone import WrapsBackbone, rebuild

    backbone = model.backbone if isinstance(model, WrapsBackbone) else model
    rebuilt = rebuild(backbone, **overrides)
    if rebuilt is backbone:
        return model
    return model.with_backbone(rebuilt) if isinstance(model, WrapsBackbone) else rebuilt
