"""Running a notebook of notebooks/ with nbclient against the test server, and reading it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from .conftest import Server, server_env

NOTEBOOKS = Path(__file__).parents[2] / "notebooks"


def run_notebook(name: str, server: Server, tmp_path: Path) -> Any:
    """Execute notebooks/NAME top to bottom in tmp_path; no code cell may raise."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=server_env(server, tmp_path))
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
    return nb


def cell(nb: Any, source_start: str) -> Any:
    return next(c for c in nb.cells if c.source.startswith(source_start))


def printed(code_cell: Any) -> str:
    """What the cell printed: a print may reach the notebook in several stream messages."""
    return "".join(o["text"] for o in code_cell.outputs if o["output_type"] == "stream")
