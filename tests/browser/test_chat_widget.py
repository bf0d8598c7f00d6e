"""The chat widget in a real JupyterLab, driven by Chromium: typing, Enter, streaming,
Stop, and an answer full of HTML that must stay text."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import FAKE, Lab

# The first test here also waits for the lab fixture (a JupyterLab start, ~70 s on 2 busy
# cores), which counts against its timeout.
pytestmark = pytest.mark.timeout(300)

# 30 s at the fake engine's 100 tokens a second: Stop always lands while it streams. The
# tiny model's 1,500 tokens can stream in under a second; a CI run once waited in vain for
# "cancelled" after Stop (the answer had most likely ended first).
LONG = 3000


def notebook(lab: Lab, name: str, *sources: str) -> str:
    cells = [
        {"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
        for s in sources
    ]
    content = {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (lab.root / name).write_text(json.dumps(content))
    return name


def open_and_run_first_cell(page: Any, lab: Lab, name: str, ui: str = "lab") -> tuple[Any, Any]:
    """Open notebook ``name`` alone in JupyterLab (``?reset``: no tabs from earlier tests)
    or, with ``ui="notebook"``, in Notebook 7; run its first cell; returns the notebook
    panel and the chat in it."""
    if ui == "notebook":
        page.goto(f"{lab.url}notebooks/{name}")
    else:
        page.goto(f"{lab.url}lab/tree/{name}?reset")
    panel = page.locator(".jp-NotebookPanel:visible")
    panel.locator(".jp-Cell .cm-content").first.wait_for(timeout=60_000)
    idle = ".jp-Notebook-ExecutionIndicator[data-status='idle']"
    page.wait_for_selector(idle, state="attached", timeout=60_000)
    prompt = panel.locator(".jp-Cell .jp-InputPrompt").first
    for _ in range(5):  # a run asked for while the kernel still connects can be dropped
        dialog = page.locator(".jp-Dialog")
        if dialog.count():  # say what JupyterLab asks rather than time out behind it
            raise AssertionError(f"a dialog covers the notebook: {dialog.first.inner_text()}")
        panel.locator(".jp-Cell .cm-content").first.click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function(
                "node => !/\\[ \\]/.test(node.textContent)",
                arg=prompt.element_handle(),
                timeout=10_000,
            )
            break
        except Exception:
            continue
    chat = panel.locator(".jllm-chat")
    chat.wait_for(state="visible", timeout=60_000)
    return panel, chat


def growing_answer(chat: Any, count: int = 3) -> list[str]:
    """The first ``count`` different texts the chat's last answer shows while it streams."""
    answer = chat.locator(".jllm-assistant .jllm-body").last
    # Rendered Markdown: the text grows, though not always by appending (a closing ``_``
    # turns what came before it into emphasis), hence no prefix check on the random model.
    texts: list[str] = []
    deadline = time.monotonic() + 60
    while len(texts) < count:
        assert time.monotonic() < deadline, f"the answer did not grow: {texts}"
        text = answer.inner_text() if answer.count() else ""
        if text and (not texts or text != texts[-1]):
            texts.append(text)
        time.sleep(0.02)
    return texts


def latest_job(lab: Lab) -> dict[str, Any]:
    return dict(lab.get("llm/api/jobs?limit=1")["jobs"][0])


def test_type_enter_stream_and_stop(page: Any, lab: Lab) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    name = notebook(
        lab,
        "chat-stream.ipynb",
        f"from jupyter_llm import ChatWidget\nChatWidget({FAKE!r}, max_tokens={LONG})",
        "import time\ntime.sleep(1)",
    )
    panel, chat = open_and_run_first_cell(page, lab, name)
    cells_before = panel.locator(".jp-Cell").count()

    box = chat.locator(".jllm-input")
    box.click()
    box.type("first line")
    box.press("Shift+Enter")
    box.type("second line")
    assert box.input_value() == "first line\nsecond line"
    box.press("Enter")

    texts = growing_answer(chat)
    chat.locator(".jllm-stop").click()
    stopped = chat.locator(".jllm-assistant[data-status='cancelled']")
    stopped.wait_for(timeout=10_000)

    assert len(texts[-1]) > len(texts[0]), texts
    user = chat.locator(".jllm-user .jllm-body").last.inner_text()
    assert user == "first line\nsecond line"
    assert box.input_value() == ""
    record = latest_job(lab)
    assert record["status"] == "cancelled"
    assert record["usage"]["completion_tokens"] < LONG
    assert "cancelled" in stopped.locator(".jllm-meta").inner_text()
    assert panel.locator(".jp-Cell").count() == cells_before, "Enter ran a cell"
    assert not errors, errors


def test_streams_and_stops_in_notebook_7(page: Any, lab: Lab) -> None:
    """The same widget in Notebook 7's single-document page, served by the same server."""
    name = notebook(
        lab,
        "chat-nb7.ipynb",
        f"from jupyter_llm import ChatWidget\nChatWidget({FAKE!r}, max_tokens={LONG})",
    )
    _, chat = open_and_run_first_cell(page, lab, name, ui="notebook")
    assert page.locator(".jp-LabShell").count() == 0, "this page is JupyterLab's"
    box = chat.locator(".jllm-input")
    box.click()
    box.type("tell me more")
    box.press("Enter")
    texts = growing_answer(chat)
    chat.locator(".jllm-stop").click()
    chat.locator(".jllm-assistant[data-status='cancelled']").wait_for(timeout=10_000)
    assert len(texts[-1]) > len(texts[0]), texts
    assert latest_job(lab)["status"] == "cancelled"


def test_stop_works_while_the_kernel_is_busy(page: Any, lab: Lab) -> None:
    name = notebook(
        lab,
        "chat-busy.ipynb",
        f"from jupyter_llm import ChatWidget\nChatWidget({FAKE!r}, max_tokens={LONG})",
        "import time\ntime.sleep(8)",
    )
    panel, chat = open_and_run_first_cell(page, lab, name)
    box = chat.locator(".jllm-input")
    box.click()
    box.type("keep talking")
    box.press("Enter")
    chat.locator(".jllm-assistant[data-status='running']").wait_for(timeout=20_000)
    panel.locator(".jp-Cell .cm-content").nth(1).click()
    page.keyboard.press("Control+Enter")  # the kernel sleeps for 8 s
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='busy']", state="attached")
    job = latest_job(lab)["id"]
    clicked = time.monotonic()
    chat.locator(".jllm-stop").click()
    deadline = clicked + 3
    while lab.job(job)["status"] != "cancelled":
        assert time.monotonic() < deadline, "Stop waited for the busy kernel"
        time.sleep(0.05)
    # The kernel relays the end once the cell is over; the answer then says it was stopped.
    chat.locator(".jllm-assistant[data-status='cancelled']").wait_for(timeout=20_000)


def test_an_answer_full_of_html_runs_nothing(page: Any, lab: Lab, tmp_path: Path) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    name = notebook(
        lab, "chat-xss.ipynb", f"from jupyter_llm import ChatWidget\nChatWidget({FAKE!r})"
    )
    _, chat = open_and_run_first_cell(page, lab, name)
    attack = (
        "<img src=x onerror=window.__pwned=1> <script>window.__pwned=2</script> "
        "[x](javascript:window.__pwned=3) <svg/onload=window.__pwned=4>"
    )
    box = chat.locator(".jllm-input")
    box.click()
    box.type(attack)
    box.press("Enter")  # the fake model echoes the words of the question
    done = chat.locator(".jllm-assistant[data-status='completed']")
    done.wait_for(timeout=30_000)
    page.wait_for_timeout(300)  # an onerror would have fired by now

    body = done.locator(".jllm-body")
    assert "<img src=x onerror=window.__pwned=1>" in body.inner_text()
    assert chat.locator("img, script, svg, iframe").count() == 0
    hrefs = [a.get_attribute("href") or "" for a in chat.locator("a").all()]
    assert not [h for h in hrefs if h.lower().startswith("javascript")], hrefs
    assert page.evaluate("window.__pwned") is None
    assert chat.locator(".jllm-user .jllm-body").inner_text() == attack
    assert not errors, errors
