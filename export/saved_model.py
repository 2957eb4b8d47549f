"""`export.export_model`: a trained model folder -> BASE/NAME/VERSION for TF Serving.

The version is written whole or not at all (`export.versions`). Each variable is stored once
(`signatures.ServingModule`), and `assets.extra/tf_serving_warmup_requests`
holds a few real PredictRequests so the server warms up before serving.
"""

import os

import tensorflow as tf

from export import signatures, versions, warmup
from export.versions import next_version  # noqa: F401 (export.next_version)
from export.spec import ServingSpec, read_spec, write_spec


def load_for_serving(model_dir):
    """(model, spec, preprocessor) of a tasks.run model folder, or of any
    checkpoint `zoo.load` reads (served as a bare backbone), hub handles and
    preset names included."""
    import keras

    import zoo

    located = zoo.pretrained.locate(model_dir)  # a handle or preset -> its cached folder
    model_dir = located.path
    path = os.path.join(model_dir, "model.keras") if os.path.isdir(model_dir) else model_dir
    folder = model_dir if os.path.isdir(model_dir) else os.path.dirname(model_dir)
    spec = read_spec(folder)
    if not os.path.exists(path):  # a Hugging Face folder, TF1 checkpoint, ...
        path = model_dir
    if spec is None or spec.kind == "backbone":
        model = zoo.load(path)
    else:
        model = keras.saving.load_model(path)
    if spec is None and isinstance(model, zoo.SentenceEncoder):
        # A Sentence-Transformers folder (or a saved encoder): strings ->
        # embedding, at the length its embeddings were made with.
        from zoo.convert import sentence_transformers

        own = (sentence_transformers.max_sequence_length(path)
               if sentence_transformers.is_sentence_transformers_folder(path) else None)
        spec = ServingSpec(kind="embedding", sequence_length=min(
            own or 128, model.backbone.max_sequence_length))
    if spec is None:  # a bare checkpoint: its backbone, at most 128 positions
        spec = ServingSpec(kind="backbone", sequence_length=min(
            128, getattr(model, "max_sequence_length", 128)))
    preprocessor = None
    if not spec.is_image:
        preprocessor = zoo.load_preprocessor(path, sequence_length=spec.sequence_length,
                                             truncation=spec.truncation,
                                             lower_case=located.lower_case)
    return model, spec, preprocessor


def export_model(model_dir, export_dir, version=None, model=None, spec=None,
                 preprocessor=None, warmup_requests=True, quantize=None):
    """Exports to `export_dir`/VERSION and returns that folder.

    model_dir: a tasks.run model folder (model.keras, tokenizer files,
        serving.json) or any checkpoint zoo.load reads; or pass `model`,
        `spec` (and `preprocessor` for text) directly.
    export_dir: BASE/NAME; version: an int, default the next free one.
    quantize: None (float32) or "int8" (`export.quantize`; `model` itself
        stays float32).
    """
    if quantize is not None:
        from export import quantize as quantization  # keras: imported when needed

        quantization.check_kernel()  # before any loading: the error comes first
    if model is None:
        model, spec, preprocessor = load_for_serving(model_dir)
    if quantize is not None:
        model = quantization.quantize_model(model, quantize)
    final = versions.version_path(export_dir, version)
    module = signatures.ServingModule(model, spec, preprocessor)
    with versions.writing(final) as folder:
        tf.saved_model.save(module, folder, signatures=module.signatures())
        if warmup_requests:
            warmup.write_warmup_requests(folder, spec, os.path.basename(export_dir))
        # The spec travels with the export (label names for clients);
        # TF Serving ignores assets.extra files other than the warm-up.
        os.makedirs(os.path.join(folder, "assets.extra"), exist_ok=True)
        write_spec(spec, os.path.join(folder, "assets.extra"))
    return final
