"""kaggle://OWNER/MODEL/FRAMEWORK/VARIATION[/VERSION] -> a keras-hub preset folder,
through `kagglehub` (keras-hub's own route, its cache $KAGGLEHUB_CACHE,
default ~/.cache/kagglehub, and its credentials KAGGLE_USERNAME/KAGGLE_KEY).

keras-hub publishes its presets as kaggle://keras/<family>/keras/<preset>/<version>,
e.g. kaggle://keras/bert/keras/bert_base_en_uncased/3. Without a version
kagglehub asks Kaggle for the latest; offline, the newest cached version is used.
"""

import glob
import os

from absl import logging

from zoo.hub.errors import AccessError, DownloadError, HandleNotFoundError, NotCachedError, \
    offline


def _parse(path):
    from kagglehub.handle import parse_model_handle

    if len(path.split("/")) not in (4, 5):
        raise ValueError(f"kaggle://{path}: a Kaggle model handle is kaggle://OWNER/MODEL/"
                         "FRAMEWORK/VARIATION[/VERSION], e.g. kaggle://keras/bert/keras/"
                         "bert_base_en_uncased/3.")
    return parse_model_handle(path)


def _variation_folder(handle):
    from kagglehub.config import get_cache_folder

    return os.path.join(get_cache_folder(), "models", handle.owner, handle.model,
                        handle.framework, handle.variation)


def cached_path(path):
    """The cached folder of `path` (the newest cached version when unversioned), or None."""
    from kagglehub.cache import Cache

    handle = _parse(path)
    if not handle.is_versioned():
        markers = glob.glob(os.path.join(_variation_folder(handle), "*.complete"))
        versions = [int(name) for name in (os.path.basename(m)[: -len(".complete")]
                                           for m in markers) if name.isdigit()]
        if not versions:
            return None
        handle = handle.with_version(max(versions))
    return Cache().load_from_cache(handle)


def fetch(path):
    """The local folder of kaggle://`path`, downloaded by kagglehub on first use."""
    import kagglehub
    import requests
    from kagglehub.exceptions import DataCorruptionError

    handle = _parse(path)
    cached = cached_path(path)
    if offline() or (cached is not None and handle.is_versioned()):
        if cached is None:
            raise NotCachedError(
                f"kaggle://{path} is not in kagglehub's cache and offline mode is on "
                f"(HF_HUB_OFFLINE or KERASBERT_OFFLINE): searched {_variation_folder(handle)}. "
                "Fill it with the same call on a machine with network access (and "
                "KAGGLEHUB_CACHE pointing at a folder you copy here).")
        return cached
    try:
        return kagglehub.model_download(path)
    except requests.HTTPError as error:
        status = getattr(error.response, "status_code", None)
        if status == 404:
            raise HandleNotFoundError(
                f"kaggle://{path} does not exist on Kaggle (HTTP 404). keras-hub's presets are "
                "kaggle://keras/<family>/keras/<preset>/<version>; check the name on "
                "kaggle.com/models.") from None
        if status in (401, 403):
            raise AccessError(
                f"kaggle://{path}: Kaggle refused access (HTTP {status}). Accept the model's "
                "license on kaggle.com and set KAGGLE_USERNAME and KAGGLE_KEY (or run "
                "kagglehub.login()).") from None
        raise DownloadError(f"kaggle://{path}: {error}") from None
    except requests.ConnectionError as error:
        if cached is not None:
            logging.warning("kaggle://%s: Kaggle is unreachable (%s); using the cached %s. "
                            "Set HF_HUB_OFFLINE=1 to skip the network.", path, error, cached)
            return cached
        raise DownloadError(
            f"Cannot reach Kaggle for kaggle://{path} ({error}), and it is not in kagglehub's "
            f"cache ({_variation_folder(handle)}). Connect to the network, or fill the cache "
            "elsewhere and set KAGGLEHUB_CACHE.") from None
    except (requests.RequestException, DataCorruptionError) as error:  # cut, timed out,
        raise DownloadError(                                            # or a bad checksum
            f"kaggle://{path}: the download failed ({type(error).__name__}: {error}). Run the "
            "same call again: kagglehub keeps only whole downloads.") from None
