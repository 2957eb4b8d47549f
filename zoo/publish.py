"""`zoo.push_to_hub`: a model (or a checkpoint folder) to a Hugging Face Hub repo.

What is uploaded is what `zoo.save_hf` writes (config.json, model.safetensors),
the tokenizer files (vocab.txt or spiece.model, tokenizer_config.json), a
generated model card (README.md) and, for a `tasks.run` folder, its
metrics.json, so the repo loads with transformers' `from_pretrained` and
with `zoo.load("hf://OWNER/NAME")`.
"""

import json
import os
import shutil
import tempfile

from absl import logging

from zoo import pretrained, registry
from zoo.hub.errors import AccessError


def push_to_hub(model_or_path, repo_id, *, tokenizer=None, training=None, private=False,
                token=None, revision=None, commit_message=None):
    """Uploads `model_or_path` to the Hub repo `repo_id` ("OWNER/NAME"), creating
    it if needed; returns the handle of the new commit, "hf://OWNER/NAME@SHA".

    model_or_path: a backbone or BackboneWithHeads, or anything zoo.load reads (a
        tasks.run model_dir, a checkpoint folder, a handle, a preset name).
    tokenizer: the tokenizer to upload with a model object (a path brings its own).
    training: facts for the model card, e.g. {"task": ..., "data": ...}
        (tasks.run --push_to_hub passes its flags).
    private, token, revision: as huggingface_hub's create_repo / upload_folder
        take them (token default: HF_TOKEN or `hf auth login`).
    """
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    if not (token or get_token()):
        raise AccessError(f"Pushing to hf://{repo_id} needs a token with write access: set "
                          "HF_TOKEN=hf_..., run `hf auth login`, or pass token=.")
    model, tokenizer, run_folder = _gather(model_or_path, tokenizer)
    staging = tempfile.mkdtemp(prefix=".push_to_hub-")
    try:
        folder = os.path.join(staging, "model")
        _write_folder(model, tokenizer, run_folder, folder)
        card = model_card(repo_id, folder, model, run_folder, training)
        with open(os.path.join(folder, "README.md"), "w", encoding="utf-8") as file:
            file.write(card)
        api = HfApi(token=token)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            commit = api.upload_folder(folder_path=folder, repo_id=repo_id, revision=revision,
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


def _describe_source(model_or_path):
    return model_or_path if isinstance(model_or_path, (str, os.PathLike)) else \
        getattr(model_or_path, "name", type(model_or_path).__name__)


def _is_run_folder(path):
    return os.path.isfile(os.path.join(path, "model.keras")) and os.path.isfile(
        os.path.join(path, "metrics.json"))


def _gather(model_or_path, tokenizer):
    """(model, tokenizer or None, tasks.run folder or None) of what is pushed."""
    from zoo.loading import load
    from zoo.preprocessing import load_tokenizer

    if not isinstance(model_or_path, (str, os.PathLike)):
        return model_or_path, tokenizer, None
    path = pretrained.resolve(model_or_path)
    run_folder = path if os.path.isdir(path) and _is_run_folder(path) else None
    # A run's heads are its task's, which a Hugging Face folder cannot hold:
    # its backbone goes up; a checkpoint's own heads (MLM, classifier) go with it.
    model = load(path) if run_folder else load(path, with_head=True)
    if tokenizer is None:
        try:
            tokenizer = load_tokenizer(path)
        except FileNotFoundError:
            logging.warning("%s has no tokenizer files: the repo will have none.", path)
    return model, tokenizer, run_folder


def _write_folder(model, tokenizer, run_folder, folder):
    from zoo import save_hf
    from zoo.preprocessing import save_tokenizer

    save_hf(model, folder)
    if tokenizer is not None:
        save_tokenizer(tokenizer, folder)
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
        if run_folder is not None:
            lines += ["", "This repo holds the trained encoder; the task's own head stays "
                      "in the run's `model.keras`."]
        sections.append("## Training (kerasbert `tasks.run`)\n\n" + "\n".join(lines))
    tags = ["kerasbert", "keras", config.get("model_type", "")]
    front = "---\nlibrary_name: transformers\ntags:\n" + "".join(
        f"- {tag}\n" for tag in tags if tag) + "---\n"
    usage = (f"```python\nimport zoo\nmodel = zoo.load(\"hf://{repo_id}\")\n"
             f"preprocessor = zoo.load_preprocessor(\"hf://{repo_id}\")\n```\n\n"
             f"or with transformers: `AutoModel.from_pretrained(\"{repo_id}\")`.")
    body = [f"# {repo_id}", "Written by kerasbert's `zoo.push_to_hub`.", "\n".join(facts),
            *sections, "## Use\n\n" + usage]
    return front + "\n" + "\n\n".join(body) + "\n"
