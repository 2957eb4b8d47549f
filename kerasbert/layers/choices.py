"""Multiple choice (SWAG style): one encoder pass per (context, choice) pair,
one score per pair, a softmax over each example's choices.

The task model's inputs are [batch, choices, seq]; `FlattenChoices` makes
every pair its own sequence for the backbone ([batch * choices, seq]) and
`MultipleChoiceHead` scores each pair and regroups the scores per example
([batch, choices]), as BERT's SWAG fine-tuning does.
"""

import keras
from keras import ops

from kerasbert.layers.heads import ClassificationHead


@keras.saving.register_keras_serializable(package="kerasbert")
class FlattenChoices(keras.layers.Layer):
    """[batch, choices, ...] -> [batch * choices, ...] (choices of an example stay adjacent)."""

    def call(self, x):
        shape = ops.shape(x)
        return ops.reshape(x, (-1,) + tuple(shape[2:]))

    def compute_output_shape(self, input_shape):
        batch, choices = input_shape[:2]
        flat = None if batch is None or choices is None else batch * choices
        return (flat,) + tuple(input_shape[2:])


@keras.saving.register_keras_serializable(package="kerasbert")
class MultipleChoiceHead(keras.layers.Layer):
    """Dropout + dense to one score per pair, regrouped: float32 [batch, choices].

    Call (features [batch * choices, H], choices [batch, choices, ...]):
    `choices` is any input still in the grouped layout (e.g. the unflattened
    `input_word_ids`); it gives the number of choices, so one model serves
    any number of them.
    """

    def __init__(self, dropout=0.1, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.dropout = dropout
        self.kernel_initializer = kernel_initializer
        self.scorer = ClassificationHead(1, dropout=dropout, kernel_initializer=kernel_initializer,
                                         dtype=self.dtype_policy, name="scorer")

    def build(self, features_shape, choices_shape=None):
        self.scorer.build(features_shape)

    def call(self, features, choices, training=None):
        scores = self.scorer(features, training=training)  # [batch * choices, 1]
        return ops.reshape(scores, (-1, ops.shape(choices)[1]))

    def compute_output_spec(self, features, choices, training=None):
        return keras.KerasTensor(tuple(choices.shape[:2]), dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update(dropout=self.dropout, kernel_initializer=(
            keras.initializers.serialize(self.scorer.kernel_initializer)))
        return config
