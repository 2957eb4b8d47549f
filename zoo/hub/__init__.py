"""Checkpoint handles -> local paths, each hub through its own client and cache.

    hf://OWNER/NAME[@REVISION]                        Hugging Face Hub (huggingface_hub)
    kaggle://OWNER/MODEL/FRAMEWORK/VARIATION[/VERSION] keras-hub presets (kagglehub)
    https://.../NAME.zip|.tar.gz|.npz[#sha256=HEX]    Google's TF1 archives, ViT .npz

`resolve` returns a local folder (or .npz file) that zoo.load and
zoo.load_preprocessor read like any folder on disk; a local path comes back
unchanged. HF_HUB_OFFLINE=1 (or KERASBERT_OFFLINE=1) reads every hub from
its cache only. Failures raise a `HubError` subclass whose message names
the handle and the fix.
"""

from zoo.hub import archives, huggingface, kaggle
from zoo.hub.errors import (AccessError, ChecksumError, DownloadError, HandleNotFoundError,
                            HubError, NotCachedError, offline)

_SCHEMES = {"hf://": huggingface, "kaggle://": kaggle, "https://": archives,
            "http://": archives}

__all__ = ["AccessError", "ChecksumError", "DownloadError", "HandleNotFoundError", "HubError",
           "NotCachedError", "cached_path", "is_handle", "offline", "resolve"]


def _split(handle):
    """(module, what the module reads) of a handle, or (None, handle) for a path."""
    text = str(handle)
    for scheme, module in _SCHEMES.items():
        if text.startswith(scheme):
            return module, text if module is archives else text[len(scheme):]
    return None, text


def is_handle(text):
    """True for hf://, kaggle://, http(s):// handles (not for paths or preset names)."""
    return _split(text)[0] is not None


def resolve(handle):
    """The local path of `handle`, fetched into its hub's cache on first use."""
    module, path = _split(handle)
    return path if module is None else module.fetch(path)


def cached_path(handle):
    """The local path of `handle` if its cache holds it whole, else None (no network)."""
    module, path = _split(handle)
    return path if module is None else module.cached_path(path)
