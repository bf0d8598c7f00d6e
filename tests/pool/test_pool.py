"""The pool's policies, end to end over the fake engine (threads: milliseconds a test)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from jupyter_llm.engine.fake import FAIL_MARKER, fake_text
from jupyter_llm.errors import (
    InvalidRequest,
    JobTooLarge,
    ModelNotReady,
    QueueFull,
    UnknownJob,
    UnknownModel,
    UserLimitReached,
)
from jupyter_llm.types import GenerationRequest, JobStatus, Message, Priority, SamplingParams

from ..support import MODEL, make_config, until


def request(prompt: str = "one two three", max_tokens: int = 5, **kw) -> GenerationRequest:
    priority = kw.pop("priority", Priority.NORMAL)
    return GenerationRequest(
        MODEL, prompt=prompt, params=SamplingParams(max_tokens=max_tokens, **kw), priority=priority
    )


async def test_a_job_streams_its_tokens_and_lands_in_the_mailbox(make_pool):
    pool = await make_pool()
    accepted = await pool.submit(request("alpha beta", max_tokens=5))
    assert accepted.status in (JobStatus.QUEUED, JobStatus.RUNNING)
    events = [e async for e in pool.events(accepted.id)]
    assert [e.index for e in events] == list(range(len(events)))
    assert events[0].status is JobStatus.RUNNING and events[-1].status is JobStatus.COMPLETED
    text = "".join(e.text for e in events)
    assert text == "alpha beta alpha beta alpha"
    record = await pool.get(accepted.id)
    assert record.text == text
    assert record.finish_reason == "length"
    assert (record.usage.prompt_tokens, record.usage.completion_tokens) == (2, 5)
    assert (
        record.timings.started_at and record.timings.first_token_at and record.timings.finished_at
    )
    assert [r.id for r in await pool.jobs()] == [accepted.id]


async def test_model_defaults_fill_what_the_request_omits(make_pool):
    pool = await make_pool(make_config(params={"max_tokens": 3}))
    job = await pool.submit(GenerationRequest(MODEL, prompt="x y"))
    record = await pool.wait(job.id)
    assert record.usage.completion_tokens == 3


async def test_chat_messages_and_stop_strings(make_pool):
    pool = await make_pool()
    messages = (Message("system", "be brief"), Message("user", "red green blue"))
    job = await pool.submit(
        GenerationRequest(
            MODEL, messages=messages, params=SamplingParams(max_tokens=9, stop=("blue",))
        )
    )
    record = await pool.wait(job.id)
    assert record.text == "red green "
    assert record.finish_reason == "stop"


async def test_unknown_model_names_the_available_ones(make_pool):
    pool = await make_pool()
    with pytest.raises(UnknownModel, match="unknown model 'nope'; available models: fake"):
        await pool.submit(GenerationRequest("nope", prompt="x"))


async def test_unknown_job_is_a_clear_error(make_pool):
    pool = await make_pool()
    with pytest.raises(UnknownJob, match="no job with id 'missing'"):
        await pool.get("missing")
    with pytest.raises(UnknownJob):
        await pool.cancel("missing")


async def test_a_job_that_could_never_fit_is_refused_at_submit(make_pool):
    pool = await make_pool(make_config(limits={"max_units": 4}))
    with pytest.raises(JobTooLarge, match=r"needs 7 KV-cache units .* holds at most 4"):
        await pool.submit(request("a b c d", max_tokens=100))
    assert pool.stats().total.rejected == 1
    assert pool.stats().total.queued == 0


async def test_prompt_plus_max_tokens_beyond_the_context_is_refused(make_pool):
    pool = await make_pool(make_config(params={"max_model_len": 10}))
    with pytest.raises(InvalidRequest, match=r"prompt \(3 tokens\) plus max_tokens \(8\)"):
        await pool.submit(request(max_tokens=8))


async def test_full_queue_refuses_at_once_and_counts_it(make_pool):
    config = make_config(limits={"max_queue_depth": 2}, params={"max_num_seqs": 1})
    pool = await make_pool(config, step_delay=0.01, max_num_seqs=1)
    running = await pool.submit(request(max_tokens=200))
    await until(lambda: pool.stats().total.running == 1)
    waiting = [await pool.submit(request()) for _ in range(2)]
    with pytest.raises(QueueFull, match="queue of model 'fake' is full") as refused:
        await pool.submit(request())
    assert refused.value.retry_after >= 1
    stats = pool.stats().total
    assert (stats.queued, stats.rejected) == (2, 1)
    for job in (running, *waiting):
        await pool.cancel(job.id)


async def test_priorities_start_high_first_then_fifo(make_pool):
    pool = await make_pool(
        make_config(params={"max_num_seqs": 1}), step_delay=0.005, max_num_seqs=1
    )
    blocker = await pool.submit(request(max_tokens=20))
    await until(lambda: pool.stats().total.running == 1)
    order = [
        ("low", Priority.LOW),
        ("normal-1", Priority.NORMAL),
        ("high", Priority.HIGH),
        ("normal-2", Priority.NORMAL),
    ]
    ids = {name: (await pool.submit(request(max_tokens=2, priority=p))).id for name, p in order}
    records = {name: await pool.wait(job_id) for name, job_id in ids.items()}
    await pool.wait(blocker.id)
    started = sorted(records, key=lambda name: records[name].timings.started_at)
    assert started == ["high", "normal-1", "normal-2", "low"]


async def test_small_jobs_skip_ahead_but_the_head_is_not_starved(make_pool):
    # 10 units: a running job holds 7, the head needs 5, small jobs need 1 each.
    config = make_config(limits={"max_units": 10}, params={"max_num_seqs": 64})
    pool = await make_pool(config, skip_limit=2, step_delay=0.01)
    running = await pool.submit(request("w", max_tokens=100))  # (1 + 100) / 16 -> 7 units
    await until(lambda: pool.stats().total.running == 1)
    head = await pool.submit(request("w", max_tokens=70))  # 5 units: waits for room
    small = [await pool.submit(request("w", max_tokens=4)) for _ in range(4)]
    records = {job.id: await pool.wait(job.id) for job in (running, head, *small)}
    head_start = records[head.id].timings.started_at
    starts = [records[job.id].timings.started_at for job in small]
    assert starts[0] < head_start and starts[1] < head_start  # two skipped ahead
    assert starts[2] >= head_start and starts[3] >= head_start  # then the bound held
    assert records[running.id].timings.finished_at <= head_start + 0.05


async def test_a_job_waiting_past_timeout_expires(make_pool):
    config = make_config(limits={"timeout_secs": 0.2}, params={"max_num_seqs": 1})
    pool = await make_pool(config, step_delay=0.01, max_num_seqs=1)
    blocker = await pool.submit(request(max_tokens=100))
    waiting = await pool.submit(request())
    record = await pool.wait(waiting.id)
    assert record.status is JobStatus.EXPIRED and record.error_type == "JobExpired"
    assert "waited 0.2 s in the queue of model 'fake' without starting" in record.error
    assert pool.stats().total.expired == 1
    await pool.cancel(blocker.id)


async def test_cancel_a_queued_job_removes_it_at_once(make_pool):
    pool = await make_pool(make_config(params={"max_num_seqs": 1}), step_delay=0.01, max_num_seqs=1)
    blocker = await pool.submit(request(max_tokens=100))
    queued = await pool.submit(request())
    assert pool.stats().total.queued == 1
    record = await pool.cancel(queued.id)
    assert record.status is JobStatus.CANCELLED
    assert pool.stats().total.queued == 0
    assert (await pool.get(queued.id)).status is JobStatus.CANCELLED
    await pool.cancel(blocker.id)


async def test_cancel_a_running_job_gives_its_units_back_within_a_step(make_pool):
    pool = await make_pool(step_delay=0.05)
    job = await pool.submit(request(max_tokens=1000))
    await until(lambda: pool.stats().total.used_units > 0)
    record = await pool.cancel(job.id)
    assert record.status is JobStatus.CANCELLED
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await until(lambda: pool.stats().total.used_units == 0, timeout=2)
    assert loop.time() - t0 < 0.2  # one 50 ms step, with room for a slow machine
    assert pool.stats().total.cancelled == 1
    final = await pool.get(job.id)
    assert final.status is JobStatus.CANCELLED and final.finish_reason == "cancelled"
    assert (await pool.cancel(job.id)).status is JobStatus.CANCELLED  # cancelling again is fine


async def test_a_late_consumer_replays_and_resumes_from_an_index(make_pool):
    pool = await make_pool()
    job = await pool.submit(request("a b c", max_tokens=6))
    live = [e async for e in pool.events(job.id)]
    assert "".join(e.text for e in live) == fake_text(request("a b c"), 6)
    late = [e async for e in pool.events(job.id)]  # finished: compacted, replayed at once
    assert "".join(e.text for e in late) == "".join(e.text for e in live)
    assert late[-1] == live[-1]
    resumed = [e async for e in pool.events(job.id, after=3)]  # Last-Event-ID: 3
    assert "".join(e.text for e in resumed) == "".join(e.text for e in live[4:])
    assert [e.index for e in resumed] == [live[-2].index, live[-1].index]
    assert [e async for e in pool.events(job.id, after=live[-1].index)] == []


async def test_a_slow_consumer_never_holds_up_the_worker(make_pool):
    pool = await make_pool(step_delay=0.001)
    slow = await pool.submit(request(max_tokens=200))
    stream = pool.events(slow.id)
    await anext(stream)  # attached, then never reads again while the job runs
    record = await pool.wait(slow.id)
    assert record.status is JobStatus.COMPLETED
    rest = [e async for e in stream]
    assert "".join(e.text for e in rest) == record.text


async def test_an_engine_failure_fails_that_job_only(make_pool):
    pool = await make_pool()
    bad = await pool.submit(request(f"x {FAIL_MARKER}"))
    good = await pool.submit(request())
    failed, done = await pool.wait(bad.id), await pool.wait(good.id)
    assert failed.status is JobStatus.FAILED and "fake engine failed" in failed.error
    assert done.status is JobStatus.COMPLETED
    assert pool.stats().total.used_units == 0


async def test_jobs_submitted_while_loading_wait_and_then_run(make_pool):
    pool = await make_pool(wait_ready=False, load_delay=0.3)
    assert pool.models()[0].state == "loading"
    job = await pool.submit(request())
    assert job.status is JobStatus.QUEUED
    assert (await pool.wait(job.id)).status is JobStatus.COMPLETED
    assert pool.models()[0].state == "ready"


async def test_a_model_that_fails_to_load_fails_its_jobs_with_the_reason(make_pool):
    pool = await make_pool(wait_ready=False, load_delay=0.1, load_error="weights not found at /x")
    job = await pool.submit(request())
    record = await pool.wait(job.id)
    assert record.status is JobStatus.FAILED
    assert "failed to load: RuntimeError: weights not found at /x" in record.error
    assert record.error_type == "ModelNotReady"
    info = pool.models()[0]
    assert info.state == "error" and "weights not found" in info.error
    with pytest.raises(ModelNotReady, match="weights not found"):
        await pool.submit(request())


async def test_a_broken_model_does_not_take_the_others_down(make_pool):
    config = make_config(
        extra_models=[{"name": "remote", "backend": "openai", "base_url": "http://127.0.0.1:9/v1"}]
    )
    pool = await make_pool(config, wait_ready=False)
    await until(lambda: pool.models()[0].state == "ready")
    await until(lambda: pool.models()[1].state == "error")  # its upstream refuses
    assert (await pool.wait((await pool.submit(request())).id)).status is JobStatus.COMPLETED
    with pytest.raises(ModelNotReady) as refused:
        await pool.submit(GenerationRequest("remote", prompt="x"))
    assert str(refused.value).startswith(
        "model 'remote' is not available: unreachable: http://127.0.0.1:9/v1: "
    )


async def test_stats_count_every_outcome(make_pool):
    config = make_config(limits={"max_queue_depth": 1}, params={"max_num_seqs": 1})
    pool = await make_pool(config, step_delay=0.01, max_num_seqs=1)
    done = await pool.submit(request(max_tokens=3))
    await pool.wait(done.id)
    failed = await pool.submit(request(FAIL_MARKER))
    await pool.wait(failed.id)
    running = await pool.submit(request(max_tokens=500))
    await until(lambda: pool.stats().total.running == 1)
    queued = await pool.submit(request())
    with pytest.raises(QueueFull):
        await pool.submit(request())
    assert pool.stats().total.queued == 1
    await pool.cancel(queued.id)
    await pool.cancel(running.id)
    await until(lambda: pool.stats().total.used_units == 0)
    stats = pool.stats().total
    assert (stats.completed, stats.failed, stats.cancelled, stats.rejected) == (1, 1, 2, 1)
    assert (stats.running, stats.queued, stats.workers) == (0, 0, 1)
    assert pool.stats().models[MODEL] == stats


async def test_finished_records_leave_after_their_retention(make_pool):
    pool = await make_pool(make_config(mailbox={"retention_secs": 0.2}))
    job = await pool.submit(request(max_tokens=2))
    await pool.wait(job.id)
    await asyncio.sleep(0.5)
    with pytest.raises(UnknownJob):
        await pool.get(job.id)
    assert await pool.jobs() == []


# -- users --------------------------------------------------------------------------------


async def test_a_job_records_its_user_and_lists_filter_by_owner(make_pool):
    pool = await make_pool()
    ada = await pool.submit(request(max_tokens=1), user="ada")
    bob = await pool.submit(request(max_tokens=1), user="bob")
    anon = await pool.submit(request(max_tokens=1))
    assert (ada.user, bob.user, anon.user) == ("ada", "bob", None)
    assert (await pool.wait(ada.id)).user == "ada"
    await pool.wait(bob.id)
    await pool.wait(anon.id)
    assert [r.id for r in await pool.jobs(owner="ada")] == [ada.id]
    assert {r.id for r in await pool.jobs()} == {ada.id, bob.id, anon.id}


async def test_max_queued_per_user_refuses_that_user_only(make_pool):
    config = make_config(limits={"max_queued_per_user": 2}, params={"max_num_seqs": 1})
    pool = await make_pool(config, step_delay=0.01, max_num_seqs=1)
    running = await pool.submit(request(max_tokens=200), user="ada")
    await until(lambda: pool.stats().total.running == 1)
    waiting = [await pool.submit(request(), user="ada") for _ in range(2)]
    with pytest.raises(UserLimitReached, match="max_queued_per_user") as refused:
        await pool.submit(request(), user="ada")
    assert (refused.value.limit, refused.value.maximum, refused.value.user) == (
        "max_queued_per_user",
        2,
        "ada",
    )
    assert isinstance(refused.value, QueueFull) and refused.value.retry_after >= 1
    other = await pool.submit(request(), user="bob")  # the queue itself has room
    stats = pool.stats().total
    assert (stats.queued, stats.rejected) == (3, 1)
    for job in (running, *waiting, other):
        await pool.cancel(job.id)


async def test_max_running_per_user_holds_a_users_jobs_back_not_others(make_pool):
    config = make_config(limits={"max_running_per_user": 1}, params={"max_num_seqs": 4})
    pool = await make_pool(config, step_delay=0.005, max_num_seqs=4)
    ada = [await pool.submit(request(max_tokens=10), user="ada") for _ in range(3)]
    bob = await pool.submit(request(max_tokens=10), user="bob")
    records = [await pool.wait(job.id) for job in ada]
    bob_record = await pool.wait(bob.id)
    for before, after in itertools.pairwise(records):  # one at a time, in order
        assert after.timings.started_at >= before.timings.finished_at
    assert bob_record.timings.started_at < records[1].timings.started_at


async def test_the_next_slot_goes_to_the_user_with_the_fewest_running(make_pool):
    config = make_config(params={"max_num_seqs": 2})
    pool = await make_pool(config, step_delay=0.01, max_num_seqs=2)
    long = await pool.submit(request(max_tokens=60), user="ada")
    short = await pool.submit(request(max_tokens=3), user="ada")
    await until(lambda: pool.stats().total.running == 2)
    ada_waiting = [await pool.submit(request(max_tokens=3), user="ada") for _ in range(4)]
    bob = await pool.submit(request(max_tokens=3), user="bob")
    # ada's short job ends first: ada still runs one, bob none, so bob's job goes next
    done = await pool.wait(short.id)
    bob_record = await pool.wait(bob.id)
    ada_records = [await pool.wait(job.id) for job in ada_waiting]
    assert bob_record.timings.started_at >= done.timings.finished_at
    assert all(bob_record.timings.started_at < r.timings.started_at for r in ada_records)
    await pool.cancel(long.id)
