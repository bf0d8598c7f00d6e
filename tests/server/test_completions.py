"""Inline completions through a real server: the completion kind of ``POST llm/api/jobs``."""

from __future__ import annotations

import pytest

from ..support import until
from .client import LLMServer
from .conftest import MODEL
from .test_metrics import scrape, value


async def test_a_completion_job_is_high_priority_with_a_short_default(llm: LLMServer) -> None:
    job = await llm.submit(model=MODEL, kind="completion", prefix="x = ", language="python")
    assert job["kind"] == "completion"
    assert job["priority"] == "high"
    await until(lambda: llm.pool.stats().total.completed == 1)
    record = await llm.job(job["id"])
    assert record["status"] == "completed"
    assert record["kind"] == "completion"
    assert record["usage"]["completion_tokens"] == 64  # the completion default, not the model's 8
    assert record["text"]
    assert "\n" not in record["text"] and "```" not in record["text"]


@pytest.mark.llm_config(fake={"fim": "starcoder"})
async def test_a_fim_model_gets_its_tokens_around_the_cursor(llm: LLMServer) -> None:
    job = await llm.submit(
        model=MODEL, kind="completion", prefix="a = 1", suffix="b = 2", max_tokens=3
    )
    await until(lambda: llm.pool.stats().total.completed == 1)
    # the fake engine echoes its prompt's words: the FIM prompt, as assembled
    assert (await llm.job(job["id"]))["text"] == "<fim_prefix>a = 1<fim_suffix>b"


async def test_a_new_completion_from_the_same_editor_cancels_the_old_one(llm: LLMServer) -> None:
    old = await llm.submit(
        model=MODEL, kind="completion", prefix="x = ", editor="cell-1", max_tokens=500
    )
    await until(lambda: llm.pool.stats().total.running == 1)
    other = await llm.submit(
        model=MODEL, kind="completion", prefix="y = ", editor="cell-2", max_tokens=500
    )
    new = await llm.submit(
        model=MODEL, kind="completion", prefix="x = 1", editor="cell-1", max_tokens=4
    )
    assert (await llm.job(old["id"]))["status"] == "cancelled"
    assert (await llm.job(other["id"]))["status"] in ("queued", "running")  # another editor's
    await until(lambda: llm.pool.stats().total.completed == 1)
    assert (await llm.job(new["id"]))["status"] == "completed"
    await llm.request("DELETE", f"llm/api/jobs/{other['id']}")


@pytest.mark.llm_config(tight={"parking_lot": {"limits": {"max_queue_depth": 10}}})
async def test_a_completion_starts_before_chat_jobs_that_wait(llm: LLMServer) -> None:
    running = await llm.submit(model="tight", prompt="long", max_tokens=500)
    await until(lambda: llm.pool.stats().models["tight"].running == 1)
    chat = await llm.submit(model="tight", prompt="chat", max_tokens=500)
    completion = await llm.submit(model="tight", kind="completion", prefix="x = ")
    await llm.request("DELETE", f"llm/api/jobs/{running['id']}")
    await until(lambda: llm.pool.stats().models["tight"].running == 1)
    assert (await llm.job(completion["id"]))["status"] in ("running", "completed")
    assert (await llm.job(chat["id"]))["status"] == "queued"
    await llm.request("DELETE", f"llm/api/jobs/{chat['id']}")


async def test_completions_are_counted_by_kind(llm: LLMServer) -> None:
    before = await scrape(llm)
    await llm.submit(model=MODEL, kind="completion", prefix="x = ", max_tokens=2)
    await until(lambda: llm.pool.stats().total.completed == 1)
    after = await scrape(llm)
    name = "jupyter_llm_jobs_finished_total"
    labels = {"model": MODEL, "status": "completed"}
    assert (
        value(after, name, **labels, kind="completion")
        - value(before, name, **labels, kind="completion")
        == 1
    )
    assert value(after, name, **labels, kind="generate") == value(
        before, name, **labels, kind="generate"
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"kind": "completion"}, "prefix"),
        ({"kind": "completion", "prefix": "x", "prompt": "y"}, "prompt"),
        ({"prompt": "y", "prefix": "x"}, "prefix"),
        ({"kind": "edit", "prompt": "y"}, "kind"),
        ({"kind": "completion", "prefix": "x", "stop_at": "never"}, "stop_at"),
        ({"kind": "completion", "prefix": "x", "context": "cell"}, "context"),
    ],
)
async def test_a_bad_completion_is_refused_naming_the_field(
    llm: LLMServer, body: dict[str, object], param: str
) -> None:
    response = await llm.request("POST", "llm/api/jobs", json={"model": MODEL, **body})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


async def test_the_job_list_filters_by_kind(llm: LLMServer) -> None:
    chat = await llm.submit(model=MODEL, prompt="a b", max_tokens=1)
    ghost = await llm.submit(model=MODEL, kind="completion", prefix="x = ", max_tokens=1)
    await until(lambda: llm.pool.stats().total.completed == 2)
    for kind, expected in (("completion", ghost), ("generate", chat)):
        listed = (await llm.request("GET", f"llm/api/jobs?kind={kind}")).json()["jobs"]
        assert [job["id"] for job in listed] == [expected["id"]]
    refused = await llm.request("GET", "llm/api/jobs?kind=edit")
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "kind"
