"""`python -m tasks.run`: train a task, evaluate it with its real metric, save it.

    python -m tasks.run                      # ViT on scikit-learn's digits, no download
    python -m tasks.run --task=classification --model=bert_tiny_uncased
    python -m tasks.run --task=classification --init_checkpoint=bert_base_uncased \
        --data=glue/sst2 --text_fields=sentence --model_dir=runs/sst2
    python -m tasks.run --task=distill_tinybert_task --teacher=runs/sst2/model.keras \
        --student=tinybert_4l_312d --data=glue/sst2 --text_fields=sentence
    python -m tasks.run --task=extract_features --init_checkpoint=bert_base_uncased \
        --data=texts.txt --pooling=mean --features_output=features.npy
    python -m tasks.run --task=sentence_embedding --init_checkpoint=bert_base_uncased \
        --data=pairs.tsv --text_fields=anchor,positive --objective=ranking

`--helpfull` lists every flag; `--flagfile=FILE` reads flags from a file.
The same command started again resumes from the run's last checkpoint.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

from absl import app, flags, logging  # noqa: E402

from tasks import registry  # noqa: E402

flags.DEFINE_enum("task", "image_classification", registry.names(), "The task to train.")
flags.DEFINE_string("model", None, "A preset name (random init; see `python -m zoo --list`) "
                    "or a checkpoint path or hub handle. Default: bert_tiny_uncased for text "
                    "tasks, vit_tiny_patch2_8 for image classification.")
flags.DEFINE_string("init_checkpoint", None, "Start from this checkpoint: anything zoo.load "
                    "reads (HF folder, TF1 checkpoint, keras-hub preset, ViT .npz, .keras), a "
                    "hub handle (hf://OWNER/NAME[@REVISION], kaggle://..., https://...zip) or "
                    "a preset name for its published weights.")
flags.DEFINE_string("data", "", "TFDS name (glue/sst2), file or folder; empty: the task's "
                    "embedded default (bundled sentiment sentences; scikit-learn digits).")
flags.DEFINE_string("train_split", "train", "Training split.")
flags.DEFINE_string("eval_split", "validation", "Evaluation split.")
flags.DEFINE_list("text_fields", ["text"], "Text column(s): one for single texts, two for pairs.")
flags.DEFINE_string("label_field", "label", "Label column.")
flags.DEFINE_integer("num_classes", None, "Classes (default: from the training labels).")
flags.DEFINE_list("labels", [], "Label names in id order (default: sorted training labels).")
flags.DEFINE_integer("sequence_length", 128, "Packed length of text inputs.")
flags.DEFINE_bool("bucket", False, "Text training batches padded to the smallest of 16, 32, "
                  "64, ... sequence_length that holds them, grouping similar lengths.")
flags.DEFINE_enum("truncation", "longest_first", ["longest_first", "head", "tail", "head+tail"],
                  "How text over sequence_length is cut.")
flags.DEFINE_integer("vocab_size", 8000, "Vocabulary learned from the training texts when "
                     "--model is a preset (random init has no vocabulary).")
flags.DEFINE_integer("batch_size", 32, "Global training batch size.")
flags.DEFINE_integer("eval_batch_size", 64, "Evaluation batch size.")
flags.DEFINE_integer("train_steps", None, "Training steps (default: num_epochs over the data).")
flags.DEFINE_float("num_epochs", None, "Epochs, when --train_steps is not given (default: 3 "
                   "when fine-tuning a checkpoint, 30 when training a preset from scratch).")
flags.DEFINE_integer("steps_per_loop", 100, "Steps between checkpoints (and evaluations).")
flags.DEFINE_integer("eval_every_loops", 1, "Evaluate every N loops (always at the end).")
flags.DEFINE_float("learning_rate", None, "Peak learning rate (default: 5e-5 when fine-tuning "
                   "a checkpoint, 1e-3 when training a preset from scratch).")
flags.DEFINE_float("warmup_fraction", 0.1, "Fraction of the steps spent warming up.")
flags.DEFINE_enum("decay", "linear", ["linear", "cosine", "constant"], "Decay after warmup.")
flags.DEFINE_float("weight_decay", None, "AdamW decay, not on biases and layer norms "
                   "(default: 0.01 fine-tuning, 0.05 from scratch).")
flags.DEFINE_float("clipnorm", 1.0, "Global gradient-norm clipping (0: off).")
flags.DEFINE_float("layer_decay", None, "Layer-wise learning-rate decay, e.g. 0.8.")
flags.DEFINE_float("dropout", None, "Backbone dropout override.")
flags.DEFINE_enum("mixed_precision", None, ["bfloat16", "float16"], "Mixed precision policy.")
flags.DEFINE_bool("jit_compile", False, "Compile the train and predict steps with XLA.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker", "tpu"],
                  "tf.distribute strategy.")
flags.DEFINE_string("tpu", "", "TPU address for --strategy=tpu.")
flags.DEFINE_string("model_dir", None, "Checkpoints, logs, metrics.json, model.keras. "
                    "Default: runs/<task>.")
flags.DEFINE_string("export_dir", None, "Export the trained model for TF Serving here.")
flags.DEFINE_string("push_to_hub", None, "OWNER/NAME: at the end of the run, upload the "
                    "trained encoder as a Hugging Face folder with its tokenizer and a model "
                    "card with the metrics (zoo.push_to_hub; token from HF_TOKEN).")
flags.DEFINE_integer("seed", 0, "Seed of data order and initialisation.")

# Feature extraction (--task=extract_features): no training; see tasks/features.py.
flags.DEFINE_enum("pooling", None, ["cls", "mean", "max", "last4_sum", "last4_concat",
                                      "weighted", "all_layers"],
                  "extract_features: cls/mean/max give one vector per text; last4_sum, "
                  "last4_concat and weighted (untrained: the plain average of the layers) one "
                  "per token, zero at padding; all_layers every layer per token [seq, layers, "
                  "H]. sentence_embedding: cls, mean or max. Default mean.")
flags.DEFINE_string("features_output", None, "extract_features: the output file, .npy "
                    "(per-token poolings add <stem>.mask.npy) or .tfrecord (a tf.train.Example "
                    "per text). Default: <model_dir>/features.npy.")

# Sentence embeddings (--task=sentence_embedding): see tasks/sentence_embedding.py.
flags.DEFINE_enum("objective", None, ["ranking", "softmax", "cosine"], "sentence_embedding: "
                  "ranking (in-batch negatives, pairs only; the default), softmax (a classifier "
                  "over (u, v, |u-v|), NLI labels) or cosine (cos(u, v) regressed on a 0-1 "
                  "score label).")
flags.DEFINE_bool("normalize_embeddings", None, "sentence_embedding: L2-normalize the "
                  "embeddings the encoder returns (default true: a dot product is a cosine).")
flags.DEFINE_float("similarity_scale", None, "sentence_embedding, ranking: the cosine "
                   "similarities' scale (inverse temperature) in the softmax (20).")

# Distillation (--task=distill_*): see tasks/distillation and the README.
flags.DEFINE_string("teacher", None, "distill_*: the teacher, frozen: a checkpoint zoo.load "
                    "reads (with its MLM or classifier head; a path, hub handle or preset name "
                    "for its published weights) or a tasks.run model.keras. Its "
                    "tokenizer is the student's.")
flags.DEFINE_string("student", None, "distill_tinybert_*: the student, a preset "
                    "(tinybert_4l_312d; gets the teacher's vocabulary and a fit_dense to its "
                    "width) or a checkpoint (a general TinyBERT's model.keras, or a hub handle "
                    "such as hf://huawei-noah/TinyBERT_General_4L_312D).")
flags.DEFINE_list("student_layers", None, "distill_distilbert: teacher layers (0-based) the "
                  "student copies; default half of them, evenly spread (12 -> 0,2,4,7,9,11).")
flags.DEFINE_list("layer_map", None, "distill_tinybert_*: teacher layer (1-based) each "
                  "student layer learns from; default uniform (12 -> 4: 3,6,9,12).")
flags.DEFINE_float("temperature", None, "Softmax temperature of the soft targets "
                   "(default: 2.0 DistilBERT, 1.0 TinyBERT).")
flags.DEFINE_float("alpha_ce", None, "distill_distilbert: weight of the KL loss (5.0).")
flags.DEFINE_float("alpha_mlm", None, "distill_distilbert: weight of the MLM loss (2.0).")
flags.DEFINE_float("alpha_cos", None, "distill_distilbert: weight of the cosine loss (1.0).")
flags.DEFINE_float("alpha_mse", None, "distill_distilbert: weight of the logits MSE (0.0).")
flags.DEFINE_enum("distill_stage", None, ["intermediate", "prediction", "both"],
                  "distill_tinybert_task: which losses (default both: intermediate layers, "
                  "then predictions).")
flags.DEFINE_float("intermediate_fraction", None, "distill_tinybert_task with stage both: "
                   "share of the steps on intermediate layers (0.5).")
flags.DEFINE_enum("distill_task", None, ["classification", "regression", "multilabel",
                                         "tagging"],
                  "distill_tinybert_task: the task the teacher was fine-tuned on "
                  "(classification).")
flags.DEFINE_integer("augment_copies", None, "distill_tinybert_task: TinyBERT data "
                     "augmentation, copies per training example (default 0: off).")
flags.DEFINE_string("augment_model", None, "The masked LM that proposes replacement words "
                    "for --augment_copies (a BERT checkpoint with its MLM head: a path, hub handle "
                    "or preset name such as bert_base_uncased).")
flags.DEFINE_float("augment_probability", None, "Chance each eligible word is replaced (0.4).")
flags.DEFINE_integer("augment_top_k", None, "Replacement candidates per word (15).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from tasks.training import runner

    settings = runner.RunSettings.from_flags(FLAGS)
    result = runner.run(settings)
    print(json.dumps({"model_dir": settings.model_dir, **result}, indent=2, sort_keys=True))


def command():
    """The `kerasbert-train` console script: `python -m tasks.run`."""
    logging.set_verbosity(logging.INFO)
    app.run(main)


if __name__ == "__main__":
    command()
