"""The bad-input matrix over HTTP: every case is a 4xx whose message names the fault, never a
500 or a traceback, and the server keeps serving after all of them.

Magics and models.yaml have their own matrices (tests/kernel/test_bad_magics.py,
tests/test_bad_config.py); ``CASES`` here are the HTTP ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from .client import LLMServer
from .conftest import MODEL
from .live import record

CHAT = "llm/v1/chat/completions"
TEXT = "llm/v1/completions"
JOBS = "llm/api/jobs"
USER = [{"role": "user", "content": "hello there"}]


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    says: str  # the message names the fault with this
    body: Any = None  # a dict or list is sent as JSON; bytes as they are
    headers: dict[str, str] = field(default_factory=dict)
    param: str | None = None  # the error's param, where one parameter is at fault


def job(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "prompt": "a b c", **fields}


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": USER, **fields}


def text(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "prompt": "a b c", **fields}


# JSON that Python's parser takes but no range admits.
NAN = b'{"model": "fake", "prompt": "x", "temperature": NaN}'
HUGE = b'{"model": "fake", "messages": [{"role": "user", "content": "x"}], "temperature": 1e999}'

CASES = [
    # -- bodies and types
    Case("not JSON", "POST", JOBS, 400, "not valid JSON", b'{"model": '),
    Case("JSON array", "POST", JOBS, 400, "must be a JSON object", [1, 2]),
    Case("empty body", "POST", CHAT, 400, "must be a JSON object", b""),
    Case("invalid UTF-8", "POST", JOBS, 400, "not valid JSON", b'{"prompt": "\xff\xfe"}'),
    Case(
        "form content type",
        "POST",
        JOBS,
        415,
        "must be JSON",
        b"model=fake&prompt=x",
        {"Content-Type": "application/x-www-form-urlencoded"},
    ),
    Case("no model", "POST", JOBS, 400, "model: required", {"prompt": "x"}, param="model"),
    Case("model a number", "POST", CHAT, 400, "model: required", chat(model=7), param="model"),
    Case("unknown model", "POST", JOBS, 404, "'nope'", job(model="nope"), param="model"),
    Case("unknown model (OpenAI)", "POST", CHAT, 404, "'nope'", chat(model="nope")),
    Case("neither prompt nor messages", "POST", JOBS, 400, "exactly one of", {"model": MODEL}),
    Case("prompt and messages", "POST", JOBS, 400, "exactly one of", job(messages=USER)),
    Case("prompt a number", "POST", JOBS, 400, "prompt: expected a string", job(prompt=5)),
    Case("unknown field", "POST", JOBS, 400, "'colour'", job(colour="red"), param="colour"),
    Case(
        "unknown OpenAI field",
        "POST",
        CHAT,
        400,
        "'functions'",
        chat(functions=[]),
        param="functions",
    ),
    Case("params not an object", "POST", JOBS, 400, "params: expected an object", job(params=3)),
    Case("given twice", "POST", JOBS, 400, "both", job(top_k=2, params={"top_k": 3})),
    # -- ranges and huge numbers
    Case("max_tokens 0", "POST", JOBS, 400, "max_tokens", job(max_tokens=0), param="max_tokens"),
    Case("max_tokens a string", "POST", CHAT, 400, "max_tokens", chat(max_tokens="9")),
    Case("max_tokens 1e30", "POST", JOBS, 400, "max_tokens", job(max_tokens=10**30)),
    Case("temperature -1", "POST", JOBS, 400, "temperature", job(temperature=-1)),
    Case("temperature 2.5", "POST", CHAT, 400, "temperature", chat(temperature=2.5)),
    Case("temperature NaN", "POST", JOBS, 400, "temperature", NAN),
    Case("temperature 1e999", "POST", CHAT, 400, "temperature", HUGE),
    Case("top_p 0", "POST", JOBS, 400, "top_p", job(top_p=0), param="top_p"),
    Case("top_p 1.5", "POST", TEXT, 400, "top_p", text(top_p=1.5)),
    Case("top_k -1", "POST", JOBS, 400, "top_k", job(top_k=-1)),
    Case("top_k 2.5", "POST", CHAT, 400, "top_k", chat(top_k=2.5)),
    Case("min_p 2", "POST", JOBS, 400, "min_p", job(min_p=2)),
    Case("presence_penalty 3", "POST", CHAT, 400, "presence_penalty", chat(presence_penalty=3)),
    Case(
        "frequency_penalty -9", "POST", TEXT, 400, "frequency_penalty", text(frequency_penalty=-9)
    ),
    Case(
        "repetition_penalty 0", "POST", JOBS, 400, "repetition_penalty", job(repetition_penalty=0)
    ),
    Case("17 stop strings", "POST", CHAT, 400, "stop", chat(stop=[str(i) for i in range(17)])),
    Case("empty stop string", "POST", JOBS, 400, "stop", job(stop=[""])),
    Case("negative stop token", "POST", JOBS, 400, "stop_token_ids", job(stop_token_ids=[-1])),
    Case("seed 2**64", "POST", CHAT, 400, "seed", chat(seed=2**64), param="seed"),
    Case("seed a string", "POST", JOBS, 400, "seed", job(seed="abc")),
    Case("logprobs a string", "POST", CHAT, 400, "logprobs", chat(logprobs="yes")),
    Case(
        "top_logprobs 21", "POST", CHAT, 400, "top_logprobs", chat(logprobs=True, top_logprobs=21)
    ),
    Case("top_logprobs alone", "POST", CHAT, 400, "only with logprobs", chat(top_logprobs=2)),
    Case("priority urgent", "POST", JOBS, 400, "priority", job(priority="urgent")),
    Case("ignore_eos a string", "POST", JOBS, 400, "ignore_eos", job(ignore_eos="no")),
    Case("n 0", "POST", CHAT, 400, "n: expected an integer from 1", chat(n=0), param="n"),
    Case("n 1000", "POST", TEXT, 400, "n: expected an integer from 1", text(n=1000)),
    Case("stream a string", "POST", CHAT, 400, "stream", chat(stream="yes")),
    Case("stream_options alone", "POST", CHAT, 400, "only with stream", chat(stream_options={})),
    Case(
        "two max tokens",
        "POST",
        CHAT,
        400,
        "not both",
        chat(max_tokens=3, max_completion_tokens=4),
    ),
    # -- messages and prompts
    Case(
        "messages empty",
        "POST",
        CHAT,
        400,
        "messages: expected a non-empty list",
        chat(messages=[]),
    ),
    Case("no messages", "POST", CHAT, 400, "messages: required", {"model": MODEL}),
    Case(
        "role function",
        "POST",
        CHAT,
        400,
        "use tool",
        chat(messages=[{"role": "function", "content": "x"}]),
    ),
    Case(
        "role an object",
        "POST",
        CHAT,
        400,
        "messages[0].role",
        chat(messages=[{"role": {}, "content": "x"}]),
    ),
    Case(
        "image part",
        "POST",
        CHAT,
        400,
        "'image_url' parts",
        chat(messages=[{"role": "user", "content": [{"type": "image_url"}]}]),
    ),
    Case("token-id prompt", "POST", TEXT, 400, "token-id prompts", text(prompt=[1, 2, 3])),
    Case("echo", "POST", TEXT, 400, "echo", text(echo=True), param="echo"),
    Case("suffix", "POST", TEXT, 400, "suffix", text(suffix="end")),
    Case("best_of", "POST", TEXT, 400, "best_of", text(best_of=3)),
    Case("completion logprobs 6", "POST", TEXT, 400, "logprobs", text(logprobs=6)),
    Case(
        "prompt too long",
        "POST",
        JOBS,
        400,
        "the prompt (60 tokens) plus max_tokens (8) exceeds the context of model 'short' (64",
        {"model": "short", "prompt": "word " * 60, "max_tokens": 8},
        param="max_tokens",
    ),
    Case(
        "prompt longer than the context",
        "POST",
        JOBS,
        400,
        "the prompt (at least 70 tokens) exceeds the context of model 'short' (64 tokens)",
        {"model": "short", "prompt": "word " * 70, "max_tokens": 8},
        param="prompt",
    ),
    Case(
        "huge body",
        "POST",
        CHAT,
        400,
        "exceeds the context",
        chat(messages=[{"role": "user", "content": "w " * 1_500_000}]),
    ),
    # -- ids, headers, queries, verbs, states
    Case("unknown job", "GET", f"{JOBS}/0123456789abcdef", 404, "no job with id"),
    Case("unknown job, odd id", "GET", f"{JOBS}/%C3%BC%20x", 404, "no job with id"),
    Case("cancel unknown job", "DELETE", f"{JOBS}/nope", 404, "no job with id 'nope'"),
    Case("events of unknown job", "GET", f"{JOBS}/nope/events", 404, "no job with id"),
    Case(
        "Last-Event-ID not a number",
        "GET",
        f"{JOBS}/JOB/events",
        400,
        "Last-Event-ID",
        headers={"Last-Event-ID": "abc"},
    ),
    Case(
        "Last-Event-ID -5",
        "GET",
        f"{JOBS}/JOB/events",
        400,
        "Last-Event-ID",
        headers={"Last-Event-ID": "-5"},
    ),
    Case("limit 0", "GET", f"{JOBS}?limit=0", 400, "limit: expected an integer from 1 to 1000"),
    Case("limit a word", "GET", f"{JOBS}?limit=ten", 400, "limit"),
    Case("limit huge", "GET", f"{JOBS}?limit=99999999999999999999", 400, "limit"),
    Case("status bogus", "GET", f"{JOBS}?status=bogus", 400, "status must be one of"),
    Case("PUT a job", "PUT", f"{JOBS}/JOB", 405, "Method Not Allowed", b"{}"),
    Case("model not ready", "POST", CHAT, 503, "remote", chat(model="remote")),
]

SHORT = {"short": {"backend": "fake", "params": {"max_tokens": 8, "max_model_len": 64}}}


def test_the_matrix_holds_forty_distinct_cases() -> None:
    assert len({case.name for case in CASES}) == len(CASES) >= 40


@pytest.mark.llm_config(**SHORT)
async def test_every_bad_input_is_a_clear_4xx_and_the_server_keeps_serving(
    llm: LLMServer,
) -> None:
    target = await llm.submit(model=MODEL, prompt="a b", max_tokens=2)
    failures = []
    async with llm.client() as client:
        for case in CASES:
            path = case.path.replace("JOB", target["id"])
            kwargs: dict[str, Any] = {"headers": dict(case.headers)}
            if isinstance(case.body, bytes):
                kwargs["content"] = case.body
                kwargs["headers"].setdefault("Content-Type", "application/json")
            elif case.body is not None:
                kwargs["json"] = case.body
            response = await client.request(case.method, path, **kwargs)
            try:
                assert response.status_code == case.status, response.text
                error = response.json()["error"]
                assert case.says in error["message"], error["message"]
                assert "\n" not in error["message"] and "Traceback" not in response.text
                if case.param is not None:
                    assert error["param"] == case.param, error
            except (AssertionError, ValueError) as exc:
                failures.append(f"{case.name}: {exc}")
        assert not failures, "\n".join(failures)
        # Still serving: a normal request right after, and nothing left running.
        reply = await client.post(CHAT, json=chat(max_tokens=2))
        assert reply.status_code == 200, reply.text
    assert llm.pool.stats().total.failed == 0
    record("bad input over HTTP", cases=len(CASES), clear_4xx=len(CASES) - len(failures))


@pytest.mark.llm_config(tight={"parking_lot": {"limits": {"max_queue_depth": 1}}})
async def test_a_full_queue_is_a_429_with_retry_after(llm: LLMServer) -> None:
    await llm.submit(model="tight", prompt="long " * 5, max_tokens=200)
    await llm.submit(model="tight", prompt="wait", max_tokens=1)
    response = await llm.request("POST", CHAT, json=chat(model="tight"))
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert "queue" in json.loads(response.text)["error"]["message"]
