"""`export.onnx.export_onnx`: a trained model folder -> BASE/NAME/VERSION/model.onnx.

    python -m export --model_dir=runs/sst2 --export_dir=exports/sst2_onnx --format=onnx
    python -m export ... --format=onnx --quantize=int8      # int8 weights, dynamic activations

The ONNX model is the SavedModel's `serve_ids` signature: the three int32
id tensors [batch, seq] (or images float32 [batch, h, w, c]) in, the same
named outputs out, less the string ones (label_name, label_names, tags:
ONNX Runtime has no string operators for them; serving.json holds the
names to look them up). Tokenization stays outside: the tokenizer files
are written beside model.onnx (`zoo.load_preprocessor(version_folder)`
reads them), with serving.json. The version folder is written as a hidden
temporary sibling and renamed into place (`export.versions`);
BASE/NAME/VERSION/model.onnx is also the layout NVIDIA Triton's model
repository reads (it derives the model configuration of an ONNX model).

The conversion is tf2onnx's (export/onnx_graph.py makes its layer norms and
GELUs ONNX Runtime's fused kernels); `verify` runs the file in ONNX Runtime
on sample inputs and compares it with the Keras model.
"""

import os
import tempfile

from absl import logging

from export.onnx_convert import OPSET, OnnxExportError, ids_function, to_onnx
from export.onnx_verify import session, verify_onnx
from export import versions
from export.saved_model import load_for_serving
from export.spec import write_spec

MODEL_FILE = "model.onnx"
QUANTIZATIONS = ("int8",)

__all__ = ["MODEL_FILE", "OPSET", "OnnxExportError", "export_onnx", "ids_function",
           "quantize_int8", "session", "to_onnx", "verify_onnx"]


def quantize_int8(proto, per_channel=True):
    """int8 weights and embedding tables, activations quantized per call:
    onnxruntime.quantization.quantize_dynamic. One scale per output channel:
    on all-MiniLM-L6-v2 its embeddings kept a mean cosine of 0.987 to the
    float model's, one scale per tensor 0.922 (docs/export.md)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder:
        source, target = os.path.join(folder, "float.onnx"), os.path.join(folder, "int8.onnx")
        onnx.save(proto, source)
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=per_channel)
        return onnx.load(target)


def _check_not_an_export(model_dir):
    exported = [name for name in ("saved_model.pb", MODEL_FILE, "model.tflite")
                if os.path.exists(os.path.join(str(model_dir), name))]
    if exported:
        raise OnnxExportError(
            f"{model_dir} is an export ({exported[0]}), not a trained model: pass the model "
            "folder it was exported from (tasks.run's --model_dir: model.keras, its tokenizer "
            "files, serving.json) or a checkpoint zoo.load reads.")


def export_onnx(model_dir, export_dir, version=None, quantize=None, verify=True, model=None,
                spec=None, preprocessor=None):
    """Exports `model_dir` to `export_dir`/VERSION/model.onnx and returns that folder.

    model_dir: a tasks.run model folder or any checkpoint zoo.load reads (as
        `export.export_model` takes); or pass `model`, `spec` (and
        `preprocessor` for text) directly.
    quantize: None (float32) or "int8".
    verify: run the file in ONNX Runtime and compare it with the model.
    """
    if quantize not in (None, *QUANTIZATIONS):
        raise ValueError(f"quantize={quantize!r}: one of {QUANTIZATIONS} or None (float32).")
    if model is None:
        _check_not_an_export(model_dir)
        model, spec, preprocessor = load_for_serving(model_dir)
    if preprocessor is None and not spec.is_image:
        raise ValueError("A text model's ONNX export needs its preprocessor: its tokenizer "
                         "files go beside model.onnx, and the check packs texts with it.")
    final = versions.version_path(export_dir, version)
    proto = to_onnx(model, spec, preprocessor)
    if quantize == "int8":
        proto = quantize_int8(proto)
    with versions.writing(final) as folder:
        import onnx

        onnx.save(proto, os.path.join(folder, MODEL_FILE))
        if verify:
            differences = verify_onnx(os.path.join(folder, MODEL_FILE), model, spec,
                                      preprocessor, quantized=quantize is not None)
            logging.info("ONNX Runtime vs the Keras model on sample inputs: %s", ", ".join(
                f"{name}: {value} entries differ" if isinstance(value, int) else
                f"{name}: max |difference| {value:.2g}"
                for name, value in sorted(differences.items())))
        if preprocessor is not None:
            import zoo

            zoo.save_tokenizer(preprocessor.tokenizer, folder)
        write_spec(spec, folder)
    return final
