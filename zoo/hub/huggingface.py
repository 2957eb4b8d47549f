"""hf://OWNER/NAME[@REVISION] -> a snapshot folder in huggingface_hub's cache.

Everything goes through the `huggingface_hub` library, so its cache
($HF_HOME/hub), token (HF_TOKEN or `hf auth login`), endpoint (HF_ENDPOINT),
offline mode (HF_HUB_OFFLINE) and resumable downloads behave as they do for
transformers. Only the files zoo.load and zoo.load_preprocessor read are
fetched (`select_files`): configs, one weight format, tokenizer files and
Sentence-Transformers module configs, not the repo's ONNX, TF, Flax or Rust
copies of the same weights.
"""

import fnmatch
import os
import posixpath
import re

from absl import logging

from zoo.hub.errors import (AccessError, DownloadError, HandleNotFoundError, NotCachedError,
                            offline)

# Weight files by preference, as transformers reads them (safetensors first);
# then keras-hub presets, TF1 checkpoints and ViT .npz files kept on the Hub.
_WEIGHT_PATTERNS = (
    ("model.safetensors", "model.safetensors.index.json", "model-*-of-*.safetensors"),
    ("pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*-of-*.bin"),
    ("*.weights.h5",),
    ("*.ckpt*.index", "*.ckpt*.data-*", "checkpoint"),
    ("*.npz",),
)
# Configs and tokenizer files: config.json, tokenizer(.json|_config.json),
# special_tokens_map.json, modules.json, sentence_bert_config.json, vocab.txt,
# spiece.model, merges.txt, vocab.json, keras-hub's assets/.
_SMALL_FILES = ("*.json", "*.txt", "*.model")
# Folders that hold other exports of the same weights, or training leftovers
# (a Trainer's checkpoint-500/, last-checkpoint/), never read here.
_SKIPPED_FOLDERS = {"onnx", "openvino", "coreml", "tflite", "flax", "tf", "runs", ".git",
                    "last-checkpoint"}
_COMMIT = re.compile(r"[0-9a-f]{40}")


def parse(path):
    """(repo_id, revision or None) of the `OWNER/NAME[@REVISION]` after hf://."""
    repo_id, _, revision = path.partition("@")
    parts = repo_id.split("/")
    if not 1 <= len(parts) <= 2 or not all(parts) or (revision == "" and "@" in path):
        raise ValueError(f"hf://{path}: a Hugging Face handle is hf://OWNER/NAME or "
                         "hf://OWNER/NAME@REVISION (a branch, tag or commit sha), e.g. "
                         "hf://google-bert/bert-base-uncased.")
    return repo_id, revision or None


def select_files(files):
    """The subset of a repo's `files` zoo.load needs: every small config and
    tokenizer file, and per folder the one weight format transformers would read."""
    by_folder = {}
    for name in files:
        top = name.split("/")[0]
        if "/" in name and (top in _SKIPPED_FOLDERS or top.startswith("checkpoint-")):
            continue
        by_folder.setdefault(posixpath.dirname(name), []).append(name)
    chosen = []
    for folder, names in sorted(by_folder.items()):
        bases = {posixpath.basename(name): name for name in names}
        weights = [[name for base, name in bases.items()
                    if any(fnmatch.fnmatch(base, p) for p in patterns)]
                   for patterns in _WEIGHT_PATTERNS]
        any_weights = {name for names_of_format in weights for name in names_of_format}
        chosen += [name for base, name in bases.items()
                   if any(fnmatch.fnmatch(base, p) for p in _SMALL_FILES)
                   and not base.startswith(".") and name not in any_weights]
        chosen += next((names_of_format for names_of_format in weights if names_of_format), [])
    return sorted(chosen)


def _endpoint():
    from huggingface_hub import constants

    return constants.ENDPOINT


def cache_folder(repo_id):
    from huggingface_hub import constants

    return posixpath.join(constants.HF_HUB_CACHE, "models--" + repo_id.replace("/", "--"))


def _cached_files(repo_id, revision):
    """The file list of `revision` as the cache recorded it, or None."""
    from huggingface_hub import get_cached_repo_tree
    from huggingface_hub.errors import CachedRepoTreeNotFoundError

    try:
        return [entry.path for entry in get_cached_repo_tree(repo_id, revision=revision)]
    except (CachedRepoTreeNotFoundError, FileNotFoundError):
        return None


def _snapshot_folder(repo_id, revision):
    """snapshots/<commit> of `revision` (a commit, or a ref the cache recorded), or None."""
    folder = cache_folder(repo_id)
    commit = revision or "main"
    if not _COMMIT.fullmatch(commit):
        ref = posixpath.join(folder, "refs", commit)
        if not os.path.isfile(ref):
            return None
        with open(ref) as file:
            commit = file.read().strip()
    snapshot = posixpath.join(folder, "snapshots", commit)
    return snapshot if os.path.isdir(snapshot) else None


def cached_path(path):
    """The snapshot folder of a cached hf://`path`, or None (no network).

    A snapshot_download records the repo's file list, and then every selected
    file must be there; a cache filled file by file (transformers'
    from_pretrained) has no list, and its snapshot folder is taken as it is."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo_id, revision = parse(path)
    files = _cached_files(repo_id, revision)
    if files is None:
        return _snapshot_folder(repo_id, revision)
    try:
        return snapshot_download(repo_id, revision=revision, allow_patterns=select_files(files),
                                 local_files_only=True)
    except LocalEntryNotFoundError:
        return None


def fetch(path):
    """The local snapshot folder of hf://`path`, downloading what is missing."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HTTPError, OfflineModeIsEnabled

    repo_id, revision = parse(path)
    handle = f"hf://{path}"
    if revision is not None and _COMMIT.fullmatch(revision):
        found = cached_path(path)  # a commit never changes: no need to ask the Hub
        if found is not None:
            return found
    if offline():
        return _from_cache(handle, repo_id, path, "offline mode is on (HF_HUB_OFFLINE or "
                           "KERASBERT_OFFLINE)", is_offline=True)
    try:
        files = HfApi().list_repo_files(repo_id, revision=revision)
    except OfflineModeIsEnabled:
        return _from_cache(handle, repo_id, path, "offline mode is on (HF_HUB_OFFLINE)",
                           is_offline=True)
    except HTTPError as error:
        _raise_for_hub_answer(handle, repo_id, revision, error)
        return _from_cache(handle, repo_id, path, _unreachable(error), is_offline=False)
    try:
        return snapshot_download(repo_id, revision=revision, allow_patterns=select_files(files))
    except HTTPError as error:
        _raise_for_hub_answer(handle, repo_id, revision, error)
        failure = error
    except (OSError, RuntimeError) as error:  # a cut transfer, a failed consistency
        failure = error                         # check, a Xet transfer error
    # huggingface_hub moves a file into the snapshot only when it is whole.
    raise DownloadError(
        f"{handle}: the download failed ({type(failure).__name__}: {failure}). Run the same "
        "call again: what is complete stays cached, and huggingface_hub resumes large files "
        "in 10 MB chunks (smaller ones start again); nothing partial is loaded.") from None


def _unreachable(error):
    """Why the Hub gave no answer: no connection, or an HTTP failure on its side."""
    response = getattr(error, "response", None)
    if response is not None:
        return (f"the Hub at {_endpoint()} answered HTTP {response.status_code} "
                "(retry later)")
    return f"cannot reach {_endpoint()} ({type(error).__name__}: {error})"


def _from_cache(handle, repo_id, path, reason, is_offline):
    """The cached snapshot when the Hub cannot be asked, or an error naming the cache."""
    found = cached_path(path)
    if found is None:
        raise (NotCachedError if is_offline else DownloadError)(
            f"{handle}: {reason}, and it is not (wholly) in the Hugging Face cache: searched "
            f"{cache_folder(repo_id)} (HF_HOME or HF_HUB_CACHE moves it). Fill it by running "
            "the same call once with network access, or copy that folder here from a machine "
            "that has it.")
    if not is_offline:
        logging.warning("%s: %s; using the cached snapshot %s. Set HF_HUB_OFFLINE=1 to skip "
                        "the network when everything is cached.", handle, reason, found)
    return found


def _raise_for_hub_answer(handle, repo_id, revision, error):
    """Turns the Hub's refusals (not network failures) into errors that name the fix."""
    from huggingface_hub import get_token
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError,
                                        RemoteEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    page = f"{_endpoint()}/{repo_id}"
    if isinstance(error, GatedRepoError):
        raise AccessError(
            f"{handle} is a gated repository: accept its conditions at {page} while logged in, "
            "then give a token of that account (HF_TOKEN=hf_..., or `hf auth login`)."
            + ("" if get_token() else " No token is set now.")) from None
    if isinstance(error, RepositoryNotFoundError):
        if get_token():
            why = "or your token (HF_TOKEN) has no access to it"
        else:
            why = "or it is private and no token is set (HF_TOKEN=hf_..., or `hf auth login`)"
        raise HandleNotFoundError(f"{handle}: no repository {repo_id!r} at {_endpoint()}, "
                                  f"{why}. Check the name at {page}.") from None
    if isinstance(error, RevisionNotFoundError):
        raise HandleNotFoundError(f"{handle}: {repo_id} has no revision {revision!r} (a branch, "
                                  f"tag or commit sha); see {page}/commits/main.") from None
    if isinstance(error, RemoteEntryNotFoundError):
        raise HandleNotFoundError(f"{handle}: a file the repo lists is missing ({error}).") \
            from None
    if isinstance(error, HfHubHTTPError) and error.response is not None \
            and error.response.status_code in (401, 403):
        raise AccessError(f"{handle}: the Hub refused access (HTTP "
                          f"{error.response.status_code}); check HF_TOKEN.") from None
