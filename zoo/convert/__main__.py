"""`python -m zoo.convert --input=CHECKPOINT --output=OUT`.

Loads any checkpoint `zoo.load` reads and writes it as a `.keras` file
(OUT ends in .keras) or as a Hugging Face folder (any other OUT), printing
what was loaded and what was left out.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

from absl import app, flags  # noqa: E402

flags.DEFINE_string("input", None, "Checkpoint: HF folder, TF1 checkpoint, keras-hub "
                    "preset, ViT .npz or .keras file; a hub handle (hf://OWNER/NAME[@REVISION], "
                    "kaggle://..., https://...zip) or a preset name for its published weights.")
flags.DEFINE_string("output", None, "model.keras, or a folder for Hugging Face format.")
flags.DEFINE_bool("with_head", True, "Also convert the checkpoint's heads (MLM, NSP/SOP, "
                  "classifier).")
flags.mark_flags_as_required(["input", "output"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from zoo import save_hf
    from zoo.convert.table import ConversionError
    from zoo.loading import load_with_report

    try:
        model, report = load_with_report(FLAGS.input, with_head=FLAGS.with_head)
    except (ConversionError, FileNotFoundError, ValueError) as error:
        raise app.UsageError(str(error)) from None
    print(report.summary() if report else f"Loaded {FLAGS.input}.")
    print(f"Model: {type(model).__name__}, {model.count_params():,} parameters, "
          f"outputs: {', '.join(sorted(model.output))}")
    if FLAGS.output.endswith(".keras"):
        model.save(FLAGS.output)
    else:
        try:
            save_hf(model, FLAGS.output)
        except ValueError as error:  # a sentence encoder: say what to write instead
            raise app.UsageError(str(error)) from None
    print(f"Wrote {FLAGS.output}")


def command():
    """The `kerasbert-convert` console script: `python -m zoo.convert`."""
    app.run(main)


if __name__ == "__main__":
    command()
