from __future__ import annotations

from jupyter_llm.pool.job import Job
from jupyter_llm.types import GenerationRequest, JobStatus, Logprob

PIECES = ["Hel", "lo", ", ", "wor", "ld"]


def finished_job(logprobs: bool = False) -> Job:
    job = Job("j", GenerationRequest("m", prompt="x"))
    job.start(worker=0)
    for i, piece in enumerate(PIECES):
        lp = (Logprob(piece, i, -0.5),) if logprobs else None
        job.add_tokens(piece, (i,), lp)
    job.finish(JobStatus.COMPLETED, "stop")
    return job


def test_a_finished_job_keeps_its_events_as_flat_arrays():
    job = finished_job()
    assert job.compacted and job.events == []
    assert job.event_count == 1 + len(PIECES) + 1  # running, tokens, terminal
    assert job.text == "Hello, world"


def test_replay_from_the_start_and_from_any_index():
    job = finished_job()
    whole = job.replay(-1)
    assert [e.text for e in whole] == ["Hello, world", ""]
    assert whole[0].token_ids == (0, 1, 2, 3, 4) and whole[0].index == 5
    assert whole[1].status is JobStatus.COMPLETED and whole[1].index == 6
    after_two = job.replay(2)  # events 0 (running), 1 "Hel", 2 "lo" were seen
    assert after_two[0].text == ", world" and after_two[0].token_ids == (2, 3, 4)
    assert [e.index for e in job.replay(5)] == [6]
    assert job.replay(6) == []


def test_jobs_with_logprobs_keep_every_event():
    job = finished_job(logprobs=True)
    assert not job.compacted and len(job.events) == job.event_count == 7
