"""A real jupyter-server with jupyter_llm on pytest-jupyter's non-root base URL.

pytest forbids ``pytest_plugins`` in a conftest below the rootdir, so the fixtures of
``pytest_jupyter.jupyter_server`` are imported by name here. Its collection hooks are left
out on purpose: pytest-asyncio runs the async tests (as everywhere else in this suite), and
``jp_asyncio_loop`` is that same loop, so the server and the test share one event loop.

Each test's server reads a models.yaml built from ``BASE_CONFIG`` plus the test's
``@pytest.mark.llm_config(...)`` (keys merged into the models' entries by name).
"""

from __future__ import annotations

import asyncio
import copy
import importlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from jupyter_server.serverapp import ServerApp
from traitlets.config import Config

from jupyter_llm.server.app import LLMExtension

from ..support import until
from .client import LLMServer

# pytest-jupyter's fixtures, without its hooks (see the module docstring). By module path:
# the package's own ``from .jupyter_core import *`` hides its submodule behind the real
# jupyter_core package.
_FIXTURES = {
    "pytest_jupyter.jupyter_core": (
        "echo_kernel_spec",
        "jp_config_dir",
        "jp_data_dir",
        "jp_env_config_path",
        "jp_env_jupyter_path",
        "jp_environ",
        "jp_home_dir",
        "jp_kernel_dir",
        "jp_runtime_dir",
        "jp_system_config_path",
        "jp_system_jupyter_path",
    ),
    "pytest_jupyter.jupyter_server": (
        "jp_argv",
        "jp_auth_header",
        "jp_base_url",
        "jp_configurable_serverapp",
        "jp_fetch",
        "jp_http_port",
        "jp_logging_stream",
        "jp_root_dir",
        "jp_serverapp",
        "jp_template_dir",
        "jp_web_app",
    ),
    "pytest_jupyter.pytest_tornasync": ("http_server", "http_server_client", "http_server_port"),
}
for _module, _names in _FIXTURES.items():
    globals().update({name: getattr(importlib.import_module(_module), name) for name in _names})

MODEL = "fake"

BASE_CONFIG: dict[str, Any] = {
    "parking_lot": {"pool": {"worker_threads": 1}, "limits": {"timeout_secs": 30}},
    "models": [
        {"name": MODEL, "backend": "fake", "params": {"max_tokens": 8, "temperature": 0}},
        # One sequence at a time, one waiting, a short deadline: 429 and 504 on demand.
        {
            "name": "tight",
            "backend": "fake",
            "params": {"max_tokens": 8, "max_num_seqs": 1},
            "parking_lot": {"limits": {"max_queue_depth": 1, "timeout_secs": 0.3}},
        },
        # Nothing listens on port 9: the remote model is unreachable (error, 503 on use).
        {"name": "remote", "backend": "openai", "base_url": "http://127.0.0.1:9/v1"},
    ],
}


@pytest.fixture
async def jp_asyncio_loop() -> AsyncIterator[asyncio.AbstractEventLoop]:
    """pytest-asyncio's loop for this test: the server runs where the test awaits."""
    yield asyncio.get_running_loop()


@pytest.fixture
def jp_nbconvert_templates() -> None:
    """Not needed here (pytest-jupyter copies nbconvert's templates for every server)."""


@pytest.fixture(autouse=True)
def jp_server_cleanup(jp_asyncio_loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Stop the test's server (extensions first: the pool drains) if one was started."""
    yield
    if not ServerApp.initialized():
        return
    app = ServerApp.instance()
    jp_asyncio_loop.run_until_complete(app._cleanup())
    ServerApp.clear_instance()


@pytest.fixture
def llm_yaml(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    config = copy.deepcopy(BASE_CONFIG)
    marker = request.node.get_closest_marker("llm_config")
    for name, changes in (marker.kwargs if marker else {}).items():
        if name == "parking_lot":
            config["parking_lot"].update(changes)
            continue
        entry = next((m for m in config["models"] if m["name"] == name), None)
        if entry is None:
            config["models"].append({"name": name, **changes})
        else:
            for key, value in changes.items():
                entry[key] = {**entry.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def jp_server_config(llm_yaml: Path) -> Config:
    return Config(
        {
            "ServerApp": {
                "jpserver_extensions": {"jupyter_llm": True, "jupyter_server_terminals": False}
            },
            "LLMExtension": {
                "config_file": str(llm_yaml),
                "keepalive_secs": 0.1,
                "drain_secs": 0.5,
                "freeze_gc": False,  # freezing the test process would keep its garbage
            },
        }
    )


@pytest.fixture
def llm_extension(jp_serverapp: ServerApp) -> LLMExtension:
    (app,) = jp_serverapp.extension_manager.extension_apps["jupyter_llm"]
    assert isinstance(app, LLMExtension)
    return app


@pytest.fixture
async def llm(
    jp_serverapp: ServerApp,
    llm_extension: LLMExtension,
    jp_fetch: Any,
    jp_http_port: int,
    jp_base_url: str,
) -> LLMServer:
    """The started server (as ``jupyter server`` starts extensions) with the fake model ready."""
    manager = jp_serverapp.extension_manager
    await manager.start_extension("jupyter_llm")  # type: ignore[no-untyped-call, unused-ignore]
    server = LLMServer(
        fetch=jp_fetch,
        url=f"http://127.0.0.1:{jp_http_port}{jp_base_url}",
        token=jp_serverapp.identity_provider.token,
        extension=llm_extension,
    )
    pool = llm_extension.pool
    if pool is not None:
        ready = {MODEL, "tight"} & {m.name for m in pool.models()}
        await until(lambda: all(m.state == "ready" for m in pool.models() if m.name in ready))
    return server


@pytest.fixture
async def openai_client(llm: LLMServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=llm.v1, api_key=llm.token, max_retries=0, timeout=20)
    yield client
    await client.close()


@pytest.fixture
def sync_openai_client(llm: LLMServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=llm.v1, api_key=llm.token, max_retries=0, timeout=20)
    yield client
    client.close()
