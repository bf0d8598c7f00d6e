"""Completion jobs in the pool: the reply cut to the block, the editor's stale job cancelled."""

from __future__ import annotations

import asyncio

from jupyter_llm.types import CompletionInput, GenerationRequest, JobStatus, SamplingParams

from ..support import MODEL, until


def completion(prefix: str, editor: str | None = None, max_tokens: int = 50) -> GenerationRequest:
    return GenerationRequest(
        MODEL,
        params=SamplingParams(max_tokens=max_tokens),
        completion=CompletionInput(prefix=prefix, language="python", editor=editor),
    )


async def test_the_reply_is_cut_at_the_end_of_the_block_and_its_units_come_back(make_pool):
    # The fake engine joins its script's words with spaces: a block, a blank line, more.
    script = ("return", "x\n\ndef", "other():", "pass")
    pool = await make_pool(script=script, step_delay=0.01)
    job = await pool.submit(completion("def f(x):\n    "))
    events = [event async for event in pool.events(job.id)]
    assert "".join(event.text for event in events) == "return x"
    record = await pool.get(job.id)
    assert (record.status, record.finish_reason, record.text) == (
        JobStatus.COMPLETED,
        "stop",
        "return x",
    )
    assert record.usage.completion_tokens < 4  # it stopped at the blank line, not at the end
    await until(lambda: pool.stats().total.used_units == 0)


async def test_an_editor_new_completion_cancels_its_old_one(make_pool):
    pool = await make_pool(step_delay=0.01)
    first, second = (
        await pool.submit(completion("a = ", editor="e", max_tokens=200)),
        await pool.submit(completion("a = 1", editor="e", max_tokens=2)),
    )
    assert (await pool.get(first.id)).status is JobStatus.CANCELLED
    assert (await pool.wait(second.id)).status is JobStatus.COMPLETED
    await until(lambda: pool.stats().total.used_units == 0)


async def test_two_completions_of_one_editor_priced_together_leave_only_the_later(make_pool):
    pool = await make_pool(step_delay=0.01)
    first, second = await asyncio.gather(
        pool.submit(completion("a = ", editor="e", max_tokens=200)),
        pool.submit(completion("a = 1", editor="e", max_tokens=2)),
    )
    assert (await pool.wait(first.id)).status is JobStatus.CANCELLED
    assert (await pool.wait(second.id)).status is JobStatus.COMPLETED
