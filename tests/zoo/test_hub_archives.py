"""Archive URLs and kaggle:// handles: Google's TF1 zips / tar.gz and ViT .npz served
on loopback (with Range requests and cut connections), keras-hub presets through
kagglehub's cache. A load through a handle equals the load of the same files from
disk, exactly."""

import hashlib
import io
import os
import shutil
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

import zoo
from tests.zoo import hf_fixtures as hf
from tests.zoo.test_convert_tf1 import write_case
from tests.zoo.test_convert_vit_npz import checkpoint, write  # noqa: F401 (a fixture)
from zoo.hub import ChecksumError, DownloadError, HandleNotFoundError, NotCachedError


class ArchiveServer:
    """Static files over HTTP on 127.0.0.1, with Range requests (206) as cloud
    storage serves them, and `cut_next` to drop a transfer after N bytes. Plainer
    servers: `ranges=False` answers every request whole, `lengths=False` sends no
    Content-Length (the body ends when the connection closes)."""

    def __init__(self, files, ranges=True, lengths=True):
        self.files, self.requests, self._cut = dict(files), [], None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range") and ranges:
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                body = data[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                if lengths:
                    self.send_header("Content-Length", str(len(body)))
                else:
                    self.close_connection = True
                self.end_headers()
                if server._cut is not None:
                    body, server._cut = body[:server._cut], None
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_port}"

    def cut_next(self, after_bytes):
        self._cut = after_bytes

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()


def _zip(folder, top):
    """A zip of `folder`'s files under `top/` (Google's 2018 zips) or flat (top=None)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(os.listdir(folder)):
            archive.write(os.path.join(folder, name), f"{top}/{name}" if top else name)
    return buffer.getvalue()


def _tar_gz(folder, top):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(folder, arcname=top)
    return buffer.getvalue()


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, checkpoint):  # noqa: F811
    """name -> (local checkpoint, archive bytes, URL path) for a BERT zip with a
    top folder, a flat small-BERT zip, an ALBERT tar.gz and a ViT .npz."""
    root = tmp_path_factory.mktemp("archives")
    _, bert_prefix, _ = write_case("bert_pretraining", str(root / "bert"))
    bert = os.path.dirname(bert_prefix)
    with open(os.path.join(bert, "vocab.txt"), "w") as file:
        file.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"]
                             + [f"w{i}" for i in range(hf.VOCAB - 7)]) + "\n")
    _, albert_prefix, _ = write_case("albert_pretraining_2_groups", str(root / "albert"))
    albert = os.path.dirname(albert_prefix)
    vit = write(root, checkpoint[0], "ViT-T_8.npz")
    with open(vit, "rb") as file:
        vit_bytes = file.read()
    return {
        "bert_zip": (bert, _zip(bert, "uncased_L-2_H-32_A-4"),
                     "/bert_models/2018_10_18/uncased_L-2_H-32_A-4.zip"),
        "flat_zip": (bert, _zip(bert, None), "/bert_models/2020_02_20/uncased_L-2_H-32_A-4.zip"),
        "albert_tar_gz": (albert, _tar_gz(albert, "albert_tiny"),
                          "/albert_models/albert_tiny_v2.tar.gz"),
        "vit_npz": (vit, vit_bytes, "/vit_models/imagenet21k/ViT-T_8.npz"),
    }


@pytest.fixture(scope="module")
def server(checkpoints):
    archives = ArchiveServer({path: data for _, data, path in checkpoints.values()})
    yield archives
    archives.stop()


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("KERASBERT_CACHE", str(tmp_path / "cache"))
    for name in ("HF_HUB_OFFLINE", "KERASBERT_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "cache" / "archives"


def _outputs(model):
    inputs = hf.image_batch() if isinstance(model, zoo.VitBackbone) else hf.text_batch()
    return model.predict(inputs, verbose=0)["sequence_output"]


@pytest.mark.parametrize("name", ["bert_zip", "flat_zip", "albert_tar_gz", "vit_npz"])
def test_archive_url_loads_what_the_files_load(server, checkpoints, cache, monkeypatch, name):
    local, data, path = checkpoints[name]
    url = f"{server.url}{path}#sha256={_sha256(data)}"
    np.testing.assert_array_equal(_outputs(zoo.load(url)), _outputs(zoo.load(local)))
    resolved = zoo.resolve(url)
    if name.endswith("zip"):  # Google's folder name survives: it carries the casing
        assert os.path.basename(resolved) == "uncased_L-2_H-32_A-4"
        assert zoo.load_preprocessor(url).tokenizer.lower_case is True
    assert not [entry for entry in os.listdir(cache) if entry.endswith(".download")]

    server.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert zoo.resolve(url) == resolved and server.requests == []


def test_a_cut_download_is_never_unpacked_and_the_next_call_resumes(server, checkpoints,
                                                                    cache):
    local, data, path = checkpoints["bert_zip"]
    url = server.url + path
    server.cut_next(after_bytes=len(data) // 3)
    with pytest.raises(DownloadError, match=rf"Download of {url} was cut at "
                       rf"{len(data) // 3:,} of {len(data):,} bytes; nothing was unpacked\. "
                       "Run the same call again: it resumes from there"):
        zoo.load(url)
    assert [entry for entry in os.listdir(cache) if not entry.endswith(".lock")] == \
        [os.path.basename(zoo.hub.archives.cache_folder(url)) + ".download"]
    server.requests.clear()
    np.testing.assert_array_equal(_outputs(zoo.load(url)), _outputs(zoo.load(local)))
    assert server.requests == [(path, f"bytes={len(data) // 3}-")]


def test_checksum_mismatch_is_refused_and_nothing_cached(server, checkpoints, cache):
    _, data, path = checkpoints["vit_npz"]
    wrong = "0" * 64
    with pytest.raises(ChecksumError, match=rf"sha256 {_sha256(data)}, not the published "
                       f"{wrong}: refused, nothing cached"):
        zoo.load(f"{server.url}{path}#sha256={wrong}")
    assert [entry for entry in os.listdir(cache) if not entry.endswith(".lock")] == []


def test_archive_errors_name_the_url_and_the_fix(server, cache, monkeypatch):
    with pytest.raises(HandleNotFoundError, match=r"/missing\.zip: HTTP 404"):
        zoo.load(server.url + "/missing.zip")
    with pytest.raises(DownloadError, match=r"Cannot reach http://127\.0\.0\.1:9/x\.zip"):
        zoo.load("http://127.0.0.1:9/x.zip")  # the discard port: nothing listens
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NotCachedError, match=r"is not in the cache and offline mode is on .*"
                       "searched " + str(cache)):
        zoo.load(server.url + "/bert_models/2018_10_18/uncased_L-2_H-32_A-4.zip")


def test_kaggle_handle_reads_a_keras_hub_preset_from_kagglehubs_cache(monkeypatch, tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.BertBackbone(vocabulary_size=50, num_layers=2, num_heads=2,
                                             hidden_dim=16, intermediate_dim=32,
                                             max_sequence_length=24)
    preset = tmp_path / "preset"
    backbone.save_to_preset(str(preset))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    variation = tmp_path / "kagglehub" / "models" / "keras" / "bert" / "keras" / "bert_tiny_test"
    for version in (1, 2):  # as kagglehub leaves a finished download: folder + marker
        shutil.copytree(preset, variation / str(version))
        (variation / f"{version}.complete").touch()

    expected = _outputs(zoo.load(str(preset)))
    np.testing.assert_array_equal(_outputs(zoo.load("kaggle://keras/bert/keras/bert_tiny_test/1")),
                                  expected)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # unversioned, offline: the newest cached
    assert zoo.resolve("kaggle://keras/bert/keras/bert_tiny_test") == str(variation / "2")
    with pytest.raises(NotCachedError, match=r"kaggle://keras/bert/keras/bert_base_en/3 is not "
                       r"in kagglehub's cache .*searched .*kagglehub/models/keras/bert/keras/"
                       "bert_base_en"):
        zoo.load("kaggle://keras/bert/keras/bert_base_en/3")


def test_servers_without_ranges_or_lengths(checkpoints, cache):
    """A server that ignores Range: the next call starts again. One that sends no
    length and closes early: an .npz that is not whole is refused, as is a page
    served in its place; nothing is cached either time."""
    local, data, path = checkpoints["vit_npz"]
    plain = ArchiveServer({path: data, "/login/ViT-B_16.npz": b"<html>sign in</html>"},
                          ranges=False)
    try:
        plain.cut_next(after_bytes=1000)
        with pytest.raises(DownloadError, match="was cut at 1,000 of"):
            zoo.load(plain.url + path)
        plain.requests.clear()
        np.testing.assert_array_equal(_outputs(zoo.load(plain.url + path)),
                                      _outputs(zoo.load(local)))
        assert plain.requests == [(path, "bytes=1000-")]  # asked, answered whole
        with pytest.raises(DownloadError, match="is not a readable archive .*nothing cached"):
            zoo.load(plain.url + "/login/ViT-B_16.npz")
    finally:
        plain.stop()
    unsized = ArchiveServer({path: data}, lengths=False)
    try:
        url = unsized.url + path
        unsized.cut_next(after_bytes=5000)
        with pytest.raises(DownloadError, match="is not a readable archive"):
            zoo.load(url)  # nothing tells the transfer was cut: the archive check does
        folder = zoo.hub.archives.cache_folder(url)
        assert not os.path.exists(folder) and not os.path.exists(folder + ".download")
        np.testing.assert_array_equal(_outputs(zoo.load(url)), _outputs(zoo.load(local)))
    finally:
        unsized.stop()


def test_a_new_checksum_replaces_what_the_url_cached(server, checkpoints, cache):
    _, data, path = checkpoints["vit_npz"]
    url = server.url + path
    first = zoo.resolve(url)
    changed = data + b"\0"
    server.files[path] = changed  # the file behind the URL changed
    try:
        second = zoo.resolve(f"{url}#sha256={_sha256(changed)}")
    finally:
        server.files[path] = data
    assert second == first and os.path.getsize(second) == len(data) + 1
