"""`--task=distill_deit`: a DeiT student learns from an image classifier.

Touvron et al. (2021), hard-label distillation: the student has a head on
its class token and one on its distillation token; the first learns the
true labels, the second the teacher's top class:

    loss = 0.5 * CE(class head, label) + 0.5 * CE(distillation head, teacher argmax)

and the student predicts with the average of the two heads' logits.
`distillation=soft` replaces the second term by the KL to the teacher's
softened probabilities (`temperature`); `distillation_weight` is the 0.5.

Data are image_classification's (default: scikit-learn's digits, embedded;
an image folder or a TFDS name with --data), with its options (labels,
mean/std, augment, classifier_dropout).

Teacher (--teacher): any image classifier, frozen: a tasks.run
image_classification run (its folder or model.keras), or anything zoo.load
reads with an image-classification head (Hugging Face ViT/DeiT classifiers,
a preset name for its published weights). It sees the student's images,
resized and channel-repeated to its own input (same mean/std).

Student (--student): a DeiT or ViT preset, trained from scratch (default
deit_tiny_patch2_8; a ViT preset gets a distillation token), or a DeiT
checkpoint (a ViT checkpoint becomes a DeiT with its class token copied).

Saved (model.keras): the student as an ordinary image classifier, images ->
{"logits": average of the two heads}, which `python -m export` serves as it
serves image_classification models; `zoo.load` gives its DeitBackbone.
"""

import dataclasses
import os

import keras
import numpy as np

import zoo
from kerasbert.layers import ClassificationHead
from kerasbert.models import Model
from tasks.base import labels_and_predictions
from tasks.distillation import models
from tasks.distillation.base import DistillationTask
from tasks.distillation.distiller import Distiller
from tasks.distillation.objectives import DeitObjective
from tasks.image_classification import ImageClassificationOptions, ImageClassificationTask
from tasks.options import option
from tasks.registry import register
from tasks.training import metrics
from zoo.deit import from_vit

DEFAULT_STUDENT = "deit_tiny_patch2_8"


def load_student(student, overrides):
    """The DeiT student backbone: `student` a preset (DeiT, or ViT given a
    distillation token) built at random, or a DeiT/ViT checkpoint."""
    name = student or DEFAULT_STUDENT
    if zoo.hub.is_handle(name) or os.path.exists(name):
        backbone = models.load_backbone(name, **overrides)
        if type(backbone) is zoo.VitBackbone:
            backbone = from_vit(backbone)
    else:
        preset = zoo.get_preset(name)
        if not issubclass(preset.backbone_class, zoo.VitBackbone):
            raise ValueError(f"distill_deit's student is an image model; {name} is a "
                             f"{preset.family} preset. Use a DeiT or ViT preset "
                             f"({DEFAULT_STUDENT}, deit_test_tiny, vit_tiny_patch2_8, ...).")
        backbone = zoo.DeitBackbone(**{**preset.arguments, **overrides, "name": (
            name if preset.family == "deit" else f"{name}_deit")})
    if not isinstance(backbone, zoo.DeitBackbone):
        raise ValueError(f"The student {name} is a {type(backbone).__name__}; distill_deit "
                         "trains a DeiT (or a ViT, given a distillation token).")
    return backbone


@dataclasses.dataclass
class DeitOptions(ImageClassificationOptions):
    distillation: str = option("hard", "distill_deit: what the distillation head learns: "
                               "hard (the teacher's top class) or soft (its probabilities "
                               "at --temperature).", choices=("hard", "soft"))
    distillation_weight: float = option(0.5, "distill_deit: weight of the distillation "
                                        "head's loss; the class head's (true labels) is 1 "
                                        "minus it.")
    temperature: float = option(3.0, "Distillation: softmax temperature of the soft targets.")


@register
class DeitDistillationTask(DistillationTask, ImageClassificationTask):
    """Hard-label (or soft) distillation of an image classifier into a DeiT."""

    name = "distill_deit"
    Options = DeitOptions
    fresh_student = True

    def __init__(self, config):
        super().__init__(config)
        self.teacher = None
        self.student_model = None

    # ------------------------------------------------ teacher, student

    def prepare(self, teacher, student=None, overrides=None):
        """Loads the frozen teacher (for the student's image shape) and
        returns the student backbone."""
        overrides = dict(overrides or {})
        backbone = load_student(student, overrides)
        image_shape = tuple(backbone.image_size) + (backbone.num_channels,)
        self.teacher = models.image_classifier_view(teacher, image_shape, overrides.get("dtype"))
        classes = self.teacher.output["task"]["logits"].shape[-1]
        if classes != self.num_classes:
            raise ValueError(f"The teacher {teacher} predicts {classes} classes, the data have "
                             f"{self.num_classes}: distil on the data the teacher was trained "
                             "for (or give --labels / --num_classes as it had them).")
        return backbone

    def classifier(self, backbone, head_outputs=False):
        """The student as an image classifier: `classifier` on the class
        token after the final LN (never a pooler, as Hugging Face's),
        `distillation_classifier` on the distillation token, `logits` their
        average; head_outputs adds `cls_logits` and `distillation_logits`
        (what training reads)."""
        # serving_spec (image_classification's) reads the student's input shape.
        self._image_shape = tuple(backbone.image_size) + (backbone.num_channels,)
        outputs = backbone(backbone.input)
        features = (("classifier", outputs["sequence_output"][:, 0, :]),
                    ("distillation_classifier", outputs["distillation_output"]))
        heads = [ClassificationHead(self.num_classes, dropout=self.options.classifier_dropout,
                                    dtype=backbone.dtype_policy, name=name)(feature)
                 for name, feature in features]
        # float32 like the heads' logits (a mixed policy would cast them down).
        result = {"logits": keras.layers.Average(dtype="float32", name="average")(heads)}
        if head_outputs:
            result.update(cls_logits=heads[0], distillation_logits=heads[1])
        return Model(backbone.input, result, name=f"{backbone.name}_{self.name}")

    def build_model(self, backbone):
        """The Distiller of the teacher and the two-headed student."""
        if self.teacher is None:
            raise ValueError("Call prepare(teacher) first: distillation needs the teacher.")
        self.student_backbone = backbone
        self.student_model = self.classifier(backbone, head_outputs=True)
        options = self.options
        objective = DeitObjective(options.distillation, options.distillation_weight,
                                  options.temperature)
        return Distiller(self.teacher, models.training_view(self.student_model, backbone),
                         objective, name=f"{backbone.name}_distiller")

    def saved_model(self, model):
        saved = self.classifier(self.student_backbone)
        saved.set_weights(self.student_model.get_weights())
        return saved

    # ----------------------------------------------------- evaluation

    def evaluate(self, model, split, image_shape, batch_size):
        """The student's top-1/top-5 (averaged heads) and each head's top-1; the
        teacher's (computed once) beside them, and `retention`."""
        dataset = self.build_dataset(split, image_shape, batch_size, training=False).cache()
        labels = np.concatenate([np.asarray(y) for _, y in dataset])
        outputs = self.student_model.predict(dataset.map(lambda x, y: x), verbose=0)
        scores = {"top1_accuracy": metrics.accuracy(labels, outputs["logits"].argmax(-1)),
                  "cls_top1_accuracy": metrics.accuracy(labels, outputs["cls_logits"].argmax(-1)),
                  "distillation_top1_accuracy": metrics.accuracy(
                      labels, outputs["distillation_logits"].argmax(-1))}
        if outputs["logits"].shape[-1] > 5:
            scores["top5_accuracy"] = metrics.top_k_accuracy(labels, outputs["logits"], 5)

        def teacher_scores(teacher):
            labels, logits = labels_and_predictions(teacher, dataset)
            return {"top1_accuracy": metrics.accuracy(labels, logits.argmax(-1))}

        return self.with_teacher_scores(scores, split, teacher_scores)
