"""Real parts for the kernel tests: a jupyter-server subprocess serving the tiny model,
and real ipykernel kernels (started by jupyter_client, or by that server).

The server runs once per session (models load in a few seconds); each kernel fixture
starts its own kernel and shuts it down. Everything binds to 127.0.0.1 and runs with its
own Jupyter runtime directory, so discovery never meets another server on this machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from jupyter_llm.testing import JupyterServer

from ..support import tiny_entry
from .support import KernelDriver, zmq_driver

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may touch the Hugging Face hub

BASE_URL = "/notebook-base/"  # not "/": every URL the kernel builds must respect it


def models_config(tiny_dir: Path) -> dict[str, Any]:
    return {
        "parking_lot": {"pool": {"worker_threads": 1}, "limits": {"timeout_secs": 60}},
        "models": [
            tiny_entry(tiny_dir, max_tokens=32),
            # Echoes the prompt's words, 100 tokens a second: exact texts to assert on.
            {"name": "fake", "backend": "fake", "params": {"max_tokens": 8}},
            # One sequence at a time and one waiting: a full queue on demand.
            {
                "name": "tight",
                "backend": "fake",
                "params": {"max_tokens": 8, "max_num_seqs": 1},
                "parking_lot": {"limits": {"max_queue_depth": 1}},
            },
        ],
    }


class Server(JupyterServer):
    """The jupyter-server subprocess (the shared launcher), with what the kernel tests ask."""

    def job(self, job_id: str) -> dict[str, Any]:
        with self.client() as client:
            response = client.get(f"llm/api/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def ws_url(self, path: str) -> str:
        return self.url.replace("http://", "ws://") + path


@pytest.fixture(scope="session")
def models_yaml(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "models.yaml"
    path.write_text(yaml.safe_dump(models_config(tiny_model_dir)))
    return path


def clean_env(runtime_dir: Path, **extra: str) -> dict[str, str]:
    """The test process's environment without any jupyter_llm settings of its own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("JUPYTER_LLM_URL", "JUPYTER_LLM_TOKEN", "JUPYTER_LLM_CONFIG")
    }
    env.update(JUPYTER_RUNTIME_DIR=str(runtime_dir), HF_HUB_OFFLINE="1", **extra)
    return env


@pytest.fixture(scope="session")
def server(models_yaml: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("server")
    root = folder / "root"
    root.mkdir()
    with Server(
        folder,
        config=models_yaml,
        base_url=BASE_URL,
        root_dir=root,
        drain_secs=0.5,
        argv=["--ServerApp.jpserver_extensions={'jupyter_llm': True}"],
    ) as running:
        yield running


class Kernels:
    """Starts ipykernels with jupyter_client and shuts each down (``close``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.managers: list[Any] = []

    def start(self, env: dict[str, str], cwd: Path | None = None) -> KernelDriver:
        from jupyter_client import KernelManager

        manager = KernelManager(kernel_name="python3")
        manager.start_kernel(env=env, cwd=str(cwd or self.folder))
        self.managers.append(manager)
        client = manager.blocking_client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        driver = zmq_driver(client)
        driver.manager = manager
        return driver

    def close(self) -> None:
        for manager in self.managers:
            manager.shutdown_kernel(now=True)


@pytest.fixture
def kernels(tmp_path: Path) -> Iterator[Kernels]:
    started = Kernels(tmp_path)
    yield started
    started.close()


def server_env(server: Server, folder: Path) -> dict[str, str]:
    """A kernel environment that points at the test server (and at no other)."""
    runtime = folder / "runtime"
    runtime.mkdir(exist_ok=True)
    return clean_env(runtime, JUPYTER_LLM_URL=server.url, JUPYTER_LLM_TOKEN=server.token)


@pytest.fixture(scope="module")
def kernel(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelDriver]:
    """One kernel for a module's tests, pointed at the test server, extension loaded."""
    folder = tmp_path_factory.mktemp("kernel")
    started = Kernels(folder)
    try:
        driver = started.start(server_env(server, folder))
        driver.ok("%load_ext jupyter_llm")
        yield driver
    finally:
        started.close()
