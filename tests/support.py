"""Helpers shared by the tests: a config over the fake engine, the tiny model's models.yaml
entry, and polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_llm.config import Config, parse_config

MODEL = "fake"
TINY = "tiny"


def tiny_entry(tiny_dir: Path, **params: Any) -> dict[str, Any]:
    """The tiny random Llama as a models.yaml entry (CPU, float32, a small KV cache)."""
    base = {"device": "cpu", "dtype": "float32", "kvcache_mem_cpu": 64, "max_num_seqs": 8}
    return {
        "name": TINY,
        "local_path": str(tiny_dir),
        "backend": "transformers",
        "params": {**base, "max_tokens": 16, **params},
    }


def make_config(
    *,
    params: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
    pool: dict[str, Any] | None = None,
    queue: dict[str, Any] | None = None,
    mailbox: dict[str, Any] | None = None,
    extra_models: list[dict[str, Any]] | None = None,
) -> Config:
    data: dict[str, Any] = {
        "parking_lot": {
            "pool": {"worker_threads": 1, **(pool or {})},
            "limits": limits or {},
            "queue": queue or {},
            "mailbox": mailbox or {},
        },
        "models": [
            {"name": MODEL, "backend": "fake", "params": {"max_tokens": 8, **(params or {})}},
            *(extra_models or []),
        ],
    }
    return parse_config(data, "test.yaml", Path("."))


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for ``condition`` to hold, polling the loop; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.005)
