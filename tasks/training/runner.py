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
from tasks import options as task_options
from tasks import catalog
from tasks.base import TaskConfig
from tasks.options import option
from tasks.training import distributed, loop, model_dir, optimization


_FROM_SCRATCH = "(default: {tuned} when fine-tuning a checkpoint, {fresh} when training a " \
    "preset from scratch)"


@dataclasses.dataclass
class RunSettings(loop.TrainingSettings):
    """Everything `python -m tasks.run` is told, declared once: each field is a
    flag (`define_flags`), with the training loop's own settings inherited from
    TrainingSettings. `options` holds the task's options (its `Options`)."""

    task: str = option("image_classification", "The task to train.", choices=catalog.names())
    model: Optional[str] = option(None, "A preset name (random init; see `python -m zoo "
                                  "--list`) or a checkpoint path or hub handle. Default: "
                                  "bert_tiny_uncased for text tasks, vit_tiny_patch2_8 for "
                                  "image classification.")
    init_checkpoint: Optional[str] = option(None, "Start from this checkpoint: anything "
                                            "zoo.load reads (HF folder, TF1 checkpoint, "
                                            "keras-hub preset, ViT .npz, .keras), a hub handle "
                                            "(hf://OWNER/NAME[@REVISION], kaggle://..., "
                                            "https://...zip) or a preset name for its "
                                            "published weights.")
    teacher: Optional[str] = option(None, "distill_*: the teacher, frozen: a checkpoint "
                                    "zoo.load reads (with its MLM or classifier head; a path, "
                                    "hub handle or preset name for its published weights) or "
                                    "a tasks.run model.keras. Its tokenizer is the student's.")
    student: Optional[str] = option(None, "distill_tinybert_*: the student, a preset "
                                    "(tinybert_4l_312d; gets the teacher's vocabulary and a "
                                    "fit_dense to its width) or a checkpoint (a general "
                                    "TinyBERT's model.keras, or a hub handle such as "
                                    "hf://huawei-noah/TinyBERT_General_4L_312D). distill_deit: "
                                    "a DeiT or ViT preset trained from scratch (default "
                                    "deit_tiny_patch2_8) or a DeiT/ViT checkpoint.")
    data: str = option("", "TFDS name (glue/sst2), file or folder; empty: the task's embedded "
                       "default (bundled sentiment sentences; scikit-learn digits).")
    train_split: str = option("train", "Training split.")
    eval_split: str = option("validation", "Evaluation split.", may_change=True)
    text_fields: tuple[str, ...] = option(("text",), "Text column(s): one for single texts, "
                                          "two for pairs.")
    label_field: str = option("label", "Label column.")
    skip_bad_examples: bool = option(False, "Skip a bad example (a row without a label or "
                                     "with an unknown one, a malformed CSV/TSV/JSONL line, a "
                                     "SQuAD answer not in its context, an image that does not "
                                     "decode, ...) with a warning naming it, and count it in "
                                     "metrics.json; default: stop with an error naming it.",
                                     # A run that trained had read both splits: switched at
                                     # a resume, it changes nothing.
                                     may_change=True)
    num_classes: Optional[int] = option(None, "Classes (default: from the training labels).")
    sequence_length: int = option(128, "Packed length of text inputs.")
    truncation: str = option("longest_first", "How text over sequence_length is cut.",
                             choices=("longest_first", "head", "tail", "head+tail"))
    vocab_size: int = option(8000, "Vocabulary learned from the training texts when --model "
                             "is a preset (random init has no vocabulary).")
    num_epochs: Optional[float] = option(None, "Epochs, when --train_steps is not given "
                                         + _FROM_SCRATCH.format(tuned=3, fresh=30) + ".",
                                         may_change=True)
    learning_rate: Optional[float] = option(None, "Peak learning rate "
                                            + _FROM_SCRATCH.format(tuned=5e-5, fresh=1e-3)
                                            + ".", may_change=True)
    warmup_fraction: float = option(0.1, "Fraction of the steps spent warming up.",
                                    may_change=True)
    decay: str = option("linear", "Decay after warmup.", choices=("linear", "cosine",
                                                                  "constant"), may_change=True)
    weight_decay: Optional[float] = option(None, "AdamW decay, not on biases and layer norms "
                                           + _FROM_SCRATCH.format(tuned=0.01, fresh=0.05)
                                           + ".", may_change=True)
    clipnorm: float = option(1.0, "Global gradient-norm clipping (0: off).", may_change=True)
    layer_decay: Optional[float] = option(None, "Layer-wise learning-rate decay, e.g. 0.8.",
                                          may_change=True)
    dropout: Optional[float] = option(None, "Backbone dropout override.")
    mixed_precision: Optional[str] = option(None, "Mixed precision policy.",
                                            choices=("bfloat16", "float16"))
    strategy: str = option("default", "tf.distribute strategy.",
                           choices=("default", "mirrored", "multi_worker", "tpu"), may_change=True)
    tpu: str = option("", "TPU address for --strategy=tpu.", may_change=True)
    export_dir: Optional[str] = option(None, "Export the trained model for TF Serving here.",
                                       may_change=True)
    export_quantize: Optional[str] = option(None, "With --export_dir: int8 exports int8 "
                                            "weights and dynamically quantized activations "
                                            "(docs/export.md).", choices=("int8",),
                                            may_change=True)
    push_to_hub: Optional[str] = option(None, "OWNER/NAME: at the end of the run, upload the "
                                        "trained encoder as a Hugging Face folder with its "
                                        "tokenizer and a model card with the metrics "
                                        "(zoo.push_to_hub; token from HF_TOKEN).", may_change=True)
    options: object = dataclasses.field(default_factory=dict)  # the task's; see make_task

    @classmethod
    def from_flags(cls, flag_values):
        """The settings the parsed flags give; the task option flags that were
        set go to `options` (make_task refuses those the task does not have)."""
        values = {name: flag_values[name].value for name in task_options.names(cls)
                  if name in flag_values}
        settings = task_options.parse(cls, values, "tasks.run")
        given = {}
        for name in catalog.names():
            given.update(task_options.given_flags(catalog.task_class(name).Options,
                                                  flag_values))
        settings.options = given
        return settings

    def __post_init__(self):
        if self.model_dir is None:
            self.model_dir = os.path.join("runs", self.task)
        # Fine-tuning a checkpoint and training a preset from scratch want
        # different defaults; an explicit flag always wins. A distillation
        # whose student is a preset (DeiT's) trains it from scratch.
        fresh_student = (self.task in catalog.names()
                         and catalog.task_class(self.task).fresh_student
                         and not _is_checkpoint(self.student))
        scratch = self.source is None or fresh_student
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


def _is_checkpoint(name):
    """Whether `name` (a --model or --student) is a checkpoint, not a preset."""
    return bool(name) and (zoo.hub.is_handle(name) or os.path.exists(name))


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


RUN_GROUP = "tasks.run"


def option_groups():
    """[(task name, its Options)] for every task kind."""
    return [(name, catalog.task_class(name).Options) for name in catalog.names()]


def define_flags(flag_values):
    """Every RunSettings field and every task option as a flag of `flag_values`.
    A task option flag's default is None: a task given no value keeps its own
    default (the help lists them)."""
    task_options.define_flags([(RUN_GROUP, RunSettings)], flag_values)
    task_options.define_flags(option_groups(), flag_values, defaults=False,
                              heading=task_heading)


def task_heading(name):
    """Where --helpfull lists a task's options."""
    return f"options of --task={name}"


def options_markdown():
    """The table of every task's options in docs/tasks.md (generated from the
    Options dataclasses; tests check the page holds exactly this)."""
    return task_options.markdown_table(option_groups())


def options_help(task_name):
    """One line naming `task_name`'s options, for flag errors."""
    try:
        options_class = catalog.task_class(task_name).Options
    except ValueError as error:
        return str(error)
    return task_options.describe(options_class, f"--task={task_name}")


def make_task(settings):
    """The task of `settings.task` with its options (an unknown or mistyped one
    is an error listing the task's options)."""
    config = TaskConfig(data=settings.data, train_split=settings.train_split,
                        eval_split=settings.eval_split, sequence_length=settings.sequence_length,
                        num_classes=settings.num_classes, text_fields=settings.text_fields,
                        label_field=settings.label_field, seed=settings.seed,
                        skip_bad_examples=settings.skip_bad_examples,
                        options=settings.options)
    return catalog.task_class(settings.task)(config)


def text_preprocessor(task, settings, source, strategy=None):
    """The checkpoint's own preprocessor, or one with a vocabulary learned from
    the training texts (kept in model_dir/vocab.txt so a resumed run reuses it)."""
    kwargs = dict(sequence_length=settings.sequence_length, truncation=settings.truncation)
    if source is not None:
        preprocessor = zoo.load_preprocessor(source, **kwargs)
        if task.labels_words and hasattr(preprocessor.tokenizer, "add_prefix_space"):
            # Training reads every word after a space (tokenize_words); served
            # text must read its first word so too. Saved with the run's tokenizer.
            preprocessor.tokenizer.add_prefix_space = True
        return preprocessor
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
        arguments = zoo.get_preset(preset).arguments
        overrides.update(zoo.get_preset(preset).backbone_class.vocabulary_arguments(
            preprocessor.vocabulary))
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
    task = make_task(settings)  # a wrong option fails first
    if settings.push_to_hub:  # a missing token fails now, not after the training
        from zoo.publish import check_access

        check_access(settings.push_to_hub)
    strategy = make_strategy(settings.strategy, settings.tpu)
    if settings.export_quantize:  # fails now, not after the training
        if not settings.export_dir:
            raise ValueError("--export_quantize applies to the export: add --export_dir.")
        from export import quantize

        quantize.check_kernel()
    if task.distills != bool(settings.teacher):
        raise ValueError(f"--teacher is for the distill_* tasks; --task={task.name} "
                         + ("needs one." if task.distills else "takes none."))
    # One run per folder (each worker locks the folder it writes to).
    with model_dir.lock(distributed.write_dir(settings.model_dir, strategy)):
        return _train(task, settings, strategy)


def _train(task, settings, strategy):
    """run() once model_dir is this process's: settings checked against the
    run recorded there, data, model, training, export."""
    recorded = model_dir.run_settings(settings, task.options)
    changed = model_dir.check_settings(
        settings.model_dir, recorded, task_options.may_change(RunSettings),
        resuming=bool(loop.checkpoint_paths(os.path.join(settings.model_dir, "checkpoints"))))
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
        task.examples(settings.eval_split)  # a bad evaluation row fails now, before step 1
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

    if distributed.is_chief(strategy):
        model_dir.record_settings(settings.model_dir, recorded, changed)
    logging.info("Task %s: %s (%s parameters), %d training examples, %d steps of %d.",
                 task.name, backbone.name, f"{model.count_params():,}", train_examples, steps,
                 settings.batch_size)
    result = loop.train(
        task, model, optimizer,
        lambda start: task.build_dataset(settings.train_split, preprocessor, settings.batch_size,
                                         training=True, start_step=start, seed=settings.seed),
        lambda m: task.evaluate(m, settings.eval_split, preprocessor, settings.eval_batch_size),
        dataclasses.replace(settings, train_steps=steps))
    spec = task.serving_spec(settings.sequence_length, settings.truncation)
    if spec is not None and distributed.is_chief(strategy):
        # model_dir/serving.json: how `python -m export` serves model.keras.
        export.write_spec(spec, settings.model_dir)
    if settings.export_dir and spec is not None:
        if distributed.is_chief(strategy):
            result["export"] = export.export_model(settings.model_dir, settings.export_dir,
                                                   quantize=settings.export_quantize)
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
    task = make_task(settings)
    output = task.options.features_output or os.path.join(settings.model_dir, "features.npy")
    features.output_format(output)  # a bad name fails before any model is loaded
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
