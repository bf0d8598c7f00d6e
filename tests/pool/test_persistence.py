"""A durable mailbox and a persistent queue across a restart of the pool."""

from __future__ import annotations

import time

from jupyter_llm.pool.mailbox.sqlite import SqliteMailbox
from jupyter_llm.types import GenerationRequest, JobRecord, JobStatus, SamplingParams, Timings

from ..support import MODEL, make_config


def request(max_tokens: int = 5) -> GenerationRequest:
    return GenerationRequest(MODEL, prompt="keep me", params=SamplingParams(max_tokens=max_tokens))


def sqlite_config(tmp_path, persistence: bool):
    return make_config(
        params={"max_num_seqs": 1},
        queue={"backend": "sqlite" if persistence else "memory", "persistence": persistence},
        mailbox={"backend": "sqlite", "path": str(tmp_path / "mail.sqlite")},
    )


async def test_records_and_text_survive_a_restart(make_pool, tmp_path):
    config = sqlite_config(tmp_path, persistence=False)
    first = await make_pool(config)
    job = await first.submit(request())
    done = await first.wait(job.id)
    await first.stop()
    second = await make_pool(config)
    again = await second.get(job.id)
    assert again == done
    assert again.text == "keep me keep me keep"
    assert [r.id for r in await second.jobs()] == [job.id]
    replay = [e async for e in second.events(job.id)]
    assert len(replay) == 1 and replay[0].text == done.text and replay[0].terminal


async def test_queued_and_running_jobs_run_after_a_restart_with_persistence(make_pool, tmp_path):
    config = sqlite_config(tmp_path, persistence=True)
    first = await make_pool(config, step_delay=0.01, max_num_seqs=1)
    running = await first.submit(request(max_tokens=10_000))
    queued = [await first.submit(request(), user="ada") for _ in range(3)]
    await first.stop()  # drains for 0.5 s; the long job does not finish
    second = await make_pool(config, max_num_seqs=1)
    for job in (running, *queued[:1]):
        record = await second.wait(job.id)
        assert record.status is JobStatus.COMPLETED, record
    records = [await second.wait(job.id) for job in queued]
    assert [r.text for r in records] == ["keep me keep me keep"] * 3
    assert {r.user for r in records} == {"ada"}  # a recovered job keeps its owner
    assert records[0].timings.created_at == queued[0].timings.created_at


async def test_without_persistence_stopped_jobs_are_cancelled_with_a_reason(make_pool, tmp_path):
    config = sqlite_config(tmp_path, persistence=False)
    first = await make_pool(config, step_delay=0.01, max_num_seqs=1)
    running = await first.submit(request(max_tokens=10_000))
    queued = await first.submit(request())
    await first.stop()
    second = await make_pool(config)
    assert (await second.get(queued.id)).error == "the server stopped before this job ran"
    assert (await second.get(running.id)).error == "the server stopped while this job ran"
    assert (await second.get(running.id)).status is JobStatus.CANCELLED


async def test_jobs_left_unfinished_by_a_crash_are_failed_without_persistence(make_pool, tmp_path):
    path = tmp_path / "mail.sqlite"
    mailbox = SqliteMailbox(path)
    lost = JobRecord("lost", MODEL, JobStatus.RUNNING, Timings(time.time(), time.time()))
    mailbox.put(lost, request())
    await mailbox.close()
    pool = await make_pool(sqlite_config(tmp_path, persistence=False))
    record = await pool.get("lost")
    assert record.status is JobStatus.FAILED
    assert "restarted before this job finished (queue.persistence is off)" in record.error
    # Replayed from the mailbox, its terminal event still names the error it stands for.
    (replay,) = [e async for e in pool.events("lost")]
    assert (replay.status, replay.error_type) == (JobStatus.FAILED, record.error_type)
    assert replay.error_type is not None
    assert type(replay.failure(MODEL)) is type(record.failure())


async def test_a_crash_leaves_jobs_that_persistence_brings_back(make_pool, tmp_path):
    mailbox = SqliteMailbox(tmp_path / "mail.sqlite")
    mailbox.put(
        JobRecord("queued-before", MODEL, JobStatus.QUEUED, Timings(time.time())), request()
    )
    await mailbox.close()
    pool = await make_pool(sqlite_config(tmp_path, persistence=True))
    assert (await pool.wait("queued-before")).status is JobStatus.COMPLETED
