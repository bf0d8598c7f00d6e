"""A `jupyter server` subprocess with jupyter_llm, for tests that need a whole process: fuzzing
it, killing it (-9, SIGTERM) and starting it again on the same files.

Its output goes to a file (a pipe nobody reads would fill and stall the server), and it is
stopped by its own PID only.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

TINY = "tiny"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tiny_entry(tiny_dir: Path, **params: Any) -> dict[str, Any]:
    """The tiny random Llama as a models.yaml entry (CPU, float32, a small KV cache)."""
    base = {"device": "cpu", "dtype": "float32", "kvcache_mem_cpu": 64, "max_num_seqs": 8}
    return {
        "name": TINY,
        "local_path": str(tiny_dir),
        "backend": "transformers",
        "params": {**base, "max_tokens": 16, **params},
    }


def write_config(folder: Path, config: dict[str, Any]) -> Path:
    path = folder / "models.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class LiveServer:
    """One `jupyter server` process on ``folder`` (root, runtime and data dirs, log)."""

    folder: Path
    config: Path
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    drain_secs: float = 2.0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def start(self, wait_for: tuple[str, ...] = (TINY,), timeout: float = 300) -> LiveServer:
        """Start the process (again), and wait until the models in ``wait_for`` are ready."""
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(self.folder / "config"),
            "JUPYTER_RUNTIME_DIR": str(self.folder / "runtime"),
            "JUPYTER_DATA_DIR": str(self.folder / "data"),
            "HF_HUB_OFFLINE": "1",
        }
        argv = [
            sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0", f"--ServerApp.root_dir={self.folder}",
            f"--IdentityProvider.token={self.token}",
            f"--LLMExtension.config_file={self.config}",
            f"--LLMExtension.drain_secs={self.drain_secs}",
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.wait_ready(wait_for, timeout)
        return self

    def client(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=timeout)

    def models(self) -> dict[str, dict[str, Any]]:
        with self.client() as client:
            return {m["name"]: m for m in client.get("llm/api/models").json()["models"]}

    def wait_ready(self, names: tuple[str, ...], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.log.read_text()[-3000:]}")
            try:
                models = self.models()
            except (httpx.TransportError, ValueError):
                time.sleep(0.1)
                continue
            if all(models.get(name, {}).get("state") == "ready" for name in names):
                return
            time.sleep(0.05)
        raise AssertionError(
            f"{names} not ready within {timeout} s: {self.log.read_text()[-3000:]}"
        )

    def worker_pids(self) -> list[int]:
        return [w["pid"] for m in self.models().values() for w in m["workers"] if w["pid"]]

    def signal(self, signum: int, timeout: float = 60) -> int:
        """Send ``signum`` to the server process and wait for it to exit; its exit code."""
        assert self.process is not None
        self.process.send_signal(signum)
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def rss_mb(pid: int) -> float:
    """A process's resident memory, in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def record(name: str, **values: Any) -> None:
    """Add a measurement to ``JUPYTER_LLM_RELIABILITY_OUT`` (benchmarks/reliability.py's
    table), when it is set; the tests assert on the same values themselves."""
    out = os.environ.get("JUPYTER_LLM_RELIABILITY_OUT")
    if out:
        with open(out, "a") as file:
            file.write(json.dumps({"name": name, **values}) + "\n")


def scale() -> int:
    """How much larger than the CI version a run is (benchmarks/reliability.py sets it)."""
    return int(os.environ.get("JUPYTER_LLM_RELIABILITY_SCALE", "1"))
