"""`Distiller`: a frozen teacher and a student trained with `model.fit`.

The teacher runs in inference mode (no dropout) and receives no gradient;
the student trains. An objective (see objectives.py) turns both models'
outputs into named loss terms; their weighted sum is the training loss,
and each term is a metric on the progress bar and in TensorBoard.
Strategies, mixed precision, XLA and checkpoints work as for any model:
the Distiller's trainable variables are the student's.
"""

import keras
import tensorflow as tf

from kerasbert import keras_internals


def _inputs_of(model, features):
    """The features `model` takes: by name for a model with named inputs
    (text), the features themselves for one with a single input (images)."""
    if not isinstance(model.input, dict):
        return features
    return {name: features[name] for name in model.input}


class Distiller(keras.Model):
    """teacher (frozen) + student + objective -> a trainable keras.Model.

    teacher, student: functional models taking a features dict (see
        models.training_view): {"task": ..., "internals": ...}.
    objective: callable(teacher_outputs, student_outputs, features, labels,
        sample_weights, step) -> {term name: (weight, value)}; its
        `terms` lists the names.
    """

    def __init__(self, teacher, student, objective, **kwargs):
        super().__init__(**kwargs)
        teacher.trainable = False
        self.teacher = teacher
        self.student = student
        self.objective = objective
        self.term_trackers = [keras.metrics.Mean(name=name) for name in objective.terms]
        self.built = True  # both models are built functional models

    def call(self, features, training=False):
        teacher_outputs = self.teacher(_inputs_of(self.teacher, features), training=False)
        teacher_outputs = tf.nest.map_structure(tf.stop_gradient, teacher_outputs)
        student_outputs = self.student(_inputs_of(self.student, features), training=training)
        return {"teacher": teacher_outputs, "student": student_outputs}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        step = self.optimizer.iterations if self.optimizer is not None else 0
        terms = self.objective(y_pred["teacher"], y_pred["student"], x, y, sample_weight, step)
        total = tf.add_n([tf.cast(weight, tf.float32) * value
                          for weight, value in terms.values()])
        for tracker in self.term_trackers:
            tracker.update_state(terms[tracker.name][1])
        # Keras sums the replicas' gradients: each replica's mean over its
        # share of the batch is divided by their number (as compile losses are).
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        total = total / replicas
        # The student's own losses (regularizers, add_loss), as Keras adds them.
        for loss in self.losses:
            total += keras_internals.additional_loss(self, loss)
        return total
