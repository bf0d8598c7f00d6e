"""notebooks/quickstart.ipynb runs from top to bottom (nbclient) against the test server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import Server
from .notebooks import cell, printed, run_notebook

# slow: a real jupyter server subprocess and real kernels (tests/kernel/conftest.py)
pytestmark = pytest.mark.slow


def _final_answer(code_cell: Any) -> Any:
    return next(
        o for o in code_cell.outputs if o.get("metadata", {}).get("jupyter_llm", {}).get("final")
    )


def test_the_quickstart_notebook_runs(server: Server, tmp_path: Path) -> None:
    nb = run_notebook("quickstart.ipynb", server, tmp_path)
    status = cell(nb, "%llm status").outputs[0]["data"]["text/plain"]
    assert "chosen because: JUPYTER_LLM_URL is set" in status

    waited = _final_answer(cell(nb, "%%llm --wait -o answer"))
    record = server.job(waited["metadata"]["jupyter_llm"]["job_id"])
    assert waited["data"]["text/plain"] == record["text"]
    assert printed(cell(nb, "print(answer.status")) == "completed 48 tokens\n"

    assert cell(nb, "essay.cancel()").outputs[0]["data"]["text/plain"] == "'cancelled'"
    python = cell(nb, "from jupyter_llm.kernel import Client").outputs
    assert python[-1]["data"]["text/plain"] == "'completed'"
    code = cell(nb, "%%llm -f code")
    assert "its code is in a new cell below" in code.outputs[0]["data"]["text/plain"]
    assert printed(cell(nb, "story.wait()")) == "completed\n"
