"""notebooks/chat.ipynb runs from top to bottom (nbclient) against the test server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..conftest import Server
from ..notebooks import cell, printed, run_notebook

# slow: a real jupyter server subprocess and real kernels (tests/kernel/conftest.py)
pytestmark = pytest.mark.slow


def _outputs(nb: Any, source_start: str) -> Any:
    return cell(nb, source_start).outputs


def _value(nb: Any, source_start: str) -> str:
    return str(_outputs(nb, source_start)[-1]["data"]["text/plain"])


def test_the_chat_notebook_runs(server: Server, tmp_path: Path) -> None:
    nb = run_notebook("chat.ipynb", server, tmp_path)
    widget = _outputs(nb, "chat = %llm chat")[-1]["data"]
    assert "application/vnd.jupyter.widget-view+json" in widget
    assert printed(cell(nb, "import time")) in ("running\n", "completed\n")
    assert printed(cell(nb, "answer.wait()")).startswith("completed ")
    assert (
        _value(nb, 'chat.system = "You answer')
        == "['system', 'user', 'assistant', 'user', 'assistant']"
    )
    assert _value(nb, "chat.regenerate()") == "'What is a Jupyter kernel?'"
    assert _value(nb, "numbers = [3, 1, 2]") == "'Sort these numbers: [3, 1, 2]'"
    assert _value(nb, "chat.max_tokens = 1000") == "'cancelled'"
    assert printed(cell(nb, "print(chat.to_markdown()")).startswith("**System:** You answer")
    assert _value(nb, "len(again.messages)") == "True"
    assert (tmp_path / "chat.json").exists()
    assert (
        _value(nb, "chat.clear()")
        == "[{'role': 'system', 'content': 'You answer in one short sentence.'}]"
    )
