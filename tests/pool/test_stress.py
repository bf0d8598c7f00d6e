"""Many clients at once, random cancels, process workers: nothing is lost, nothing leaks."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import threading

import pytest

from jupyter_llm.config import Config
from jupyter_llm.engine.fake import FakeSpec
from jupyter_llm.pool.pool import Pool
from jupyter_llm.types import GenerationRequest, JobStatus, Priority, SamplingParams

from ..support import MODEL, make_config

pytestmark = pytest.mark.timeout(120)

JOBS = 200


def stress_config(tmp_path, backend: str) -> Config:
    return make_config(
        pool={"worker_threads": 2},
        params={"max_num_seqs": 8},
        limits={"max_units": 64},
        mailbox={"backend": backend, "path": str(tmp_path / "mailbox.sqlite")},
    )


async def client(pool: Pool, rng: random.Random, seen: dict[str, JobStatus]) -> None:
    request = GenerationRequest(
        MODEL,
        prompt=" ".join(f"w{i}" for i in range(rng.randint(1, 30))),
        params=SamplingParams(max_tokens=rng.randint(1, 40)),
        priority=rng.choice(list(Priority)),
    )
    await asyncio.sleep(rng.random() * 0.2)
    job = await pool.submit(request)
    if rng.random() < 0.3:
        await asyncio.sleep(rng.random() * 0.1)
        await pool.cancel(job.id)
    text = ""
    async for event in pool.events(job.id):
        text += event.text
        if event.terminal:
            seen[job.id] = event.status
    record = await pool.get(job.id)
    assert record.text == text
    if record.status is JobStatus.COMPLETED:
        assert record.usage.completion_tokens == request.params.max_tokens


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_200_concurrent_jobs_with_random_cancels(tmp_path, backend):
    threads_before = set(threading.enumerate())
    pool = Pool(
        stress_config(tmp_path, backend),
        engines=lambda m: FakeSpec(model=m.name, step_delay=0.002, max_num_seqs=8),
    )
    await pool.start()
    pids = []
    try:
        seen: dict[str, JobStatus] = {}
        rng = random.Random(7)
        await asyncio.gather(
            *(client(pool, random.Random(rng.random()), seen) for _ in range(JOBS))
        )
        pids = [w.pid for w in pool.models()[0].workers]
        assert len(seen) == JOBS
        assert all(status.terminal for status in seen.values())
        statuses = set(seen.values())
        assert JobStatus.COMPLETED in statuses and JobStatus.CANCELLED in statuses
        stats = pool.stats().total
        assert (stats.running, stats.queued, stats.used_units) == (0, 0, 0)
        assert stats.completed + stats.cancelled == JOBS
        records = await pool.jobs(limit=1000)
        assert len(records) == JOBS
        assert {r.id: r.status for r in records} == seen
    finally:
        await pool.stop()
    assert set(threading.enumerate()) == threads_before
    assert multiprocessing.active_children() == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
