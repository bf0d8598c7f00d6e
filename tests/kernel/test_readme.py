"""The README's Python examples run as written, in order, in one real kernel.

The kernel is pointed at a real Jupyter server serving the packaged default models.yaml
(SmolLM2), as a newcomer's would be after the README's first command. Only the OpenAI
example's placeholders (the address and the token of a server on port 8888) are filled in
with this server's. Shell and YAML blocks are not run here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_llm.config import DEFAULT_CONFIG

from .conftest import Kernels, Server, server_env

README = Path(__file__).parents[2] / "README.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
PLACEHOLDERS = ("http://127.0.0.1:8888/", "<jupyter token>")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def python_blocks() -> list[str]:
    return PYTHON_BLOCK.findall(README.read_text())


def test_the_readme_has_a_python_example_for_each_surface() -> None:
    blocks = python_blocks()
    for start in (
        "%load_ext jupyter_llm",
        "%%llm",
        "chat = %llm chat",
        "from openai",
        "from jupyter_llm",
    ):
        assert any(block.startswith(start) for block in blocks), start
    assert any(all(p in block for p in PLACEHOLDERS) for block in blocks)


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("readme-server")
    with Server(
        folder, config=DEFAULT_CONFIG, drain_secs=0.5, ready_models=("smollm2",)
    ) as running:
        yield running


@pytest.mark.slow  # SmolLM2 in a server subprocess and in the kernel's own pool
@pytest.mark.timeout(600)
def test_the_readme_python_examples_run_in_a_kernel(
    default_server: Server, kernels: Kernels, tmp_path: Path
) -> None:
    kernel = kernels.start(server_env(default_server, tmp_path), cwd=tmp_path)
    address, token = PLACEHOLDERS
    for block in python_blocks():
        code = block.replace(address, default_server.url).replace(token, default_server.token)
        cell = kernel.ok(code, timeout=300)
        if block.startswith("chat = %llm chat"):
            views = [m for m in cell.of_type("display_data") if WIDGET_VIEW in m.content["data"]]
            assert len(views) == 1, "the chat widget is shown once"
        if block.startswith(("from openai", "from jupyter_llm")):
            assert cell.text().strip(), f"the example printed no answer:\n{block}"
    kernel.ok("story.wait()", timeout=300)
    assert kernel.value("story.status.value") == "completed"
