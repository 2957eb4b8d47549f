"""`--task=distill_tinybert_general` and `--task=distill_tinybert_task`.

General distillation (Jiao et al., 2019, section 3.3): on unlabeled text
(the pretraining task's data: documents -> segment pairs, masked as
TinyBERT's general_distill.py reads pregenerated BERT data), the student
learns the teacher's embedding output and hidden states (through its
`fit_dense`) and its attention scores, layer by layer through the layer map.
The result is a general TinyBERT: model.keras is the student backbone.

Task distillation: on a task's data (the inner task, `distill_task`:
classification, regression, multilabel or tagging), stage 1 repeats the
intermediate losses and stage 2 learns the teacher's predictions (soft
cross-entropy; MSE for regression). `distill_stage` = "both" (default) runs stage 1
for the first `intermediate_fraction` (0.5) of the steps, then stage 2, in
one resumable run. The teacher is a fine-tuned model of the same task (the
model.keras of a tasks.run run, or a Hugging Face sequence classifier);
the student usually a general TinyBERT (`--student=runs/general/model.keras`).
`augment_copies` > 0 adds TinyBERT's data augmentation to the training split
(words replaced by a masked LM's predictions; see augmentation.py).

Options: `TinyBertGeneralOptions` (the layer map and the pretraining
task's masking options) and `TinyBertTaskOptions`; task distillation also
takes the inner task's own options (labels, bucket, ...), passed to it.
"""

import dataclasses
import math
import os
from typing import Optional

import zoo
from zoo.backbone import rebuild
from tasks import options as task_options
from tasks.base import Task
from tasks.distillation import models
from tasks.distillation.base import DistillationTask
from tasks.distillation.distiller import Distiller
from tasks.distillation.objectives import TinyBertObjective, check_compatible
from tasks.distillation.students import check_layer_map, uniform_layer_map
from tasks.options import OptionError, option
from tasks.pretraining import MaskingOptions, PretrainingTask
from tasks import classification, registry, tagging  # noqa: F401 (registers the inner kinds)
from tasks.registry import register

# Inner task -> (prediction loss kind, per-token outputs).
DISTILLABLE_TASKS = {"classification": ("softmax", False), "regression": ("regression", False),
                     "multilabel": ("sigmoid", False), "tagging": ("softmax", True)}


def load_student(student, teacher_backbone, overrides):
    """The student backbone (with internals) for `teacher_backbone`.

    student: a preset name (random init, the teacher's vocabulary; a
    TinyBERT preset gets a `fit_dense` to the teacher's width) or a
    checkpoint (a general TinyBERT's model.keras, a Hugging Face folder, or a
    hub handle such as hf://huawei-noah/TinyBERT_General_4L_312D).
    """
    if not student:
        raise ValueError("TinyBERT distillation needs --student: a preset (tinybert_4l_312d) "
                         "or a checkpoint (a general TinyBERT).")
    if zoo.hub.is_handle(student) or os.path.exists(student):
        backbone = models.load_backbone(student)
    else:
        family = zoo.get_preset(student).family
        arguments = {"vocab_size": teacher_backbone.vocab_size,
                     "max_sequence_length": teacher_backbone.max_sequence_length}
        if family == "tinybert":
            arguments["teacher_hidden_size"] = teacher_backbone.hidden_size
        backbone = zoo.build(student, **arguments)
    if backbone.vocab_size != teacher_backbone.vocab_size:
        raise ValueError(f"The student's vocabulary has {backbone.vocab_size} entries, the "
                         f"teacher's {teacher_backbone.vocab_size}: both must read the same "
                         "token ids (the teacher's tokenizer).")
    if isinstance(backbone, zoo.TinyBertBackbone) and \
            backbone.teacher_hidden_size != teacher_backbone.hidden_size:
        # A general student reused with a new teacher: a new fit_dense to its width.
        backbone = rebuild(backbone, keep_new=("fit_dense",),
                           teacher_hidden_size=teacher_backbone.hidden_size)
    return models.with_internals(backbone, **overrides)


_LAYER_MAP_HELP = ("distill_tinybert_*: the teacher layer (1-based) each student layer "
                   "learns from; default uniform (12 -> 4: 3,6,9,12).")


@dataclasses.dataclass
class TinyBertGeneralOptions(MaskingOptions):
    layer_map: tuple[int, ...] = option((), _LAYER_MAP_HELP)


@dataclasses.dataclass
class TinyBertTaskOptions:
    layer_map: tuple[int, ...] = option((), _LAYER_MAP_HELP)
    distill_task: str = option("classification", "distill_tinybert_task: the task the teacher "
                               "was fine-tuned on; its options (labels, ...) apply too.",
                               choices=tuple(DISTILLABLE_TASKS))
    distill_stage: str = option("both", "distill_tinybert_task: intermediate (hidden states "
                                "and attention), prediction (the teacher's outputs) or both, "
                                "one after the other.",
                                choices=("intermediate", "prediction", "both"))
    intermediate_fraction: float = option(0.5, "distill_tinybert_task with stage both: share "
                                          "of the steps on the intermediate layers.")
    temperature: float = option(1.0, "Distillation: softmax temperature of the soft targets.")
    augment_copies: int = option(0, "distill_tinybert_task: TinyBERT data augmentation, "
                                 "copies per training example (0: off).")
    augment_model: Optional[str] = option(None, "The masked LM that proposes replacement words "
                                          "for --augment_copies (a BERT checkpoint with its MLM "
                                          "head: a path, hub handle or preset name such as "
                                          "bert_base_uncased).")
    augment_probability: float = option(0.4, "Augmentation: chance each eligible word is "
                                        "replaced.")
    augment_top_k: int = option(15, "Augmentation: replacement candidates per word.")


class _TinyBertMixin(DistillationTask):
    """What both TinyBERT tasks share: the layer map."""

    def layer_map(self, student_backbone):
        teacher_layers = self.teacher_backbone.num_layers
        given = list(self.options.layer_map)
        if given:
            return check_layer_map(given, teacher_layers, student_backbone.num_layers)
        return uniform_layer_map(teacher_layers, student_backbone.num_layers)


@register
class TinyBertGeneralTask(_TinyBertMixin, PretrainingTask):
    """General distillation: intermediate layers only, on unlabeled text."""

    name = "distill_tinybert_general"
    primary_metric = "distillation_loss"
    primary_mode = "min"
    Options = TinyBertGeneralOptions

    def __init__(self, config):
        super().__init__(config)
        self.teacher = None

    @property
    def sentence_task(self):
        return None  # consecutive segments, no sentence head: the hidden states are the target

    electra_objective = False  # the hidden states and the masked LM are the targets

    def prepare(self, teacher, student=None, overrides=None):
        overrides = dict(overrides or {})
        dtype = {"dtype": overrides["dtype"]} if "dtype" in overrides else {}
        self.teacher_backbone = models.load_backbone(teacher, **models.INTERNALS, **dtype)
        self.teacher = models.backbone_view(self.teacher_backbone)
        return load_student(student, self.teacher_backbone, overrides)

    def build_model(self, backbone):
        if self.teacher is None:
            raise ValueError("Call prepare(teacher) first: distillation needs the teacher.")
        layer_map = self.layer_map(backbone)
        check_compatible(self.teacher_backbone, backbone, layer_map)
        self.student_backbone = backbone
        objective = TinyBertObjective(layer_map, stage="intermediate")
        return Distiller(self.teacher, models.backbone_view(backbone), objective,
                         name=f"{backbone.name}_distiller")

    def saved_model(self, model):
        return models.without_internals(self.student_backbone)

    def evaluate(self, model, split, preprocessor, batch_size):
        """The intermediate losses on `split` (lower is better)."""
        dataset = self.build_dataset(split, preprocessor, batch_size, training=False)
        scores = model.evaluate(dataset, return_dict=True, verbose=0)
        return {("distillation_loss" if name == "loss" else name): float(value)
                for name, value in scores.items()}


@register
class TinyBertTaskDistillationTask(_TinyBertMixin, Task):
    """Task distillation: intermediate layers, then predictions, on task data."""

    name = "distill_tinybert_task"
    Options = TinyBertTaskOptions

    def __init__(self, config):
        # Its own options here; the rest belong to the inner task (labels, ...).
        given = config.options or {}
        if dataclasses.is_dataclass(given):
            given = dataclasses.asdict(given)
        own = set(task_options.names(TinyBertTaskOptions))
        super().__init__(dataclasses.replace(
            config, options={k: v for k, v in given.items() if k in own}))
        kind = self.options.distill_task
        inner_config = dataclasses.replace(
            config, options={k: v for k, v in given.items() if k not in own})
        try:
            self.inner = registry.task_class(kind)(inner_config)
        except OptionError as error:
            raise OptionError(f"{error} {task_options.describe(TinyBertTaskOptions, self.name)}"
                              ) from None
        self.skipped_examples = self.inner.skipped_examples  # the inner task reads the data
        self.prediction_kind, self.per_token = DISTILLABLE_TASKS[kind]
        self.teacher = None
        self.objective = None
        self.train_steps = None
        self._augmented = None
        if self.options.augment_copies > 0:
            if kind == "tagging":
                raise ValueError("augment_copies: word replacement would break the tag "
                                 "alignment of tagging data; augment classification-style "
                                 "tasks only.")
            # The inner task reads its rows through `examples`; the training
            # split's rows are replaced by the augmented ones.
            read = self.inner.examples
            self.inner.examples = lambda split: (self.augmented_examples(read(split))
                                                 if split == config.train_split else read(split))

    @property
    def primary_metric(self):
        return self.inner.primary_metric

    def serving_spec(self, sequence_length, truncation):
        """The student serves as the inner task's model does."""
        return self.inner.serving_spec(sequence_length, truncation)

    # -------------------------------------------------- data (inner task)

    def examples(self, split):
        return self.inner.examples(split)

    def training_texts(self):
        return self.inner.training_texts()

    def build_dataset(self, split, preprocessor, batch_size, training, start_step=0, seed=0):
        return self.inner.build_dataset(split, preprocessor, batch_size, training,
                                        start_step=start_step, seed=seed)

    def augmented_examples(self, rows):
        """The training rows, each followed by its augmented copies (made once)."""
        if self._augmented is None:
            from tasks.distillation.augmentation import MlmAugmenter, augment_rows

            options = self.options
            path = options.augment_model
            if not path:
                raise ValueError("augment_copies > 0 needs augment_model: a masked-LM checkpoint "
                                 "(e.g. the BERT the teacher was fine-tuned from).")
            augmenter = MlmAugmenter(
                zoo.load(path, with_head=True), zoo.load_preprocessor(path).tokenizer,
                copies=options.augment_copies, probability=options.augment_probability,
                top_k=options.augment_top_k, sequence_length=self.config.sequence_length,
                seed=self.config.seed)
            self._augmented = augment_rows(rows, list(self.config.text_fields), augmenter)
        return self._augmented

    # ------------------------------------------------ teacher, student

    def prepare(self, teacher, student=None, overrides=None):
        overrides = dict(overrides or {})
        self.teacher, self.teacher_backbone = models.load_teacher(
            teacher, lambda saved: self.inner.build_model, "logits", overrides.get("dtype"))
        return load_student(student, self.teacher_backbone, overrides)

    def build_model(self, backbone):
        if self.teacher is None:
            raise ValueError("Call prepare(teacher) first: distillation needs the teacher.")
        stage = self.options.distill_stage
        layer_map = self.layer_map(backbone)
        check_compatible(self.teacher_backbone, backbone, layer_map,
                         needs_attention=stage != "prediction",
                         needs_hidden=stage != "prediction")
        self.student_backbone = backbone
        self.student_model = self.inner.build_model(backbone)
        self.objective = TinyBertObjective(
            layer_map, stage=stage, prediction_kind=self.prediction_kind,
            temperature=self.options.temperature, per_token=self.per_token)
        if self.train_steps:
            self.set_train_steps(self.train_steps)
        return Distiller(self.teacher, models.training_view(self.student_model, backbone),
                         self.objective, name=f"{backbone.name}_distiller")

    def set_train_steps(self, steps):
        """With stage "both": stage 2 starts after intermediate_fraction of `steps`."""
        self.train_steps = steps
        fraction = self.options.intermediate_fraction
        if self.objective is not None:
            self.objective.switch_step = math.ceil(fraction * steps)

    def saved_model(self, model):
        saved = self.inner.build_model(models.without_internals(self.student_backbone))
        saved.set_weights(self.student_model.get_weights())
        return saved

    # ----------------------------------------------------- evaluation

    def evaluate(self, model, split, preprocessor, batch_size):
        """The inner task's metrics for the student; the teacher's (once) beside
        them, and `retention`: the student's primary metric over the teacher's."""
        def score(model):
            return self.inner.evaluate(model, split, preprocessor, batch_size)

        return self.with_teacher_scores(score(self.student_model), split, score)
