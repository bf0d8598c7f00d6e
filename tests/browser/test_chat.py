"""The Chat tab: streaming, Stop, a reload in the middle of an answer, export, Insert."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import FAKE, TIGHT, Lab
from .support import (
    ANSWER,
    LAST_ANSWER,
    answer_job_id,
    command,
    notebook_json,
    open_chat,
    record_texts,
    send,
    wait_status,
)


def answer_text(page: Any) -> str:
    return str(page.locator(f"{LAST_ANSWER} >> .jp-llm-Message-body").inner_text()).strip()


@pytest.mark.lab_settings(maxTokens=150)  # 1.5 s at the fake model's 100 tokens a second
def test_an_answer_streams_through_intermediate_texts(page: Any, lab: Lab) -> None:
    open_chat(page, FAKE)
    record_texts(page)
    send(page, "alpha beta gamma delta")
    wait_status(page, "completed")
    job = lab.job(answer_job_id(page))
    assert job["status"] == "completed"
    assert job["usage"]["completion_tokens"] == 150
    final = job["text"].strip()
    assert answer_text(page) == final
    texts = [t.strip() for t in page.evaluate("window.llmTexts")]
    middle = {t for t in texts if t and t != final}
    assert len(middle) >= 3, texts
    assert all(final.startswith(t) for t in middle), texts  # each a prefix of the answer
    # Rendered as markdown by rendermime, not dumped as text.
    assert page.locator(f"{LAST_ANSWER} >> .jp-RenderedMarkdown").count() == 1
    # Its header then says what the notebook widget's line says, from the job's record.
    header = page.locator(f"{LAST_ANSWER} >> .jp-llm-Message-header")
    header.filter(has_text="tok/s").wait_for(timeout=10_000)
    line = str(header.inner_text()).strip()
    meta = rf"{FAKE} · queue [\d.]+ s · first token [\d.]+ s · 150 tokens · \d+ tok/s · length"
    assert re.fullmatch(meta, line), line


@pytest.mark.lab_settings(maxTokens=3000)  # 30 s: still streaming across a reload
def test_an_answer_survives_a_reload_and_stops(page: Any, lab: Lab) -> None:
    open_chat(page, FAKE)
    send(page, "one two three")
    job_id = answer_job_id(page)
    page.wait_for_function(
        "() => document.querySelector('.jp-llm-Message-assistant .jp-llm-Message-body')"
        ".textContent.includes('three')"
    )
    time.sleep(2)  # the conversation is saved each second, the workspace 0.75 s later
    before = answer_text(page)

    page.reload()
    page.wait_for_selector(ANSWER, state="attached")
    open_chat(page)
    wait_status(page, "running")
    # The answer goes on growing from where the saved copy stopped.
    page.wait_for_function(
        f"""() => {{
            const answers = document.querySelectorAll('{ANSWER} .jp-llm-Message-body');
            return answers[answers.length - 1].textContent.trim().length > {len(before) + 20};
        }}"""
    )
    assert page.inner_text(".jp-llm-Chat-send") == "Stop"
    page.click(".jp-llm-Chat-send")
    wait_status(page, "cancelled")
    record = lab.job(job_id)
    assert record["status"] == "cancelled"
    # Nothing lost or repeated across the reload: the page shows what the record holds.
    page.wait_for_timeout(300)
    assert answer_text(page) == record["text"].strip()
    assert page.inner_text(".jp-llm-Chat-send") == "Send"

    page.reload()  # the finished conversation is still there
    page.wait_for_selector(ANSWER, state="attached")
    open_chat(page)
    assert page.inner_text(".jp-llm-Message-user >> .jp-llm-Message-body") == "one two three"
    assert answer_text(page) == record["text"].strip()
    assert "cancelled" in page.inner_text(f"{LAST_ANSWER} >> .jp-llm-Message-header")

    exported = command(page, "jupyter-llm:export-chat")
    assert exported is None
    (path,) = lab.root.glob("chat-*.md")
    markdown = path.read_text()
    assert "## You\n\none two three" in markdown
    assert "*(cancelled)*" in markdown


def test_stop_cancels_a_queued_answer(page: Any, lab: Lab) -> None:
    busy = lab.submit(TIGHT, "hold the only slot", max_tokens=3000)
    try:
        open_chat(page, TIGHT)
        send(page, "wait your turn")
        wait_status(page, "queued")
        job_id = answer_job_id(page)
        assert job_id != busy["id"]
        assert lab.job(job_id)["status"] == "queued"
        page.click(".jp-llm-Chat-send:has-text('Stop')")
        wait_status(page, "cancelled")
        assert lab.job(job_id)["status"] == "cancelled"
        assert answer_text(page) == ""
    finally:
        lab.cancel(busy["id"])


CODE = "def square(x):\n    return x * x"


def test_insert_puts_a_code_block_in_a_new_cell(page: Any, lab: Lab, screenshots: Path) -> None:
    # A finished conversation as the chat saves it, with a fenced code block in the answer.
    conversation = {
        "model": FAKE,
        "system": "",
        "messages": [
            {"role": "user", "content": "How do I square a number?"},
            {
                "role": "assistant",
                "model": FAKE,
                "status": "completed",
                "jobId": "none",
                "lastIndex": 3,
                "content": f"Like this:\n\n```python\n{CODE}\n```\n\nThen call `square(3)`.",
            },
        ],
    }
    page.goto("about:blank")  # else the open page may save its own workspace over ours
    with lab.client() as client:
        response = client.put(
            "lab/api/workspaces/default",
            json={"data": {"jupyter-llm:chat": conversation}, "metadata": {"id": "default"}},
        )
    assert response.status_code == 204, response.text
    notebook = lab.root / "insert.ipynb"
    notebook.write_text(json.dumps(NOTEBOOK))
    page.goto(lab.lab_url)
    page.wait_for_selector("#jp-main-statusbar")
    command(page, "docmanager:open", {"path": "insert.ipynb"})
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    page.click(".jp-Notebook .jp-Cell .jp-InputPrompt")  # the first cell is active
    open_chat(page)
    page.wait_for_selector(".jp-llm-CodeActions")
    assert page.locator(f"{LAST_ANSWER} >> pre").inner_text().strip() == CODE

    page.click(".jp-llm-CodeAction:has-text('Insert')")
    page.wait_for_function("document.querySelectorAll('.jp-Notebook .jp-Cell').length === 3")
    sources = page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.model.cells"
        ".get(1).sharedModel.getSource()"
    )
    assert sources == CODE  # below the active (first) cell
    page.locator("#jupyter-llm-panel").screenshot(path=str(screenshots / "chat.png"))


NOTEBOOK = notebook_json(
    {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": []}
)
