"""A loopback Hugging Face Hub that the real `huggingface_hub` client can talk to.

It speaks the part of the Hub HTTP API that huggingface_hub 2.4 sends for downloads
(`hf_hub_download`, `snapshot_download`: repo info, tree listing, HEAD/GET resolve
with Range), and for uploads (`create_repo`, `upload_folder`, `create_commit`:
preupload, LFS batch/PUT/verify, NDJSON commit). Errors carry the status and
`X-Error-Code` the client turns into RepositoryNotFoundError, GatedRepoError,
RevisionNotFoundError and RemoteEntryNotFoundError. Model repos only; stdlib
only; everything lives in memory.

    with HubServer() as hub:
        sha = hub.add_repo("org/tiny", folder)
        point_client_at(monkeypatch, hub.url, tmp_path / "hf_home")
        huggingface_hub.snapshot_download("org/tiny")

Pointing the client at the server
---------------------------------
huggingface_hub reads HF_ENDPOINT, HF_HOME, HF_HUB_OFFLINE, HF_HUB_DISABLE_XET and
the like into `huggingface_hub.constants` once, when it is imported, and its
module-level functions (`huggingface_hub.upload_folder`, `model_info`, ...) are
methods of an `HfApi` built then. `import keras` already imports huggingface_hub,
so under this repo's conftest a test that sets environment variables is too late.
`point_client_at(monkeypatch, url, hf_home)` patches, for one test,
`constants.ENDPOINT` and `constants.HUGGINGFACE_CO_URL_TEMPLATE` (resolve URLs are
built from the template), the cache and token paths, offline off, Xet off,
telemetry off and `huggingface_hub.hf_api.api.endpoint`, and sets the matching
environment variables for subprocesses. Passing `endpoint=` to `HfApi`,
`hf_hub_download` or `snapshot_download` also works, but the client then still
sends its once-a-process agent-registry request to `constants.ENDPOINT`.

Offline mode is read at every request (`constants.is_offline_mode()` in the
client's request hook), so `monkeypatch.setattr(huggingface_hub.constants,
"HF_HUB_OFFLINE", True)` turns it on, and False off again, in-process; offline, no
request reaches the server.

Client behaviour worth knowing
------------------------------
* Xet: downloads use plain HTTP because this server sends no `X-Xet-*` header.
  Uploads choose Xet on the client side whenever `hf_xet` is installed, and
  `upload_folder` then runs a Xet-only pipeline that fails here with
  "ConnectionError ... 404 ... xet-write-token"; hence HF_HUB_DISABLE_XET.
* A GET cut mid-body (`cut_next`) is retried inside the same `hf_hub_download`:
  `http_get` sleeps a fixed 1 s and asks again from byte N (`Range: bytes=N-` if
  N > 0), where N counts only whole DOWNLOAD_CHUNK_SIZE (10 MB) chunks, so a
  smaller file starts again from byte 0. It raises `httpx2.RemoteProtocolError` after 5 retries that
  brought no whole chunk, and deletes its partial file: the next call starts over.
* With the server gone and the file not cached, `hf_hub_download` retries the HEAD
  with 1+2+4+8+8 s of backoff (about 23 s) before LocalEntryNotFoundError.
  `skip_client_sleeps` makes both waits instant.
* LFS files: resolve answers 302 to a "CDN" URL on `cdn_url` (this server under
  the name `localhost`, so another origin), as the real Hub does: the client reads
  the metadata off the 302 and fetches the CDN URL without its Authorization.
"""

import base64
import contextlib
import hashlib
import json
import os
import re
import socket
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".h5", ".model", ".npz")
LFS_THRESHOLD = 1_000_000  # bytes; larger files are stored as LFS whatever their name

_LOGGED_HEADERS = ("Range", "Authorization")

_API = re.compile(r"^/api/models/(?P<repo>[^/]+(?:/[^/]+)?)"
                  r"(?:/(?P<action>revision|tree|preupload|commit)/(?P<rev>[^/]+)(?P<rest>/.*)?)?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+(?:/[^/]+)?)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_LFS = re.compile(r"^/(?P<repo>.+)\.git/info/lfs/objects/(?P<op>batch|verify)$")
_CDN = re.compile(r"^/cdn-lfs/(?P<sha>[0-9a-f]{64})/(?P<file>.+)$")
_UPLOAD = re.compile(r"^/lfs-upload/(?P<sha>[0-9a-f]{64})/(?P<repo>.+)$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class Request(NamedTuple):
    """One request as the server saw it; `path` is unquoted and has no query."""
    method: str
    path: str
    headers: dict


class _Blob(NamedTuple):
    data: bytes
    lfs: bool
    sha256: str
    oid: str  # git blob id: of the content, or of the LFS pointer for LFS files
    pointer_size: int


class _Commit(NamedTuple):
    files: dict  # path -> _Blob
    date: str


class _Repo:
    def __init__(self, private, gated):
        self.private, self.gated = private, gated
        self.branches = {}  # name -> commit sha
        self.commits = {}  # sha -> _Commit
        self.lfs_objects = set()  # sha256 of LFS objects this repo holds: the batch API skips those


class _Response(NamedTuple):
    status: int
    headers: dict
    body: bytes = b""
    send_only: int | None = None  # bytes of body to send before dropping the connection


class _HubError(Exception):
    """An error answered the way the Hub does: status, X-Error-Code, X-Error-Message."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}

    def response(self):
        headers = {"X-Error-Message": self.message, **self.headers}
        if self.code:
            headers["X-Error-Code"] = self.code
        return _json({"error": self.message}, self.status, headers)


def _json(obj, status=200, headers=None):
    return _Response(status, {"Content-Type": "application/json", **(headers or {})},
                     json.dumps(obj).encode())


def _is_lfs(path, size):
    """Whether the server stores `path` as an LFS object (weights, or anything large)."""
    return path.endswith(WEIGHT_SUFFIXES) or size > LFS_THRESHOLD


def _blob(data, lfs):
    sha256 = hashlib.sha256(data).hexdigest()
    stored = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(data)}\n"
              .encode() if lfs else data)
    oid = hashlib.sha1(b"blob %d\0" % len(stored) + stored).hexdigest()
    return _Blob(data, lfs, sha256, oid, len(stored))


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class HubServer:
    """In-memory Hub on 127.0.0.1, in a daemon thread; use as a context manager."""

    def __init__(self, token="hf_test_token"):
        self.token = token
        self.requests = []  # Request, in arrival order
        self._repos = {}
        self._lfs = {}  # sha256 -> bytes: what the "CDN" serves and LFS uploads fill
        self._cuts = []  # [path_suffix, after_bytes, times_left]
        self._lock = threading.Lock()
        self._httpd = None
        self._connections = set()  # open keep-alive sockets, closed by stop()

    # -- lifecycle ---------------------------------------------------------------

    def start(self):
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.hub = self
        # A short poll interval lets stop() return at once.
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self):
        """Stop listening and drop open connections, so the client sees the Hub go away."""
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):  # the client may have gone already
                    connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        """The Hub endpoint, for HF_ENDPOINT."""
        return f"http://127.0.0.1:{self._httpd.server_port}"

    @property
    def cdn_url(self):
        """Where LFS bytes are served and uploaded: another origin for the client."""
        return f"http://localhost:{self._httpd.server_port}"

    # -- test-side API -----------------------------------------------------------

    def add_repo(self, repo_id, folder, revisions=("main",), private=False, gated=False,
                 sha=None):
        """Commit every file under `folder` as the whole tree of a new commit.

        The commit becomes the head of each name in `revisions` (created if needed);
        earlier commits stay resolvable by sha. `private`/`gated` apply to the repo
        from now on. `sha` names the commit (as a published repo's pinned commit);
        by default it is derived from the contents. Returns the commit sha.
        """
        files = {}
        for root, _, names in os.walk(folder):
            for name in names:
                full = os.path.join(root, name)
                path = os.path.relpath(full, folder).replace(os.sep, "/")
                with open(full, "rb") as f:
                    data = f.read()
                files[path] = _blob(data, _is_lfs(path, len(data)))
        with self._lock:
            repo = self._repos.setdefault(repo_id, _Repo(private, gated))
            repo.private, repo.gated = private, gated
            return self._add_commit(repo, files, revisions, parent=repo.branches.get(revisions[0]),
                                    sha=sha)

    def cut_next(self, path_suffix, after_bytes, times=1):
        """Drop the connection of the next `times` GETs of a file ending in `path_suffix`.

        Each cut response announces its full Content-Length but stops once the
        transfer reaches byte `after_bytes` of the file (a resumed request that starts
        at or past it gets no bytes), as a download killed mid-file would.
        """
        with self._lock:
            self._cuts.append([path_suffix, after_bytes, times])

    # -- request handling --------------------------------------------------------

    def _respond(self, method, raw_path, headers, body):
        split = urlsplit(raw_path)
        logged = {name: headers[name] for name in _LOGGED_HEADERS if name in headers}
        with self._lock:
            self.requests.append(Request(method, unquote(split.path), logged))
            try:
                return self._route(method, split.path, parse_qs(split.query), headers, body)
            except _HubError as error:
                return error.response()

    def _route(self, method, path, query, headers, body):
        authed = self._authenticated(headers)
        if path == "/api/repos/create" and method == "POST":
            return self._create_repo(json.loads(body), authed)
        if path == "/api/validate-yaml" and method == "POST":
            return _json({"errors": [], "warnings": []})
        if (m := _API.match(path)):
            return self._api(method, unquote(m["repo"]), m["action"], unquote(m["rev"] or ""),
                             unquote((m["rest"] or "").lstrip("/")), query, body, authed)
        if (m := _LFS.match(path)) and method == "POST":
            repo_id = unquote(m["repo"])
            repo = self._writable(repo_id, authed)
            if m["op"] == "batch":
                return self._lfs_batch(repo_id, repo, json.loads(body))
            return self._lfs_verify(repo, json.loads(body))
        if (m := _UPLOAD.match(path)) and method == "PUT" and unquote(m["repo"]) in self._repos:
            return self._lfs_upload(self._repos[unquote(m["repo"])], m["sha"], body)
        if (m := _CDN.match(path)) and method in ("GET", "HEAD") and m["sha"] in self._lfs:
            return self._file_response(method, unquote(path), self._lfs[m["sha"]],
                                       {"ETag": f'"{m["sha"]}"'}, headers.get("Range"))
        if (m := _RESOLVE.match(path)) and method in ("GET", "HEAD"):
            return self._resolve(method, unquote(path), unquote(m["repo"]), unquote(m["rev"]),
                                 unquote(m["file"]), headers.get("Range"), authed)
        raise _HubError(404, None, f"{method} {unquote(path)} is not served by this test hub")

    def _authenticated(self, headers):
        """False without a token; a wrong token is refused outright, as the Hub does."""
        auth = headers.get("Authorization")
        if auth is None:
            return False
        if auth != f"Bearer {self.token}":
            raise _HubError(401, None, "Invalid credentials in Authorization header")
        return True

    def _readable(self, repo_id, authed):
        repo = self._repos.get(repo_id)
        if repo is None or (repo.private and not authed):
            # The Hub answers 401 to anonymous callers and 404 to logged-in ones.
            raise _HubError(404 if authed else 401, "RepoNotFound", "Repository not found")
        if repo.gated and not authed:
            raise _HubError(401, "GatedRepo", f"Access to model {repo_id} is restricted. You must have "
                            "access to it and be authenticated to access it. Please log in.")
        return repo

    def _writable(self, repo_id, authed):
        if not authed:
            raise _HubError(401, None, "You must be authenticated to write to this repo")
        return self._readable(repo_id, authed)

    def _commit(self, repo, revision):
        sha = repo.branches.get(revision, revision)
        if sha not in repo.commits:
            raise _HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return sha, repo.commits[sha]

    def _add_commit(self, repo, files, branches, parent, sha=None):
        digest = hashlib.sha1((parent or "").encode())
        for path, blob in sorted(files.items()):
            digest.update(f"{path}\0{blob.oid}\0".encode())
        sha = sha or digest.hexdigest()
        repo.commits[sha] = _Commit(files, _now())
        for branch in branches:
            repo.branches[branch] = sha
        for blob in files.values():
            if blob.lfs:
                self._lfs[blob.sha256] = blob.data
                repo.lfs_objects.add(blob.sha256)
        return sha

    # -- downloads ---------------------------------------------------------------

    def _resolve(self, method, path, repo_id, revision, filename, range_header, authed):
        sha, commit = self._commit(self._readable(repo_id, authed), revision)
        blob = commit.files.get(filename)
        if blob is None:
            raise _HubError(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": sha})
        headers = {"X-Repo-Commit": sha, "ETag": f'"{blob.oid}"'}
        if blob.lfs:
            headers.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(len(blob.data)),
                            "Location": f"{self.cdn_url}/cdn-lfs/{blob.sha256}/{quote(filename)}"})
            return _Response(302, headers)
        return self._file_response(method, path, blob.data, headers, range_header)

    def _file_response(self, method, path, data, headers, range_header):
        start, end, status = 0, len(data), 200
        if range_header:
            start, end = _parse_range(range_header, len(data))
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        headers["Accept-Ranges"] = "bytes"
        cut_at = self._take_cut(path) if method == "GET" else None
        send_only = None if cut_at is None else max(0, cut_at - start)
        return _Response(status, headers, data[start:end], send_only)

    def _take_cut(self, path):
        for cut in self._cuts:
            if path.endswith(cut[0]):
                cut[2] -= 1
                if cut[2] == 0:
                    self._cuts.remove(cut)
                return cut[1]
        return None

    # -- API ---------------------------------------------------------------------

    def _api(self, method, repo_id, action, revision, rest, query, body, authed):
        if method == "GET" and action in (None, "revision"):
            repo = self._readable(repo_id, authed)
            return _json(self._model_info(repo_id, repo, revision or "main"))
        if method == "GET" and action == "tree":
            _, commit = self._commit(self._readable(repo_id, authed), revision)
            recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
            entries = _tree_listing(commit.files, rest, recursive)
            if rest and not entries:
                raise _HubError(404, "EntryNotFound", f"{rest} does not exist on {revision}")
            return _json(entries)
        if method == "POST" and action == "preupload":
            _, commit = self._commit(self._writable(repo_id, authed), revision)
            return _json({"files": [_preupload_mode(f, commit.files.get(f["path"]))
                                    for f in json.loads(body)["files"]]})
        if method == "POST" and action == "commit":
            return self._create_commit(repo_id, self._writable(repo_id, authed), revision, body)
        raise _HubError(404, None, f"{method} of model {action or 'info'}: not served by this test hub")

    def _model_info(self, repo_id, repo, revision):
        sha, commit = self._commit(repo, revision)
        return {
            "_id": sha[:24], "id": repo_id, "modelId": repo_id, "sha": sha,
            "author": repo_id.split("/")[0] if "/" in repo_id else None,
            "lastModified": commit.date, "createdAt": min(c.date for c in repo.commits.values()),
            "private": repo.private, "gated": "auto" if repo.gated else False, "disabled": False,
            "downloads": 0, "likes": 0, "tags": [], "spaces": [],
            "siblings": [_sibling(path, blob) for path, blob in sorted(commit.files.items())],
            "usedStorage": sum(len(blob.data) for blob in commit.files.values()),
        }

    # -- uploads -----------------------------------------------------------------

    def _create_repo(self, payload, authed):
        if not authed:
            raise _HubError(401, None, "You must be authenticated to create a repo")
        name, org = payload["name"], payload.get("organization")
        repo_id = f"{org}/{name}" if org else name
        url = f"{self.url}/{repo_id}"
        if repo_id in self._repos:
            return _json({"error": "You already created this model repo", "url": url}, 409)
        repo = self._repos[repo_id] = _Repo(payload.get("visibility") == "private", gated=False)
        self._add_commit(repo, {}, ["main"], parent=None)
        return _json({"url": url, "name": repo_id, "id": repo_id})

    def _lfs_batch(self, repo_id, repo, payload):
        objects = []
        for obj in payload["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in repo.lfs_objects:  # no "actions": the client skips the upload
                entry["actions"] = {
                    "upload": {"href": f"{self.cdn_url}/lfs-upload/{obj['oid']}/{quote(repo_id)}"},
                    "verify": {"href": f"{self.url}/{repo_id}.git/info/lfs/objects/verify"},
                }
            objects.append(entry)
        return _Response(200, {"Content-Type": "application/vnd.git-lfs+json"},
                         json.dumps({"transfer": "basic", "objects": objects}).encode())

    def _lfs_upload(self, repo, sha256, body):
        """The PUT to the signed storage URL: no Authorization, the URL is the permission."""
        if hashlib.sha256(body).hexdigest() != sha256:
            raise _HubError(400, None, "Uploaded bytes do not match the sha256 in the URL")
        self._lfs[sha256] = body
        repo.lfs_objects.add(sha256)
        return _Response(200, {})

    def _lfs_verify(self, repo, payload):
        if payload["oid"] not in repo.lfs_objects or len(self._lfs[payload["oid"]]) != payload["size"]:
            raise _HubError(404, None, f"LFS object {payload['oid']} was not uploaded")
        return _json({})

    def _create_commit(self, repo_id, repo, revision, body):
        parent, commit = self._commit(repo, revision)
        if revision not in repo.branches:
            raise _HubError(400, None, f"Can only commit to a branch, not to {revision}")
        files = dict(commit.files)
        for line in body.splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "file":
                data = base64.b64decode(value["content"])
                files[value["path"]] = _blob(data, lfs=False)
            elif key == "lfsFile":
                if value["oid"] not in repo.lfs_objects:
                    raise _HubError(400, None, f"LFS object {value['oid']} was not uploaded")
                files[value["path"]] = _blob(self._lfs[value["oid"]], lfs=True)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise _HubError(404, "EntryNotFound", "A file with this name doesn't exist")
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: b for p, b in files.items() if not p.startswith(prefix)}
        sha = self._add_commit(repo, files, [revision], parent)
        return _json({"success": True, "commitOid": sha, "pullRequestUrl": None,
                      "commitUrl": f"{self.url}/{repo_id}/commit/{sha}"})


def _parse_range(header, size):
    m = _RANGE.match(header.strip())
    if m is None or not (m[1] or m[2]):
        raise _HubError(416, None, f"Bad range {header}", {"Content-Range": f"bytes */{size}"})
    if not m[1]:
        start, end = max(0, size - int(m[2])), size
    else:
        start, end = int(m[1]), min(size, int(m[2]) + 1) if m[2] else size
    if start >= end:
        raise _HubError(416, None, f"Range {header} outside 0-{size}",
                        {"Content-Range": f"bytes */{size}"})
    return start, end


def _sibling(path, blob):
    sibling = {"rfilename": path, "size": len(blob.data), "blobId": blob.oid}
    if blob.lfs:
        sibling["lfs"] = {"size": len(blob.data), "sha256": blob.sha256,
                          "pointerSize": blob.pointer_size}
    return sibling


def _tree_listing(files, folder, recursive):
    """Entries of `folder` as /api/models/.../tree returns them: files and directories."""
    base = folder + "/" if folder else ""
    entries = {}
    for path, blob in sorted(files.items()):
        if not path.startswith(base):
            continue
        parts = path[len(base):].split("/")
        # Parent directories of the file: all of them, or only the top one when not recursive.
        for depth in range(1, len(parts) if recursive else min(2, len(parts))):
            directory = base + "/".join(parts[:depth])
            entries.setdefault(directory, {"type": "directory", "path": directory,
                                           "oid": hashlib.sha1(directory.encode()).hexdigest()})
        if recursive or len(parts) == 1:
            entry = {"type": "file", "path": path, "size": len(blob.data), "oid": blob.oid}
            if blob.lfs:
                entry["lfs"] = {"oid": blob.sha256, "size": len(blob.data),
                                "pointerSize": blob.pointer_size}
            entries[path] = entry
    return list(entries.values())


def _preupload_mode(file, existing):
    """The client skips unchanged files when `oid` equals its local oid for that mode."""
    lfs = _is_lfs(file["path"], file["size"])
    remote_oid = None if existing is None else (existing.sha256 if lfs else existing.oid)
    return {"path": file["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
            "oid": remote_oid}


class _Handler(BaseHTTPRequestHandler):
    """HTTP plumbing only; what to answer is decided by HubServer._respond."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects

    def setup(self):
        super().setup()
        with self.server.hub._lock:
            self.server.hub._connections.add(self.connection)

    def finish(self):
        super().finish()
        with self.server.hub._lock:
            self.server.hub._connections.discard(self.connection)

    def _handle(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        response = self.server.hub._respond(self.command, self.path, self.headers, body)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body[:response.send_only])
        if response.send_only is not None:
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = _handle

    def log_message(self, *args):
        pass


def point_client_at(monkeypatch, endpoint, hf_home):
    """Make the already-imported huggingface_hub use `endpoint`, online, without Xet,
    with its cache and token file under `hf_home` and no ambient token."""
    from huggingface_hub import constants, hf_api

    hf_home = str(hf_home)
    for name, value in {"HF_ENDPOINT": endpoint, "HF_HOME": hf_home, "HF_HUB_DISABLE_XET": "1",
                        "HF_HUB_DISABLE_TELEMETRY": "1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
                 "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN_PATH", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": hf_home,
        "HF_HUB_CACHE": os.path.join(hf_home, "hub"),
        "HF_TOKEN_PATH": os.path.join(hf_home, "token"),
        "HF_STORED_TOKENS_PATH": os.path.join(hf_home, "stored_tokens"),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
    }.items():
        monkeypatch.setattr(constants, name, value)
    monkeypatch.setattr(hf_api.api, "endpoint", endpoint)


def skip_client_sleeps(monkeypatch):
    """Make the client's retry sleeps instant; returns the list of seconds it asked for.

    Both are `time.sleep` calls with no setting: the fixed 1 s before `http_get`
    resumes a cut download (file_download) and the 1-2-4-8-8 s backoff of
    `http_backoff` (utils._http). Only those modules' `time` is replaced.
    """
    from huggingface_hub import file_download
    from huggingface_hub.utils import _http

    slept = []
    no_sleep = types.SimpleNamespace(sleep=slept.append)
    monkeypatch.setattr(file_download, "time", no_sleep)
    monkeypatch.setattr(_http, "time", no_sleep)
    return slept
