"""A real Jupyter server with jupyter_llm, started as a subprocess: for tests and benchmarks.

Not part of the public API. One launcher serves every test suite and benchmark that needs a
whole server process (the kernel tests, the server tests that kill it, the browser tests
that start ``python -m jupyterlab``, the server and kernel benchmarks)::

    server = JupyterServer(folder, config=models_yaml).start()   # waits until ready
    with server.client() as http:
        http.get("llm/api/models")
    server.stop()                                                 # SIGTERM, by its own PID

or ``with JupyterServer(...) as server:``. Everything is chosen by the caller: the app module
(``jupyter_server``, ``jupyterlab``), extra argv and environment, the models.yaml, the
token, the base URL, the log file, and what "ready" means (``ready_models``: those models
ready; ``errors_settle`` for models meant to fail). It binds 127.0.0.1 on a free
port, writes its output to a log file (a pipe nobody reads would fill and stall it), gives
the process its own Jupyter config, runtime and data folders under ``folder``, and stops
only the process it started.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

__all__ = ["JupyterServer", "free_port"]

#: The environment variables a kernel or server reads to find jupyter_llm: never inherited.
_OWN_ENV = ("JUPYTER_LLM_URL", "JUPYTER_LLM_TOKEN", "JUPYTER_LLM_CONFIG")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class JupyterServer:
    """One server process on ``folder`` (its root dir unless ``root_dir`` says otherwise)."""

    folder: Path
    config: Path | None = None  # the models.yaml (--LLMExtension.config_file)
    app: str = "jupyter_server"  # the module run with ``python -m``, e.g. "jupyterlab"
    argv: Sequence[str] = ()  # more command-line options for the app
    env: Mapping[str, str] = field(default_factory=dict)  # on top of this process's own
    base_url: str = "/"
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    port: int = field(default_factory=free_port)
    root_dir: Path | None = None
    log: Path | None = None  # default: folder / "server.log" (appended to on a restart)
    drain_secs: float | None = None  # --LLMExtension.drain_secs
    ready_models: Sequence[str] | None = None  # None: every configured model
    errors_settle: bool = False  # True: a model that failed to load counts as settled
    python: Sequence[str] = ()  # instead of ``-m app``: e.g. ("-c", code) for a wrapper
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        if not self.base_url.endswith("/"):
            self.base_url += "/"
        if self.log is None:
            self.log = self.folder / "server.log"

    # -- where ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's base URL, ending in /."""
        return f"http://127.0.0.1:{self.port}{self.base_url}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server has not been started"
        return self.process.pid

    @property
    def runtime_dir(self) -> Path:
        return self.folder / "runtime"

    def command(self) -> list[str]:
        launch = list(self.python) or ["-m", self.app]
        options = [
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.base_url={self.base_url}",
            f"--ServerApp.root_dir={self.root_dir or self.folder}",
            f"--IdentityProvider.token={self.token}",
        ]
        if self.config is not None:
            options.append(f"--LLMExtension.config_file={self.config}")
        if self.drain_secs is not None:
            options.append(f"--LLMExtension.drain_secs={self.drain_secs}")
        return [sys.executable, *launch, *options, *self.argv]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _OWN_ENV}
        env.update(
            JUPYTER_CONFIG_DIR=str(self.folder / "config"),
            JUPYTER_RUNTIME_DIR=str(self.runtime_dir),
            JUPYTER_DATA_DIR=str(self.folder / "data"),
            HF_HUB_OFFLINE="1",
        )
        env.update(self.env)
        return env

    # -- life ----------------------------------------------------------------------------------

    def start(self, timeout: float = 180, *, wait: bool = True) -> JupyterServer:
        """Start the process (again, on the same port and files) and, unless ``wait`` is
        false, wait until it is ready."""
        assert self.log is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command(),
                env=self.environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root_dir or self.folder,
            )
        if wait:
            try:
                self.wait_ready(timeout)
            except BaseException:
                self.stop()
                raise
        return self

    def wait_ready(self, timeout: float = 180) -> None:
        """Until ``llm/api/models`` answers with the ``ready_models`` ready; an error at once
        if the process exits or a model it waits for fails to load (unless ``errors_settle``:
        then a failed model counts as done)."""
        deadline = time.monotonic() + timeout
        with self.client(timeout=10) as http:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    raise RuntimeError(f"the server exited:\n{self.log_tail()}")
                try:
                    models = {m["name"]: m for m in http.get("llm/api/models").json()["models"]}
                except (httpx.HTTPError, ValueError, KeyError, TypeError):
                    time.sleep(0.1)
                    continue
                names = list(models) if self.ready_models is None else self.ready_models
                states = {name: models.get(name, {}).get("state") for name in names}
                settled = ("ready", "error") if self.errors_settle else ("ready",)
                if all(state in settled for state in states.values()):
                    return
                failed = [n for n, state in states.items() if state == "error"]
                if failed and not self.errors_settle:
                    errors = {n: models[n].get("error") for n in failed}
                    raise RuntimeError(f"models failed to load: {errors}\n{self.log_tail()}")
                time.sleep(0.1)
        raise RuntimeError(f"the server was not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def signal(self, signum: int, timeout: float = 60) -> int:
        """Send ``signum`` to the server process and wait for it to exit; its exit code."""
        assert self.process is not None
        self.process.send_signal(signum)
        return self.process.wait(timeout=timeout)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (the server drains and stops its workers), then SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> JupyterServer:
        return self if self.process is not None else self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- talking to it -------------------------------------------------------------------------

    def client(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=timeout)

    def models(self) -> dict[str, dict[str, Any]]:
        with self.client() as http:
            return {m["name"]: m for m in http.get("llm/api/models").json()["models"]}

    def worker_pids(self) -> list[int]:
        return [w["pid"] for m in self.models().values() for w in m["workers"] if w["pid"]]

    def log_tail(self, chars: int = 3000) -> str:
        assert self.log is not None
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""
