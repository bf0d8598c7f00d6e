"""The status bar item: the default model's state and the pool's running/queued/units."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..support import TINY
from .conftest import FAKE, Lab
from .support import STATUS


def test_status_bar_shows_the_model_ready_and_counts_a_running_job(
    page: Any, lab: Lab, screenshots: Path
) -> None:
    status = page.locator(STATUS)
    status.wait_for()
    # The default model is the first configured one that has not failed.
    page.wait_for_function(
        f"document.querySelector('{STATUS}').textContent.startsWith('{TINY}: ready')"
    )
    assert re.search(r"0 running · 0 queued · 0/\d+ units", status.inner_text())
    assert status.get_attribute("data-state") == "ready"
    assert f"{TINY} (transformers on cpu): ready" in (status.get_attribute("title") or "")

    job = lab.submit(FAKE, "count me", max_tokens=3000)  # 30 s at the fake's 100 tokens/s
    try:
        page.wait_for_function(
            f"document.querySelector('{STATUS}').textContent.includes('1 running')",
            timeout=15_000,
        )
        text = status.inner_text()
        used, total = map(int, re.search(r"(\d+)/(\d+) units", text).groups())  # type: ignore[union-attr]
        assert 0 < used <= total
        status.screenshot(path=str(screenshots / "statusbar.png"))
    finally:
        lab.cancel(job["id"])
    page.wait_for_function(
        f"document.querySelector('{STATUS}').textContent.includes('0 running')",
        timeout=15_000,
    )

    status.click()  # opens the panel on its Chat tab
    page.wait_for_selector(".jp-llm-Chat-input", state="visible")
