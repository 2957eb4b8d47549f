"""ELECTRA's replaced-token detection (Clark et al., 2020): `--task=pretraining
--objective=electra`.

Forward pass, top to bottom, on the masked-LM batches of the pretraining task:
  masked input -> generator (a small ELECTRA encoder reading the
  discriminator's embedding tables, each network projecting them to its own
  width; an MLM head decoding with the shared token table) -> logits at the
  masked positions -> one token sampled from each softmax (no gradient
  through the sample) -> the input with every masked position replaced by
  its sample -> discriminator (the ElectraBackbone being pretrained, with
  ELECTRA's replaced-token head) -> one logit per token, > 0: "replaced".

A sample equal to the original token counts as original, as in the paper.
Loss = the generator's cross-entropy over the masked tokens +
`discriminator_weight` (50) x the discriminator's binary cross-entropy over
every real (not padding) token. Both networks train together with
`model.fit`; checkpoints hold both, the optimizer and the sampler's random
stream, and the run saves the discriminator alone, a BackboneWithHeads with
its `rtd_head`: zoo.load reads it as an ElectraBackbone (with_head=True adds
the head) and zoo.save_hf writes it as an ElectraForPreTraining.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

import zoo
from kerasbert import keras_internals, models
from kerasbert.layers import MaskedLMHead, SharedTextEmbeddings, TransformerStack
from zoo.heads import BackboneWithHeads
from zoo.text_backbone import text_inputs

# Terms the progress bar shows, each a mean over the batch's tokens.
TERMS = ("mlm_loss", "mlm_accuracy", "rtd_loss", "rtd_accuracy")


# ------------------------------------------------------------- networks


def generator_arguments(discriminator, preset=None, size=0.25):
    """The generator's depth and widths: a preset's (electra_small_generator...),
    or the discriminator's with the hidden size, heads and feed-forward scaled by
    `size` (ELECTRA's generator_hidden_size; the paper finds 1/4 to 1/2 of the
    discriminator's width best)."""
    names = ("num_layers", "hidden_size", "num_heads", "intermediate_size")
    if preset is not None:
        found = zoo.get_preset(preset)
        if not issubclass(found.backbone_class, zoo.ElectraBackbone):
            raise ValueError(f"--generator={preset} is a {found.family} preset; the "
                             "generator is an ELECTRA encoder (electra_small_generator, ...).")
        width = found.arguments.get("embedding_size") or found.arguments["hidden_size"]
        shared = discriminator.embedding_size or discriminator.hidden_size
        if width != shared:
            raise ValueError(f"--generator={preset} reads {width}-wide embeddings, the "
                             f"discriminator's tables are {shared} wide: the two share them.")
        return {name: found.arguments[name] for name in names}
    arguments = dict(num_layers=discriminator.num_layers,
                     hidden_size=max(1, round(discriminator.hidden_size * size)),
                     num_heads=max(1, round(discriminator.num_heads * size)),
                     intermediate_size=max(1, round(discriminator.intermediate_size * size)))
    if arguments["hidden_size"] % arguments["num_heads"]:
        raise ValueError(f"--generator_size={size} gives a generator {arguments['hidden_size']} "
                         f"wide with {arguments['num_heads']} heads, which do not divide it; "
                         "choose another size or a --generator preset.")
    return arguments


def build_generator(discriminator, num_layers, hidden_size, num_heads, intermediate_size):
    """ELECTRA's generator for `discriminator`: {backbone inputs,
    masked_lm_positions} -> {"mlm_logits": float32 [batch, predictions, vocab]}.

    An ElectraBackbone's wiring (post-LN BERT blocks, the discriminator's
    activation, dropout and epsilon) on the discriminator's token, segment and
    position tables and embedding layer norm, through a projection of its own;
    the MLM head is Hugging Face's ElectraGeneratorPredictions (dense to the
    embedding width, exact GELU, LN) decoding with the shared token table.
    The shared weights stay the discriminator's: this model holds only its own.
    """
    dtype = discriminator.dtype_policy
    inputs = {**text_inputs(), "masked_lm_positions": keras.Input(
        shape=(None,), dtype="int32", name="masked_lm_positions")}
    embeddings = SharedTextEmbeddings(discriminator.get_layer("embeddings"), hidden_size,
                                      dtype=dtype, name="generator_embeddings")
    transformer = TransformerStack(
        num_layers, num_heads=num_heads, intermediate_size=intermediate_size,
        activation=discriminator.activation, dropout=discriminator.dropout,
        attention_dropout=discriminator.attention_dropout,
        layer_norm_epsilon=discriminator.layer_norm_epsilon, dtype=dtype,
        name="generator_transformer")
    head = MaskedLMHead(discriminator.token_embedding, activation="gelu",
                        layer_norm_epsilon=discriminator.layer_norm_epsilon, dtype=dtype,
                        name="generator_mlm_head")
    x = embeddings(inputs["input_word_ids"], inputs["input_type_ids"])
    encoded = transformer(x, attention_mask=inputs["input_mask"])
    logits = head(encoded["hidden_states"][-1], inputs["masked_lm_positions"])
    return models.Model(inputs, {"mlm_logits": logits}, name="generator")


def build_discriminator(backbone):
    """The ElectraBackbone being pretrained with ELECTRA's replaced-token head
    (its encoder's activation, as Hugging Face's ElectraForPreTraining has it)."""
    return BackboneWithHeads(backbone, rtd_head=dict(activation=backbone.activation),
                             name=f"{backbone.name}_with_heads")


# ------------------------------------------------- replacing and scoring


def _real_slots(positions, length):
    """int32 [batch, predictions, length]: one-hot of each real prediction slot's
    position. Padded slots point at position 0 ([CLS], never a masked token;
    see kerasbert.layers.PredictionSlots) and select nothing."""
    real = ops.cast(ops.not_equal(positions, 0), "int32")
    return ops.one_hot(positions, length, dtype="int32") * real[:, :, None]


def corrupt(token_ids, positions, sampled):
    """`token_ids` [batch, length] with each real masked position set to its
    sampled token ([batch, predictions]). One-hot sums, not a scatter: the same
    program for every batch, under XLA too."""
    slots = _real_slots(positions, token_ids.shape[1] or ops.shape(token_ids)[1])
    replaced = ops.sum(slots, axis=1)
    return token_ids * (1 - replaced) + ops.sum(slots * sampled[:, :, None], axis=1)


def replaced_labels(positions, sampled, masked_lm_ids, length):
    """float32 [batch, length]: 1 where the discriminator reads a token other
    than the original (a sample that equals the original is not replaced)."""
    differs = ops.cast(ops.not_equal(sampled, masked_lm_ids), "int32")
    return ops.cast(ops.sum(_real_slots(positions, length) * differs[:, :, None], axis=1),
                    "float32")


def objective_sums(features, masked_lm_ids, masked_lm_weights, outputs):
    """Sums (and their counts) of both networks' losses and hits over a batch:
    the training step divides them, evaluation adds them up over a split."""
    weights = ops.cast(masked_lm_weights, "float32")
    mlm_logits = outputs["mlm_logits"]
    mlm_losses = ops.sparse_categorical_crossentropy(masked_lm_ids, mlm_logits,
                                                     from_logits=True)
    mlm_right = ops.cast(ops.equal(ops.argmax(mlm_logits, axis=-1),
                                   ops.cast(masked_lm_ids, "int32")), "float32")
    rtd_logits = outputs["rtd_logits"]
    replaced = replaced_labels(features["masked_lm_positions"], outputs["sampled_ids"],
                               masked_lm_ids, rtd_logits.shape[1] or ops.shape(rtd_logits)[1])
    real = ops.cast(features["input_mask"], "float32")
    rtd_losses = ops.binary_crossentropy(replaced, rtd_logits, from_logits=True)
    flagged = ops.cast(ops.greater(rtd_logits, 0.0), "float32")
    rtd_right = ops.cast(ops.equal(flagged, replaced), "float32")
    return dict(
        mlm_loss=ops.sum(mlm_losses * weights), mlm_right=ops.sum(mlm_right * weights),
        masked=ops.sum(weights),
        rtd_loss=ops.sum(rtd_losses * real), rtd_right=ops.sum(rtd_right * real),
        tokens=ops.sum(real), replaced=ops.sum(replaced * real),
        flagged=ops.sum(flagged * real), caught=ops.sum(flagged * replaced * real))


# ---------------------------------------------------------------- model


class ReplacedTokenDetection(keras.Model):
    """generator + discriminator (see the module docstring), trained with fit.

    Takes the pretraining task's batches: features {input_word_ids (masked),
    input_mask, input_type_ids, masked_lm_positions}, labels {"mlm_logits":
    masked_lm_ids}, sample weights {"mlm_logits": masked_lm_weights}. Calling
    it returns mlm_logits, the sampled_ids [batch, predictions] and
    rtd_logits [batch, length] read on the corrupted input.
    """

    def __init__(self, generator, discriminator, discriminator_weight=50.0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.discriminator_weight = discriminator_weight
        # A model attribute, so the checkpoint's random streams hold its state
        # and a resumed run samples what the uninterrupted one would have.
        self.sampler = keras.random.SeedGenerator(seed, name="sampler")
        self.term_trackers = [keras.metrics.Mean(name=name) for name in TERMS]
        self.built = True  # both networks are built functional models

    def call(self, features, training=False):
        generator_inputs = {name: features[name] for name in self.generator.input}
        mlm_logits = self.generator(generator_inputs, training=training)["mlm_logits"]
        sampled = self.sample(mlm_logits)
        corrupted = corrupt(features["input_word_ids"], features["masked_lm_positions"],
                            sampled)
        rtd_logits = self.discriminator(
            {"input_word_ids": corrupted, "input_mask": features["input_mask"],
             "input_type_ids": features["input_type_ids"]}, training=training)["rtd_logits"]
        return {"mlm_logits": mlm_logits, "sampled_ids": sampled, "rtd_logits": rtd_logits}

    def sample(self, mlm_logits):
        """One token per prediction slot from the generator's softmax. The
        sample is a discrete choice: no gradient reaches the generator through
        it (it learns from its MLM loss alone)."""
        logits = ops.stop_gradient(mlm_logits)
        flat = ops.reshape(logits, (-1, ops.shape(logits)[-1]))
        sampled = keras.random.categorical(flat, 1, dtype="int32", seed=self.sampler)
        return ops.reshape(sampled, ops.shape(logits)[:2])

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        sums = objective_sums(x, y["mlm_logits"], sample_weight["mlm_logits"], y_pred)
        terms = {"mlm_loss": sums["mlm_loss"] / ops.maximum(sums["masked"], 1.0),
                 "mlm_accuracy": sums["mlm_right"] / ops.maximum(sums["masked"], 1.0),
                 "rtd_loss": sums["rtd_loss"] / ops.maximum(sums["tokens"], 1.0),
                 "rtd_accuracy": sums["rtd_right"] / ops.maximum(sums["tokens"], 1.0)}
        for tracker in self.term_trackers:
            tracker.update_state(terms[tracker.name])
        total = terms["mlm_loss"] + self.discriminator_weight * terms["rtd_loss"]
        # Keras sums the replicas' gradients: each replica's mean over its
        # share of the batch is divided by their number (as compile losses are).
        total = total / tf.distribute.get_strategy().num_replicas_in_sync
        for loss in self.losses:  # regularizers and add_loss, as Keras adds them
            total += keras_internals.additional_loss(self, loss)
        return total


# ------------------------------------------------------------ evaluation


def evaluate(model, batches, seed=0):
    """Held-out scores of a ReplacedTokenDetection over `batches` (the pretraining
    task's evaluation batches).

    The replacements are drawn with a NumPy generator seeded by `seed`, not the
    model's sampler: every evaluation of a model sees the same corruption, and
    evaluating never moves the training run's random stream.

    Returns mlm_accuracy and perplexity of the generator over the masked
    tokens; rtd_accuracy of the discriminator over every real token and
    rtd_baseline, the accuracy of calling every token original (the share
    not replaced); replaced_recall and replaced_precision of its "replaced"
    calls; rtd_loss, its mean binary cross-entropy.
    """
    rng = np.random.default_rng(seed)
    totals = {}
    for features, labels, weights in batches:
        generator_inputs = {name: features[name] for name in model.generator.input}
        mlm_logits = np.asarray(model.generator.predict_on_batch(generator_inputs)["mlm_logits"],
                                np.float64)
        # Gumbel-max: argmax(logits + Gumbel noise) is a draw from softmax(logits).
        sampled = (mlm_logits - np.log(-np.log(rng.random(mlm_logits.shape)))).argmax(-1)
        sampled = sampled.astype(np.int32)
        corrupted = corrupt(features["input_word_ids"], features["masked_lm_positions"],
                            sampled)
        rtd_logits = model.discriminator.predict_on_batch(
            {"input_word_ids": corrupted, "input_mask": features["input_mask"],
             "input_type_ids": features["input_type_ids"]})["rtd_logits"]
        outputs = {"mlm_logits": mlm_logits.astype(np.float32), "sampled_ids": sampled,
                   "rtd_logits": np.asarray(rtd_logits)}
        sums = objective_sums(features, labels["mlm_logits"], weights["mlm_logits"], outputs)
        for name, value in sums.items():
            totals[name] = totals.get(name, 0.0) + float(value)
    masked, tokens = max(totals["masked"], 1.0), max(totals["tokens"], 1.0)
    return {
        "mlm_accuracy": totals["mlm_right"] / masked,
        "perplexity": float(np.exp(totals["mlm_loss"] / masked)),
        "rtd_accuracy": totals["rtd_right"] / tokens,
        "rtd_baseline": 1.0 - totals["replaced"] / tokens,
        "rtd_loss": totals["rtd_loss"] / tokens,
        "replaced_recall": totals["caught"] / max(totals["replaced"], 1.0),
        "replaced_precision": totals["caught"] / max(totals["flagged"], 1.0),
    }
