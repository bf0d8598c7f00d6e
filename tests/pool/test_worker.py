"""Process workers: spawned, killed, restarted; the pool keeps serving."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from jupyter_llm.engine.base import EngineRequest
from jupyter_llm.engine.fake import CRASH_MARKER, REFUSE_MARKER, FakeSpec
from jupyter_llm.engine.scheduler import Burst
from jupyter_llm.pool.worker import worker_main
from jupyter_llm.types import GenerationRequest, JobStatus, SamplingParams

from ..support import MODEL, make_config, until

pytestmark = pytest.mark.timeout(60)


def request(prompt: str = "a b c", max_tokens: int = 5) -> GenerationRequest:
    return GenerationRequest(MODEL, prompt=prompt, params=SamplingParams(max_tokens=max_tokens))


def worker_pids(pool) -> list[int]:
    return [w.pid for w in pool.models()[0].workers if w.state == "ready"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_process_workers_are_separate_processes_and_serve(make_pool):
    pool = await make_pool(make_config(pool={"worker_threads": 2}), worker_kind="process")
    await until(lambda: len(worker_pids(pool)) == 2)
    pids = worker_pids(pool)
    assert len(set(pids)) == 2 and os.getpid() not in pids
    records = [await pool.wait((await pool.submit(request())).id) for _ in range(4)]
    assert all(r.status is JobStatus.COMPLETED for r in records)


async def test_a_killed_worker_fails_its_jobs_clearly_and_is_restarted(make_pool):
    pool = await make_pool(worker_kind="process", step_delay=0.02)
    (pid,) = worker_pids(pool)
    jobs = [await pool.submit(request(max_tokens=1000)) for _ in range(3)]
    await until(lambda: pool.stats().total.running == 3)
    os.kill(pid, signal.SIGKILL)
    for job in jobs:
        record = await pool.wait(job.id)
        assert record.status is JobStatus.FAILED
        assert "the worker process running this job died (exit code -9)" in record.error
        assert record.error_type == "WorkerLost"
    await until(lambda: len(worker_pids(pool)) == 1 and worker_pids(pool)[0] != pid)
    assert pool.stats().total.used_units == 0
    after = await pool.wait((await pool.submit(request())).id)
    assert after.status is JobStatus.COMPLETED
    assert pool.stats().total.failed == 3


async def test_a_worker_that_crashes_on_a_job_is_replaced(make_pool):
    pool = await make_pool(worker_kind="process")
    (pid,) = worker_pids(pool)
    crash = await pool.submit(request(f"x {CRASH_MARKER}"))
    record = await pool.wait(crash.id)
    assert record.status is JobStatus.FAILED and "exit code 13" in record.error
    await until(lambda: len(worker_pids(pool)) == 1)
    assert not alive(pid)
    assert (await pool.wait((await pool.submit(request())).id)).status is JobStatus.COMPLETED


async def test_a_job_the_engine_cannot_start_fails_alone_and_the_worker_lives(make_pool):
    """An exception from the engine's ``add`` once ended the worker and every job on it."""
    pool = await make_pool(worker_kind="process", step_delay=0.01)
    (pid,) = worker_pids(pool)
    neighbour = await pool.submit(request(max_tokens=30))
    refused = await pool.submit(request(f"x {REFUSE_MARKER}"))
    record = await pool.wait(refused.id)
    assert record.status is JobStatus.FAILED
    assert record.error is not None and "could not start: ValueError" in record.error
    assert (await pool.wait(neighbour.id)).status is JobStatus.COMPLETED
    assert worker_pids(pool) == [pid] and alive(pid)
    assert pool.stats().total.used_units == 0
    assert (await pool.wait((await pool.submit(request())).id)).status is JobStatus.COMPLETED


async def test_stop_leaves_no_worker_process_behind(make_pool):
    pool = await make_pool(make_config(pool={"worker_threads": 2}), worker_kind="process")
    await until(lambda: len(worker_pids(pool)) == 2)
    pids = worker_pids(pool)
    await pool.submit(request(max_tokens=10_000))
    await pool.stop()
    assert not any(alive(pid) for pid in pids)


@pytest.mark.parametrize("attempt", range(3))
async def test_every_worker_that_fails_to_load_says_why_and_is_not_restarted(make_pool, attempt):
    config = make_config(pool={"worker_threads": 2})
    pool = await make_pool(config, worker_kind="process", wait_ready=False, load_error="no weights")
    await until(lambda: pool.models()[0].state == "error")
    info = pool.models()[0]
    assert info.error == "RuntimeError: no weights"
    assert [w.state for w in info.workers] == ["failed", "failed"]
    await asyncio.sleep(0.5)  # a restart would show up as "restarting" or "starting"
    assert [w.state for w in pool.models()[0].workers] == ["failed", "failed"]


# A script that runs a pool of two models whose process workers each take a multiprocessing
# lock while they load and keep it for good, as tqdm does (a class attribute) while a GGUF
# file converts. One loads at once; the other is still loading when the pool stops (so it is
# terminated). Its own file: the spawned workers import the spec from it.
SEMAPHORE_SCRIPT = """
import asyncio, multiprocessing, sys, time
from dataclasses import dataclass
from jupyter_llm.config import parse_config
from jupyter_llm.engine.fake import FakeSpec
from jupyter_llm.pool.pool import Pool

HELD = []

@dataclass(frozen=True, slots=True)
class LockingSpec(FakeSpec):
    def build(self, worker_index, progress=None):
        HELD.append(multiprocessing.RLock())  # a named semaphore, registered with the tracker
        if self.model == "slow":
            time.sleep(60)
        return FakeSpec.build(self, worker_index)

async def main():
    models = [{"name": name, "backend": "fake"} for name in ("fast", "slow")]
    config = parse_config({"models": models}, "t.yaml", ".")
    pool = Pool(config, engines=lambda model: LockingSpec(model=model.name))
    await pool.start()
    while pool.models()[0].state == "loading":
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # the slow one has its lock by now
    print([model.state for model in pool.models()], flush=True)
    await pool.stop()
    print("stopped", flush=True)

if __name__ == "__main__":
    asyncio.run(main())
"""


def test_stopping_leaves_no_semaphore_for_the_resource_tracker(tmp_path: Path) -> None:
    script = tmp_path / "locking_pool.py"
    script.write_text(SEMAPHORE_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=50, cwd=tmp_path
    )
    assert done.returncode == 0, done
    assert done.stdout.splitlines() == ["['ready', 'loading']", "stopped"], done
    assert "leaked semaphore" not in done.stderr, done.stderr


class _Recording:
    """A pipe end that records the timeouts ``worker_main`` polls with."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.polls: list[float | None] = []

    def poll(self, timeout: float | None = 0.0) -> bool:
        self.polls.append(timeout)
        return bool(self._conn.poll(timeout))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_a_worker_woken_from_idle_waits_for_the_rest_of_a_burst() -> None:
    """Jobs that come together start together (engine/scheduler.py's ``Burst``)."""
    spec = FakeSpec()
    ours, theirs = multiprocessing.Pipe()
    conn = _Recording(theirs)
    worker = threading.Thread(target=worker_main, args=(conn, spec, 0))
    worker.start()
    assert ours.recv()[0] == "ready"
    ours.send(("add", EngineRequest("j1", request(max_tokens=2), 3)))
    while (message := ours.recv())[0] != "out" or message[1][-1].finish_reason is None:
        pass
    ours.send(("stop",))
    worker.join(10)
    assert Burst().gap_secs in conn.polls, conn.polls


@pytest.mark.parametrize("nice", [0, 10])
async def test_worker_processes_run_at_the_configured_niceness(make_pool, nice):
    pool = await make_pool(make_config(pool={"worker_nice": nice}), worker_kind="process")
    await until(lambda: len(worker_pids(pool)) == 1)
    (pid,) = worker_pids(pool)
    await until(
        lambda: os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0) + nice
    )
