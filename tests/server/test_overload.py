"""Overload: 10 x max_queue_depth simultaneous requests, round after round, on a real server.

Every request completes or gets a 429 with Retry-After; none outlives its deadline; the
server's memory after the last round is within 50 MB of the first; a normal request then
succeeds at once. benchmarks/reliability.py runs more rounds (JUPYTER_LLM_RELIABILITY_SCALE).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from jupyter_llm.testing import JupyterServer

from .live import record, rss_mb, scale, write_config

DEPTH = 8
TIMEOUT_SECS = 5.0  # the model's queue deadline
MARGIN = 5.0  # what a finished request may take beyond it on a loaded two-core machine


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ten_times_the_queue_depth_completes_or_is_refused_and_nothing_leaks(
    tmp_path: Path,
) -> None:
    config = {
        "parking_lot": {"pool": {"worker_threads": 1}},
        "models": [
            {
                "name": "fake",
                "backend": "fake",
                "params": {"max_tokens": 20, "max_num_seqs": 4},
                "parking_lot": {"limits": {"max_queue_depth": DEPTH, "timeout_secs": TIMEOUT_SECS}},
            }
        ],
    }
    server = JupyterServer(
        tmp_path, config=write_config(tmp_path, config), drain_secs=2.0, ready_models=("fake",)
    ).start(timeout=300)
    rounds = 3 * scale()
    try:
        assert server.process is not None
        pid = server.process.pid
        results = [asyncio.run(one_round(server, 10 * DEPTH)) for _ in range(rounds)]
        rss = [r["rss_mb"] for r in results]
        for r in results:
            assert r["other"] == [], r["other"]
            assert r["completed"] + r["refused"] == 10 * DEPTH
            assert r["completed"] >= DEPTH  # the queue's worth, at least, got through
            assert r["longest"] < TIMEOUT_SECS + MARGIN, r
        assert rss[-1] - rss[0] < 50, rss
        with server.client() as client:
            started = time.monotonic()
            reply = client.post(
                "llm/v1/chat/completions",
                json={"model": "fake", "messages": [{"role": "user", "content": "after"}]},
            )
            after = time.monotonic() - started
        assert reply.status_code == 200, reply.text
        assert after < 1.0
        status = server.models()["fake"]
        assert status["state"] == "ready"
        record(
            "overload",
            requests=10 * DEPTH,
            rounds=rounds,
            completed=sum(r["completed"] for r in results),
            refused=sum(r["refused"] for r in results),
            longest_s=max(r["longest"] for r in results),
            rss_first_mb=rss[0],
            rss_last_mb=rss[-1],
            after_s=after,
            server_pid=pid,
        )
    finally:
        server.stop()


async def one_round(server: JupyterServer, count: int) -> dict[str, object]:
    """``count`` chat completions at once (half streaming); how each one ended."""
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(
        base_url=server.url, headers=server.headers, timeout=60, limits=limits
    ) as client:

        async def one(i: int) -> tuple[str, float]:
            body = {
                "model": "fake",
                "messages": [{"role": "user", "content": f"request {i} " + "word " * 10}],
                "stream": i % 2 == 0,
            }
            started = time.monotonic()
            async with client.stream("POST", "llm/v1/chat/completions", json=body) as response:
                text = (await response.aread()).decode()
            took = time.monotonic() - started
            if response.status_code == 429:
                retry = int(response.headers.get("Retry-After", "0"))
                return ("refused" if retry >= 1 and "queue" in text else f"429 {text}"), took
            if response.status_code == 200 and (not body["stream"] or "[DONE]" in text):
                return "completed", took
            return f"{response.status_code} {text[-300:]}", took

        outcomes = await asyncio.gather(*(one(i) for i in range(count)))
    assert server.process is not None
    return {
        "completed": sum(1 for o, _ in outcomes if o == "completed"),
        "refused": sum(1 for o, _ in outcomes if o == "refused"),
        "other": [o for o, _ in outcomes if o not in ("completed", "refused")],
        "longest": max(t for _, t in outcomes),
        "rss_mb": rss_mb(server.process.pid),
    }
