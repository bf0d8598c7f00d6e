"""jupyter_llm servers as subprocesses for the remote-engine tests: an upstream and a proxy.

Both are real ``python -m jupyter_server`` processes on 127.0.0.1 with their own runtime
directory; a test may kill one (by the pid it started) and start it again on the same port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from ..kernel.conftest import clean_env


@dataclass
class Launched:
    """A jupyter_llm server subprocess; ``start`` and ``stop`` may be called again."""

    folder: Path
    config: dict[str, Any]
    port: int
    token: str
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def v1(self) -> str:
        return self.url + "llm/v1"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def client(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"token {self.token}"}, timeout=timeout
        )

    def start(self) -> None:
        config = self.folder / "models.yaml"
        config.write_text(yaml.safe_dump(self.config))
        (self.folder / "root").mkdir(exist_ok=True)
        (self.folder / "runtime").mkdir(exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.folder / 'root'}",
            "--ServerApp.jpserver_extensions={'jupyter_llm': True}",
            f"--LLMExtension.config_file={config}",
            "--LLMExtension.drain_secs=0.5",
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                env=clean_env(self.folder / "runtime", **self.env),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
            )

    def wait_models(self, states: dict[str, str], timeout: float = 180) -> dict[str, Any]:
        """Wait until each named model is in its state; returns the models by name."""
        deadline = time.monotonic() + timeout
        models: dict[str, Any] = {}
        with self.client(5) as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"the server exited:\n{self.log.read_text()[-3000:]}")
                try:
                    listed = client.get("llm/api/models").json()["models"]
                    models = {m["name"]: m for m in listed}
                    if all(models[name]["state"] == state for name, state in states.items()):
                        return models
                except (httpx.HTTPError, ValueError, KeyError):
                    pass
                time.sleep(0.1)
        raise AssertionError(
            f"models not {states} in {timeout} s: {models}\n{self.log.read_text()[-3000:]}"
        )

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown (nothing is drained, connections just break)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)  # only the process we started
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None


@dataclass
class VLLM:
    """`vllm serve` from a venv made by scripts/setup_vllm.sh, in its own process group."""

    venv: Path
    folder: Path
    port: int
    model: str = "smollm2"
    process: subprocess.Popen[bytes] | None = None
    external: bool = False  # a server someone else started (and stops): only used here

    @property
    def v1(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def model_dir(self) -> Path:
        ready = self.venv / "READY"
        for line in ready.read_text().splitlines():
            if line.startswith("model_dir:"):
                return Path(line.split(":", 1)[1].strip())
        raise RuntimeError(f"{ready} names no model_dir: run scripts/setup_vllm.sh again")

    def start(self, timeout: float = 1200) -> float:
        """Start and wait until it serves; returns the seconds that took."""
        if self.external:
            return 0.0
        argv = [
            str(self.venv / "bin" / "vllm"), "serve", str(self.model_dir()),
            "--served-model-name", self.model, "--dtype", "float32", "--max-model-len", "2048",
            "--gpu-memory-utilization", "0.3", "--host", "127.0.0.1", "--port", str(self.port),
        ]  # fmt: skip
        log = self.folder / "vllm.log"
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2"}
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"vllm serve exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.v1}/models", timeout=5).status_code == 200:
                    return time.monotonic() - began
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(
            f"vllm serve was not ready in {timeout:.0f} s:\n{log.read_text()[-3000:]}"
        )

    def running_requests(self) -> float:
        """vLLM's own gauge of the requests it is running (from its /metrics)."""
        text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        values = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("vllm:num_requests_running")
        ]
        return sum(values)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the group of the PID we started
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None
