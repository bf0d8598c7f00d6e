"""Event streams as a client sees them: headers, one flush per event, keep-alive comments."""

from __future__ import annotations

import json
import statistics
import time

import pytest

from .client import LLMServer, read_events
from .conftest import MODEL

SSE_HEADERS = {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}


def stream_requests(job_id: str) -> dict[str, tuple[str, str, dict[str, object]]]:
    return {
        "rest": ("GET", f"llm/api/jobs/{job_id}/events", {}),
        "chat": (
            "POST",
            "llm/v1/chat/completions",
            {
                "json": {
                    "model": MODEL,
                    "messages": [{"role": "user", "content": "a"}],
                    "stream": True,
                }
            },
        ),
        "text": (
            "POST",
            "llm/v1/completions",
            {"json": {"model": MODEL, "prompt": "a", "stream": True, "max_tokens": 100}},
        ),
    }


@pytest.mark.parametrize("kind", ["rest", "chat", "text"])
async def test_streams_carry_the_event_stream_headers(llm: LLMServer, kind: str) -> None:
    job = await llm.submit(model=MODEL, prompt="a b", max_tokens=100)
    method, path, kwargs = stream_requests(job["id"])[kind]
    async with llm.stream(method, path, **kwargs) as (response, events):
        assert response.status_code == 200
        assert {name: response.headers[name] for name in SSE_HEADERS} == SSE_HEADERS
        first = await anext(events)
        assert first.data


@pytest.mark.parametrize("kind", ["rest", "text"])
async def test_each_event_is_flushed_as_it_happens(llm: LLMServer, kind: str) -> None:
    job = await llm.submit(model=MODEL, prompt="a", max_tokens=100)  # about 1 s of tokens
    method, path, kwargs = stream_requests(job["id"])[kind]
    started = time.monotonic()
    async with llm.stream(method, path, **kwargs) as (_, events):
        async for event in events:
            data = event.json()
            if data["text"] if kind == "rest" else data["choices"][0]["text"]:
                break  # the first token, long before the last
    assert time.monotonic() - started < 0.5
    assert llm.pool.stats().total.running >= 1  # the jobs are far from done


@pytest.mark.llm_config(single={"backend": "fake", "params": {"max_num_seqs": 1}})
async def test_a_queued_job_stream_gets_keep_alive_comments(llm: LLMServer) -> None:
    """The busy job runs until the waiting stream has had a keep-alive (30 s of tokens
    otherwise), so the comment is due however slowly the stream opens."""
    busy = await llm.submit(model="single", prompt="busy", max_tokens=3000, ignore_eos=True)
    waiting = await llm.submit(model="single", prompt="next", max_tokens=1)
    comments: list[str] = []
    async with llm.stream("GET", f"llm/api/jobs/{waiting['id']}/events") as (response, _):
        lines = response.aiter_lines()
        async for line in lines:
            if line.startswith(":"):
                comments.append(line[1:].strip())
                if comments[-1] == "keep-alive":
                    break
        assert (await llm.request("DELETE", f"llm/api/jobs/{busy['id']}")).status_code == 200
        rest = [line async for line in lines]
    assert comments[-1] == "keep-alive"  # keepalive_secs is 0.1 in these tests
    last = json.loads(next(line for line in reversed(rest) if line.startswith("data:"))[5:])
    assert last["status"] == "completed"
    assert (await llm.job(busy["id"]))["status"] == "cancelled"


async def test_an_openai_stream_waiting_in_the_queue_gets_keep_alive_comments(
    llm: LLMServer,
) -> None:
    await llm.submit(model="tight", prompt="busy", max_tokens=20)
    body = {"model": "tight", "prompt": "next", "max_tokens": 1, "stream": True}
    events = await llm.events("POST", "llm/v1/completions", json=body)
    assert "keep-alive" in events[0].comments
    assert events[0].json()["choices"][0]["text"] == "next"
    assert events[-1].data == "[DONE]"


async def test_each_token_reaches_the_client_at_once(llm: LLMServer) -> None:
    """No event waits for the one before it to be acknowledged (Nagle + delayed ACK: 40 ms)."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "a b c"}],
        "max_tokens": 3,
        "stream": True,
    }
    gaps = []
    async with llm.client() as client:  # one connection, as a client reuses it
        for _ in range(8):
            received = []
            async with client.stream("POST", "llm/v1/chat/completions", json=body) as response:
                async for event in read_events(response):  # to the end: the connection stays
                    if event.data != "[DONE]" and event.json()["choices"][0]["delta"].get(
                        "content"
                    ):
                        received.append((time.time(), event.json()["id"]))
            first, chunk_id = received[0]
            record = await llm.job(chunk_id.removeprefix("chatcmpl-"))
            gaps.append(first - record["timings"]["first_token_at"])
    assert statistics.median(gaps) < 0.015, gaps
