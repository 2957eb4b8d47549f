"""Teacher and student models as distillation sees them.

Distillation reads more than a model's task outputs: every hidden state
(embeddings first), the attention scores, TinyBERT's `fit_dense`
projections. A zoo backbone gives them when built with
`output_embeddings=True, return_attention_scores=True`; `with_internals`
rebuilds a backbone that way (same weights), and `training_view` wraps a
task model built on such a backbone as

    features -> {"task": the task model's outputs, "internals": the backbone's}

sharing the task model's layers (one forward pass gives both). A teacher
comes from anything `zoo.load` reads (with its heads) or from a task model
saved by `tasks.run` (model.keras), which is rebuilt on a backbone with
internals by the task that made it and checked against the saved model.
An image teacher (DeiT's) is read for its logits only: `image_classifier_view`.
"""

import os

import keras
import numpy as np

import zoo
from zoo.backbone import Backbone, backbone_of, rebuild
from zoo.heads import BackboneWithHeads

INTERNALS = {"output_embeddings": True, "return_attention_scores": True}


def with_internals(backbone, **arguments):
    """`backbone` rebuilt to also output every hidden state and attention score."""
    return rebuild(backbone, **INTERNALS, **arguments)


def without_internals(backbone):
    """`backbone` rebuilt as an ordinary zoo backbone (task outputs only)."""
    return rebuild(backbone, output_embeddings=False, return_attention_scores=False)


def training_view(task_model, backbone):
    """features -> {"task": task_model's outputs, "internals": backbone's outputs}.

    `backbone` must be the one `task_model` was built on (its layers are
    shared, so the view runs the model once).
    """
    internals = task_model.get_layer(backbone.name).output
    return keras.Model(task_model.input, {"task": task_model.output, "internals": internals},
                       name=f"{task_model.name}_view")


def backbone_view(backbone):
    """features -> {"internals": backbone's outputs} (no task head)."""
    return keras.Model(backbone.input, {"internals": backbone.output},
                       name=f"{backbone.name}_view")


def mlm_view(heads):
    """A BackboneWithHeads with an MLM head -> a view whose task output is
    `mlm_logits` at `masked_lm_positions` (as the pretraining task's)."""
    if "mlm_logits" not in heads.output:
        raise ValueError(f"The teacher {heads.name} has no masked-LM head: DistilBERT "
                         "distillation needs one (a BERT checkpoint with its MLM head, or a "
                         "--task=pretraining model.keras).")
    backbone = heads.backbone
    inputs = dict(backbone.input)
    positions = keras.Input(shape=(None,), dtype="int32", name="masked_lm_positions")
    internals = backbone(inputs)
    logits = heads.get_layer("mlm_head")(internals["sequence_output"], positions)
    return keras.Model({**inputs, "masked_lm_positions": positions},
                       {"task": {"mlm_logits": logits}, "internals": internals},
                       name=f"{heads.name}_view")


def heads_view(heads, output):
    """A BackboneWithHeads -> a view whose task output is its `output` head
    (e.g. "logits" of a Hugging Face sequence classifier)."""
    if output not in heads.output:
        raise ValueError(f"The teacher {heads.name} has no {output!r} head (it has "
                         f"{sorted(heads.output)}); fine-tune the teacher on the task first.")
    internals = heads.get_layer(heads.backbone.name).output
    return keras.Model(heads.input, {"task": {output: heads.output[output]},
                                     "internals": internals}, name=f"{heads.name}_view")


def load_model_file(path):
    """The keras model saved at `path` (.keras, or a tasks.run model folder's
    model.keras), or None for other formats."""
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "model.keras")):
        path = os.path.join(path, "model.keras")
    if os.path.isfile(path) and path.endswith(".keras"):
        return keras.saving.load_model(path)
    return None


def rebuild_task_model(saved, build_task_model, dtype=None):
    """A task model saved by tasks.run, rebuilt on its backbone with internals.

    build_task_model(backbone) must build the same architecture the saved
    model has (the task that trained it). Returns (task model, backbone);
    its outputs are checked against the saved model's on a probe batch, so a
    mismatch fails here, not as silently wrong targets.
    """
    backbone = backbone_of(saved)
    flagged = with_internals(backbone)  # the saved precision first: checked exactly
    rebuilt = build_task_model(flagged)
    saved_shapes = [tuple(w.shape) for w in saved.weights]
    rebuilt_shapes = [tuple(w.shape) for w in rebuilt.weights]
    if saved_shapes != rebuilt_shapes or sorted(saved.output) != sorted(rebuilt.output):
        raise ValueError(
            f"The teacher {saved.name} is not the model this task builds (outputs "
            f"{sorted(saved.output)} vs {sorted(rebuilt.output)}, {len(saved_shapes)} vs "
            f"{len(rebuilt_shapes)} weights): train the teacher with the same task, "
            "labels and head.")
    rebuilt.set_weights(saved.get_weights())
    probe = _probe_inputs(saved)
    expected, actual = saved(probe), rebuilt(probe)
    for name in expected:
        gap = float(np.max(np.abs(np.asarray(expected[name], np.float32)
                                  - np.asarray(actual[name], np.float32))))
        if gap > 1e-4:
            raise ValueError(f"The teacher {saved.name} rebuilt with its internals differs "
                             f"from the saved model by {gap} on {name!r}.")
    if dtype is not None:  # then the run's policy (mixed precision), same weights
        flagged = rebuild(flagged, dtype=dtype)
        weights = rebuilt.get_weights()
        rebuilt = build_task_model(flagged)
        rebuilt.set_weights(weights)
    return rebuilt, flagged


def _probe_inputs(model):
    """A small valid batch for `model`'s inputs (token ids 1..4, positions 1..2)."""
    probe = {}
    for name, spec in model.input.items():
        shape = [2] + [4 if dim is None else dim for dim in spec.shape[1:]]
        if name == "masked_lm_positions":
            shape[-1] = 2
            probe[name] = np.ones(shape, np.int32) + np.arange(2, dtype=np.int32)
        elif name == "input_mask":
            probe[name] = np.ones(shape, np.int32)
        elif name == "input_type_ids":
            probe[name] = np.zeros(shape, np.int32)
        else:
            probe[name] = (np.arange(np.prod(shape)) % 4 + 1).reshape(shape).astype(np.int32)
    return probe


HEAD_NAMES = {"mlm_logits": "masked-LM", "logits": "classifier"}


def load_teacher(path, make_builder, output, dtype=None):
    """(view, backbone) of the teacher at `path`, its `output` head exposed.

    A task model saved by tasks.run is rebuilt by make_builder(saved model)
    (-> build_task_model(backbone)); anything else is read by zoo.load with
    its heads. dtype: the run's policy (mixed precision) or None.
    """
    saved = load_model_file(path)
    if saved is not None and not isinstance(saved, Backbone):
        if output not in saved.output:
            raise ValueError(f"The teacher {path} has no {HEAD_NAMES[output]} head (outputs "
                             f"{sorted(saved.output)}): train it on this task first.")
        task_model, backbone = rebuild_task_model(saved, make_builder(saved), dtype)
        return training_view(task_model, backbone), backbone
    heads = zoo.load(path, with_head=True, **INTERNALS, **({"dtype": dtype} if dtype else {}))
    view = mlm_view(heads) if output == "mlm_logits" else heads_view(heads, output)
    return view, heads.backbone


def load_backbone(path, **arguments):
    """The zoo backbone at `path`: a checkpoint zoo.load reads, or the
    backbone inside a saved task model or sentence encoder; `arguments` as
    zoo.load's overrides (internals, dtype, dropout)."""
    return backbone_of(zoo.load(path, **arguments))


def image_classifier_view(path, image_shape, dtype=None):
    """features (images [batch, *image_shape]) -> {"task": {"logits": ...}}
    of the image classifier at `path`, which takes them as they are.

    path: a tasks.run image_classification (or distill_deit) model folder or
    model.keras, or anything zoo.load reads with a classification head (a
    Hugging Face ViT/DeiT classifier, a preset name for its published
    weights). Images of another size are resized to the classifier's inside
    the view, grayscale repeated to its channels: the student's tf.data
    pipeline (mean/std included) serves both models.
    """
    saved = load_model_file(path)
    if saved is not None and not isinstance(saved, Backbone):
        model = saved  # a task model: only its logits are read, no internals
    else:
        model = zoo.load(path, with_head=True, **({"dtype": dtype} if dtype else {}))
    if isinstance(model.input, dict) or "logits" not in model.output:
        raise ValueError(f"The teacher {path} is not an image classifier (inputs "
                         f"{model.input}, outputs {sorted(model.output)}): train one with "
                         "--task=image_classification, or give a checkpoint with its "
                         "image-classification head.")
    height, width, channels = model.input.shape[1:]
    images = keras.Input(tuple(image_shape), name="images")
    x = images
    if (height, width) != tuple(image_shape[:2]):
        x = keras.layers.Resizing(height, width, name="teacher_resize")(x)
    if channels != image_shape[2]:
        if image_shape[2] != 1:
            raise ValueError(f"The teacher takes {channels}-channel images, the student "
                             f"{image_shape[2]}: only grayscale is repeated to the teacher's.")
        x = keras.layers.Concatenate(name="teacher_channels")([x] * channels)
    logits = model(x, training=False)["logits"]
    return keras.Model(images, {"task": {"logits": logits}}, name=f"{model.name}_view")
