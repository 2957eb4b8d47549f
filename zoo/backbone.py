"""What every zoo backbone shares: config from the constructor, counting.

A backbone is a Keras functional model built in `__init__`; its
`get_config()` returns exactly its constructor arguments, read off the
constructor's signature so a new argument cannot be forgotten.
"""

import inspect

import keras

from kerasbert.models import Model


class Backbone(Model):
    """Base of the zoo's backbones (functional models built in __init__)."""

    # False where the published checkpoints' pooler was never trained, so
    # sentence-level heads read the first token instead (`sentence_features`).
    pooler_is_trained = True

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        for name in self._constructor_argument_names():
            config[name] = getattr(self, name)
        config["dtype"] = keras.dtype_policies.serialize(self.dtype_policy)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)

    def _remember_arguments(self, arguments):
        """Stores the constructor arguments found in `arguments` (locals())."""
        for name in self._constructor_argument_names():
            setattr(self, name, arguments[name])
        # keras.Model's functional constructor ignores `dtype`; the layers
        # got it, and the model's own policy (and so its config) must too.
        if arguments.get("dtype") is not None:
            self.dtype_policy = keras.dtype_policies.get(arguments["dtype"])

    @classmethod
    def _constructor_argument_names(cls):
        return [
            argument.name
            for argument in inspect.signature(cls.__init__).parameters.values()
            if argument.name not in ("self", "dtype")
            and argument.kind is not argument.VAR_KEYWORD
        ]


def rebuild(backbone, keep_new=(), **arguments):
    """`backbone` built again with some constructor arguments changed (dtype,
    dropout, internals...) and its weights copied; itself when nothing changes.

    keep_new: layers whose weights the change reshapes (e.g. TinyBERT's
    `fit_dense` for another teacher width): they keep their new initial
    weights, every other layer's are copied.
    """
    config = backbone.get_config()
    if not keep_new and all(config.get(name) == value for name, value in arguments.items()):
        return backbone
    rebuilt = type(backbone).from_config({**config, **arguments})
    if not keep_new:
        rebuilt.set_weights(backbone.get_weights())
        return rebuilt
    for layer in backbone.layers:
        if layer.weights and layer.name not in keep_new:
            rebuilt.get_layer(layer.name).set_weights(layer.get_weights())
    return rebuilt


def backbone_of(model):
    """The zoo backbone of `model`: itself, the backbone a BackboneWithHeads or
    SentenceEncoder wraps, or the one zoo backbone inside a task model."""
    if isinstance(model, WrapsBackbone):  # BackboneWithHeads is a Backbone too
        return model.backbone
    if isinstance(model, Backbone):
        return model
    found = [layer for layer in model.layers if isinstance(layer, Backbone)]
    if len(found) != 1:
        raise ValueError(f"{model.name} is a {type(model).__name__} with {len(found)} zoo "
                         "backbones; a backbone, a backbone with heads, or a task model "
                         "built on one backbone was expected.")
    return found[0]


def sentence_features(backbone, outputs):
    """The [batch, H] vector a sentence-level head reads from a text backbone's
    outputs: the pooled output, or the first token's for families without a
    pooler (DistilBERT, ELECTRA) or whose pooler was never trained (RoBERTa,
    XLM-R: fairseq has none; Hugging Face's sequence classifiers read `<s>`
    too, its multiple-choice ones the untrained pooler)."""
    if "pooled_output" in outputs and backbone.pooler_is_trained:
        return outputs["pooled_output"]
    return outputs["sequence_output"][:, 0, :]


class WrapsBackbone:
    """Mixin of models built around one zoo backbone (BackboneWithHeads,
    SentenceEncoder): the config is the backbone, serialized, plus the
    `wrapper_arguments`; `with_backbone` rebuilds the model around another."""

    wrapper_arguments = ()

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                **{name: getattr(self, name) for name in self.wrapper_arguments}}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)

    def with_backbone(self, backbone):
        """This model around `backbone` (same weight shapes: e.g. the same
        backbone with another dtype policy or dropout), all weights copied."""
        model = type(self)(**{**self.get_config(), "backbone": backbone})
        model.set_weights(self.get_weights())
        return model


def forwarded_arguments(local_variables, drop=()):
    """A constructor's arguments (its `locals()`), ready to pass on as **kwargs.

    Family constructors spell out their signature (it is their documentation)
    and hand everything to the shared wiring with this, minus `drop`.
    """
    arguments = {
        name: value
        for name, value in local_variables.items()
        if name not in ("self", "__class__", "kwargs", *drop)
    }
    return {**arguments, **local_variables.get("kwargs", {})}


def dense_parameters(inputs, outputs):
    """Weights plus biases of a dense layer."""
    return inputs * outputs + outputs


def block_parameters(hidden_size, intermediate_size):
    """One Transformer block: QKV + output, two layer norms, feed-forward."""
    return (
        4 * dense_parameters(hidden_size, hidden_size)
        + 2 * 2 * hidden_size
        + dense_parameters(hidden_size, intermediate_size)
        + dense_parameters(intermediate_size, hidden_size)
    )
