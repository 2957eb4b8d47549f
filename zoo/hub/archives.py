"""Archive URLs -> a cached, unpacked folder: Google's TF1 BERT/ALBERT archives
(.zip, .tar.gz) and the original ViT .npz files.

    https://storage.googleapis.com/bert_models/2018_10_18/uncased_L-12_H-768_A-12.zip
    https://.../ViT-B_16.npz#sha256=HEX        (pip's fragment for a known checksum)

The download streams into `<cache>/archives/<key>.download` with a progress
bar; a download cut in the middle leaves that file, which the next call
resumes with an HTTP Range request (or restarts, if the server ignores
ranges). Only a complete download whose sha256 matches (when one is known)
is unpacked, into a temporary folder renamed to `<cache>/archives/<key>` in
one step: a cached archive is whole or absent, never half-unpacked.
The cache is $KERASBERT_CACHE/archives (default ~/.cache/kerasbert/archives).
"""

import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile

from absl import logging

from zoo.hub.errors import (AccessError, ChecksumError, DownloadError, HandleNotFoundError,
                            NotCachedError, offline)

SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar", ".npz")
_CHUNK = 1 << 20
_SOURCE_FILE = ".source.json"  # in each unpacked folder: the URL and sha256 it came from


def cache_root():
    """$KERASBERT_CACHE, default ~/.cache/kerasbert."""
    return os.environ.get("KERASBERT_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "kerasbert")


def split_url(handle):
    """(url, sha256 or None) of `https://...NAME.zip[#sha256=HEX]`."""
    url, _, fragment = handle.partition("#")
    sha256 = None
    if fragment:
        name, _, value = fragment.partition("=")
        if name != "sha256" or len(value) != 64:
            raise ValueError(f"{handle!r}: the only fragment an archive URL takes is "
                             "#sha256=<64 hex digits>.")
        sha256 = value.lower()
    parts = urllib.parse.urlsplit(url)
    if parts.hostname == "huggingface.co":
        repo = "/".join(parts.path.strip("/").split("/")[:2])
        raise ValueError(f"{handle!r} is a Hugging Face page: load it as hf://{repo}.")
    if not parts.path.lower().endswith(SUFFIXES):
        raise ValueError(f"{handle!r} is not an archive zoo.load reads: the URL must end in "
                         f"{', '.join(SUFFIXES)} (a Google TF1 BERT/ALBERT archive or a ViT "
                         ".npz).")
    return url, sha256


def _file_name(url):
    return os.path.basename(urllib.parse.urlsplit(url).path)


def _stem(url):
    """The archive's name without its suffix: uncased_L-12_H-768_A-12."""
    name = _file_name(url)
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _key(url):
    """A readable cache name unique to `url`: NAME-<12 hex of the URL's sha256>."""
    return f"{_stem(url)}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def cache_folder(handle):
    """Where `handle` is (or would be) unpacked."""
    url, _ = split_url(handle)
    return os.path.join(cache_root(), "archives", _key(url))


def _content(folder, url):
    """What zoo.load reads in an unpacked folder: the .npz file, or the archive's
    contents, unpacked into a folder named as the archive (a flat zip such as the
    small BERTs') or the archive's own one top-level folder (Google's 2018 zips
    hold uncased_L-12_H-768_A-12/). Either way the folder keeps Google's name,
    from which the tokenizer's casing is read."""
    if url.lower().endswith(".npz"):
        return os.path.join(folder, _file_name(url))
    unpacked = os.path.join(folder, _stem(url))
    entries = os.listdir(unpacked)
    if len(entries) == 1 and os.path.isdir(os.path.join(unpacked, entries[0])):
        return os.path.join(unpacked, entries[0])
    return unpacked


def cached_path(handle):
    """The local path of a cached `handle`, or None."""
    url, sha256 = split_url(handle)
    folder = cache_folder(handle)
    if not os.path.isdir(folder):
        return None
    if sha256 is not None:
        with open(os.path.join(folder, _SOURCE_FILE)) as file:
            if json.load(file).get("sha256") != sha256:
                return None  # cached from the same URL, but not these bytes
    return _content(folder, url)


def fetch(handle):
    """The local path of archive URL `handle`, downloaded and unpacked on first use."""
    url, sha256 = split_url(handle)
    found = cached_path(handle)
    if found is not None:
        return found
    folder = cache_folder(handle)
    if offline():
        raise NotCachedError(
            f"{handle} is not in the cache and offline mode is on (HF_HUB_OFFLINE or "
            f"KERASBERT_OFFLINE): searched {folder}. Fill it by running the same call once "
            "with network access (unset HF_HUB_OFFLINE), or on another machine and copy "
            f"{os.path.join(cache_root(), 'archives')} here (KERASBERT_CACHE moves it).")
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    with _lock(folder + ".lock"):
        found = cached_path(handle)  # another process may have finished meanwhile
        if found is not None:
            return found
        download = folder + ".download"
        _download(url, download)
        digest = _sha256(download)
        if sha256 is not None and digest != sha256:
            os.remove(download)
            raise ChecksumError(
                f"{url} downloaded with sha256 {digest}, not the published {sha256}: "
                "refused, nothing cached. The file at that URL changed or the transfer was "
                "corrupted; retry, and if it persists check the URL and the checksum.")
        try:
            _unpack(download, url, {"url": url, "sha256": digest}, folder)
        finally:
            os.remove(download)  # unpacked, or unreadable: the next call starts afresh
    logging.info("Cached %s in %s", url, folder)
    return _content(folder, url)


@contextlib.contextmanager
def _lock(path):
    """One downloader per archive across processes (the OS drops it if one dies)."""
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download(url, target):
    """Streams `url` into `target`, resuming what an earlier cut download left."""
    have = os.path.getsize(target) if os.path.exists(target) else 0
    request = urllib.request.Request(url, headers={"User-Agent": "kerasbert"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # the partial file is already whole
            return
        if error.code in (404, 410):
            raise HandleNotFoundError(f"{url}: HTTP {error.code} ({error.reason}); check the "
                                      "URL (`python -m zoo --list` shows the presets' "
                                      "published archives).") from None
        if error.code in (401, 403):
            raise AccessError(f"{url}: HTTP {error.code} ({error.reason}): the server refuses "
                              "this download; check the URL, or download it with the "
                              "credentials it needs and load the unpacked folder.") from None
        raise DownloadError(f"{url}: HTTP {error.code} ({error.reason}); retry later.") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        raise DownloadError(
            f"Cannot reach {url} ({getattr(error, 'reason', error)}). Connect to the network, "
            "or fill the cache elsewhere (see zoo.hub.archives) and set HF_HUB_OFFLINE=1."
        ) from None
    with response:
        resumed = response.status == 206
        if have and not resumed:
            logging.info("%s: the server does not resume; downloading it again.", url)
        length = response.headers.get("Content-Length")
        total = (int(length) + (have if resumed else 0)) if length is not None else None
        done = have if resumed else 0
        with open(target, "ab" if resumed else "wb") as file, _progress(url, total, done) as bar:
            try:
                while chunk := response.read(_CHUNK):
                    file.write(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException):
                cut = True  # the connection broke (a chunked transfer cannot tell its size)
            else:
                cut = total is not None and done < total
    if cut:
        of = f" of {total:,}" if total is not None else ""
        raise DownloadError(
            f"Download of {url} was cut at {done:,}{of} bytes; nothing was unpacked. "
            "Run the same call again: it resumes from there.")


def _progress(url, total, done):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024,
                desc=_file_name(url), disable=None)  # None: shown on a terminal only


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _unpack(download, url, source, folder):
    """Unpacks `download` into `folder` through a temporary sibling, renamed when whole."""
    staging = tempfile.mkdtemp(prefix=".unpack-", dir=os.path.dirname(folder))
    try:
        name = _file_name(url).lower()
        target = os.path.join(staging, _stem(url))
        if name.endswith(".npz"):
            if not zipfile.is_zipfile(download):  # an .npz is a zip of .npy arrays
                raise zipfile.BadZipFile("not an .npz (a zip of .npy arrays)")
            shutil.copyfile(download, os.path.join(staging, _file_name(url)))
        elif name.endswith(".zip"):
            with zipfile.ZipFile(download) as archive:
                _check_members(url, archive.namelist())
                archive.extractall(target)
        else:
            with tarfile.open(download) as archive:
                archive.extractall(target, filter="data")  # refuses links and paths outside
        with open(os.path.join(staging, _SOURCE_FILE), "w") as file:
            json.dump(source, file)
        if os.path.isdir(folder):  # the same URL cached before with other bytes
            shutil.rmtree(folder)
        os.rename(staging, folder)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as error:
        raise DownloadError(f"{url} is not a readable archive ({error}); nothing cached.") \
            from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_members(url, names):
    for name in names:
        if os.path.isabs(name) or ".." in name.split("/"):
            raise DownloadError(f"{url} holds the path {name!r}, outside its folder: refused.")
