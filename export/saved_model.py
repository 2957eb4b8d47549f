"""`export.export_model`: a trained model folder -> BASE/NAME/VERSION for TF Serving.

The version is written into a hidden temporary sibling folder
(`BASE/NAME/.tmp-<version>-<random>`, which TF Serving ignores: it only
loads numeric folders) and renamed into place when complete, so a crash
leaves either a whole version or none. Each variable is stored once
(`signatures.ServingModule`), and `assets.extra/tf_serving_warmup_requests`
holds a few real PredictRequests so the server warms up before serving.
"""

import os
import shutil
import tempfile

import tensorflow as tf

from export import signatures, warmup
from export.spec import ServingSpec, read_spec, write_spec


def _readable(folder):
    """Folders 0777 and files 0666, less the umask, as os.makedirs would make them."""
    umask = os.umask(0)
    os.umask(umask)
    for root, folders, files in os.walk(folder):
        os.chmod(root, 0o777 & ~umask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~umask)


def next_version(base):
    """1 + the largest numeric version under `base` (1 when there is none)."""
    if not os.path.isdir(base):
        return 1
    versions = [int(name) for name in os.listdir(base) if name.isdigit()]
    return max(versions, default=0) + 1


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
                 preprocessor=None, warmup_requests=True):
    """Exports to `export_dir`/VERSION and returns that folder.

    model_dir: a tasks.run model folder (model.keras, tokenizer files,
        serving.json) or any checkpoint zoo.load reads; or pass `model`,
        `spec` (and `preprocessor` for text) directly.
    export_dir: BASE/NAME; version: an int, default the next free one.
    """
    if model is None:
        model, spec, preprocessor = load_for_serving(model_dir)
    version = next_version(export_dir) if version is None else int(version)
    final = os.path.join(export_dir, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"{final} exists: TF Serving versions are immutable; export to "
                              "the next version (the default) or remove it first.")
    os.makedirs(export_dir, exist_ok=True)
    module = signatures.ServingModule(model, spec, preprocessor)
    temporary = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=export_dir)
    try:
        tf.saved_model.save(module, temporary, signatures=module.signatures())
        if warmup_requests:
            warmup.write_warmup_requests(temporary, spec, os.path.basename(export_dir))
        # The spec travels with the export (label names for clients);
        # TF Serving ignores assets.extra files other than the warm-up.
        os.makedirs(os.path.join(temporary, "assets.extra"), exist_ok=True)
        write_spec(spec, os.path.join(temporary, "assets.extra"))
        _readable(temporary)  # mkdtemp makes it 0700: a server may run as another user
        os.rename(temporary, final)
    finally:
        if os.path.exists(temporary):
            shutil.rmtree(temporary, ignore_errors=True)
    return final
