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
            ("GET", "llm/api/openapi.json"),
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
            if path.startswith("llm/v1/"):  # OpenAI clients expect OpenAI's answer
                assert response.status_code == 401, (verb, path, response.text)
                assert response.json()["error"]["code"] == "invalid_api_key"
                assert response.headers["WWW-Authenticate"] == "Bearer"
            else:
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
        with pytest.raises(openai.AuthenticationError) as caught:
            await bad.models.list()
        assert caught.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            await bad.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
            )
    finally:
        await good.close()
        await bad.close()
    assert llm.pool.stats().total.completed + llm.pool.stats().total.running == 0


async def cookie_session(llm: LLMServer) -> tuple[dict[str, str], str]:
    """A browser's credentials: the login cookie (as the token's first use sets it) and the
    ``_xsrf`` cookie that Jupyter's pages set, with its value for ``X-XSRFToken``."""
    async with llm.client() as client:
        response = await client.get("llm/api/status")
        assert response.status_code == 200
        cookies = dict(response.cookies)
    async with llm.client(token=None) as client:
        page = await client.get("login")  # the login form carries the XSRF cookie
        assert page.status_code == 200
        cookies.update(page.cookies)
    assert any(name.startswith("username-") for name in cookies), cookies
    return cookies, cookies["_xsrf"]


async def test_a_cookie_alone_reads_but_does_not_write(
    llm: LLMServer, llm_extension: LLMExtension
) -> None:
    """A cross-site page can make the browser send the cookie, never the XSRF header: so a
    cookie-authenticated POST or DELETE without ``X-XSRFToken`` is refused with 403."""
    job = await llm.submit(model=MODEL, prompt="private words", max_tokens=2)
    cookies, _ = await cookie_session(llm)
    submitted = llm.pool.stats().total
    async with llm.client(token=None, cookies=cookies) as client:
        for verb, path in routes(llm_extension):
            path = path.replace("some-id", job["id"])
            body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
            response = await client.request(verb, path, json=body if verb == "POST" else None)
            if verb == "GET":
                assert response.status_code == 200, (verb, path, response.text)
                continue
            assert response.status_code == 403, (verb, path, response.text)
            assert "_xsrf" in response.json()["error"]["message"]
            # A wrong token is no better than none.
            response = await client.request(
                verb,
                path,
                headers={"X-XSRFToken": "2|00000000|0000|1"},
                json=body if verb == "POST" else None,
            )
            assert response.status_code == 403, (verb, path, response.text)
    after = llm.pool.stats().total
    assert (after.completed + after.running + after.queued + after.cancelled) == (
        submitted.completed + submitted.running + submitted.queued + submitted.cancelled
    )
    assert (await llm.job(job["id"]))["status"] != "cancelled"


async def test_a_cookie_with_its_xsrf_token_writes(llm: LLMServer) -> None:
    cookies, xsrf = await cookie_session(llm)
    async with llm.client(token=None, cookies=cookies) as client:
        headers = {"X-XSRFToken": xsrf}
        response = await client.post(
            "llm/api/jobs",
            headers=headers,
            json={"model": MODEL, "prompt": "a b c d e f g h", "max_tokens": 8},
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        response = await client.delete(f"llm/api/jobs/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        response = await client.post(
            "llm/v1/chat/completions",
            headers=headers,
            json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]},
        )
        assert response.status_code == 200, response.text


async def test_token_auth_needs_no_xsrf_token(llm: LLMServer) -> None:
    """Scripts and OpenAI clients send the token, which a cross-site page cannot know."""
    async with llm.client() as client:
        response = await client.post(
            "llm/api/jobs", json={"model": MODEL, "prompt": "x", "max_tokens": 1}
        )
        assert response.status_code == 202, response.text
        assert (await client.delete(f"llm/api/jobs/{response.json()['id']}")).status_code == 200
