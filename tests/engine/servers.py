"""jupyter_llm servers as subprocesses for the remote-engine tests: an upstream and a proxy.

Both are real ``python -m jupyter_server`` processes on 127.0.0.1 with their own runtime
directory; a test may kill one (by the pid it started) and start it again on the same port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from jupyter_llm.testing import JupyterServer


class Launched(JupyterServer):
    """A jupyter_llm server subprocess (the shared launcher) whose models.yaml is written from
    ``models`` at each start; ``start`` does not wait (``wait_models`` says for what)."""

    def __init__(
        self,
        folder: Path,
        models: dict[str, Any],
        port: int,
        token: str,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            folder,
            config=folder / "models.yaml",
            port=port,
            token=token,
            env=env or {},
            root_dir=folder / "root",
            drain_secs=0.5,
            argv=["--ServerApp.jpserver_extensions={'jupyter_llm': True}"],
        )
        self.models_config = models

    @property
    def v1(self) -> str:
        return self.url + "llm/v1"

    def start(self, timeout: float = 180, *, wait: bool = False) -> Launched:
        assert self.config is not None and self.root_dir is not None
        self.config.write_text(yaml.safe_dump(self.models_config))
        self.root_dir.mkdir(exist_ok=True)
        super().start(timeout, wait=wait)
        return self

    def wait_models(self, states: dict[str, str], timeout: float = 180) -> dict[str, Any]:
        """Wait until each named model is in its state; returns the models by name."""
        deadline = time.monotonic() + timeout
        models: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log_tail()}")
            try:
                models = self.models()
                if all(models[name]["state"] == state for name, state in states.items()):
                    return models
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"models not {states} in {timeout} s: {models}\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown (nothing is drained, connections just break)."""
        self.signal(signal.SIGKILL, timeout=10)


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
