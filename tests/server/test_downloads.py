"""An hf_id model downloading on first use, as a real server shows it (stand-in hub)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..standin_hub import TINY_REPO, StandInHub, serve_tiny

# slow: a real server downloads and loads a model from the stand-in hub (about 20 s)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def hub(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path
) -> Iterator[StandInHub]:
    server = serve_tiny(monkeypatch, tmp_path, tiny_model_dir)
    server.rate = 150_000  # bytes a second: the weights (450 kB) take about three seconds
    yield server
    server.stop()


@pytest.mark.llm_config(
    parking_lot={"pool": {"worker_threads": 1}},
    hubbed={"hf_id": TINY_REPO, "params": {"dtype": "float32", "max_num_seqs": 4}},
)
async def test_a_download_shows_in_models_and_in_the_log(hub, llm, caplog, tiny_model_dir):
    caplog.set_level(logging.INFO, logger="jupyter_llm")
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 150
    while True:
        models = (await llm.request("GET", "llm/api/models")).json()["models"]
        (model,) = [m for m in models if m["name"] == "hubbed"]
        if model["state"] != "loading":
            break
        if model.get("loading"):
            seen.append(model["loading"])
        assert time.monotonic() < deadline, seen[-3:]
        await asyncio.sleep(0.1)
    assert model["state"] == "ready", model
    downloading = [s for s in seen if s["phase"] == "downloading"]
    assert downloading, [s["phase"] for s in seen]
    total = sum(p.stat().st_size for p in tiny_model_dir.iterdir())
    midway = [s for s in downloading if s["unit"] == "bytes" and 0 < s["done"] < s["total"]]
    assert midway, downloading
    assert all(s["total"] == total for s in midway)
    assert any(s["rate"] and 30_000 < s["rate"] < 1_000_000 for s in midway), midway
    assert [s["done"] for s in midway] == sorted(s["done"] for s in midway)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("jupyter_llm")]
    assert any("hubbed" in line and "downloading" in line for line in lines), lines
