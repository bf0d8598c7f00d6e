"""notebooks/quickstart.ipynb runs from top to bottom (nbclient) against the test server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from .conftest import Server, server_env

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "quickstart.ipynb"


def _cell(nb: Any, source_start: str) -> Any:
    return next(c for c in nb.cells if c.source.startswith(source_start))


def _final_answer(cell: Any) -> Any:
    return next(
        o for o in cell.outputs if o.get("metadata", {}).get("jupyter_llm", {}).get("final")
    )


def test_the_quickstart_notebook_runs(server: Server, tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=server_env(server, tmp_path))

    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source

    status = _cell(nb, "%llm status").outputs[0]["data"]["text/plain"]
    assert "chosen because: JUPYTER_LLM_URL is set" in status

    waited = _final_answer(_cell(nb, "%%llm --wait -o answer"))
    record = server.job(waited["metadata"]["jupyter_llm"]["job_id"])
    assert waited["data"]["text/plain"] == record["text"]
    assert _printed(_cell(nb, "print(answer.status")) == "completed 48 tokens\n"

    assert _cell(nb, "essay.cancel()").outputs[0]["data"]["text/plain"] == "'cancelled'"
    python = _cell(nb, "from jupyter_llm.kernel import Client").outputs
    assert python[-1]["data"]["text/plain"] == "'completed'"
    code = _cell(nb, "%%llm -f code")
    assert "its code is in a new cell below" in code.outputs[0]["data"]["text/plain"]
    assert _printed(_cell(nb, "story.wait()")) == "completed\n"


def _printed(cell: Any) -> str:
    """What the cell printed: a print may reach the notebook in several stream messages."""
    return "".join(o["text"] for o in cell.outputs if o["output_type"] == "stream")
