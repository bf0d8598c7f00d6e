"""The OpenAI-compatible routes, driven by the official ``openai`` client (sync and async)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import openai
import pytest

from ..support import until
from .client import LLMServer
from .conftest import MODEL

CHAT = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "tell me more"}]


async def test_models_lists_the_configured_models(openai_client: openai.AsyncOpenAI) -> None:
    models = await openai_client.models.list()
    assert [m.id for m in models.data] == [MODEL, "tight", "remote"]
    assert all(m.object == "model" and m.owned_by == "jupyter_llm" for m in models.data)


async def test_chat_completion(openai_client: openai.AsyncOpenAI, llm: LLMServer) -> None:
    reply = await openai_client.chat.completions.create(
        model=MODEL,
        messages=CHAT,
        max_tokens=3,
        temperature=0,  # type: ignore[arg-type]
    )
    assert reply.object == "chat.completion"
    assert reply.model == MODEL
    (choice,) = reply.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == "tell me more"
    assert choice.finish_reason == "length"
    assert choice.logprobs is None
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 3
    # The fake tokenizer: one token a word, two per message for the template.
    assert reply.usage.prompt_tokens == (2 + 2) + (3 + 2)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 3
    job_id = reply.id.removeprefix("chatcmpl-")
    assert (await llm.job(job_id))["text"] == "tell me more"


async def test_streamed_text_equals_the_whole_answer(openai_client: openai.AsyncOpenAI) -> None:
    params: dict[str, Any] = {"model": MODEL, "messages": CHAT, "max_tokens": 6, "temperature": 0}
    whole = await openai_client.chat.completions.create(**params)
    stream = await openai_client.chat.completions.create(
        **params, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    choices = [chunk.choices[0] for chunk in chunks if chunk.choices]
    assert choices[0].delta.role == "assistant"
    assert "".join(c.delta.content or "" for c in choices) == whole.choices[0].message.content
    finished = [c.finish_reason for c in choices if c.finish_reason is not None]
    assert finished == ["length"]  # exactly one chunk carries it
    assert choices[-1].finish_reason == "length"
    usage_chunks = [chunk for chunk in chunks if chunk.usage is not None]
    assert usage_chunks == [chunks[-1]]
    assert chunks[-1].choices == []
    assert chunks[-1].usage == whole.usage
    assert len({chunk.id for chunk in chunks}) == 1


async def test_stop_ends_with_finish_reason_stop(openai_client: openai.AsyncOpenAI) -> None:
    reply = await openai_client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "one two three four"}],
        max_tokens=8,
        stop="three",
    )
    assert reply.choices[0].message.content == "one two "
    assert reply.choices[0].finish_reason == "stop"


async def test_sync_client_in_a_thread(sync_openai_client: openai.OpenAI) -> None:
    def run() -> tuple[str | None, str]:
        whole = sync_openai_client.chat.completions.create(
            model=MODEL,
            messages=CHAT,
            max_completion_tokens=5,
            temperature=0,  # type: ignore[arg-type]
        )
        stream = sync_openai_client.chat.completions.create(
            model=MODEL,
            messages=CHAT,
            max_completion_tokens=5,
            temperature=0,
            stream=True,  # type: ignore[arg-type]
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        return whole.choices[0].message.content, text

    whole, streamed = await asyncio.to_thread(run)
    assert whole == streamed == "tell me more tell me"


async def test_text_completions_streaming_and_not(openai_client: openai.AsyncOpenAI) -> None:
    whole = await openai_client.completions.create(model=MODEL, prompt="a b c", max_tokens=4)
    assert whole.object == "text_completion"
    assert whole.choices[0].text == "a b c a"
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage is not None
    assert (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (3, 4)
    stream = await openai_client.completions.create(
        model=MODEL, prompt="a b c", max_tokens=4, stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(chunk.choices[0].text for chunk in chunks) == "a b c a"
    assert [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason] == ["length"]


async def test_n_choices_and_several_prompts(openai_client: openai.AsyncOpenAI) -> None:
    reply = await openai_client.completions.create(
        model=MODEL, prompt=["a", "b c"], max_tokens=2, n=2, seed=7
    )
    assert [(c.index, c.text) for c in reply.choices] == [
        (0, "a a"),
        (1, "a a"),
        (2, "b c"),
        (3, "b c"),
    ]
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == 1 + 2  # each prompt once
    assert reply.usage.completion_tokens == 4 * 2
    stream = await openai_client.chat.completions.create(
        model=MODEL, messages=CHAT, max_tokens=2, n=3, stream=True
    )
    texts = ["", "", ""]
    finishes = [0, 0, 0]
    async for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            finishes[choice.index] += choice.finish_reason is not None
    assert texts == ["tell me"] * 3
    assert finishes == [1, 1, 1]


async def test_logprobs_are_null_when_the_engine_gives_none(
    openai_client: openai.AsyncOpenAI,
) -> None:
    reply = await openai_client.chat.completions.create(
        model=MODEL, messages=CHAT, max_tokens=2, logprobs=True, top_logprobs=2
    )
    assert reply.choices[0].logprobs is None


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"logit_bias": {"a": 2}}, "logit_bias"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools[0]"),
        ({"response_format": {"type": "yaml"}}, "response_format"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"user": "me"}, "user"),
        ({"temperature": 5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"n": 0}, "n"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"top_logprobs": 2}, "top_logprobs"),  # without logprobs
        ({"stream_options": {"include_usage": True}}, "stream_options"),  # without stream
        ({"messages": [{"role": "user", "content": "x", "name": "a"}]}, "messages[0].name"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
        ({"messages": []}, "messages"),
    ],
)
async def test_a_bad_or_unsupported_parameter_is_a_400_naming_it(
    openai_client: openai.AsyncOpenAI, llm: LLMServer, extra: dict[str, Any], param: str
) -> None:
    body: dict[str, Any] = {"model": MODEL, "messages": CHAT, **extra}
    with pytest.raises(openai.BadRequestError) as caught:
        await openai_client.chat.completions.create(**body)
    assert caught.value.status_code == 400
    assert caught.value.param == param
    assert caught.value.type == "invalid_request_error"
    assert param in caught.value.message
    assert llm.pool.stats().total.running + llm.pool.stats().total.completed == 0


async def test_an_unknown_model_is_a_404(openai_client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await openai_client.chat.completions.create(model="nope", messages=CHAT)
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"


async def test_a_model_that_is_not_ready_is_a_503(
    openai_client: openai.AsyncOpenAI, llm: LLMServer
) -> None:
    await until(lambda: {m.name: m.state for m in llm.pool.models()}["remote"] == "error")
    for stream in (False, True):
        with pytest.raises(openai.InternalServerError) as caught:
            await openai_client.chat.completions.create(
                model="remote", messages=CHAT, stream=stream
            )
        assert caught.value.status_code == 503
        assert caught.value.code == "model_not_ready"


async def test_a_full_queue_is_a_429_with_retry_after(
    openai_client: openai.AsyncOpenAI, llm: LLMServer
) -> None:
    await llm.submit(model="tight", prompt="busy", max_tokens=300)
    await llm.submit(model="tight", prompt="waiting", max_tokens=1)
    with pytest.raises(openai.RateLimitError) as caught:
        await openai_client.completions.create(model="tight", prompt="x", stream=True)
    assert caught.value.status_code == 429
    assert int(caught.value.response.headers["Retry-After"]) >= 1
    assert caught.value.code == "queue_full"


async def test_a_job_that_expires_in_the_queue_is_a_504(
    openai_client: openai.AsyncOpenAI, llm: LLMServer
) -> None:
    llm.set_keepalive(5.0)  # the stream has sent nothing when the job expires
    busy = await llm.submit(model="tight", prompt="busy", max_tokens=300)  # runs for 3 s
    for stream in (False, True):
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as caught:
            await openai_client.completions.create(model="tight", prompt="x", stream=stream)
        assert caught.value.status_code == 504
        assert caught.value.code == "queue_timeout"
        assert time.monotonic() - started < 2  # tight's timeout_secs is 0.3
    assert (await llm.status())["models"]["tight"]["expired"] == 2
    await llm.request("DELETE", f"llm/api/jobs/{busy['id']}")


async def test_a_stream_kept_alive_in_the_queue_reports_expiry_as_its_last_event(
    openai_client: openai.AsyncOpenAI, llm: LLMServer
) -> None:
    await llm.submit(model="tight", prompt="busy", max_tokens=300)
    stream = await openai_client.completions.create(model="tight", prompt="x", stream=True)
    # keepalive_secs (0.1) < timeout_secs (0.3): the 200 went out with a keep-alive comment.
    assert stream.response.status_code == 200
    with pytest.raises(openai.APIError) as caught:
        async for _ in stream:
            pass
    assert "waited 0.3 s in the queue" in caught.value.message
    assert (await llm.status())["models"]["tight"]["expired"] == 1


async def test_a_lost_worker_is_a_503(openai_client: openai.AsyncOpenAI, llm: LLMServer) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        await openai_client.completions.create(model=MODEL, prompt="<<crash>>")
    assert caught.value.status_code == 503
    assert caught.value.code == "worker_lost"
    # The worker comes back and the model serves again.
    await until(lambda: llm.pool.models()[0].workers[0].state == "ready")
    reply = await openai_client.completions.create(model=MODEL, prompt="again", max_tokens=1)
    assert reply.choices[0].text == "again"


async def test_an_engine_failure_mid_stream_ends_the_stream_with_an_error(
    openai_client: openai.AsyncOpenAI,
) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        await openai_client.completions.create(model=MODEL, prompt="<<fail>>")
    assert caught.value.status_code == 500
    assert caught.value.code == "engine_error"
    stream = await openai_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "<<fail>>"}], stream=True
    )
    with pytest.raises(openai.APIError) as streamed:
        async for _ in stream:
            pass
    assert "fake engine failed" in streamed.value.message


async def test_a_client_that_leaves_mid_stream_cancels_its_job(
    openai_client: openai.AsyncOpenAI, llm: LLMServer
) -> None:
    stream = await openai_client.chat.completions.create(
        model=MODEL, messages=CHAT, max_tokens=1000, stream=True
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    await stream.close()
    job_id = chunk.id.removeprefix("chatcmpl-")
    await until(lambda: llm.pool.stats().total.cancelled == 1)
    record = await llm.job(job_id)
    assert record["status"] == "cancelled"
    assert record["usage"]["completion_tokens"] < 1000
    await until(lambda: llm.pool.stats().total.used_units == 0)


async def test_a_client_that_leaves_while_waiting_cancels_its_job(
    llm: LLMServer,
) -> None:
    async with llm.client(timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(
                "llm/v1/completions", json={"model": MODEL, "prompt": "x", "max_tokens": 1000}
            )
    await until(lambda: llm.pool.stats().total.cancelled == 1)
    await until(lambda: llm.pool.stats().total.used_units == 0)


async def test_twenty_clients_that_drop_leave_the_server_free(
    openai_client: openai.AsyncOpenAI, llm: LLMServer
) -> None:
    async def drop_after_half_a_second() -> int:
        stream = await openai_client.chat.completions.create(
            model=MODEL, messages=CHAT, max_tokens=2000, stream=True
        )
        received = 0
        deadline = time.monotonic() + 0.5
        async for _ in stream:
            received += 1
            if time.monotonic() > deadline:
                break
        await stream.close()
        return received

    received = await asyncio.gather(*(drop_after_half_a_second() for _ in range(20)))
    assert all(count > 1 for count in received), received  # each had started streaming
    started = time.monotonic()
    reply = await openai_client.chat.completions.create(model=MODEL, messages=CHAT, max_tokens=3)
    assert reply.choices[0].message.content == "tell me more"
    assert time.monotonic() - started < 1.0
    await until(lambda: llm.pool.stats().total.cancelled == 20, timeout=5)
    status = await llm.status()
    assert (status["used_units"], status["running"], status["queued"]) == (0, 0, 0)
    jobs = (await llm.request("GET", "llm/api/jobs")).json()["jobs"]
    assert sorted(j["status"] for j in jobs) == ["cancelled"] * 20 + ["completed"]
