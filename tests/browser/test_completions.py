"""Inline completions in a notebook: ghost text streams in, Tab inserts it, typing cancels.

The fake model echoes its prompt's words on one line at 100 tokens a second, so a
suggestion always has text and a long ``max_tokens`` keeps its job running for a while; the
tiny random Llama answers greedily, through the real tokenizer and engine.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from ..support import TINY
from .conftest import FAKE, Lab
from .support import command, notebook_json

GHOST = ".jp-GhostText"
EMPTY_CELL = {
    "cell_type": "code",
    "execution_count": None,
    "metadata": {},
    "outputs": [],
    "source": [],
}


def open_second_cell(page: Any, lab: Lab, name: str) -> None:
    (lab.root / name).write_text(json.dumps(notebook_json(EMPTY_CELL)))
    command(page, "docmanager:open", {"path": name})
    page.wait_for_selector(".jp-Notebook .jp-Cell >> nth=1")
    page.click(".jp-Notebook .jp-Cell >> nth=1 >> .cm-content")


def completion_jobs(lab: Lab, model: str) -> list[dict[str, Any]]:
    jobs = lab.get(f"llm/api/jobs?limit=100&model={model}")["jobs"]
    return [j for j in jobs if j["kind"] == "completion"]


def cell_source(page: Any, index: int) -> str:
    return str(
        page.evaluate(
            "(i) => window.jupyterapp.shell.currentWidget.content.model.cells.get(i)"
            ".sharedModel.getSource()",
            index,
        )
    )


def settings(model: str) -> Any:
    return pytest.mark.lab_settings(
        completionModel=model,
        completionMaxTokens=6,
        completionDebounceMs=100,
        completionTemperature=0,
    )


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(FAKE, marks=settings(FAKE)),
        # The tiny random Llama, greedy: real tokenizer, chat template and engine paths.
        pytest.param(TINY, marks=settings(TINY)),
    ],
)
def test_ghost_text_streams_in_and_tab_inserts_it(
    page: Any, lab: Lab, screenshots: Any, model: str
) -> None:
    open_second_cell(page, lab, f"complete-{model}.ipynb")
    page.keyboard.type("x = ")
    page.wait_for_selector(GHOST, state="visible")
    # the job ends (six tokens); the suggestion then stays as it is
    deadline = time.monotonic() + 20
    while not any(j["status"] == "completed" for j in completion_jobs(lab, model)):
        assert time.monotonic() < deadline, completion_jobs(lab, model)
        time.sleep(0.1)
    (job,) = [j for j in completion_jobs(lab, model) if j["status"] == "completed"]
    assert job["priority"] == "high" and job["text"]
    page.wait_for_function(
        "(text) => document.querySelector('.jp-GhostText')?.textContent === text", arg=job["text"]
    )
    page.screenshot(path=str(screenshots / f"inline-completion-{model}.png"))
    page.keyboard.press("Tab")
    page.wait_for_selector(GHOST, state="detached")
    assert cell_source(page, 1) == "x = " + job["text"]


@pytest.mark.lab_settings(completionModel=FAKE, completionMaxTokens=3000, completionDebounceMs=100)
def test_typing_on_cancels_the_running_completion_on_the_server(page: Any, lab: Lab) -> None:
    model = FAKE
    open_second_cell(page, lab, "cancel.ipynb")
    page.keyboard.type("y = ")
    deadline = time.monotonic() + 20
    while not (running := [j for j in completion_jobs(lab, model) if j["status"] == "running"]):
        assert time.monotonic() < deadline, completion_jobs(lab, model)
        time.sleep(0.05)
    (first,) = running
    page.keyboard.type("2")
    deadline = time.monotonic() + 5
    while lab.job(first["id"])["status"] != "cancelled":
        assert time.monotonic() < deadline, lab.job(first["id"])
        time.sleep(0.05)
    page.keyboard.press("Escape")  # dismisses the newer suggestion; its job may go on
    for job in completion_jobs(lab, model):
        if job["status"] in ("queued", "running"):
            lab.cancel(job["id"])
