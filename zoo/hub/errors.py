"""What can go wrong between a handle and a local folder, each named for its fix."""

import os


class HubError(OSError):
    """A checkpoint handle could not be turned into a local folder."""


class NotCachedError(HubError):
    """Offline (or no network) and the handle is not in its cache."""


class HandleNotFoundError(HubError, FileNotFoundError):
    """The hub says the repository, revision or file does not exist."""


class AccessError(HubError, PermissionError):
    """A gated or private repository, and no token (or one without access)."""


class DownloadError(HubError):
    """The network failed: unreachable, or a download cut in the middle."""


class ChecksumError(HubError):
    """A downloaded file's sha256 is not the published one; nothing was cached."""


OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "KERASBERT_OFFLINE")


def offline():
    """True when the user asked for no network (HF_HUB_OFFLINE=1, as huggingface_hub
    reads it, or KERASBERT_OFFLINE=1): every hub is then read from its cache only."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
               for name in OFFLINE_VARIABLES)
