"""`python -m export`: a trained model folder -> BASE/NAME/VERSION for TF Serving.

    python -m export --model_dir=runs/sst2 --export_dir=exports/sst2            # next version
    python -m export --model_dir=runs/sst2 --export_dir=exports/sst2 --version=7
    python -m export --model_dir=bert-base-uncased/ --export_dir=exports/bert   # a bare backbone
    python -m export ... --serving_config   # + exports/models.config, batching_parameters.txt

--model_dir: a tasks.run model folder (model.keras, its tokenizer files and
serving.json), or any checkpoint zoo.load reads (served as a backbone).
Prints the exported version folder; `--verify` also calls every signature
in a fresh process that loads only TensorFlow and tensorflow-text's ops.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

from absl import app, flags, logging  # noqa: E402

from export import serving_config  # noqa: E402

flags.DEFINE_string("model_dir", None, "The trained model folder or checkpoint: a path, a hub "
                    "handle (hf://OWNER/NAME[@REVISION], kaggle://..., https://...zip) or a "
                    "preset name for its published weights.", required=True)
flags.DEFINE_string("export_dir", None, "BASE/NAME: versions go in numbered folders below it.",
                    required=True)
flags.DEFINE_integer("version", None, "Version number (default: the next free one).")
flags.DEFINE_bool("verify", True, "Call every signature in a fresh TensorFlow-only process.")
flags.DEFINE_enum("format", "saved_model", ("saved_model", "onnx", "litert"),
                  "saved_model: TF Serving's SavedModel (raw text or image bytes in); onnx: "
                  "model.onnx for ONNX Runtime (ids in, tokenizer files beside it); litert: "
                  "a LiteRT (TFLite) flatbuffer.")
flags.DEFINE_enum("quantize", None, ("int8",), "int8: weights int8 per output channel, "
                  "activations quantized dynamically (float32 where accuracy needs it).")
serving_config.define_flags(flags.FLAGS)  # --serving_config, --serving_versions, batching
flags.adopt_module_key_flags(serving_config)  # listed by --help with the flags above
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from export import saved_model, verify, warmup

    serving = serving_config.from_flags(FLAGS)  # a wrong value fails before the export
    if serving is not None and FLAGS.format != "saved_model":
        raise app.UsageError("--serving_config: TF Serving serves --format=saved_model exports.")
    if FLAGS.format == "onnx":
        from export import onnx

        print(onnx.export_onnx(FLAGS.model_dir, FLAGS.export_dir, version=FLAGS.version,
                               quantize=FLAGS.quantize, verify=FLAGS.verify))
        return
    if FLAGS.format == "litert":
        from export import litert

        print(litert.export_litert(FLAGS.model_dir, FLAGS.export_dir, version=FLAGS.version,
                                   quantize=FLAGS.quantize, verify=FLAGS.verify))
        return
    path = saved_model.export_model(FLAGS.model_dir, FLAGS.export_dir, version=FLAGS.version,
                                    quantize=FLAGS.quantize)
    if FLAGS.verify:
        spec = saved_model.read_spec(os.path.join(path, "assets.extra"))
        inputs = {signature: warmup.sample_inputs(spec, signature)
                  for signature in ("serving_default", "serve_ids")}
        outputs = verify.call_in_fresh_process(path, inputs)
        for signature, values in sorted(outputs.items()):
            logging.info("%s: %s", signature, ", ".join(
                f"{name} {tuple(value.shape)}" for name, value in sorted(values.items())))
    if serving is not None:
        for written in serving.write(FLAGS.export_dir):
            logging.info("TF Serving config: %s", written)
    print(path)


def command():
    """The `kerasbert-export` console script: `python -m export`."""
    logging.set_verbosity(logging.INFO)
    app.run(main)


if __name__ == "__main__":
    command()
