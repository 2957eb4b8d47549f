"""Token tagging (named entities, CoNLL style): one tag per word.

Words are split into word pieces; a word's tag is trained and predicted on
its FIRST piece. Its other pieces, [CLS], [SEP] and padding have an
all-zero label and sample weight 0, so neither the loss nor the token
accuracy sees them. The real metric is entity-level F1 over words
(`tasks.training.metrics`).

Long sentences keep their first `sequence_length - 2` pieces: training
drops the words beyond, and evaluation counts them as predicted "O" (so a
too-short sequence_length shows up as lost recall, not as a crash).

Options: `TaggingOptions` (labels, classifier_dropout, scheme).
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from kerasbert import models
from kerasbert.layers.heads import ClassificationHead
from export.spec import ServingSpec
from kerasbert.text.packing import InputPacker
from tasks.base import Task
from tasks.options import option
from tasks.data import bad_rows, conll
from tasks.data.pipeline import make_dataset
from tasks.registry import register

IGNORE = -1  # the label of positions without a tag of their own


def encode(tokenizer, words, tag_ids, sequence_length):
    """A batch of tagged sentences -> model inputs, labels, weights, word positions.

    words: ragged strings [batch, (words)]; tag_ids: ragged int32 of the same
    shape. Returns (features, labels, weights, positions): features are the
    three model inputs [batch, sequence_length]; labels int32 [batch,
    sequence_length] hold each word's tag id on its first piece and IGNORE
    elsewhere; weights float32 are 1 where a label is, else 0; positions
    int32 [batch, max words] give each word's first-piece position, -1 where
    the word was cut off (or has no pieces) and for padding.
    """
    vocabulary = tokenizer.vocabulary
    word_pieces = tokenizer.tokenize_words(words.flat_values)  # [all words, (pieces)]
    counts = word_pieces.row_lengths()
    is_first = tf.ragged.range(counts).flat_values == 0
    piece_tags = tf.where(is_first, tf.repeat(tf.cast(tag_ids.flat_values, tf.int32), counts),
                          IGNORE)
    sentence_pieces = words.with_flat_values(word_pieces).merge_dims(1, 2)  # [batch, (pieces)]

    packer = InputPacker(sequence_length, vocabulary.id_of("cls"), vocabulary.id_of("sep"),
                         vocabulary.id_of("pad"), truncation="head")
    features = packer(sentence_pieces)
    # The packer's layout, [CLS] pieces [SEP] padding, with IGNORE but on first pieces.
    sentence_tags = sentence_pieces.with_flat_values(piece_tags)[:, :sequence_length - 2]
    cls = tf.fill([sentence_tags.nrows(), 1], IGNORE)
    labels = tf.concat([cls, sentence_tags], 1).to_tensor(IGNORE, shape=[None, sequence_length])
    weights = tf.cast(labels != IGNORE, tf.float32)

    # First piece of each word, counted in its packed row ([CLS] is 0).
    sentence_start = tf.gather(sentence_pieces.row_starts(), words.value_rowids())
    start = 1 + word_pieces.row_starts() - sentence_start
    kept = (counts > 0) & (start < sequence_length - 1)
    positions = words.with_flat_values(tf.cast(tf.where(kept, start, -1), tf.int32))
    return features, labels, weights, positions.to_tensor(-1)


@dataclasses.dataclass
class TaggingOptions:
    labels: tuple[str, ...] = option((), "Label names in id order (tagging default: the "
                                     "training split's tags, sorted, O first).")
    classifier_dropout: float = option(0.1, "Dropout before the task head.")
    scheme: str = option("IOB2", "tagging: the scheme entity F1 reads (IOB2: B- on every "
                         "entity; IOB1: the original CoNLL-2003 files).",
                         choices=("IOB2", "IOB1"))


@register
class TaggingTask(Task):
    """Named-entity style tagging: a dense layer on every token's vector."""

    name = "tagging"
    Options = TaggingOptions
    labels_words = True

    def serving_spec(self, sequence_length, truncation):
        """`text` -> per-token `tags` (the tag of each word's first sub-token)."""
        return ServingSpec(kind="tagger", sequence_length=sequence_length,
                           truncation=truncation, label_names=tuple(self.labels()))

    def __init__(self, config):
        super().__init__(config)
        self._examples = {}
        self._labels = list(self.options.labels) or None

    # Data.

    def examples(self, split):
        """[{"tokens": [...], "tags": [...]}] of a split (read once, then kept).

        A bad sentence (a line with the wrong column count, a tag not among
        the labels) is an error naming its line, or skipped with
        skip_bad_examples (tasks.data.bad_rows).
        """
        if split not in self._examples:
            bad = self.bad_examples(split)
            examples = conll.load_examples(self.config.data, split, bad)
            if self.options.labels or split != self.config.train_split:
                # Tags the labels lack (the training split's tags are the labels
                # unless the labels option names them).
                known = set(self.labels())
                named_by = "--labels" if self.options.labels else "the training tags"
                kept = []
                for example in examples:
                    unknown = [(word, tag) for word, tag in zip(example["tokens"], example["tags"])
                               if tag not in known]
                    if not unknown:
                        kept.append(example)
                        continue
                    word, tag = unknown[0]
                    bad.report(bad_rows.where(example, f"a {split!r} sentence"),
                               f"tag {tag!r} (of {word!r}) is not among {named_by} "
                               f"{self.labels()}", fix="Fix the sentence, or give every tag "
                               "(training ones included) with --labels", what="sentences")
                examples = kept
            self._examples[split] = examples
        return self._examples[split]

    def training_texts(self):
        return [" ".join(row["tokens"]) for row in self.examples(self.config.train_split)]

    def labels(self):
        """Tag names by id: options["labels"], else the training split's tags."""
        if self._labels is None:
            self._labels = conll.label_list(self.examples(self.config.train_split))
        return self._labels

    def _columns(self, split):
        """{"example": index, "tokens": ragged strings, "tags": ragged tag ids}."""
        examples = self.examples(split)
        if not examples:
            raise ValueError(f"Split {split!r} of {self.config.data or 'the synthetic set'} "
                             "is empty.")
        index = {label: i for i, label in enumerate(self.labels())}
        lengths, tokens, tags = [], [], []
        for example in examples:
            if len(example["tokens"]) != len(example["tags"]):
                raise ValueError(f"{len(example['tokens'])} tokens but {len(example['tags'])} "
                                 f"tags in {example['tokens'][:10]}...")
            lengths.append(len(example["tokens"]))
            tokens += example["tokens"]
            try:
                tags += [index[tag] for tag in example["tags"]]
            except KeyError as error:
                raise ValueError(f"Tag {error.args[0]!r} is not among the labels {self.labels()}; "
                                 "set the labels option.") from None
        ragged = tf.RaggedTensor.from_row_lengths
        # "example" first: make_dataset counts the examples on the first column.
        return {"example": np.arange(len(examples)),
                "tokens": ragged(tf.constant(tokens, tf.string), lengths),
                "tags": ragged(tf.constant(tags, tf.int32), lengths)}

    def build_dataset(self, split, preprocessor, batch_size, training, start_step=0, seed=0,
                      with_positions=False):
        """(features, {"logits": one-hot labels}, {"logits": weights}) batches.

        Labels float32 [batch, seq, labels]: each word's tag on its first
        piece, all zeros elsewhere; weights float32 [batch, seq] 1 on the
        tagged positions (see `encode`).

        Always padded to preprocessor.sequence_length. with_positions: yield
        (features, example indices, word positions) instead, for evaluation.
        """
        tokenizer, length = preprocessor.tokenizer, preprocessor.sequence_length
        num_labels = len(self.labels())

        @tf.autograph.experimental.do_not_convert  # plain tensor ops; converting costs seconds
        def preprocess(batch):
            features, labels, weights, positions = encode(
                tokenizer, batch["tokens"], batch["tags"], length)
            if with_positions:
                return features, batch["example"], positions
            # one_hot of IGNORE is all zeros: see build_losses and build_metrics.
            one_hot = tf.one_hot(labels, num_labels)
            return features, {"logits": one_hot}, {"logits": weights}

        return make_dataset(self._columns(split), batch_size, training, preprocess,
                            start_step=start_step, seed=seed)

    # Model.

    def build_model(self, backbone):
        """backbone inputs -> {"logits": float32 [batch, seq, len(labels)]}."""
        inputs = backbone.input
        sequence_output = backbone(inputs)["sequence_output"]
        head = ClassificationHead(len(self.labels()),
                                  dropout=self.options.classifier_dropout,
                                  dtype=backbone.dtype_policy, name="tagging_head")
        return models.Model(inputs, {"logits": head(sequence_output)},
                           name=f"{backbone.name}_{self.name}")

    def build_losses(self):
        """Cross-entropy averaged over the tagged positions.

        The untagged ones have all-zero labels, so they add nothing; the
        divisor is the sum of sample weights, the number of tagged positions.
        """
        return {"logits": keras.losses.CategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight")}

    def build_metrics(self):
        """Token accuracy over tagged positions, from built-in parts only.

        Keras 3 gives sample weights only to `weighted_metrics`, and the
        runner passes `metrics`; recall at top 1 on one-hot labels counts
        exactly the tagged positions (all-zero rows have nothing to
        recall), so it is the tagged-token accuracy without weights, and a
        saved model reloads without any class from `tasks`.
        """
        return {"logits": [keras.metrics.Recall(top_k=1, name="token_accuracy")]}

    # Evaluation.

    def predict_tags(self, model, split, preprocessor, batch_size):
        """Predicted tag names per word of each example of `split`.

        A word's tag is the argmax on its first piece; words cut off by the
        sequence length are "O".
        """
        examples, labels = self.examples(split), self.labels()
        predictions = [None] * len(examples)
        dataset = self.build_dataset(split, preprocessor, batch_size, training=False,
                                     with_positions=True)
        for features, indices, positions in dataset:
            tag_ids = np.argmax(model.predict_on_batch(features)["logits"], axis=-1)
            for row, index, row_positions in zip(tag_ids, indices.numpy(), positions.numpy()):
                words = len(examples[index]["tokens"])
                predictions[index] = [labels[row[p]] if p >= 0 else "O"
                                      for p in row_positions[:words]]
        return predictions

    def evaluate(self, model, split, preprocessor, batch_size):
        """Entity precision, recall, F1 and word-level tag accuracy on `split`.

        Every word counts, those cut off by the sequence length as "O".
        """
        from tasks.training.metrics import entity_f1

        true = [example["tags"] for example in self.examples(split)]
        predicted = self.predict_tags(model, split, preprocessor, batch_size)
        scores = entity_f1(true, predicted, scheme=self.options.scheme)
        right = sum(t == p for tags, guess in zip(true, predicted) for t, p in zip(tags, guess))
        accuracy = right / max(sum(len(tags) for tags in true), 1)
        return {"f1": float(scores["f1"]), "precision": float(scores["precision"]),
                "recall": float(scores["recall"]), "token_accuracy": float(accuracy)}

    @property
    def primary_metric(self):
        return "f1"
