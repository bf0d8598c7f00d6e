"""notebooks/chat.ipynb runs from top to bottom (nbclient) against the test server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from ..conftest import Server, server_env

NOTEBOOK = Path(__file__).parents[3] / "notebooks" / "chat.ipynb"


def _outputs(nb: Any, source_start: str) -> Any:
    return next(c for c in nb.cells if c.source.startswith(source_start)).outputs


def _value(nb: Any, source_start: str) -> str:
    return str(_outputs(nb, source_start)[-1]["data"]["text/plain"])


def test_the_chat_notebook_runs(server: Server, tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=server_env(server, tmp_path))

    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source

    widget = _outputs(nb, "chat = %llm chat")[-1]["data"]
    assert "application/vnd.jupyter.widget-view+json" in widget
    assert _outputs(nb, "import time")[0]["text"] in ("running\n", "completed\n")
    assert _outputs(nb, "answer.wait()")[0]["text"].startswith("completed ")
    assert (
        _value(nb, 'chat.system = "You answer')
        == "['system', 'user', 'assistant', 'user', 'assistant']"
    )
    assert _value(nb, "chat.regenerate()") == "'What is a Jupyter kernel?'"
    assert _value(nb, "numbers = [3, 1, 2]") == "'Sort these numbers: [3, 1, 2]'"
    assert _value(nb, "chat.max_tokens = 1000") == "'cancelled'"
    assert _outputs(nb, "print(chat.to_markdown()")[0]["text"].startswith("**System:** You answer")
    assert _value(nb, "len(again.messages)") == "True"
    assert (tmp_path / "chat.json").exists()
    assert (
        _value(nb, "chat.clear()")
        == "[{'role': 'system', 'content': 'You answer in one short sentence.'}]"
    )
