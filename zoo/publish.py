"""`zoo.push_to_hub`: a model (or a checkpoint folder) to a Hugging Face Hub repo.

What is uploaded is what `zoo.save_hf` writes (config.json, model.safetensors;
a sentence encoder adds its Sentence-Transformers modules), the tokenizer
files (vocab.txt or spiece.model, tokenizer_config.json), a generated model
card (README.md) and, for a `tasks.run` folder, its metrics.json, so the repo
loads with transformers' `from_pretrained` (or sentence-transformers) and with
`zoo.load("hf://OWNER/NAME")`.
"""

import json
import os
import shutil
import tempfile

from absl import logging

from zoo import pretrained, registry
from zoo.convert import sentence_transformers
from zoo.hub.errors import AccessError


def push_to_hub(model_or_path, repo_id, *, tokenizer=None, training=None,
                sequence_length=None, private=None, token=None, revision=None,
                commit_message=None):
    """Uploads `model_or_path` to the Hub repo `repo_id` ("OWNER/NAME"), creating
    it if needed; returns the handle of the new commit, "hf://OWNER/NAME@SHA".

    model_or_path: a backbone, BackboneWithHeads or SentenceEncoder (written as a
        Sentence-Transformers folder), or anything zoo.load reads (a tasks.run
        model_dir or its model.keras, a checkpoint folder, a handle, a preset name).
    tokenizer: the tokenizer to upload with a model object (a path brings its own).
    training: facts for the model card, e.g. {"task": ..., "data": ...}
        (tasks.run --push_to_hub passes its flags).
    sequence_length: a sentence encoder's max_seq_length (default: a run's serving
        length, a Sentence-Transformers folder's own, else 128 or the model's limit).
    private, token, revision: as huggingface_hub's create_repo / upload_folder take
        them (token default: HF_TOKEN or `hf auth login`; private default: the
        owner's default). Files of an earlier push that this one does not write
        are deleted from the repo, so no stale weights or tokenizer stay beside it.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    check_access(repo_id, token)
    model, tokenizer, run_folder, own_length = _gather(model_or_path, tokenizer)
    backbone = getattr(model, "backbone", model)
    sequence_length = sequence_length or own_length or min(
        128, getattr(backbone, "max_sequence_length", 128))
    staging = tempfile.mkdtemp(prefix=".push_to_hub-")
    try:
        folder = os.path.join(staging, "model")
        _write_folder(model, tokenizer, run_folder, folder, sequence_length)
        card = model_card(repo_id, folder, model, run_folder, training)
        with open(os.path.join(folder, "README.md"), "w", encoding="utf-8") as file:
            file.write(card)
        api = HfApi(token=token)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision is not None:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            commit = api.upload_folder(folder_path=folder, repo_id=repo_id, revision=revision,
                                       delete_patterns="*",  # .gitattributes stays
                                       commit_message=commit_message or "Upload with "
                                       "kerasbert's zoo.push_to_hub")
        except HfHubHTTPError as error:
            status = error.response.status_code if error.response is not None else None
            if status in (401, 403):
                raise AccessError(f"The Hub refused the upload to hf://{repo_id} (HTTP "
                                  f"{status}): the token needs write access to {repo_id}'s "
                                  "owner.") from None
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    handle = f"hf://{repo_id}@{commit.oid}"
    logging.info("Pushed %s to %s (%s).", _describe_source(model_or_path), handle,
                 commit.commit_url)
    return handle


def check_access(repo_id, token=None):
    """Fails now, not after a training run, when no token could push to `repo_id`."""
    from huggingface_hub import get_token

    if len(repo_id.split("/")) != 2 or not all(repo_id.split("/")):
        raise ValueError(f"{repo_id!r}: push to a Hub repo named OWNER/NAME.")
    if not (token or get_token()):
        raise AccessError(f"Pushing to hf://{repo_id} needs a token with write access: set "
                          "HF_TOKEN=hf_..., run `hf auth login`, or pass token=.")


def _describe_source(model_or_path):
    return model_or_path if isinstance(model_or_path, (str, os.PathLike)) else \
        getattr(model_or_path, "name", type(model_or_path).__name__)


def _run_folder(path):
    """The tasks.run model_dir `path` is (or whose model.keras it is), or None."""
    folder = os.path.dirname(path) if os.path.basename(path) == "model.keras" else path
    found = os.path.isdir(folder) and all(
        os.path.isfile(os.path.join(folder, name)) for name in ("model.keras", "metrics.json"))
    return folder if found else None


def _gather(model_or_path, tokenizer):
    """(model, tokenizer or None, tasks.run folder or None, the text length the
    model was trained or published with, or None)."""
    from zoo.loading import detect_format, load
    from zoo.preprocessing import load_tokenizer
    from zoo.sentence_encoder import SentenceEncoder

    if not isinstance(model_or_path, (str, os.PathLike)):
        return model_or_path, tokenizer, None, None
    located = pretrained.locate(model_or_path)
    run_folder = _run_folder(located.path)
    if run_folder is not None:
        # A run's heads are its task's, which a Hugging Face folder cannot hold:
        # its encoder goes up (a sentence encoder whole).
        model = load(run_folder)
    elif detect_format(located.path) == "sentence_transformers":
        model = load(located.path)  # an encoder has no checkpoint heads
    elif detect_format(located.path) == "keras":
        # A .keras file holds an encoder or a backbone (with heads); reading it
        # again for its heads converts nothing.
        model = load(located.path)
        if not isinstance(model, SentenceEncoder):
            model = load(located.path, with_head=True)
    else:  # a checkpoint's own heads (MLM, classifier) go with it, read once
        model = load(located.path, with_head=True)
    if tokenizer is None:
        try:
            tokenizer = load_tokenizer(located.path, located.lower_case)
        except FileNotFoundError:
            tokenizer = None
    if run_folder is not None:
        length = (_read_json(os.path.join(run_folder, "serving.json")) or {}).get(
            "sequence_length")
    elif sentence_transformers.is_sentence_transformers_folder(located.path):
        length = sentence_transformers.max_sequence_length(located.path)
    else:
        length = None
    return model, tokenizer, run_folder, length


def _write_folder(model, tokenizer, run_folder, folder, sequence_length):
    from zoo import save_hf
    from zoo.convert.sentence_transformers import save_sentence_transformers
    from zoo.preprocessing import save_tokenizer
    from zoo.sentence_encoder import SentenceEncoder
    from zoo.vit import VitBackbone

    encoder = model if isinstance(model, SentenceEncoder) else None
    save_hf(encoder.backbone if encoder else model, folder)
    if encoder:
        save_sentence_transformers(encoder, folder, sequence_length)
    if tokenizer is not None:
        save_tokenizer(tokenizer, folder)
    elif not isinstance(getattr(model, "backbone", model), VitBackbone):
        logging.warning("Pushing a text model without a tokenizer: the repo will hold no "
                        "vocabulary; pass tokenizer= (a model object) to include one.")
    if run_folder is not None:
        shutil.copyfile(os.path.join(run_folder, "metrics.json"),
                        os.path.join(folder, "metrics.json"))


def _read_json(path):
    if not os.path.exists(path):
        return None
    with open(path) as file:
        return json.load(file)


def _metrics_table(metrics):
    """Markdown rows of a tasks.run metrics.json ({"step", "final", "best"})."""
    rows = ["| metric | final | best |", "|---|---:|---:|"]
    best = metrics.get("best") or {}
    for name, value in sorted((metrics.get("final") or {}).items()):
        if isinstance(value, (int, float)):
            best_value = best.get(name)
            best_text = f"{best_value:.4f}" if isinstance(best_value, (int, float)) else ""
            rows.append(f"| {name} | {value:.4f} | {best_text} |")
    return "\n".join(rows)


def model_card(repo_id, folder, model, run_folder=None, training=None):
    """The README.md of a pushed repo: what the model is, how it was trained, how to load it."""
    config = _read_json(os.path.join(folder, "config.json")) or {}
    backbone = getattr(model, "backbone", model)
    architecture = (config.get("architectures") or ["?"])[0]
    preset = backbone.name if backbone.name in registry.available() else None
    facts = [f"- Architecture: `{architecture}` ({config.get('model_type', '?')}), "
             f"{model.count_params():,} parameters"]
    for key, label in (("num_hidden_layers", "layers"), ("n_layers", "layers"),
                       ("hidden_size", "hidden size"), ("dim", "hidden size"),
                       ("num_attention_heads", "attention heads"), ("n_heads", "attention heads")):
        if key in config:
            facts.append(f"- {label.capitalize()}: {config[key]}")
    if preset:
        facts.append(f"- kerasbert preset: `{preset}` ({registry.get_preset(preset).description})")
    training = dict(training or {})
    sections = []
    if run_folder is not None or training:
        lines = [f"- {key.replace('_', ' ').capitalize()}: `{value}`"
                 for key, value in training.items() if value not in (None, "", [], ())]
        spec = _read_json(os.path.join(run_folder, "serving.json")) if run_folder else None
        if spec:
            lines.append(f"- Serving kind: `{spec.get('kind')}`"
                         + (f", labels {list(spec['label_names'])}"
                            if spec.get("label_names") else ""))
        metrics = _read_json(os.path.join(run_folder, "metrics.json")) if run_folder else None
        if metrics:
            lines += ["", f"Evaluation after {metrics.get('step', '?')} steps "
                      "(`metrics.json`):", "", _metrics_table(metrics)]
        if run_folder is not None and backbone is not model:
            lines += ["", "This repo holds the trained sentence encoder (pooling and "
                      "normalization as Sentence-Transformers modules)."]
        elif run_folder is not None:
            lines += ["", "This repo holds the trained encoder; the task's own head stays "
                      "in the run's `model.keras`."]
        sections.append("## Training (kerasbert `tasks.run`)\n\n" + "\n".join(lines))
    sentence = os.path.exists(os.path.join(folder, "modules.json"))
    library = "sentence-transformers" if sentence else "transformers"
    tags = ["kerasbert", "keras", config.get("model_type", "")] + (
        ["sentence-transformers"] if sentence else [])
    front = f"---\nlibrary_name: {library}\ntags:\n" + "".join(
        f"- {tag}\n" for tag in tags if tag) + "---\n"
    has_tokenizer = any(os.path.exists(os.path.join(folder, name))
                        for name in ("vocab.txt", "spiece.model"))
    usage = (f"```python\nimport zoo\nmodel = zoo.load(\"hf://{repo_id}\")\n"
             + (f"preprocessor = zoo.load_preprocessor(\"hf://{repo_id}\")\n"
                if has_tokenizer else "")
             + f"```\n\nor with transformers: `AutoModel.from_pretrained(\"{repo_id}\")`"
             + (", or sentence-transformers: `SentenceTransformer(\"" + repo_id + "\")`."
                if sentence else "."))
    body = [f"# {repo_id}", "Written by kerasbert's `zoo.push_to_hub`.", "\n".join(facts),
            *sections, "## Use\n\n" + usage]
    return front + "\n" + "\n\n".join(body) + "\n"
