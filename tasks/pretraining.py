"""Masked-LM pretraining, with BERT's next-sentence or ALBERT's sentence-order task.

Data -> documents (lists of sentences) -> sentence pairs (kerasbert.text.pairs,
in Python, once per split) -> in tf.data: pack each pair with the
preprocessor, then mask it with `MaskedLMMasker` (15% of the tokens,
80/10/10), seeded by (seed, batch number) so a resumed run masks its
batches exactly as an uninterrupted one. Evaluation masks are fixed.

Batches: features {input_word_ids (masked), input_mask, input_type_ids,
masked_lm_positions}, labels {"mlm_logits": masked_lm_ids,
"nsp_logits" | "sop_logits": pair label} and sample weights
{"mlm_logits": masked_lm_weights, sentence output: 1}.

Model: a functional keras.Model, the backbone + an MLM head tied to its
token embedding on the masked positions (kerasbert.layers.pretraining,
which also reloads the tie) + dense to 2 on the pooled output. Loss:
cross-entropy over the masked tokens (padded prediction slots weigh 0) +
cross-entropy of the sentence task. evaluate() gives mlm_accuracy,
perplexity (exp of the mean masked-token loss) and nsp_accuracy /
sop_accuracy.

Data (TaskConfig.data):
  ""           a seeded synthetic corpus (`grammar_documents`), no download.
  a text file  google-research/bert's create_pretraining_data input: one
               sentence per line, a blank line between documents. A folder
               holds {split}.txt; a single file is split by document, the
               last `validation_fraction` of them the validation split.
  a TFDS name  e.g. "c4/en": each example's `text_field` option
               ("text") is a document, split into sentences at line breaks
               and sentence ends. Needs a network and is read into memory
               whole (slice it: --train_split "train[:10000]"); tested only
               with stand-in rows. (tasks.data.tfds_reader.is_tfds_name
               takes a name with a dot, "wikipedia/20230601.en", for a file.)

Options: `PretrainingOptions` (masking and segmenting are
`MaskingOptions`, which the distillation tasks share). Without a sentence
task, pairs are consecutive segments in document order.

`objective="electra"` trains an ELECTRA discriminator by replaced-token
detection on the same masked batches, with a generator sharing its
embeddings (tasks.electra); the run saves the discriminator.
"""

import dataclasses
import os
import random
import re
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

import zoo
from export.spec import ServingSpec
from kerasbert import models
from kerasbert.layers import ClassificationHead
from kerasbert.layers.pretraining import PredictionSlots, TiedMaskedLMHead
from kerasbert.text import MaskedLMMasker, next_sentence_pairs, sentence_order_pairs
from tasks import electra
from tasks.base import Task
from zoo.backbone import sentence_features
from tasks.data.pipeline import make_dataset
from tasks.data.tfds_reader import is_tfds_name, load_tfds
from tasks.options import option
from tasks.registry import register

# A tiny world for the embedded corpus: every word but the adjective is
# predictable from the rest of its document (see grammar_documents).
ANIMALS = {  # animal: (food, home, sound)
    "cat": ("fish", "house", "meows"), "dog": ("bones", "kennel", "barks"),
    "bird": ("seeds", "nest", "sings"), "cow": ("grass", "barn", "moos"),
    "horse": ("hay", "stable", "neighs"), "duck": ("bread", "pond", "quacks"),
}
ADJECTIVES = ("big", "small", "old", "young")
NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
SYNTHETIC_DOCUMENTS = {"train": 500}  # any other split: 150


def grammar_documents(count, seed):
    """`count` five-sentence stories about one animal each, in a fixed order.

    "the big cat lives in the house / every morning the cat meows / the cat
    eats fish / then the cat counts four five six / at night the cat sleeps
    in the house". A masked word is predictable from its sentence (the
    template, consecutive numbers) or from the animal (its food, home and
    sound); the adjective is random. A random "next" sentence breaks both
    the order of the templates and (5 times in 6) the animal, so NSP and
    SOP are learnable too.
    """
    rng = random.Random(seed)
    documents = []
    for _ in range(count):
        animal = rng.choice(sorted(ANIMALS))
        food, home, sound = ANIMALS[animal]
        start = rng.randrange(len(NUMBERS) - 2)
        documents.append([
            f"the {rng.choice(ADJECTIVES)} {animal} lives in the {home}",
            f"every morning the {animal} {sound}",
            f"the {animal} eats {food}",
            f"then the {animal} counts {' '.join(NUMBERS[start:start + 3])}",
            f"at night the {animal} sleeps in the {home}",
        ])
    return documents


def read_documents(path):
    """A text file with one sentence per line and blank lines between documents."""
    documents, current = [], []
    with open(path, encoding="utf-8") as file:
        for line in file:
            line = line.strip()
            if line:
                current.append(line)
            elif current:
                documents.append(current)
                current = []
    if current:
        documents.append(current)
    return documents


def split_sentences(text):
    """Lines, then sentence ends (. ! ? followed by a space): for TFDS documents."""
    return [s for line in text.splitlines() for s in re.split(r"(?<=[.!?])\s+", line.strip()) if s]


def default_sentence_task(backbone):
    """ALBERT -> "sop"; DistilBERT (no segments, no pooler), RoBERTa and ELECTRA
    (pretrained without a sentence task) -> None; others -> "nsp"."""
    if isinstance(backbone, zoo.AlbertBackbone):
        return "sop"
    if isinstance(backbone, (zoo.DistilBertBackbone, zoo.RobertaBackbone,
                             zoo.ElectraBackbone)):
        return None
    return "nsp"


@dataclasses.dataclass
class MaskingOptions:
    """How documents become masked segment pairs (pretraining and MLM distillation)."""

    max_predictions: int = option(20, "Masked LM: masked tokens per sequence at most.")
    selection_rate: float = option(0.15, "Masked LM: share of the tokens predicted (80% "
                                   "[MASK], 10% random, 10% kept).")
    whole_word: bool = option(False, "Masked LM: mask whole words (all of a word's pieces).")
    max_ngram: int = option(1, "Masked LM: mask spans of up to n units (words with "
                            "--whole_word, else pieces), ALBERT's n-gram masking.")
    segment_words: Optional[int] = option(None, "Words per segment: a document's sentences are "
                                          "packed greedily into segments of up to this many "
                                          "words; 0: one sentence each. Default: about half a "
                                          "sequence, (sequence_length - 3) * 2 // 5.")
    text_field: str = option("text", "Masked LM on a TFDS dataset: the feature holding a "
                             "document.")
    validation_fraction: float = option(0.1, "Masked LM on a single text file: the share of "
                                        "its documents held out for evaluation.")
    pairs_seed: int = option(0, "Masked LM: seed of the segment pairing.")


@dataclasses.dataclass
class PretrainingOptions(MaskingOptions):
    sentence_task: Optional[str] = option(None, "pretraining: the sentence task beside the "
                                          "masked LM; default the backbone's (ALBERT sop, "
                                          "DistilBERT none, others nsp).",
                                          choices=("nsp", "sop", "none"))
    objective: str = option("mlm", "pretraining: mlm (masked LM, with the sentence task) or "
                            "electra (replaced-token detection: a generator sharing the "
                            "embeddings fills the masked tokens, the --model, an ELECTRA "
                            "discriminator, tells original from replaced; Clark et al., 2020).",
                            choices=("mlm", "electra"))
    discriminator_weight: float = option(50.0, "pretraining, electra: the weight of the "
                                         "discriminator's loss beside the generator's MLM "
                                         "loss (the paper's 50).")
    generator: Optional[str] = option(None, "pretraining, electra: a preset giving the "
                                      "generator's depth and widths (electra_small_generator, "
                                      "...). Default: the discriminator's, scaled by "
                                      "--generator_size.")
    generator_size: float = option(0.25, "pretraining, electra: the generator's hidden size, "
                                   "heads and feed-forward as a fraction of the "
                                   "discriminator's, when no --generator is given.")


@register
class PretrainingTask(Task):
    """Masked LM (+ NSP or SOP) on sentence pairs cut from documents."""

    name = "pretraining"
    Options = PretrainingOptions

    def __init__(self, config):
        super().__init__(config)
        self._documents = {}
        self._pairs = {}
        self._backbone_sentence_task = "nsp"  # until build_model sees the backbone

    @property
    def electra_objective(self):
        """True for objective "electra" (the masked-LM distillations built on
        this task override it: they have no such option)."""
        return self.options.objective == "electra"

    @property
    def primary_metric(self):
        """What best_model.keras follows: the masked-LM accuracy, or for ELECTRA
        the discriminator's replaced-token accuracy (the generator only trains it)."""
        return "rtd_accuracy" if self.electra_objective else "mlm_accuracy"

    def saved_model(self, model):
        """ELECTRA: the discriminator alone (the generator only trains it)."""
        return model.discriminator if self.electra_objective else model

    @property
    def sentence_task(self):
        """The sentence task, "nsp", "sop" or None: the `sentence_task` option, else
        the backbone family's (see default_sentence_task; "nsp" before build_model)."""
        given = self.options.sentence_task
        if given is None:
            return self._backbone_sentence_task
        return None if given == "none" else given

    def serving_spec(self, sequence_length, truncation):
        """Served as its backbone: `text` -> sequence_output, pooled_output."""
        return ServingSpec(kind="backbone", sequence_length=sequence_length,
                           truncation=truncation)

    # ----------------------------------------------------------- data

    def documents(self, split):
        """The split's documents, each a list of sentences (read once, then kept)."""
        if split not in self._documents:
            data, options = self.config.data, self.options
            if not data:
                documents = grammar_documents(SYNTHETIC_DOCUMENTS.get(split, 150),
                                              seed=0 if split == "train" else 1)
            elif is_tfds_name(data):
                field = options.text_field
                documents = [split_sentences(row[field]) for row in load_tfds(data, split)]
            elif os.path.isdir(data):
                documents = read_documents(os.path.join(data, f"{split}.txt"))
            else:
                documents = read_documents(data)
                cut = len(documents) - round(len(documents) * options.validation_fraction)
                documents = documents[:cut] if split == self.config.train_split else \
                    documents[cut:]
            self._documents[split] = [d for d in documents if d]
        return self._documents[split]

    def training_texts(self):
        return [sentence for document in self.documents(self.config.train_split)
                for sentence in document]

    def examples(self, split):
        """[{"text_a", "text_b", "label"}]: the split's sentence pairs for the sentence task."""
        key = (split, self.sentence_task)
        if key not in self._pairs:
            documents = self.documents(split)
            words = self.options.segment_words
            if words is None:
                words = (self.config.sequence_length - 3) * 2 // 5
            seed = self.options.pairs_seed
            if self.sentence_task == "nsp":
                pairs = next_sentence_pairs(documents, seed, max_words=words or None)
            else:  # sop, or MLM alone: consecutive segments, put back in order
                pairs = sentence_order_pairs(documents, seed, max_words=words or None)
                if self.sentence_task is None:
                    pairs = [(b, a, 0) if label else (a, b, 0) for a, b, label in pairs]
            if not pairs:
                raise ValueError(f"No sentence pairs in split {split!r} of "
                                 f"{self.config.data or 'the synthetic corpus'}: documents "
                                 "need at least two segments.")
            self._pairs[key] = [{"text_a": a, "text_b": b, "label": label}
                                for a, b, label in pairs]
        return self._pairs[key]

    def masker(self, vocabulary):
        options = self.options
        return MaskedLMMasker.from_vocabulary(
            vocabulary, max_predictions=options.max_predictions,
            selection_rate=options.selection_rate, whole_word=options.whole_word,
            max_ngram=options.max_ngram)

    def build_dataset(self, split, preprocessor, batch_size, training, start_step=0, seed=0):
        """(features, labels, sample weights) batches; see the module docstring.

        Call build_model first when the sentence task comes from the backbone.
        """
        rows = self.examples(split)
        columns = {"text_a": [r["text_a"] for r in rows], "text_b": [r["text_b"] for r in rows],
                   "label": np.array([r["label"] for r in rows], np.int32)}
        masker = self.masker(preprocessor.vocabulary)
        sentence_output = self.sentence_task and f"{self.sentence_task}_logits"

        def pack(batch):
            return preprocessor(batch["text_a"], batch["text_b"]), batch["label"]

        def mask(batch_number, packed):
            inputs, label = packed
            masked = masker(inputs["input_word_ids"],
                            seed=tf.stack([tf.cast(seed, tf.int64), batch_number]))
            features = {**inputs, "input_word_ids": masked["input_word_ids"],
                        "masked_lm_positions": masked["masked_lm_positions"]}
            labels = {"mlm_logits": masked["masked_lm_ids"]}
            weights = {"mlm_logits": masked["masked_lm_weights"]}
            if sentence_output:
                labels[sentence_output] = label
                weights[sentence_output] = tf.ones_like(label, tf.float32)
            return features, labels, weights

        dataset = make_dataset(columns, batch_size, training, pack, start_step=start_step,
                               seed=seed)
        # Batch k of the stream is number start_step + k, however the run started.
        dataset = dataset.enumerate(start=start_step).map(mask, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE)

    # ---------------------------------------------------------- model

    def build_model(self, backbone):
        """Backbone inputs + masked_lm_positions -> {"mlm_logits", "<sentence task>_logits"}.

        mlm_logits: float32 [batch, max_predictions, vocab] from the MLM head
        tied to the backbone's token embedding, with a Keras mask on the
        padded slots; the sentence logits float32 [batch, 2] from a dense
        layer on the pooled output ([CLS] without a pooler).

        objective "electra": a tasks.electra.ReplacedTokenDetection around the
        backbone, which must be an ElectraBackbone (the discriminator).
        """
        self._backbone_sentence_task = default_sentence_task(backbone)
        if self.electra_objective:
            return self._build_electra(backbone)
        inputs = dict(backbone.input)
        positions = keras.Input(shape=(None,), dtype="int32", name="masked_lm_positions")
        features = backbone(inputs)
        head = TiedMaskedLMHead(
            backbone.token_embedding, activation=getattr(backbone, "activation", "gelu"),
            layer_norm_epsilon=getattr(backbone, "layer_norm_epsilon", 1e-12),
            dtype=backbone.dtype_policy, name="mlm_head")
        logits = head(features["sequence_output"], positions)
        slots = PredictionSlots(dtype="float32", name="mlm_predictions")
        outputs = {"mlm_logits": slots([logits, positions])}
        if self.sentence_task:
            sentence_head = ClassificationHead(2, dropout=0.0, dtype=backbone.dtype_policy,
                                               name=f"{self.sentence_task}_head")
            outputs[f"{self.sentence_task}_logits"] = sentence_head(
                sentence_features(backbone, features))
        return models.Model({**inputs, "masked_lm_positions": positions}, outputs,
                           name=f"{backbone.name}_{self.name}")

    def _build_electra(self, backbone):
        if not isinstance(backbone, zoo.ElectraBackbone):
            raise ValueError(f"--objective=electra pretrains an ELECTRA discriminator; "
                             f"{backbone.name} is a {type(backbone).__name__}. Give --model an "
                             "ELECTRA preset (electra_small_discriminator, ...) or checkpoint.")
        if self.sentence_task is not None:
            raise ValueError(f"--sentence_task={self.options.sentence_task}: ELECTRA "
                             "pretrains without a sentence task.")
        options = self.options
        generator = electra.build_generator(backbone, **electra.generator_arguments(
            backbone, preset=options.generator, size=options.generator_size))
        return electra.ReplacedTokenDetection(
            generator, electra.build_discriminator(backbone),
            discriminator_weight=options.discriminator_weight, seed=self.config.seed,
            name=f"{backbone.name}_{self.name}")

    def build_losses(self):
        """Cross-entropies; the MLM one averages over the real masked tokens only.
        ELECTRA: None, its model computes its own loss."""
        if self.electra_objective:
            return None
        losses = {"mlm_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}
        if self.sentence_task:
            losses[f"{self.sentence_task}_logits"] = keras.losses.SparseCategoricalCrossentropy(
                from_logits=True)
        return losses

    def build_metrics(self):
        """Accuracies; the MLM one over real masked tokens (the logits carry a Keras mask).
        ELECTRA: None, its model tracks its loss terms and accuracies."""
        if self.electra_objective:
            return None
        metrics = {"mlm_logits": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}
        if self.sentence_task:
            metrics[f"{self.sentence_task}_logits"] = [
                keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        return metrics

    # ----------------------------------------------------- evaluation

    def evaluate(self, model, split, preprocessor, batch_size):
        """mlm_accuracy and perplexity over the masked tokens, and the sentence task's
        accuracy. ELECTRA: tasks.electra.evaluate's scores (the discriminator's
        replaced-token accuracy beside its all-original baseline, the generator's
        MLM accuracy)."""
        if self.electra_objective:
            return electra.evaluate(model, self.build_dataset(split, preprocessor, batch_size,
                                                              training=False),
                                    seed=self.config.seed)
        sentence_output = self.sentence_task and f"{self.sentence_task}_logits"
        weight_sum = right = loss_sum = sentence_right = sentence_count = 0.0
        for features, labels, weights in self.build_dataset(split, preprocessor, batch_size,
                                                            training=False):
            outputs = model.predict_on_batch(features)
            logits = np.asarray(outputs["mlm_logits"], np.float64)
            ids, weight = labels["mlm_logits"].numpy(), weights["mlm_logits"].numpy()
            top = logits.max(-1, keepdims=True)
            log_norm = top[..., 0] + np.log(np.exp(logits - top).sum(-1))
            loss = log_norm - np.take_along_axis(logits, ids[..., None], -1)[..., 0]
            weight_sum += weight.sum()
            loss_sum += (loss * weight).sum()
            right += ((logits.argmax(-1) == ids) * weight).sum()
            if sentence_output:
                predicted = np.asarray(outputs[sentence_output]).argmax(-1)
                sentence_right += (predicted == labels[sentence_output].numpy()).sum()
                sentence_count += len(predicted)
        scores = {"mlm_accuracy": float(right / max(weight_sum, 1)),
                  "perplexity": float(np.exp(loss_sum / max(weight_sum, 1)))}
        if sentence_output:
            scores[f"{self.sentence_task}_accuracy"] = float(
                sentence_right / max(sentence_count, 1))
        return scores
