"""What `python -m tasks.run` does, as functions a test can call.

flags -> RunSettings -> strategy and precision -> task, backbone and
preprocessor -> task model and optimizer -> loop.train -> metrics.
"""

import dataclasses
import math
import os
import sys
from typing import Optional

import keras
import tensorflow as tf
from absl import logging

import export
import zoo
from kerasbert.text import Preprocessor, WordPieceTokenizer, build_wordpiece_vocabulary
from tasks import registry
from tasks.training import distributed, loop, optimization
from tasks.base import Task, TaskConfig


# Feature, sentence-embedding and distillation flags -> the task option each sets
# (when given; each task has its own default).
TASK_OPTIONS = {
    "pooling": "pooling", "objective": "objective", "normalize_embeddings": "normalize",
    "similarity_scale": "scale",
    "student_layers": "student_layers", "layer_map": "layer_map",
    "temperature": "temperature", "alpha_ce": "alpha_ce", "alpha_mlm": "alpha_mlm",
    "alpha_cos": "alpha_cos", "alpha_mse": "alpha_mse", "distill_stage": "stage",
    "intermediate_fraction": "intermediate_fraction", "distill_task": "distill_task",
    "augment_copies": "augment_copies", "augment_model": "augment_model",
    "augment_probability": "augment_probability", "augment_top_k": "augment_top_k",
}


@dataclasses.dataclass
class RunSettings:
    task: str = "image_classification"
    model: Optional[str] = None
    init_checkpoint: Optional[str] = None
    teacher: Optional[str] = None
    student: Optional[str] = None
    data: str = ""
    train_split: str = "train"
    eval_split: str = "validation"
    text_fields: tuple = ("text",)
    label_field: str = "label"
    num_classes: Optional[int] = None
    labels: tuple = ()
    sequence_length: int = 128
    truncation: str = "longest_first"
    bucket: bool = False
    vocab_size: int = 8000
    batch_size: int = 32
    eval_batch_size: int = 64
    train_steps: Optional[int] = None
    num_epochs: Optional[float] = None
    steps_per_loop: int = 100
    eval_every_loops: int = 1
    learning_rate: Optional[float] = None
    warmup_fraction: float = 0.1
    decay: str = "linear"
    weight_decay: Optional[float] = None
    clipnorm: float = 1.0
    layer_decay: Optional[float] = None
    dropout: Optional[float] = None
    mixed_precision: Optional[str] = None
    jit_compile: bool = False
    strategy: str = "default"
    tpu: str = ""
    model_dir: Optional[str] = None
    export_dir: Optional[str] = None
    push_to_hub: Optional[str] = None  # OWNER/NAME on the Hugging Face Hub
    seed: int = 0
    features_output: Optional[str] = None  # extract_features; default model_dir/features.npy
    options: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_flags(cls, flag_values):
        names = {field.name for field in dataclasses.fields(cls)} - {"options"}
        values = {name: flag_values[name].value for name in names if name in flag_values}
        values["text_fields"] = tuple(values.get("text_fields") or ("text",))
        values["labels"] = tuple(values.get("labels") or ())
        options = {}
        for flag, option in TASK_OPTIONS.items():
            if flag in flag_values and flag_values[flag].value not in (None, [], ""):
                value = flag_values[flag].value
                options[option] = [int(v) for v in value] if isinstance(value, list) else value
        return cls(**values, options=options)

    def __post_init__(self):
        if self.model_dir is None:
            self.model_dir = os.path.join("runs", self.task)
        # Fine-tuning a checkpoint and training a preset from scratch want
        # different defaults; an explicit flag always wins.
        scratch = self.source is None
        for name, tuned, fresh in (("learning_rate", 5e-5, 1e-3), ("num_epochs", 3.0, 30.0),
                                   ("weight_decay", 0.01, 0.05)):
            if getattr(self, name) is None:
                setattr(self, name, fresh if scratch else tuned)

    @property
    def source(self):
        """The checkpoint to start from, or None for a preset trained from scratch
        (distillation: the teacher, whose tokenizer the student shares)."""
        if self.teacher:
            return self.teacher
        if self.init_checkpoint:
            return self.init_checkpoint
        if self.model and (zoo.hub.is_handle(self.model) or os.path.exists(self.model)):
            return self.model
        return None


# The preset a task trains from scratch when neither --model nor
# --init_checkpoint is given.
DEFAULT_PRESETS = {"image_classification": "vit_tiny_patch2_8"}


def make_strategy(name, tpu=""):
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    return tf.distribute.get_strategy()


def make_task(settings):
    options = dict(settings.options)
    if settings.bucket:
        options["bucket"] = True
    if settings.labels:
        options["labels"] = list(settings.labels)
    config = TaskConfig(data=settings.data, train_split=settings.train_split,
                        eval_split=settings.eval_split, sequence_length=settings.sequence_length,
                        num_classes=settings.num_classes, text_fields=settings.text_fields,
                        label_field=settings.label_field, options=options)
    return registry.task_class(settings.task)(config)


def text_preprocessor(task, settings, source, strategy=None):
    """The checkpoint's own preprocessor, or one with a vocabulary learned from
    the training texts (kept in model_dir/vocab.txt so a resumed run reuses it)."""
    kwargs = dict(sequence_length=settings.sequence_length, truncation=settings.truncation)
    if source is not None:
        return zoo.load_preprocessor(source, **kwargs)
    vocab_file = os.path.join(settings.model_dir, "vocab.txt")
    if not os.path.exists(vocab_file):
        # Multi-worker: every worker learns the same (deterministic) vocabulary;
        # the chief writes model_dir/vocab.txt whole or not at all (another
        # worker may be checking for it), the others into their temporary folder.
        folder = (distributed.write_dir(settings.model_dir, strategy) if strategy
                  else settings.model_dir)
        os.makedirs(folder, exist_ok=True)
        vocab_file = os.path.join(folder, "vocab.txt")
        build_wordpiece_vocabulary(task.training_texts(), settings.vocab_size,
                                   lower_case=True, output_file=vocab_file + ".tmp")
        os.replace(vocab_file + ".tmp", vocab_file)
        logging.info("Learned a %d-token vocabulary from the training texts: %s",
                     sum(1 for _ in open(vocab_file, encoding="utf-8")), vocab_file)
    return Preprocessor(WordPieceTokenizer(vocab_file, lower_case=True), **kwargs)


def backbone_overrides(settings):
    """Backbone arguments the flags set (dropout, mixed-precision policy)."""
    overrides = {}
    if settings.dropout is not None:
        overrides["dropout"] = settings.dropout
    if settings.mixed_precision:
        overrides["dtype"] = f"mixed_{settings.mixed_precision}"
    return overrides


def make_backbone(task, settings, preprocessor):
    overrides = backbone_overrides(settings)
    if settings.source is not None:
        model = zoo.load(settings.source, **overrides)
        if isinstance(model, zoo.SentenceEncoder) and not task.takes_sentence_encoder:
            return model.backbone  # fine-tuning a Sentence-Transformers model's encoder
        return model
    preset = settings.model or DEFAULT_PRESETS.get(settings.task, "bert_tiny_uncased")
    if task.text:
        overrides["vocab_size"] = preprocessor.vocabulary.size
        arguments = zoo.get_preset(preset).arguments
        overrides["max_sequence_length"] = max(arguments.get("max_sequence_length", 512),
                                               settings.sequence_length)
    return zoo.build(preset, **overrides)


def run(settings):
    """Trains and evaluates; returns {"step", "final", "best"} (also in metrics.json).
    --task=extract_features trains nothing: see extract_features."""
    keras.utils.set_random_seed(settings.seed)
    if settings.mixed_precision:
        # The global policy, not only the backbone's: the task model takes it,
        # and Keras adds float16 loss scaling from the model's policy.
        keras.config.set_dtype_policy(f"mixed_{settings.mixed_precision}")
    if settings.task == "extract_features":  # no strategy, optimizer or training
        return extract_features(settings)
    if settings.push_to_hub:  # a missing token fails now, not after the training
        from zoo.publish import check_access

        check_access(settings.push_to_hub)
    strategy = make_strategy(settings.strategy, settings.tpu)
    task = make_task(settings)
    if settings.export_dir and type(task).serving_spec is Task.serving_spec:
        raise ValueError(f"--export_dir: {task.name} models have no serving signatures yet; "
                         "train without --export_dir (the model is saved in model_dir).")
    if task.distills != bool(settings.teacher):
        raise ValueError(f"--teacher is for the distill_* tasks; --task={task.name} "
                         + ("needs one." if task.distills else "takes none."))
    preprocessor = (text_preprocessor(task, settings, settings.source, strategy)
                    if task.text else None)
    if task.text and settings.source is not None and distributed.is_chief(strategy):
        # model.keras + these files form a checkpoint zoo.load_preprocessor reads.
        zoo.save_tokenizer(preprocessor.tokenizer, settings.model_dir)

    with strategy.scope():
        if task.distills:  # the teacher is loaded, the student built from or for it
            backbone = task.prepare(settings.teacher, settings.student,
                                    backbone_overrides(settings))
        else:
            backbone = make_backbone(task, settings, preprocessor)
        if not task.text:
            preprocessor = tuple(backbone.image_size) + (backbone.num_channels,)
        model = task.build_model(backbone)
        train_examples = _count(task, settings.train_split)
        steps = settings.train_steps or max(1, math.ceil(
            settings.num_epochs * train_examples / settings.batch_size))
        # Training runs whole loops: the schedule (and a distillation's stage
        # switch) must count the steps that will run.
        per_loop = min(settings.steps_per_loop, steps)
        steps = -(-steps // per_loop) * per_loop
        task.set_train_steps(steps)
        optimizer = optimization.create_optimizer(
            settings.learning_rate, steps, warmup_fraction=settings.warmup_fraction,
            decay=settings.decay, weight_decay=settings.weight_decay,
            clipnorm=settings.clipnorm, layer_decay=settings.layer_decay, model=model)

    logging.info("Task %s: %s (%s parameters), %d training examples, %d steps of %d.",
                 task.name, backbone.name, f"{model.count_params():,}", train_examples, steps,
                 settings.batch_size)
    result = loop.train(
        task, model, optimizer,
        lambda start: task.build_dataset(settings.train_split, preprocessor, settings.batch_size,
                                         training=True, start_step=start, seed=settings.seed),
        lambda m: task.evaluate(m, settings.eval_split, preprocessor, settings.eval_batch_size),
        loop.TrainingSettings(
            model_dir=settings.model_dir, batch_size=settings.batch_size,
            eval_batch_size=settings.eval_batch_size, train_steps=steps,
            steps_per_loop=settings.steps_per_loop, eval_every_loops=settings.eval_every_loops,
            jit_compile=settings.jit_compile, seed=settings.seed))
    spec = task.serving_spec(settings.sequence_length, settings.truncation)
    if spec is not None and distributed.is_chief(strategy):
        # model_dir/serving.json: how `python -m export` serves model.keras.
        export.write_spec(spec, settings.model_dir)
    if settings.export_dir and spec is not None:
        if distributed.is_chief(strategy):
            result["export"] = export.export_model(settings.model_dir, settings.export_dir)
            logging.info("Exported for TF Serving: %s", result["export"])
    if settings.push_to_hub and distributed.is_chief(strategy):
        result["pushed"] = zoo.push_to_hub(settings.model_dir, settings.push_to_hub,
                                           training=_training_facts(settings))
    return result


def _training_facts(settings):
    """What the model card of a pushed run says about its training."""
    return {"task": settings.task, "started from": settings.source or settings.model,
            "data": settings.data or "the task's embedded default",
            "train steps": settings.train_steps, "batch size": settings.batch_size,
            "learning rate": settings.learning_rate, "teacher": settings.teacher}


def extract_features(settings):
    """--task=extract_features: the features of every text of --data, written to
    --features_output (default model_dir/features.npy); see tasks.tools.features.

    The model is --init_checkpoint or a --model path with its tokenizer, or a
    preset (random init, default bert_tiny_uncased) with a vocabulary learned
    from the texts. Returns the summary of tasks.tools.features.extract."""
    from tasks.tools import features

    for flag, value in (("export_dir", settings.export_dir), ("teacher", settings.teacher),
                        ("student", settings.student), ("push_to_hub", settings.push_to_hub)):
        if value:
            raise ValueError(f"--{flag}: extract_features trains nothing and exports nothing; "
                             "drop the flag.")
    if settings.strategy != "default":
        raise ValueError(f"--strategy={settings.strategy}: extract_features runs on the "
                         "default device.")
    output = settings.features_output or os.path.join(settings.model_dir, "features.npy")
    features.output_format(output)  # a bad name fails before any model is loaded
    task = make_task(settings)
    columns = task.columns()  # an empty text fails here, before any model is loaded
    preprocessor = text_preprocessor(task, settings, settings.source)
    backbone = make_backbone(task, settings, preprocessor)
    if settings.source is None:
        logging.warning("extract_features: %s is randomly initialised (a preset, not a "
                        "checkpoint); its features carry no pretrained knowledge.",
                        backbone.name)
    logging.info("Extracting %s features of %d texts with %s (%s parameters).",
                 task.pooling, len(columns[0]), backbone.name,
                 f"{backbone.count_params():,}")
    return features.extract(backbone, preprocessor, columns, output, pooling=task.pooling,
                            batch_size=settings.batch_size, verbose=sys.stdout.isatty())


def _count(task, split):
    examples = task.examples(split)
    if isinstance(examples, dict):
        return len(next(iter(examples.values())))
    return len(examples)
