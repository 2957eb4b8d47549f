"""`python -m export`: a trained model folder -> BASE/NAME/VERSION for TF Serving.

    python -m export --model_dir=runs/sst2 --export_dir=exports/sst2            # next version
    python -m export --model_dir=runs/sst2 --export_dir=exports/sst2 --version=7
    python -m export --model_dir=bert-base-uncased/ --export_dir=exports/bert   # a bare backbone

--model_dir: a tasks.run model folder (model.keras, its tokenizer files and
serving.json), or any checkpoint zoo.load reads (served as a backbone).
Prints the exported version folder; `--verify` also calls every signature
in a fresh process that loads only TensorFlow and tensorflow-text's ops.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

from absl import app, flags, logging  # noqa: E402

flags.DEFINE_string("model_dir", None, "The trained model folder or checkpoint: a path, a hub "
                    "handle (hf://OWNER/NAME[@REVISION], kaggle://..., https://...zip) or a "
                    "preset name for its published weights.", required=True)
flags.DEFINE_string("export_dir", None, "BASE/NAME: versions go in numbered folders below it.",
                    required=True)
flags.DEFINE_integer("version", None, "Version number (default: the next free one).")
flags.DEFINE_bool("verify", True, "Call every signature in a fresh TensorFlow-only process.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from export import saved_model, verify, warmup

    path = saved_model.export_model(FLAGS.model_dir, FLAGS.export_dir, version=FLAGS.version)
    if FLAGS.verify:
        spec = saved_model.read_spec(os.path.join(path, "assets.extra"))
        inputs = {signature: warmup.sample_inputs(spec, signature)
                  for signature in ("serving_default", "serve_ids")}
        outputs = verify.call_in_fresh_process(path, inputs)
        for signature, values in sorted(outputs.items()):
            logging.info("%s: %s", signature, ", ".join(
                f"{name} {tuple(value.shape)}" for name, value in sorted(values.items())))
    print(path)


def command():
    """The `kerasbert-export` console script: `python -m export`."""
    logging.set_verbosity(logging.INFO)
    app.run(main)


if __name__ == "__main__":
    command()
