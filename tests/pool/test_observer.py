from __future__ import annotations

import pytest

from jupyter_llm.engine.fake import FakeSpec
from jupyter_llm.errors import QueueFull
from jupyter_llm.pool import Pool, PoolObserver
from jupyter_llm.types import GenerationRequest, JobStatus, SamplingParams

from ..support import MODEL, make_config, until


class Recorder(PoolObserver):
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def job_rejected(self, model, reason, kind):
        self.calls.append(("rejected", model, reason))

    def job_started(self, model, queue_secs, kind):
        assert queue_secs >= 0
        self.calls.append(("started", model))

    def first_token(self, model, ttft_secs, kind):
        assert ttft_secs > 0
        self.calls.append(("first", model))

    def tokens(self, model, count, gap_secs, kind):
        self.calls.append(("tokens", count, gap_secs is None))

    def job_finished(self, model, status, completion_tokens, kind):
        self.calls.append(("finished", status, completion_tokens))


async def test_the_observer_sees_each_moment_of_a_job():
    recorder = Recorder()
    config = make_config(limits={"max_queue_depth": 1}, params={"max_num_seqs": 1})
    pool = Pool(
        config,
        engines=lambda m: FakeSpec(model=m.name, max_num_seqs=1, step_delay=0.01),
        worker_kind="thread",
        observer=recorder,
    )
    await pool.start()
    try:
        await until(lambda: pool.models()[0].state == "ready")
        job = await pool.submit(
            GenerationRequest(MODEL, prompt="a", params=SamplingParams(max_tokens=3))
        )
        await pool.submit(GenerationRequest(MODEL, prompt="b", params=SamplingParams(max_tokens=1)))
        with pytest.raises(QueueFull):
            await pool.submit(GenerationRequest(MODEL, prompt="c"))
        await pool.wait(job.id)
        await until(lambda: pool.stats().total.completed == 2)
    finally:
        await pool.stop()
    first_job = recorder.calls[: recorder.calls.index(("finished", JobStatus.COMPLETED, 3)) + 1]
    assert ("rejected", MODEL, "QueueFull") in recorder.calls
    assert [c for c in first_job if c[0] != "rejected"] == [
        ("started", MODEL),
        ("first", MODEL),
        ("tokens", 1, True),
        ("tokens", 1, False),
        ("tokens", 1, False),
        ("finished", JobStatus.COMPLETED, 3),
    ]
