"""No route of the extension answers without Jupyter's auth: every verb of every handler."""

from __future__ import annotations

import re

import openai
import pytest
from tornado.web import RequestHandler

from jupyter_llm.server.app import LLMExtension

from .client import LLMServer
from .conftest import MODEL

VERBS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def routes(extension: LLMExtension) -> list[tuple[str, str]]:
    """(verb, path) for every verb each registered handler implements; ids filled in."""
    found = []
    for pattern, handler, *_ in extension.handlers:
        path = re.sub(r"\(\?P<\w+>[^)]*\)", "some-id", pattern)
        for verb in VERBS:
            if getattr(handler, verb.lower()) is not getattr(RequestHandler, verb.lower()):
                found.append((verb, path))
    return found


async def test_every_route_is_listed(llm_extension: LLMExtension) -> None:
    assert sorted(routes(llm_extension)) == sorted(
        [
            ("GET", "llm/api/models"),
            ("GET", "llm/api/status"),
            ("GET", "llm/api/jobs"),
            ("POST", "llm/api/jobs"),
            ("GET", "llm/api/jobs/some-id"),
            ("DELETE", "llm/api/jobs/some-id"),
            ("GET", "llm/api/jobs/some-id/events"),
            ("GET", "llm/v1/models"),
            ("POST", "llm/v1/chat/completions"),
            ("POST", "llm/v1/completions"),
        ]
    )


@pytest.mark.parametrize("credentials", ["none", "wrong token", "wrong bearer", "wrong query"])
async def test_no_route_answers_without_the_token(
    llm: LLMServer, llm_extension: LLMExtension, credentials: str
) -> None:
    job = await llm.submit(model=MODEL, prompt="private words", max_tokens=2)
    headers = {
        "none": {},
        "wrong token": {"Authorization": "token wrong"},
        "wrong bearer": {"Authorization": "Bearer wrong"},
        "wrong query": {},
    }[credentials]
    params = {"token": "wrong"} if credentials == "wrong query" else {}
    body = {"model": MODEL, "prompt": "x", "messages": [{"role": "user", "content": "x"}]}
    async with llm.client(token=None) as client:
        for verb, path in routes(llm_extension):
            path = path.replace("some-id", job["id"])
            response = await client.request(
                verb, path, headers=headers, params=params, json=body if verb == "POST" else None
            )
            assert response.status_code == 403, (verb, path, response.text)
            assert b"private" not in response.content
    assert llm.pool.stats().total.completed + llm.pool.stats().total.running == 1  # only ours


async def test_the_token_opens_every_route(llm: LLMServer, llm_extension: LLMExtension) -> None:
    job = await llm.submit(model=MODEL, prompt="x", max_tokens=1)
    async with llm.client() as client:
        for verb, path in routes(llm_extension):
            body = {"model": MODEL, "prompt": "x", "max_tokens": 1}
            if path.endswith("chat/completions"):
                body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
            response = await client.request(
                verb,
                path.replace("some-id", job["id"]),
                json=body if verb == "POST" else None,
            )
            assert response.status_code in (200, 202), (verb, path, response.text)


async def test_the_openai_client_needs_the_jupyter_token(llm: LLMServer) -> None:
    good = openai.AsyncOpenAI(base_url=llm.v1, api_key=llm.token, max_retries=0)
    bad = openai.AsyncOpenAI(base_url=llm.v1, api_key="not-the-token", max_retries=0)
    try:
        assert (await good.models.list()).data[0].id == MODEL
        with pytest.raises(openai.PermissionDeniedError):
            await bad.models.list()
        with pytest.raises(openai.PermissionDeniedError):
            await bad.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
            )
    finally:
        await good.close()
        await bad.close()
    assert llm.pool.stats().total.completed + llm.pool.stats().total.running == 0
