"""Palette commands: explain the active cell in the chat, insert a %%llm cell."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import Lab
from .support import LAST_ANSWER, command, notebook_json, wait_status

NOTEBOOK = notebook_json()


def open_notebook(page: Any, lab: Lab, name: str) -> None:
    (lab.root / name).write_text(json.dumps(NOTEBOOK))
    command(page, "docmanager:open", {"path": name})
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    page.click(".jp-Notebook .jp-Cell .jp-InputPrompt")  # the first cell is active


def palette(page: Any, label: str) -> None:
    """Run a command the way a user does: from the command palette."""
    page.keyboard.press("Control+Shift+C")
    page.fill(".lm-CommandPalette-input", label)
    page.wait_for_selector(f".lm-CommandPalette-item:has-text('{label}')")
    page.keyboard.press("Enter")


def cell_sources(page: Any) -> list[str]:
    return list(
        page.evaluate(
            "() => Array.from(window.jupyterapp.shell.currentWidget.content.model.cells,"
            " cell => cell.sharedModel.getSource())"
        )
    )


# Greedy: a sampled answer of the random tiny model is now and then only whitespace or an
# immediate end token (CI saw an empty answer once), and this test reads the answer's text.
@pytest.mark.lab_settings(maxTokens=16, temperature=0)
def test_explain_cell_and_insert_llm_cell_from_the_palette(page: Any, lab: Lab) -> None:
    open_notebook(page, lab, "explain.ipynb")
    palette(page, "LLM: Explain the Active Cell")
    question = page.locator(".jp-llm-Message-user >> nth=-1 >> .jp-llm-Message-body")
    question.wait_for()
    assert "print(9 ** 2)" in question.inner_text()
    assert "81" in question.inner_text()  # the cell's output goes along
    wait_status(page, "completed")
    assert page.locator(f"{LAST_ANSWER} >> .jp-llm-Message-body").inner_text().strip()

    page.click(".jp-Notebook .jp-Cell .jp-InputPrompt")
    palette(page, "LLM: Insert %%llm Cell")
    page.wait_for_function("document.querySelectorAll('.jp-Notebook .jp-Cell').length === 3")
    assert cell_sources(page) == ["print(9 ** 2)", "%load_ext jupyter_llm", "%%llm\n"]
