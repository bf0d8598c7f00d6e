"""A local stand-in for the Hugging Face Hub: the routes huggingface_hub's client uses.

No test may reach the real hub, so tests point ``HF_ENDPOINT`` here. It serves repos (a
folder's files) in the hub's layout:

* ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``: id, sha, siblings;
* ``HEAD|GET /{repo}/resolve/{rev}/{file}``: small files directly (``ETag`` is the git blob
  sha1); weights (.safetensors, .gguf, .bin) as the hub serves LFS files, a 302 to a
  second server standing in for the CDN, with ``X-Linked-Etag`` (the sha256) and
  ``X-Linked-Size``. The CDN honours ``Range`` (206 and ``Content-Range``).
* errors as the hub sends them: 404 + ``X-Error-Code: RepoNotFound`` for a missing repo,
  401 for a private one without the right token, 401/403 + ``GatedRepo`` for a gated one,
  404 + ``RevisionNotFound`` / ``EntryNotFound``.

Faults for the tests: ``rate`` (bytes per second the CDN sends), ``cut_after[file] = n``
(once: send n bytes, then drop the connection), ``stall_after[file] = n`` (send n bytes,
then hang until ``stop``). ``requests`` records what each request asked for.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["TINY_REPO", "Seen", "StandInHub", "serve_hub", "serve_tiny"]

TINY_REPO = "tiny-org/tiny-llama"  # where tests put the tiny model

_LFS = (".safetensors", ".gguf", ".bin")
_CHUNK = 16 * 1024


@dataclass
class _Repo:
    files: dict[str, bytes]
    access: str  # public | private | gated
    token: str | None
    commit: str = ""


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    range: str | None
    authorized: bool


@dataclass
class StandInHub:
    rate: float | None = None
    cut_after: dict[str, int] = field(default_factory=dict)
    stall_after: dict[str, int] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    _repos: dict[str, _Repo] = field(default_factory=dict)
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)
    _released: threading.Event = field(default_factory=threading.Event)

    def add(
        self,
        repo_id: str,
        files: Path | dict[str, bytes],
        access: str = "public",
        token: str | None = None,
    ) -> _Repo:
        if isinstance(files, Path):
            files = {p.name: p.read_bytes() for p in sorted(files.iterdir()) if p.is_file()}
        repo = _Repo(dict(files), access, token)
        digest = hashlib.sha1(repo_id.encode())
        for name, data in sorted(repo.files.items()):
            digest.update(name.encode() + hashlib.sha1(data).digest())
        repo.commit = digest.hexdigest()
        self._repos[repo_id] = repo
        return repo

    @property
    def url(self) -> str:
        host, port = self._servers[0].server_address[:2]
        return f"http://{host}:{port}"

    @property
    def cdn_url(self) -> str:
        host, port = self._servers[1].server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StandInHub:
        for role in ("hub", "cdn"):
            handler = type(f"{role}Handler", (_Handler,), {"hub": self, "role": role})
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            server.daemon_threads = True
            self._servers.append(server)
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._released.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def served(self, filename: str, method: str = "GET") -> list[Seen]:
        """The requests for ``filename``'s bytes (to the CDN or, for small files, the hub)."""
        return [
            seen
            for seen in self.requests
            if seen.method == method and seen.path.endswith("/" + filename)
        ]

    def find(self, digest: str) -> tuple[str, bytes] | None:
        for repo in self._repos.values():
            for name, data in repo.files.items():
                if hashlib.sha256(data).hexdigest() == digest:
                    return name, data
        return None


class _Handler(BaseHTTPRequestHandler):
    hub: StandInHub
    role: str
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_GET(self) -> None:
        self._route("GET")

    def _route(self, method: str) -> None:
        path = unquote(urlsplit(self.path).path)
        self.hub.requests.append(
            Seen(method, path, self.headers.get("Range"), "Authorization" in self.headers)
        )
        if self.role == "cdn":
            found = self.hub.find(path.rsplit("/", 1)[-1])
            if found is None:
                return self._reply(404, b"no such object")
            return self._send_bytes(method, found[0], found[1])
        api = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/(.+))?", path)
        if api:
            return self._model_info(*api.groups())
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if resolve:
            return self._resolve(method, *resolve.groups())
        self._reply(404, b"not a route of the stand-in hub")

    def _repo(self, repo_id: str) -> _Repo | None:
        repo = self.hub._repos.get(repo_id)
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if repo is None:
            self._reply(404, b"Repository not found", {"X-Error-Code": "RepoNotFound"})
            return None
        if repo.access == "private" and token != repo.token:
            self._reply(401, b"Invalid username or password.", {"X-Error-Code": "RepoNotFound"})
            return None
        if repo.access == "gated" and token != repo.token:
            status = 403 if token else 401
            message = b"Access to this model is restricted: accept the conditions on its page"
            self._reply(status, message, {"X-Error-Code": "GatedRepo"})
            return None
        return repo

    def _revision_ok(self, repo: _Repo, revision: str | None) -> bool:
        if revision in (None, "main", repo.commit):
            return True
        self._reply(404, b"Invalid rev id", {"X-Error-Code": "RevisionNotFound"})
        return False

    def _model_info(self, repo_id: str, revision: str | None) -> None:
        repo = self._repo(repo_id)
        if repo is None or not self._revision_ok(repo, revision):
            return
        body = {
            "id": repo_id,
            "sha": repo.commit,
            "private": repo.access == "private",
            "gated": "manual" if repo.access == "gated" else False,
            "siblings": [{"rfilename": name} for name in sorted(repo.files)],
        }
        self._reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _resolve(self, method: str, repo_id: str, revision: str, filename: str) -> None:
        repo = self._repo(repo_id)
        if repo is None or not self._revision_ok(repo, revision):
            return
        data = repo.files.get(filename)
        if data is None:
            return self._reply(404, b"Entry not found", {"X-Error-Code": "EntryNotFound"})
        if filename.endswith(_LFS):
            digest = hashlib.sha256(data).hexdigest()
            headers = {
                "Location": f"{self.hub.cdn_url}/blobs/{digest}",
                "X-Repo-Commit": repo.commit,
                "X-Linked-Etag": f'"{digest}"',
                "X-Linked-Size": str(len(data)),
                "ETag": f'"{hashlib.sha1(data).hexdigest()}"',  # the pointer's, not the file's
            }
            return self._reply(302, b"", headers)
        self._send_bytes(method, filename, data, {"X-Repo-Commit": repo.commit})

    def _send_bytes(
        self, method: str, filename: str, data: bytes, extra: dict[str, str] | None = None
    ) -> None:
        blob = b"blob %d\0" % len(data) + data
        etag = hashlib.sha1(blob).hexdigest() if not filename.endswith(_LFS) else None
        etag = etag or hashlib.sha256(data).hexdigest()
        start = 0
        wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        status = 200
        headers = {"ETag": f'"{etag}"', "Accept-Ranges": "bytes", **(extra or {})}
        if wanted:
            start = int(wanted.group(1))
            if start >= len(data):
                return self._reply(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if method == "HEAD":
            return
        cut = self.hub.cut_after.pop(filename, None)
        stall = self.hub.stall_after.get(filename)
        sent = start
        while sent < len(data):
            if cut is not None and sent >= cut:
                self.close_connection = True
                self.connection.shutdown(2)  # mid-body: the client sees the transfer break
                return
            if stall is not None and sent >= stall:
                self.hub._released.wait()
                return
            end = min(len(data), sent + _CHUNK)
            for limit in (cut, stall):
                if limit is not None and sent < limit:
                    end = min(end, limit)
            self.wfile.write(data[sent:end])
            self.wfile.flush()
            if self.hub.rate:
                time.sleep((end - sent) / self.hub.rate)
            sent = end

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def serve_hub(monkeypatch: Any, tmp_path: Path) -> StandInHub:
    """Start a stand-in hub and point huggingface_hub at it, with empty caches under tmp_path.

    The environment is for spawned workers (they read it when they import huggingface_hub);
    the constants are for this process, which imported it already.
    """
    from huggingface_hub import constants

    hub = StandInHub().start()
    settings = {
        "HF_ENDPOINT": hub.url,
        "HF_HUB_CACHE": str(tmp_path / "hf-cache"),
        "JUPYTER_LLM_CACHE": str(tmp_path / "llm-cache"),
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "no-token"))  # not the user's login
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", settings["HF_HUB_CACHE"])
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    return hub


def serve_tiny(monkeypatch: Any, tmp_path: Path, tiny_model_dir: Path) -> StandInHub:
    """``serve_hub`` with the tiny model as ``TINY_REPO``, beside files it must not fetch."""
    hub = serve_hub(monkeypatch, tmp_path)
    files = {p.name: p.read_bytes() for p in tiny_model_dir.iterdir() if p.is_file()}
    files |= {"README.md": b"# tiny\n", "onnx/model.onnx": b"x" * 1000, "flax_model.msgpack": b"y"}
    hub.add(TINY_REPO, files)
    return hub
