"""CPU serving: kerasbert's SavedModels, float32 and int8, against ONNX Runtime.

    python -m benchmarks.serving [--shape=bert_base] [--repeats=7] [--quick]
        [--output=benchmarks/results/serving.json]

One text classifier shape (a random zoo BertBackbone of --shape with a
2-class head; batch 8 x 128 for bert_base, full length, no padding), on
five sides timed in the same process, alternating call by call after two
warm-up calls, median over --repeats rounds:

- kerasbert fp32: `export.export_model`, loaded with tf.saved_model.load as
  TF Serving loads it, its `serve_ids` signature called with the ids;
- kerasbert int8: the same model exported with quantize="int8"
  (`export.quantize`: oneDNN int8 matmuls);
- keras int8: the same model after Keras' own `model.quantize("int8")`,
  exported the same way (its own int8 forward: what the int8 export does
  not use, timed to show why);
- ort fp32: Hugging Face's BertForSequenceClassification of the same shape
  (random init, CPU torch) exported by `torch.onnx.export` (opset 17), in
  an ONNX Runtime CPU session with its default options;
- ort int8: that file after ONNX Runtime's `quantize_dynamic` (QInt8
  weights, activations quantized at run time).

Ratios are the median over rounds of one side's time over the other's in
the same round. Sizes: the SavedModels' `variables/` folders and the .onnx
files. The ONNX Runtime sides are skipped (reported as missing) when torch,
transformers or onnxruntime is not installed. --quick runs a tiny shape to
check the machinery; its figures mean nothing.
"""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app, flags  # noqa: E402

from benchmarks import peers, timing, write_results  # noqa: E402

RATIOS = {  # figure name: (faster side, slower side): slower time / faster time
    "kerasbert fp32 / ort fp32": ("kerasbert fp32", "ort fp32"),
    "kerasbert int8 / kerasbert fp32": ("kerasbert int8", "kerasbert fp32"),
    "kerasbert int8 / ort int8": ("kerasbert int8", "ort int8"),
    "keras int8 / kerasbert fp32": ("keras int8", "kerasbert fp32"),
    "ort int8 / ort fp32": ("ort int8", "ort fp32"),
}


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


def kerasbert_sides(shape, folder):
    """{side: (call, bytes of variables/)} for the three SavedModel sides, and
    the ids they are called with."""
    import tensorflow as tf

    import export
    import zoo
    from kerasbert.text import build_wordpiece_vocabulary
    from tasks.base import TaskConfig
    from tasks.classification import TextClassificationTask
    from tests.text_corpus import training_corpus

    # A small vocabulary for the raw-text signatures; the model's own table
    # has the shape's vocabulary size (ids are fed directly).
    build_wordpiece_vocabulary(training_corpus(300), 300, lower_case=True,
                               output_file=os.path.join(folder, "vocab.txt"))
    preprocessor = zoo.load_preprocessor(folder, sequence_length=shape.sequence)
    backbone, _, _ = peers.kerasbert_backbone(shape)
    task = TextClassificationTask(TaskConfig(data=folder, sequence_length=shape.sequence,
                                             num_classes=2, options={"labels": ["0", "1"]}))
    model = task.build_model(backbone)
    spec = task.serving_spec(shape.sequence, "longest_first")
    keras_int8 = task.build_model(peers.kerasbert_backbone(shape)[0])
    keras_int8.set_weights(model.get_weights())
    keras_int8.quantize("int8")
    exports = {
        "kerasbert fp32": dict(model=model),
        "kerasbert int8": dict(model=model, quantize="int8"),
        "keras int8": dict(model=keras_int8),
    }
    ids, mask, types = (tf.constant(value) for value in peers.token_ids(shape))
    sides = {}
    for side, arguments in exports.items():
        path = export.export_model(None, os.path.join(folder, side.replace(" ", "_")),
                                   spec=spec, preprocessor=preprocessor,
                                   warmup_requests=False, **arguments)
        signature = tf.saved_model.load(path).signatures["serve_ids"]

        def call(signature=signature):
            return signature(input_word_ids=ids, input_mask=mask,
                             input_type_ids=types)["logits"].numpy()

        sides[side] = (call, folder_bytes(os.path.join(path, "variables")))
    return sides


def onnx_runtime_sides(shape, folder):
    """{side: (call, bytes of the .onnx file)}; {} without the libraries."""
    try:
        import onnxruntime
        import torch
        import transformers
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        return {}
    config = transformers.BertConfig(
        vocab_size=shape.vocab, hidden_size=shape.hidden, num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads, intermediate_size=shape.intermediate,
        max_position_embeddings=max(512, shape.sequence), num_labels=2)
    model = transformers.BertForSequenceClassification(config).eval()
    names = ("input_ids", "attention_mask", "token_type_ids")
    arrays = [value.astype("int64") for value in peers.token_ids(shape)]
    fp32 = os.path.join(folder, "model.onnx")
    with torch.no_grad():
        torch.onnx.export(model, tuple(torch.from_numpy(value) for value in arrays), fp32,
                          input_names=list(names), output_names=["logits"], opset_version=17,
                          dynamo=False, dynamic_axes={name: {0: "batch", 1: "sequence"}
                                                      for name in names})
    int8 = os.path.join(folder, "model_int8.onnx")
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8)
    feeds = dict(zip(names, arrays))
    sides = {}
    for side, path in (("ort fp32", fp32), ("ort int8", int8)):
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        sides[side] = (lambda session=session: session.run(["logits"], feeds)[0],
                       os.path.getsize(path))
    return sides


def measure(shape, repeats):
    with tempfile.TemporaryDirectory() as folder:
        sides = kerasbert_sides(shape, folder)
        sides.update(onnx_runtime_sides(shape, folder))
        times = timing.alternate({side: call for side, (call, _) in sides.items()}, repeats)
    results = {side: {"seconds_per_batch": timing.median(times[side]),
                      "sequences_per_second": shape.batch / timing.median(times[side]),
                      "bytes": size, "all_seconds": times[side]}
               for side, (_, size) in sides.items()}
    ratios = {name: timing.paired_ratio(times[slower], times[faster])
              for name, (faster, slower) in RATIOS.items() if {faster, slower} <= set(times)}
    sizes = {"kerasbert int8 / fp32 variables": (results["kerasbert int8"]["bytes"]
                                                 / results["kerasbert fp32"]["bytes"])}
    if "ort int8" in results:
        sizes["ort int8 / fp32 file"] = results["ort int8"]["bytes"] / results["ort fp32"]["bytes"]
    return {"shape": shape.__dict__, "sides": results, "ratios": ratios, "sizes": sizes}


def table(result):
    shape = result["shape"]
    lines = [f"{shape['name']} classifier serving, batch {shape['batch']} x {shape['sequence']}",
             "| side | sequences/s | size (MB) |", "|---|---|---|"]
    for side, values in result["sides"].items():
        lines.append(f"| {side} | {values['sequences_per_second']:.2f} | "
                     f"{values['bytes'] / 1e6:.1f} |")
    lines += [f"{name}: {value:.2f}x" for name, value in result["ratios"].items()]
    lines += [f"{name}: {value:.3f}" for name, value in result["sizes"].items()]
    return "\n".join(lines)


def main(argv):
    del argv
    shape = peers.QUICK if FLAGS.quick else peers.SHAPES[FLAGS.shape]
    result = measure(shape, FLAGS.repeats)
    print(table(result))
    write_results(result, FLAGS.output)


if __name__ == "__main__":
    flags.DEFINE_enum("shape", "bert_base", ["bert_base", "bert_tiny"],
                      "bert_base: batch 8 x 128; bert_tiny: batch 32 x 128.")
    flags.DEFINE_integer("repeats", 7, "Timed rounds (each side once per round), at least 5.")
    flags.DEFINE_bool("quick", False, "A tiny shape: checks that the benchmark runs.")
    flags.DEFINE_string("output", os.path.join("benchmarks", "results", "serving.json"),
                        "JSON results (its folder is created).")
    FLAGS = flags.FLAGS
    app.run(main)
