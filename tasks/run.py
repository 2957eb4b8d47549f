r"""`python -m tasks.run`: train a task, evaluate it with its real metric, save it.

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
SIGTERM or Ctrl-C stops a run after the current step with a checkpoint of it
and exit status 75 (EX_TEMPFAIL); see docs/tasks.md.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

from absl import app, flags, logging  # noqa: E402

from tasks import options as tasks_options  # noqa: E402

from tasks.training import loop, model_dir, preemption, runner  # noqa: E402

# Every flag comes from a declaration: the run settings (runner.RunSettings)
# and each task's options (its Options dataclass), grouped by task in --helpfull.
runner.define_flags(flags.FLAGS)
for _name in tasks_options.names(runner.RunSettings):
    flags.declare_key_flag(_name)  # --help lists the run settings
FLAGS = flags.FLAGS


def parse_flags(argv):
    """absl's parsing, with the task's options named when a flag is wrong."""
    try:
        return FLAGS(argv)
    except flags.Error as error:
        task = next((arg.split("=", 1)[1] for arg in argv if arg.startswith("--task=")),
                    runner.RunSettings.task)
        sys.exit(f"FATAL Flags parsing error: {error}\n{runner.options_help(task)}\n"
                 "Pass --helpfull to see every flag, grouped by task.")


def main(argv):
    del argv
    settings = runner.RunSettings.from_flags(FLAGS)
    try:
        result = runner.run(settings)
    except preemption.Preempted as stopped:
        logging.warning("%s", stopped)
        print(stopped, flush=True)
        sys.exit(preemption.EXIT_STATUS)
    except (loop.NonFiniteLoss, model_dir.InUse, model_dir.SettingsChanged) as refused:
        # What the run met, not a bug: the message, without a traceback.
        sys.exit(f"FATAL {refused}")
    print(json.dumps({"model_dir": settings.model_dir, **result}, indent=2, sort_keys=True))


def command():
    """The `kerasbert-train` console script: `python -m tasks.run`."""
    logging.set_verbosity(logging.INFO)
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    command()
