"""`--task=distill_distilbert`: a DistilBERT student from a masked-LM teacher.

Data and masking are the pretraining task's (documents -> consecutive
segment pairs -> 15% masked, 80/10/10), without a sentence task: DistilBERT
has neither segment embeddings nor a pooler. The student starts as a copy
of the teacher (same width, every second layer by default: for 12 layers
[0, 2, 4, 7, 9, 11]; `student_layers` chooses), its MLM head a copy of the
teacher's, and learns with `DistilBertObjective` on the masked positions.

Teacher (--teacher): anything `zoo.load(path, with_head=True)` gives an MLM
head for (a Hugging Face BertForMaskedLM / BertForPreTraining folder, a
Google TF1 BERT checkpoint, a keras-hub BertMaskedLM preset), or the
model.keras of a `--task=pretraining` run.

Options (TaskConfig.options, from flags): student_layers, temperature (2.0),
alpha_ce (5.0), alpha_mlm (2.0), alpha_cos (1.0), alpha_mse (0.0), and the
pretraining task's data options (max_predictions, whole_word, ...).

Saved (model.keras): the student with its MLM head, a plain pretraining
task model; `zoo.load("model.keras")` gives its DistilBertBackbone for
fine-tuning.
"""

import dataclasses

import keras

import zoo
from tasks.base import TaskConfig
from tasks.distillation import models
from tasks.distillation.distiller import Distiller
from tasks.distillation.objectives import DistilBertObjective
from tasks.distillation.students import distilbert_student
from tasks.pretraining import PretrainingTask
from zoo.backbone import Backbone


def sentence_task_of(model):
    """The sentence task a saved pretraining model has an output for, or "none"."""
    for task in ("nsp", "sop"):
        if f"{task}_logits" in model.output:
            return task
    return "none"


class DistilBertDistillationTask(PretrainingTask):
    """Masked-LM distillation into a DistilBERT student."""

    name = "distill_distilbert"
    distills = True
    primary_metric = "mlm_accuracy"

    def __init__(self, config):
        options = {**config.options, "sentence_task": "none"}
        super().__init__(dataclasses.replace(config, options=options))
        self.teacher = None
        self._teacher_scores = {}

    # ------------------------------------------------ teacher, student

    def prepare(self, teacher, student=None, overrides=None):
        """Loads the frozen teacher from `teacher` (a path) and returns the
        student backbone (with internals) initialised from it."""
        if student:
            raise ValueError("distill_distilbert builds its student from the teacher's layers; "
                             "choose them with --student_layers instead of --student.")
        overrides = dict(overrides or {})
        dtype = {"dtype": overrides["dtype"]} if "dtype" in overrides else {}
        saved = models.load_model_file(teacher)
        if saved is not None and not isinstance(saved, Backbone):
            if "mlm_logits" not in saved.output:
                raise ValueError(f"The teacher {teacher} has no masked-LM head (outputs "
                                 f"{sorted(saved.output)}): DistilBERT distillation needs one "
                                 "(the model.keras of a --task=pretraining run, or a BERT "
                                 "checkpoint with its MLM head).")
            teacher_task = PretrainingTask(TaskConfig(
                sequence_length=self.config.sequence_length,
                options={**self.config.options, "sentence_task": sentence_task_of(saved)}))
            task_model, teacher_backbone = models.rebuild_task_model(
                saved, teacher_task.build_model, **dtype)
            self.teacher = models.training_view(task_model, teacher_backbone)
        else:
            heads = zoo.load(teacher, with_head=True, **models.INTERNALS, **dtype)
            self.teacher = models.mlm_view(heads)
            teacher_backbone = heads.backbone
        self.teacher_backbone = teacher_backbone
        layers = self.config.options.get("student_layers")
        return distilbert_student(teacher_backbone, layers=layers, **models.INTERNALS,
                                  **overrides)

    def build_model(self, backbone):
        """The Distiller of the teacher and a pretraining model on the student
        `backbone` (its MLM head initialised from the teacher's)."""
        if self.teacher is None:
            raise ValueError("Call prepare(teacher) first: distillation needs the teacher.")
        self.student_backbone = backbone
        self.student_model = super().build_model(backbone)
        self.student_model.get_layer("mlm_head").set_weights(
            self.teacher.get_layer("mlm_head").get_weights())
        options = self.config.options
        objective = DistilBertObjective(**{name: float(options[name]) for name in (
            "temperature", "alpha_ce", "alpha_mlm", "alpha_cos", "alpha_mse") if name in options})
        return Distiller(self.teacher, models.training_view(self.student_model, backbone),
                         objective, name=f"{backbone.name}_distiller")

    def build_losses(self):
        return None  # the Distiller's objective is the loss

    def build_metrics(self):
        return None

    def trained_model(self, model):
        return model.student

    def set_train_steps(self, steps):
        """The run's length (unused: the DistilBERT objective has one stage)."""

    def saved_model(self, model):
        backbone = models.without_internals(self.student_backbone)
        saved = PretrainingTask.build_model(self, backbone)
        saved.set_weights(self.student_model.get_weights())
        return saved

    # ----------------------------------------------------- evaluation

    def evaluate(self, model, split, preprocessor, batch_size):
        """The student's mlm_accuracy and perplexity; the teacher's (computed
        once) beside them, and the share of its accuracy the student keeps."""
        scores = super().evaluate(self.student_model, split, preprocessor, batch_size)
        if split not in self._teacher_scores:
            teacher = keras.Model(self.teacher.input, self.teacher.output["task"])
            self._teacher_scores[split] = super().evaluate(teacher, split, preprocessor,
                                                           batch_size)
        teacher_scores = self._teacher_scores[split]
        scores.update({f"teacher_{name}": value for name, value in teacher_scores.items()})
        scores["retention"] = scores["mlm_accuracy"] / max(teacher_scores["mlm_accuracy"], 1e-9)
        return scores

