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

Options: `DistilBertOptions`: student_layers, temperature, the alpha_*
loss weights, and the pretraining task's masking options (max_predictions,
whole_word, ...).

Saved (model.keras): the student with its MLM head, a plain pretraining
task model; `zoo.load("model.keras")` gives its DistilBertBackbone for
fine-tuning.
"""

import dataclasses

from tasks.base import TaskConfig
from tasks.distillation import models
from tasks.distillation.base import DistillationTask
from tasks.distillation.distiller import Distiller
from tasks.distillation.objectives import DistilBertObjective
from tasks.distillation.students import distilbert_student
from tasks import options as task_options
from tasks.options import option
from tasks.pretraining import MaskingOptions, PretrainingOptions, PretrainingTask
from tasks.registry import register


def sentence_task_of(model):
    """The sentence task a saved pretraining model has an output for, or "none"."""
    for task in ("nsp", "sop"):
        if f"{task}_logits" in model.output:
            return task
    return "none"


@dataclasses.dataclass
class DistilBertOptions(MaskingOptions):
    student_layers: tuple[int, ...] = option((), "distill_distilbert: teacher layers (0-based) "
                                             "the student copies; default half of them, evenly "
                                             "spread (12 -> 0,2,4,7,9,11).")
    temperature: float = option(2.0, "Distillation: softmax temperature of the soft targets.")
    alpha_ce: float = option(5.0, "distill_distilbert: weight of the KL loss on the teacher's "
                             "soft targets.")
    alpha_mlm: float = option(2.0, "distill_distilbert: weight of the masked-LM loss.")
    alpha_cos: float = option(1.0, "distill_distilbert: weight of the hidden-state cosine "
                              "loss.")
    alpha_mse: float = option(0.0, "distill_distilbert: weight of the logits MSE.")


@register
class DistilBertDistillationTask(DistillationTask, PretrainingTask):
    """Masked-LM distillation into a DistilBERT student."""

    name = "distill_distilbert"
    primary_metric = "mlm_accuracy"
    Options = DistilBertOptions

    def __init__(self, config):
        super().__init__(config)
        self.teacher = None

    @property
    def sentence_task(self):
        return None  # DistilBERT has neither segment embeddings nor a pooler

    electra_objective = False  # the student learns the teacher's masked LM

    # ------------------------------------------------ teacher, student

    def prepare(self, teacher, student=None, overrides=None):
        """Loads the frozen teacher from `teacher` (a path) and returns the
        student backbone (with internals) initialised from it."""
        if student:
            raise ValueError("distill_distilbert builds its student from the teacher's layers; "
                             "choose them with --student_layers instead of --student.")
        overrides = dict(overrides or {})

        def make_builder(saved):  # the pretraining task the teacher was saved by
            masking = {name: getattr(self.options, name)
                       for name in task_options.names(MaskingOptions)}
            return PretrainingTask(TaskConfig(
                sequence_length=self.config.sequence_length,
                options=PretrainingOptions(**masking, sentence_task=sentence_task_of(saved)))
            ).build_model

        self.teacher, teacher_backbone = models.load_teacher(
            teacher, make_builder, "mlm_logits", overrides.get("dtype"))
        self.teacher_backbone = teacher_backbone
        layers = list(self.options.student_layers) or None
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
        options = self.options
        objective = DistilBertObjective(
            temperature=options.temperature, alpha_ce=options.alpha_ce,
            alpha_mlm=options.alpha_mlm, alpha_cos=options.alpha_cos,
            alpha_mse=options.alpha_mse)
        return Distiller(self.teacher, models.training_view(self.student_model, backbone),
                         objective, name=f"{backbone.name}_distiller")

    def saved_model(self, model):
        backbone = models.without_internals(self.student_backbone)
        saved = PretrainingTask.build_model(self, backbone)
        saved.set_weights(self.student_model.get_weights())
        return saved

    # ----------------------------------------------------- evaluation

    def evaluate(self, model, split, preprocessor, batch_size):
        """The student's mlm_accuracy and perplexity; the teacher's (computed
        once) beside them, and the share of its accuracy the student keeps."""
        def score(model):
            return PretrainingTask.evaluate(self, model, split, preprocessor, batch_size)

        return self.with_teacher_scores(score(self.student_model), split, score)

