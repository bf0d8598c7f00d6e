"""Discovery: the environment, then the Jupyter server hosting the kernel, then embedded.

The genuine case runs first: a kernel started by the real jupyter-server (``POST
api/kernels``), driven over the server's websocket as JupyterLab drives it, with no
jupyter_llm setting in its environment, finds that server by itself.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_llm.config import DEFAULT_CONFIG
from jupyter_llm.kernel.discovery import base_url, discover, running_servers

from .conftest import Server
from .support import KernelDriver, websocket_driver


@pytest.fixture(scope="module")
def hosted(server: Server) -> Iterator[tuple[str, KernelDriver]]:
    """A kernel the server started, and a websocket driver for it."""
    with server.client() as http:
        response = http.post("api/kernels", json={"name": "python3"})
        assert response.status_code == 201, response.text
        kernel_id = response.json()["id"]
        driver, close = websocket_driver(
            server.ws_url(f"api/kernels/{kernel_id}/channels"), server.token
        )
        try:
            yield kernel_id, driver
        finally:
            close()
            http.delete(f"api/kernels/{kernel_id}")


@pytest.mark.slow
def test_a_kernel_started_by_the_server_uses_it_without_settings(
    hosted: tuple[str, KernelDriver], server: Server
) -> None:
    _, kernel = hosted
    kernel.ok("%load_ext jupyter_llm", timeout=60)
    assert kernel.value("__import__('os').environ.get('JUPYTER_LLM_URL')") is None
    status = kernel.ok("%llm status").displays[0].content["data"]["text/plain"]
    assert status.splitlines()[:2] == [
        f"jupyter_llm: the jupyter_llm server at {server.url}",
        f"  chosen because: the Jupyter server hosting this kernel (pid {server.pid})",
    ]

    cell = kernel.ok("%%llm -n 800 -p ignore_eos=true\nTell me a story.")
    assert cell.final() is None
    other = kernel.ok("1 + 1")
    assert other.result() == "2" and not other.displays
    kernel.wait_for(lambda: cell.final() is not None, 60, "the final paint")
    final = cell.final()
    assert final is not None
    record = server.job(cell.answer_id().removeprefix("jupyter_llm-"))
    assert final.content["data"]["text/plain"] == record["text"]
    assert record["usage"]["completion_tokens"] == 800


@pytest.mark.slow
def test_the_environment_comes_first(server: Server) -> None:
    target = discover(
        {"JUPYTER_LLM_URL": "http://example.org:8888/base/llm/api/", "JUPYTER_LLM_TOKEN": "t"},
        runtime_dir=server.runtime_dir,
        ancestors=[server.pid],
    )
    assert (target.kind, target.url, target.token) == ("env", "http://example.org:8888/base/", "t")
    assert base_url("http://h/x/llm/v1") == base_url("http://h/x") == "http://h/x/"


@pytest.mark.slow
def test_the_hosting_server_is_found_by_its_pid(server: Server) -> None:
    target = discover({}, runtime_dir=server.runtime_dir, ancestors=[1234567, server.pid])
    assert (target.kind, target.url, target.token) == ("server", server.url, server.token)
    assert target.why == f"the Jupyter server hosting this kernel (pid {server.pid})"


@pytest.mark.slow
def test_the_hosting_server_is_found_by_the_kernel_id(
    hosted: tuple[str, KernelDriver], server: Server
) -> None:
    kernel_id, _ = hosted
    found = discover({}, runtime_dir=server.runtime_dir, ancestors=[], kernel_id=kernel_id)
    assert (found.kind, found.url) == ("server", server.url)
    stranger = discover(
        {}, runtime_dir=server.runtime_dir, ancestors=[], kernel_id="0" * 8 + "-0000"
    )
    assert stranger.kind == "embedded"


def test_a_server_without_the_extension_is_passed_over(tmp_path: Path) -> None:
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=plain.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{plain.server_address[1]}/"
        info = {"url": url, "token": "x", "pid": os.getpid(), "base_url": "/"}
        (tmp_path / f"jpserver-{os.getpid()}.json").write_text(json.dumps(info))
        target = discover({}, runtime_dir=tmp_path, ancestors=[os.getpid()], cwd=str(tmp_path))
    finally:
        plain.shutdown()
        thread.join()
    assert target.kind == "embedded"
    assert target.why == (
        f"the Jupyter server hosting this kernel ({url}) does not run the jupyter_llm extension"
    )
    assert target.config_path == DEFAULT_CONFIG


def test_files_of_stopped_servers_are_ignored(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    info = {"url": "http://127.0.0.1:1/", "token": "", "pid": gone.pid}
    (tmp_path / f"jpserver-{gone.pid}.json").write_text(json.dumps(info))
    (tmp_path / "jpserver-broken.json").write_text("{not json")
    assert running_servers(tmp_path) == []
    target = discover({}, runtime_dir=tmp_path, ancestors=[gone.pid], cwd=str(tmp_path))
    assert target.kind == "embedded"
    assert target.why == "no JUPYTER_LLM_URL, and no running Jupyter server hosts this kernel"


def test_the_embedded_pool_reads_the_models_yaml_a_server_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JUPYTER_LLM_CONFIG", raising=False)
    empty = tmp_path / "runtime"
    empty.mkdir()
    assert discover({}, runtime_dir=empty, ancestors=[], cwd=str(tmp_path)).config_path == (
        DEFAULT_CONFIG
    )
    local = tmp_path / "models.yaml"
    local.write_text("models: []\n")
    assert discover({}, runtime_dir=empty, ancestors=[], cwd=str(tmp_path)).config_path == local
    named = tmp_path / "other.yaml"
    named.write_text("models: []\n")
    monkeypatch.setenv("JUPYTER_LLM_CONFIG", str(named))
    assert discover({}, runtime_dir=empty, ancestors=[], cwd=str(tmp_path)).config_path == named
