"""The Jobs tab: recent jobs from the mailbox, cancel, read one; the cancel-all command."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .conftest import FAKE, Lab
from .support import command


def row(job_id: str) -> str:
    return f".jp-llm-Jobs-table tr[data-job-id='{job_id}']"


def test_the_jobs_tab_lists_reads_and_cancels(page: Any, lab: Lab, screenshots: Path) -> None:
    done = lab.submit(FAKE, "finished job", max_tokens=6)
    deadline = time.monotonic() + 20
    while lab.job(done["id"])["status"] != "completed":
        assert time.monotonic() < deadline, "the short job did not complete"
        time.sleep(0.1)
    first = lab.submit(FAKE, "long one", max_tokens=3000)
    second = lab.submit(FAKE, "long two", max_tokens=3000)
    try:
        command(page, "jupyter-llm:open-jobs")
        page.wait_for_selector(f"{row(first['id'])}[data-status='running']")
        page.wait_for_selector(f"{row(second['id'])}[data-status='running']")
        cells = page.locator(f"{row(done['id'])} td").all_inner_texts()
        assert cells[:3] == [FAKE, "completed", "6"]
        assert float(cells[3]) > 0  # tok/s
        assert cells[4].endswith(" s")  # age

        page.click(f"{row(first['id'])} .jp-llm-Jobs-cancel")
        page.wait_for_selector(f"{row(first['id'])}[data-status='cancelled']")
        assert lab.job(first["id"])["status"] == "cancelled"
        assert page.locator(f"{row(first['id'])} .jp-llm-Jobs-cancel").count() == 0

        page.click(row(done["id"]))
        assert page.inner_text(".jp-llm-Jobs-text") == lab.job(done["id"])["text"]
        assert "completed (length)" in page.inner_text(".jp-llm-Jobs-detailHeader")
        page.locator("#jupyter-llm-panel").screenshot(path=str(screenshots / "jobs.png"))

        assert command(page, "jupyter-llm:cancel-all") >= 1
        assert lab.job(second["id"])["status"] == "cancelled"
        page.wait_for_selector(f"{row(second['id'])}[data-status='cancelled']")
    finally:
        for job in (first, second):
            if lab.job(job["id"])["status"] in ("queued", "running"):
                lab.cancel(job["id"])
