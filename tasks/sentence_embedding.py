"""Sentence embeddings: a SentenceEncoder trained with Sentence-BERT's objectives.

Both texts of a pair go through the same encoder (shared weights), giving u
and v; the objective decides what is learned from them:

  ranking   in-batch negatives (Henderson et al. 2017; Sentence-Transformers'
            MultipleNegativesRankingLoss): row i of scale * cos(u_i, v_j) is a
            softmax over the batch whose right answer is j = i. Pairs only,
            no labels; the default, and the best objective for search.
  softmax   Sentence-BERT's NLI classifier: a dense layer over
            (u, v, |u - v|) to the pair's label (entailment / neutral /
            contradiction), cross-entropy. The classifier is thrown away.
  cosine    cos(u, v) regressed onto a similarity score in [0, 1] (STS
            labels scaled), mean squared error.

What a run saves (model.keras, best_model.keras) is the encoder alone, so
`zoo.load` reads it back and `export` serves strings -> `embedding`.
Evaluation embeds the split: ranking reports how often a text's own pair is
its nearest neighbour among all the split's second texts (accuracy@1) and
the mean reciprocal rank; cosine the Spearman correlation of cos(u, v) with
the scores; softmax the classifier's accuracy.
"""

import dataclasses

import keras
import numpy as np
from absl import logging
from keras import ops

from export.spec import ServingSpec
from kerasbert import models
from kerasbert.layers.pooling import TOKEN_POOLINGS
from tasks.training import metrics
from tasks.base import Task
from tasks.data import bad_rows, paraphrases
from tasks.data.pipeline import make_dataset
from tasks.data.sources import read_rows
from tasks.options import option
from tasks.registry import register
from zoo.sentence_encoder import SentenceEncoder, unit_length

OBJECTIVES = ("ranking", "softmax", "cosine")
SIDES = ("a", "b")


# --------------------------------------------------------------- the objectives


def cosine_similarity(u, v):
    """cos(u_i, v_i) for each row: [batch]."""
    return ops.sum(unit_length(u) * unit_length(v), axis=-1)


def similarity_logits(anchors, positives, scale):
    """scale * cos(anchor_i, positive_j): [batch, batch] (the ranking loss's logits)."""
    return scale * ops.matmul(unit_length(anchors), ops.transpose(unit_length(positives)))


def pair_features(u, v):
    """Sentence-BERT's classifier input: (u, v, |u - v|) concatenated, [batch, 3D]."""
    return ops.concatenate([u, v, ops.abs(u - v)], axis=-1)


def ranking_loss(logits):
    """Mean cross-entropy of each row of `similarity_logits` against its diagonal."""
    labels = ops.arange(ops.shape(logits)[0])
    return ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits,
                                                                 from_logits=True))


class InBatchRankingLoss(keras.losses.Loss):
    """`ranking_loss` as a Keras loss (its labels are the batch positions)."""

    def __init__(self, name="ranking_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        del y_true  # the right answer of row i is column i
        return ranking_loss(y_pred)


# ------------------------------------------------------------------ the task


@dataclasses.dataclass
class SentenceEmbeddingOptions:
    objective: str = option("ranking", "sentence_embedding: ranking (in-batch negatives, pairs "
                            "only), softmax (a classifier over (u, v, |u-v|), NLI labels) or "
                            "cosine (cos(u, v) regressed on a 0-1 score label).",
                            choices=OBJECTIVES)
    pooling: str = option("mean", "Pooling of the token vectors into one per text.",
                          choices=TOKEN_POOLINGS)
    normalize_embeddings: bool = option(True, "sentence_embedding: L2-normalize the embeddings "
                                        "the encoder returns (a dot product is a cosine).")
    similarity_scale: float = option(20.0, "sentence_embedding, ranking: the cosine "
                                     "similarities' scale (inverse temperature) in the softmax.")
    labels: tuple[str, ...] = option((), "Label names in id order (default: the training "
                                     "labels, sorted; numbers numerically).")


@register
class SentenceEmbeddingTask(Task):
    """A siamese model over one SentenceEncoder (options: SentenceEmbeddingOptions).
    text_fields: the pair's two columns (default "text", "text_b");
    label_field: the label or score (softmax, cosine)."""

    name = "sentence_embedding"
    takes_sentence_encoder = True  # the runner passes a loaded SentenceEncoder whole
    Options = SentenceEmbeddingOptions

    def __init__(self, config):
        super().__init__(config)
        # The runner's default is one field ("text"); pairs default to text, text_b.
        self.text_fields = (("text", "text_b") if tuple(config.text_fields) == ("text",)
                            else tuple(config.text_fields))
        self.objective = self.options.objective
        self._labels = None
        self._examples = {}

    # ----------------------------------------------------------- data

    def examples(self, split):
        """The split's pairs (read once, then kept); a bad row (a malformed line,
        softmax: no label or an unknown one, cosine: a score that is not a
        number) is an error naming its line, or skipped with skip_bad_examples."""
        if split in self._examples:
            return self._examples[split]
        config = self.config
        fields = list(self.text_fields)
        if len(fields) != 2:
            raise ValueError("sentence_embedding trains on pairs: give two --text_fields "
                             f"(e.g. sentence1,sentence2), not {fields}.")
        if self.objective != "ranking":
            fields.append(config.label_field)
        def embedded(split):  # the bundled pairs, under the configured names
            return [{f: row[k] for f, k in zip(fields, ("text", "text_b", "label"))}
                    for row in paraphrases.pairs(split, self.objective)]

        bad = self.bad_examples(split)
        rows = read_rows(config.data, split, fields, default=embedded, bad=bad)
        if self.objective != "ranking":
            training = split == config.train_split
            if self.objective == "softmax" and training and self._labels is None:
                # The rows being read name the classes (unless the labels option does).
                self._labels = list(self.options.labels) or sorted(
                    {str(row[config.label_field]) for row in rows
                     if not bad_rows.is_missing(row[config.label_field])})
            check = self._label_check()
            kept = []
            for row in rows:
                problem = check(row[config.label_field])
                if problem is None:
                    kept.append(row)
                else:
                    bad.report(bad_rows.where(row, f"a {split!r} row"), *problem)
            rows = kept
        self._examples[split] = rows
        return rows

    def _label_check(self):
        """check(label) -> (problem, fix) for a label the objective cannot train
        on (softmax: no class; cosine: not a number), else None."""
        if self.objective == "cosine":
            return lambda value: bad_rows.number_problem(value, self.config.label_field)
        return bad_rows.ClassLabels(self.labels(), None, bool(self.options.labels),
                                    self.config.label_field).check

    def training_texts(self):
        rows = self.examples(self.config.train_split)
        return [str(row[f]) for row in rows for f in self.text_fields]

    def labels(self):
        """softmax: class names, from options["labels"] or the training labels (sorted)."""
        if self._labels is None:
            given = self.options.labels
            self._labels = list(given) if given else sorted(
                {str(row[self.config.label_field])
                 for row in self.examples(self.config.train_split)})
        return self._labels

    def _columns(self, split):
        rows = self.examples(split)
        if not rows:
            raise ValueError(f"Split {split!r} of {self.config.data or 'the embedded set'} "
                             "is empty.")
        first, second = self.text_fields
        columns = {"text_a": [str(row[first]) for row in rows],
                   "text_b": [str(row[second]) for row in rows]}
        labels = [row.get(self.config.label_field) for row in rows]
        if self.objective == "softmax":
            index = {name: i for i, name in enumerate(self.labels())}
            unknown = sorted({str(x) for x in labels} - set(index))
            if unknown:
                raise ValueError(f"Labels {unknown} are not among {self.labels()}.")
            columns["label"] = np.array([index[str(x)] for x in labels], np.int32)
        elif self.objective == "cosine":
            columns["label"] = np.array([float(x) for x in labels], np.float32)
        else:
            columns["label"] = np.zeros(len(rows), np.float32)  # unused: the diagonal
        return columns

    def build_dataset(self, split, preprocessor, batch_size, training, start_step=0, seed=0):
        """Batches of ({a_input_word_ids, ..., b_input_type_ids}, labels)."""
        return self._dataset(self._columns(split), preprocessor, batch_size, training,
                             start_step, seed)

    @staticmethod
    def _dataset(columns, preprocessor, batch_size, training, start_step=0, seed=0):
        def preprocess(batch):
            features = {}
            for side in SIDES:
                for name, value in preprocessor(batch[f"text_{side}"]).items():
                    features[f"{side}_{name}"] = value
            return features, batch["label"]

        return make_dataset(columns, batch_size, training, preprocess,
                            start_step=start_step, seed=seed)

    # ---------------------------------------------------------- model

    def build_model(self, backbone):
        """A siamese model around one SentenceEncoder (`backbone` itself when it
        is one, e.g. a loaded Sentence-Transformers folder)."""
        options = self.options
        if isinstance(backbone, SentenceEncoder):
            encoder = backbone
            defaults = SentenceEmbeddingOptions()
            for name, own in (("pooling", encoder.pooling),
                              ("normalize_embeddings", encoder.normalize)):
                requested = getattr(options, name)
                if requested != own and requested != getattr(defaults, name):
                    logging.warning("The loaded sentence encoder keeps its own %s=%s; the "
                                    "requested %s=%s is not applied.", name, own, name,
                                    requested)
        else:
            encoder = SentenceEncoder(backbone, pooling=options.pooling,
                                      normalize=options.normalize_embeddings,
                                      name=f"{backbone.name}_sentence_encoder")
        if "pooler" in [layer.name for layer in encoder.backbone.layers]:
            # The pooler feeds no embedding (cls pooling reads the last layer's
            # first token, as Sentence-Transformers does): freeze it rather
            # than let Keras warn at every step that it has no gradient.
            encoder.backbone.get_layer("pooler").trainable = False
        inputs = {f"{side}_{name}": keras.Input(shape=(None,), dtype="int32",
                                                name=f"{side}_{name}")
                  for side in SIDES for name in encoder.input}
        u, v = [encoder({name: inputs[f"{side}_{name}"] for name in encoder.input})["embedding"]
                for side in SIDES]
        if self.objective == "ranking":
            outputs = {"similarity": similarity_logits(u, v, options.similarity_scale)}
        elif self.objective == "cosine":
            outputs = {"similarity": cosine_similarity(u, v)}
        else:
            classifier = keras.layers.Dense(len(self.labels()), name="classifier")
            outputs = {"logits": classifier(pair_features(u, v))}
        return models.Model(inputs, outputs, name=f"{encoder.name}_{self.objective}")

    def build_losses(self):
        if self.objective == "ranking":
            return {"similarity": InBatchRankingLoss()}
        if self.objective == "cosine":
            return {"similarity": keras.losses.MeanSquaredError()}
        return {"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}

    def build_metrics(self):
        if self.objective == "softmax":
            return {"logits": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}
        return {}

    def saved_model(self, model):
        return self._encoder_of(model)

    def serving_spec(self, sequence_length, truncation):
        """strings (`text`) -> `embedding`."""
        return ServingSpec(kind="embedding", sequence_length=sequence_length,
                           truncation=truncation)

    @staticmethod
    def _encoder_of(model):
        if isinstance(model, SentenceEncoder):
            return model
        found = [layer for layer in model.layers if isinstance(layer, SentenceEncoder)]
        return found[0]

    # ----------------------------------------------------- evaluation

    @property
    def primary_metric(self):
        return {"ranking": "accuracy_at_1", "cosine": "spearman",
                "softmax": "accuracy"}[self.objective]

    def evaluate(self, model, split, preprocessor, batch_size):
        columns = self._columns(split)
        if self.objective == "softmax":
            dataset = self._dataset(columns, preprocessor, batch_size, training=False)
            logits = model.predict(dataset.map(lambda x, y: x), verbose=0)["logits"]
            return {"accuracy": metrics.accuracy(columns["label"], logits.argmax(-1))}
        encoder = self._encoder_of(model)
        u = encoder.encode(columns["text_a"], preprocessor, batch_size)
        v = encoder.encode(columns["text_b"], preprocessor, batch_size)
        if self.objective == "cosine":
            similarity = np.asarray(cosine_similarity(u, v))
            return {"spearman": metrics.spearman(columns["label"], similarity),
                    "pearson": metrics.pearson(columns["label"], similarity)}
        return retrieval_scores(u, v)


def retrieval_scores(queries, candidates):
    """Query i's right answer is candidate i: accuracy@1 and mean reciprocal
    rank by cosine similarity, with chance (1 / candidates) for reference.
    A wrong candidate that ties with the right one ranks before it, so
    collapsed embeddings (all equal) score chance-like, not perfect."""
    similarity = np.asarray(similarity_logits(queries, candidates, 1.0))
    right = np.diag(similarity)
    at_least_as_close = similarity >= right[:, None]
    np.fill_diagonal(at_least_as_close, False)
    rank = 1 + at_least_as_close.sum(axis=1)
    return {"accuracy_at_1": float(np.mean(rank == 1)), "mrr": float(np.mean(1.0 / rank)),
            "chance": 1.0 / len(candidates)}
