"""Request bodies the JSON parser cannot take, or that are too large to read: a 400 or 413
with OpenAI's error body that says what was wrong, on every POST route, never a 500; and the
server keeps serving."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from jupyter_llm.server.body import MAX_DEPTH

from .client import LLMServer
from .conftest import MODEL
from .live import record

ROUTES = {
    "llm/api/jobs": {"model": MODEL, "prompt": "a b c"},
    "llm/v1/chat/completions": {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
    "llm/v1/completions": {"model": MODEL, "prompt": "a b c"},
}
JSON = {"Content-Type": "application/json"}
CAP = 4 * 1024 * 1024  # LLMExtension.max_body_bytes, as shipped


async def post(client: httpx.AsyncClient, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    response = await client.post(path, content=body, headers=JSON)
    assert "Traceback" not in response.text
    error: dict[str, Any] = response.json()["error"]
    assert "\n" not in error["message"]
    return response.status_code, error


async def still_serving(client: httpx.AsyncClient) -> None:
    for path, body in ROUTES.items():
        response = await client.post(path, json={**body, "max_tokens": 2})
        assert response.status_code in (200, 202), response.text


@pytest.fixture
async def client(llm: LLMServer) -> AsyncIterator[httpx.AsyncClient]:
    async with llm.client() as client:
        yield client
        await still_serving(client)
    assert llm.pool.stats().total.failed == 0


@pytest.mark.parametrize("path", ROUTES)
async def test_100_000_levels_of_nesting_are_a_400_on_every_route(
    client: httpx.AsyncClient, path: str
) -> None:
    levels = 100_000
    for body in (b"[" * levels + b"]" * levels, b'{"a":' * levels + b"1" + b"}" * levels):
        status, error = await post(client, path, body)
        assert status == 400, error
        assert error["message"] == f"the request body is nested more than {MAX_DEPTH} levels deep"
        assert error["code"] == "invalid_value" and error["type"] == "invalid_request_error"
    record("body", case=f"{levels:,} levels of nesting", route=path, status=status)


@pytest.mark.parametrize("path", ROUTES)
async def test_nesting_the_parser_takes_but_no_route_needs_is_a_400(
    client: httpx.AsyncClient, path: str
) -> None:
    # 900 levels parse; an error message quoting such a value would then overflow the stack.
    deep = b"[" * 900 + b"]" * 900
    status, error = await post(client, path, b'{"model": "fake", "temperature": ' + deep + b"}")
    assert status == 400 and "nested more than 64 levels" in error["message"], error
    # At the limit, the body is read and its fields are judged as usual.
    inner = b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1)
    status, error = await post(client, path, b'{"model": "fake", "stop": ' + inner + b"}")
    assert status == 400 and "nested" not in error["message"], error


BAD_BODIES = [
    ("a key twice", b'{"model": "fake", "model": "tight"}', "the key 'model' appears twice"),
    (
        "a lone surrogate",
        b'{"model": "fake", "prompt": "x \\ud800 y"}',
        "a lone surrogate (\\ud800)",
    ),
    ("a lone surrogate in a key", b'{"\\udfff": 1}', "a lone surrogate (\\udfff)"),
    (
        "a surrogate encoded as UTF-8",
        b'{"model": "fake", "prompt": "\xed\xa0\x80"}',
        "a lone surrogate (\\ud800)",
    ),
    ("invalid UTF-8", b'{"prompt": "\xff\xfe"}', "not UTF-8 text (byte 0xff at position 12)"),
    ("a 5000-digit integer", b'{"max_tokens": ' + b"9" * 5000 + b"}", "more than 4300 digits"),
    ("half a body", b'{"model": "fa', "not valid JSON: Unterminated string"),
    ("a JSON string", b'"hello"', "must be a JSON object"),
]


@pytest.mark.parametrize("path", ROUTES)
async def test_bodies_the_parser_refuses_are_a_400_that_says_why(
    client: httpx.AsyncClient, path: str
) -> None:
    failures = []
    for name, body, says in BAD_BODIES:
        status, error = await post(client, path, body)
        record("body", case=name, route=path, status=status)
        if status != 400 or says not in error["message"]:
            failures.append(f"{name}: {status} {error['message']}")
    assert not failures, "\n".join(failures)


async def test_a_valid_surrogate_pair_is_a_character(client: httpx.AsyncClient) -> None:
    body = b'{"model": "fake", "prompt": "smile \\ud83d\\ude00", "max_tokens": 2}'
    response = await client.post("llm/api/jobs", content=body, headers=JSON)
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("path", ROUTES)
async def test_a_body_over_the_cap_is_a_413_before_it_is_parsed(
    client: httpx.AsyncClient, path: str
) -> None:
    big = {**ROUTES[path], "prompt": "w " * (CAP // 2)}
    big.pop("messages", None)
    started = time.perf_counter()
    response = await client.post(path, json=big)
    took = time.perf_counter() - started
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "request_too_large" and error["type"] == "invalid_request_error"
    assert error["limit"] == CAP and error["size"] > CAP
    assert f"is larger than this server reads ({CAP:,} bytes" in error["message"]
    assert took < 1, took
    record("body", case="4 MiB and more", route=path, status=413, seconds=round(took, 3))


async def test_a_chunked_body_over_the_cap_is_a_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"model": "fake", "prompt": "'
        for _ in range(5):
            yield b"w " * (512 * 1024)
        yield b'"}'

    response = await client.post("llm/api/jobs", content=chunks(), headers=JSON)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["size"] > CAP


async def test_a_body_at_the_cap_is_read(client: httpx.AsyncClient) -> None:
    head, tail = b'{"model": "fake", "max_tokens": 2, "prompt": "', b'"}'
    body = head + b"w" * (CAP - len(head) - len(tail)) + tail
    assert len(body) == CAP
    response = await client.post("llm/api/jobs", content=body, headers=JSON)
    assert response.status_code == 202, response.text
