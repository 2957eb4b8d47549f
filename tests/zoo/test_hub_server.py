"""The real huggingface_hub client against the loopback Hub of hub_server.py (no TensorFlow)."""

import hashlib
import json
import os
import random
from types import SimpleNamespace

import httpx2
import huggingface_hub
import pytest
from huggingface_hub import HfApi, constants, errors, hf_hub_download, snapshot_download

from tests.zoo.hub_server import HubServer, point_client_at, skip_client_sleeps


def _write(folder, files):
    for path, data in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def _files(folder):
    """{relative path: bytes} of a folder, following the cache's symlinks."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder).replace(os.sep, "/")] = f.read()
    return found


@pytest.fixture(scope="module")
def hub():
    with HubServer() as server:
        yield server


@pytest.fixture(scope="module")
def repos(hub, tmp_path_factory):
    """org/tiny with two commits on main, plus private and gated copies of the second."""
    rng = random.Random(0)
    common = {
        "vocab.txt": b"[PAD]\n[UNK]\nhello\n",
        "model.safetensors": rng.randbytes(300_000),  # LFS by name
        "assets/big.dat": rng.randbytes(1_200_000),  # LFS by size
        "assets/notes.md": b"# notes\n",
    }
    v1 = _write(tmp_path_factory.mktemp("v1"), {**common, "config.json": b'{"version": 1}'})
    v2 = _write(tmp_path_factory.mktemp("v2"), {**common, "config.json": b'{"version": 2}'})
    repos = SimpleNamespace(v1=v1, v2=v2, sha_v1=hub.add_repo("org/tiny", v1),
                            sha_v2=hub.add_repo("org/tiny", v2))
    hub.add_repo("org/private", v2, private=True)
    hub.add_repo("org/gated", v2, gated=True)
    return repos


@pytest.fixture
def slept(hub, monkeypatch, tmp_path):
    """The client pointed at `hub` with a fresh cache and instant retries; the sleeps it asked for."""
    point_client_at(monkeypatch, hub.url, tmp_path / "hf_home")
    hub.requests.clear()
    return skip_client_sleeps(monkeypatch)


def test_snapshot_download_fetches_only_allowed_files(hub, repos, slept):
    path = snapshot_download("org/tiny", allow_patterns=["*.json", "*.safetensors"])

    wanted = {p: b for p, b in _files(repos.v2).items() if p.endswith((".json", ".safetensors"))}
    assert _files(path) == wanted
    fetched = [r.path for r in hub.requests if r.method == "GET" and "/api/" not in r.path]
    assert sorted(p.rsplit("/", 1)[-1] for p in fetched) == ["config.json", "model.safetensors"]


def test_older_commit_stays_downloadable_by_sha(repos, slept):
    old = hf_hub_download("org/tiny", "config.json", revision=repos.sha_v1)
    new = hf_hub_download("org/tiny", "config.json")

    assert json.loads(open(old).read()) == {"version": 1}
    assert json.loads(open(new).read()) == {"version": 2}
    assert huggingface_hub.model_info("org/tiny").sha == repos.sha_v2
    assert huggingface_hub.model_info("org/tiny", revision=repos.sha_v1).sha == repos.sha_v1


def test_offline_mode_serves_the_cache_without_a_request(hub, repos, monkeypatch, slept):
    snapshot = snapshot_download("org/tiny")
    config = hf_hub_download("org/tiny", "config.json")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub.requests.clear()

    assert snapshot_download("org/tiny") == snapshot
    assert hf_hub_download("org/tiny", "config.json") == config
    with pytest.raises(errors.LocalEntryNotFoundError):
        hf_hub_download("org/tiny", "not_cached.json")
    assert hub.requests == []

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert hf_hub_download("org/tiny", "config.json") == config
    assert hub.requests


def _ranges(hub):
    return [r.headers.get("Range") for r in hub.requests if r.method == "GET"]


def test_cut_download_restarts_within_the_same_call(hub, repos, slept):
    """Below DOWNLOAD_CHUNK_SIZE (10 MB) the bytes received before the cut are lost."""
    hub.cut_next("model.safetensors", after_bytes=100_000)

    path = hf_hub_download("org/tiny", "model.safetensors")

    assert open(path, "rb").read() == (repos.v2 / "model.safetensors").read_bytes()
    assert _ranges(hub) == [None, None]
    assert slept == [1]


def test_cut_download_resumes_from_the_last_whole_chunk(hub, repos, monkeypatch, slept):
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 16_384)
    hub.cut_next("model.safetensors", after_bytes=100_000)

    path = hf_hub_download("org/tiny", "model.safetensors")

    assert open(path, "rb").read() == (repos.v2 / "model.safetensors").read_bytes()
    assert _ranges(hub) == [None, f"bytes={6 * 16_384}-"]


def test_killed_download_leaves_nothing_and_the_next_call_starts_over(hub, repos, slept):
    # The first try and 5 retries that bring no new whole chunk.
    hub.cut_next("model.safetensors", after_bytes=100_000, times=6)

    with pytest.raises(httpx2.RemoteProtocolError):
        hf_hub_download("org/tiny", "model.safetensors")
    assert slept == [1] * 5
    blobs = os.path.join(constants.HF_HUB_CACHE, "models--org--tiny", "blobs")
    assert os.listdir(blobs) == []

    hub.requests.clear()
    path = hf_hub_download("org/tiny", "model.safetensors")
    assert open(path, "rb").read() == (repos.v2 / "model.safetensors").read_bytes()
    assert _ranges(hub) == [None]


@pytest.mark.parametrize("repo_id, filename, revision, token, error", [
    ("org/missing", "config.json", None, None, errors.RepositoryNotFoundError),
    ("org/private", "config.json", None, None, errors.RepositoryNotFoundError),
    ("org/gated", "config.json", None, None, errors.GatedRepoError),
    ("org/tiny", "config.json", "no-such-branch", None, errors.RevisionNotFoundError),
    ("org/tiny", "missing.json", None, None, errors.RemoteEntryNotFoundError),
    ("org/tiny", "config.json", None, "hf_wrong", errors.HfHubHTTPError),
])
def test_download_errors(repos, slept, repo_id, filename, revision, token, error):
    with pytest.raises(error) as raised:
        hf_hub_download(repo_id, filename, revision=revision, token=token)
    assert raised.type is error


@pytest.mark.parametrize("repo_id, revision, error", [
    ("org/missing", None, errors.RepositoryNotFoundError),
    ("org/private", None, errors.RepositoryNotFoundError),
    ("org/gated", None, errors.GatedRepoError),
    ("org/tiny", "no-such-branch", errors.RevisionNotFoundError),
])
def test_snapshot_download_errors(repos, slept, repo_id, revision, error):
    with pytest.raises(error) as raised:
        snapshot_download(repo_id, revision=revision)
    assert raised.type is error


def test_token_opens_private_and_gated_repos_and_stays_off_the_cdn(hub, repos, slept):
    for repo_id in ("org/private", "org/gated"):
        path = hf_hub_download(repo_id, "model.safetensors", token=hub.token)
        assert open(path, "rb").read() == (repos.v2 / "model.safetensors").read_bytes()

    cdn = [r for r in hub.requests if r.path.startswith("/cdn-lfs/")]
    hub_side = [r for r in hub.requests if not r.path.startswith("/cdn-lfs/")]
    assert len(cdn) == 2 and not any("Authorization" in r.headers for r in cdn)
    assert all(r.headers["Authorization"] == f"Bearer {hub.token}" for r in hub_side)


def test_upload_folder_round_trips_through_lfs(hub, slept, tmp_path):
    folder = _write(tmp_path / "upload", {
        "config.json": b'{"hidden": 8}',
        "vocab.txt": b"a\nb\n",
        "weights.bin": random.Random(1).randbytes(1_500_000),
        "sub/notes.md": b"# uploaded\n",
    })
    api = HfApi(token=hub.token)
    api.create_repo("me/uploaded", private=True)
    assert api.create_repo("me/uploaded", exist_ok=True).repo_id == "me/uploaded"
    hub.requests.clear()

    commit = api.upload_folder(repo_id="me/uploaded", folder_path=folder)

    assert commit.oid == api.model_info("me/uploaded").sha
    weights_sha256 = hashlib.sha256((folder / "weights.bin").read_bytes()).hexdigest()
    puts = [r.path for r in hub.requests if r.method == "PUT"]
    assert puts == [f"/lfs-upload/{weights_sha256}/me/uploaded"]  # only the weights went through LFS
    tree = api.list_repo_tree("me/uploaded", recursive=True)
    assert {f.path for f in tree if getattr(f, "lfs", None)} == {"weights.bin"}
    assert _files(snapshot_download("me/uploaded", token=hub.token)) == _files(folder)


def test_uploads_need_the_token(hub, repos, slept):
    with pytest.raises(errors.HfHubHTTPError) as raised:
        HfApi(token=False).upload_folder(repo_id="org/tiny", folder_path=repos.v1)
    assert raised.value.response.status_code == 401
    with pytest.raises(errors.HfHubHTTPError) as raised:
        HfApi(token=False).create_repo("me/anonymous")
    assert raised.value.response.status_code == 401
