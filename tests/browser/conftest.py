"""Browser tests: a real ``python -m jupyterlab`` serving the tiny model, driven by Chromium.

Fixtures (all bind to 127.0.0.1; everything they start, they stop, by pid):

- ``lab`` (package): a :class:`Lab`, the JupyterLab server subprocess (started by the
  shared launcher, ``jupyter_llm.testing.JupyterServer``) with its own root, runtime,
  settings and workspaces directories, a token, and ``models.yaml`` with two models:
  ``tiny`` (the session's tiny random Llama, ``tiny_model_dir``; real transformers paths;
  the default model) and ``fake``
  (the scripted engine: echoes the prompt's words at 100 tokens a second, so a job runs as
  long as its ``max_tokens`` says); ``tight`` is the fake engine one sequence at a time, so
  a second job queues. It yields once every model is ``ready``.
- ``browser`` (package): Debian's Chromium (``/usr/bin/chromium``) under Python Playwright.
  Package-scoped, not session-scoped: while sync Playwright runs, its event loop is the
  thread's running loop, and the asyncio tests of other folders could not start theirs.
- ``page`` (function): a fresh browser context (its own cookies) with ``/lab`` open and
  logged in through the token, the JupyterLab shell drawn; the context closes afterwards.
  The workspace is reset first, so no test sees another's layout or chat, and the
  extension's settings are set to ``@pytest.mark.lab_settings(**values)`` (default: none
  set, so the schema's defaults hold). The app is
  exposed as ``window.jupyterapp`` (``page.evaluate("jupyterapp.commands.execute(...)")``).
- ``screenshots`` (session): the folder screenshots go to: ``$JUPYTER_LLM_SCREENSHOTS``
  if set (``docs/images`` to refresh the README's), else a temporary folder.

Playwright's own browser download cannot work here, so Chromium comes from Debian
(``apt-get install -y chromium``, as ``.ci/run`` does). Every test in this folder is marked
``browser``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from jupyter_llm.testing import JupyterServer

from ..support import tiny_entry

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
PLUGIN = "jupyter-llm:plugin"  # the labextension's settings
FAKE = "fake"
TIGHT = "tight"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)


def models_config(tiny_dir: Path) -> dict[str, Any]:
    return {
        "parking_lot": {"pool": {"worker_threads": 1}, "limits": {"timeout_secs": 60}},
        "models": [
            tiny_entry(tiny_dir, max_tokens=64),
            {"name": FAKE, "backend": "fake", "params": {"max_tokens": 64}},
            # One sequence at a time: a second job waits in the queue.
            {"name": TIGHT, "backend": "fake", "params": {"max_tokens": 64, "max_num_seqs": 1}},
        ],
    }


@dataclass
class Lab:
    """The JupyterLab subprocess (``jupyter_llm.testing.JupyterServer``) and its root folder."""

    server: JupyterServer
    root: Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def token(self) -> str:
        return self.server.token

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def log(self) -> Path:
        assert self.server.log is not None
        return self.server.log

    def client(self) -> httpx.Client:
        return self.server.client()

    def get(self, path: str) -> Any:
        with self.client() as client:
            response = client.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    def model(self, name: str) -> dict[str, Any]:
        return next(m for m in self.get("llm/api/models")["models"] if m["name"] == name)

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.get(f"llm/api/jobs/{job_id}"))

    def submit(self, model: str, prompt: str, max_tokens: int) -> dict[str, Any]:
        with self.client() as client:
            response = client.post(
                "llm/api/jobs",
                json={"model": model, "prompt": prompt, "params": {"max_tokens": max_tokens}},
            )
        assert response.status_code == 202, response.text
        return dict(response.json())

    def cancel(self, job_id: str) -> dict[str, Any]:
        with self.client() as client:
            response = client.delete(f"llm/api/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def reset_workspace(self) -> None:
        """Forget the saved layout and state (the chat's conversation lives there)."""
        with self.client() as client:
            response = client.delete("lab/api/workspaces/default")
        assert response.status_code in (204, 404), response.text

    def set_settings(self, plugin: str, values: dict[str, Any]) -> None:
        """Write a plugin's user settings; pages loaded from now on read them."""
        with self.client() as client:
            response = client.put(f"lab/api/settings/{plugin}", json={"raw": json.dumps(values)})
        assert response.status_code == 204, response.text

    @property
    def lab_url(self) -> str:
        return f"{self.url}lab?token={self.token}"


@pytest.fixture(scope="package")
def lab(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Lab]:
    home = tmp_path_factory.mktemp("lab")
    config = home / "models.yaml"
    config.write_text(yaml.safe_dump(models_config(tiny_model_dir)))
    root = home / "root"
    root.mkdir()
    # Don't ask about Jupyter news: the toast would cover the status bar.
    notification = home / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    server = JupyterServer(
        home,
        config=config,
        app="jupyterlab",
        root_dir=root,
        drain_secs=0.5,
        argv=["--LabApp.expose_app_in_browser=True"],
        # Fresh user settings and workspaces: nothing from this machine's ~/.jupyter.
        env={
            "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        },
    )
    with server.start(timeout=180):
        yield Lab(server, root)


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"the browser tests need Debian's Chromium at {CHROMIUM}: apt-get install -y chromium"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, lab: Lab, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``/lab`` open and logged in (the token in the URL sets the login cookie)."""
    lab.reset_workspace()
    marker = request.node.get_closest_marker("lab_settings")
    lab.set_settings(PLUGIN, marker.kwargs if marker else {})
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    tab = context.new_page()
    tab.goto(lab.lab_url)
    tab.wait_for_selector("#jp-main-statusbar", state="visible", timeout=60_000)
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("JUPYTER_LLM_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
