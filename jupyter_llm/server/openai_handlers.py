"""OpenAI-compatible routes under ``{base_url}llm/v1/``: ``models``, ``chat/completions``,
``completions``; streaming (SSE, ``data: [DONE]``) and not.

A request for n choices is n jobs. Status codes come from the one translator: a refusal at
submit (400, 404, 429, 503) and a job that expires (504) or loses its worker (503) before
the stream has started are real HTTP answers; after that, an error is the stream's last
event, as OpenAI sends it. A client that leaves, streaming or waiting, cancels its jobs.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import JobFailed, LLMError, NotAuthenticated
from ..pool import Pool
from ..types import JobRecord, JobStatus, Logprob, TokenEvent
from .base import LLMHandler
from .http_errors import translate
from .replies import Replies, models_list
from .schema import CompletionCall, parse_chat, parse_completion
from .sse import ClientGone, EventStream

__all__ = ["openai_handlers"]


class _OpenAIHandler(LLMHandler):
    """An OpenAI route: an API client without the right key gets OpenAI's 401.

    A request that carries cookies (a browser) keeps Jupyter's rules, 403 and the XSRF
    check included. One without cookies holds no ambient credential a cross-site page could
    borrow, so it needs no XSRF token: its key alone decides.
    """

    def _api_client(self) -> bool:
        return "Cookie" not in self.request.headers

    def check_xsrf_cookie(self) -> None:
        if not self._api_client():
            super().check_xsrf_cookie()

    async def prepare(self) -> None:  # type: ignore[override]  # as APIHandler does
        try:
            result: Any = super().prepare()
            while inspect.isawaitable(result):  # web.authenticated may hand back a coroutine
                result = await result
        except web.HTTPError as exc:
            if exc.status_code == 403 and self.current_user is None and self._api_client():
                raise NotAuthenticated() from None
            raise
        if self.current_user is None and self._api_client():
            raise NotAuthenticated()


class ModelListHandler(_OpenAIHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        names = [m.name for m in self.pool.models()]
        self.write_json(models_list(names, self.llm.created))


class _CompletionsHandler(_OpenAIHandler):
    def parse(self, body: Mapping[str, Any]) -> CompletionCall:
        raise NotImplementedError

    @web.authenticated
    @authorized
    async def post(self) -> None:
        call = self.parse(self.read_json())
        pool = self.pool
        ids = await _submit(pool, call, self.user)
        try:
            if call.stream:
                await self._stream(pool, call, ids)
            else:
                await self._answer(pool, call, ids)
        finally:
            # Whatever ended this request early (the client left, a choice failed), its
            # jobs stop now and give their units back. Finished jobs are left as they are.
            for job_id in ids:
                await pool.cancel(job_id)

    def _tool_parser(self, call: CompletionCall) -> str:
        for model in self.pool.models():
            if model.name == call.model and model.tool_parser:
                return model.tool_parser
        return "hermes"

    async def _answer(self, pool: Pool, call: CompletionCall, ids: list[str]) -> None:
        collect = asyncio.ensure_future(asyncio.gather(*(_collect(pool, i) for i in ids)))
        await asyncio.wait((collect, self.gone), return_when=asyncio.FIRST_COMPLETED)
        if not collect.done():  # the client left: nobody to answer
            collect.cancel()
            return
        results = collect.result()
        records = [record for record, _ in results]
        for record in records:
            if record.status is not JobStatus.COMPLETED:
                raise record.failure() or JobFailed(record.id, record.status.value)
        replies = Replies(call, ids[0], tool_parser=self._tool_parser(call))
        self.write_json(replies.completion(records, [logprobs for _, logprobs in results]))

    async def _stream(self, pool: Pool, call: CompletionCall, ids: list[str]) -> None:
        replies = Replies(call, ids[0], tool_parser=self._tool_parser(call))
        stream = EventStream(self, self.gone, self.llm.keepalive_secs)

        async def relay() -> None:
            async with aclosing(_merge(pool, ids)) as events:
                async for index, event in events:
                    if event.terminal and event.status is not JobStatus.COMPLETED:
                        error = event.failure(call.model) or JobFailed(
                            event.job_id, event.status.value
                        )
                        if not stream.started:
                            raise error  # still a real status code: 504, 503...
                        await stream.send(json.dumps(translate(error).body()))
                        return
                    for chunk in replies.event_chunks(index, event):
                        await stream.send(json.dumps(chunk))
            if call.include_usage:
                records = [await pool.get(job_id) for job_id in ids]
                await stream.send(json.dumps(replies.usage_chunk(records)))
            await stream.send("[DONE]")

        try:
            await stream.run(relay())
        except ClientGone:
            return
        self.finish()


class ChatCompletionsHandler(_CompletionsHandler):
    def parse(self, body: Mapping[str, Any]) -> CompletionCall:
        return parse_chat(body)


class CompletionsHandler(_CompletionsHandler):
    def parse(self, body: Mapping[str, Any]) -> CompletionCall:
        return parse_completion(body)


async def _submit(pool: Pool, call: CompletionCall, user: str | None) -> list[str]:
    """Submit every choice's job, as ``user``'s; one refused means none runs."""
    ids: list[str] = []
    try:
        for request in call.requests:
            ids.append((await pool.submit(request, user=user)).id)
    except LLMError:
        for job_id in ids:
            await pool.cancel(job_id)
        raise
    return ids


async def _collect(pool: Pool, job_id: str) -> tuple[JobRecord, list[Logprob]]:
    """Wait for a job to end; its final record and the logprobs its events carried."""
    logprobs: list[Logprob] = []
    async for event in pool.events(job_id):
        if event.logprobs:
            logprobs.extend(event.logprobs)
    return await pool.get(job_id), logprobs


async def _merge(pool: Pool, ids: Sequence[str]) -> AsyncGenerator[tuple[int, TokenEvent], None]:
    """The events of several jobs as they come, each with its choice index."""
    if len(ids) == 1:
        async for event in pool.events(ids[0]):
            yield 0, event
        return
    queue: asyncio.Queue[tuple[int, TokenEvent] | None] = asyncio.Queue()

    async def pump(index: int, job_id: str) -> None:
        try:
            async for event in pool.events(job_id):
                queue.put_nowait((index, event))
        finally:
            queue.put_nowait(None)

    pumps = [asyncio.create_task(pump(i, job_id)) for i, job_id in enumerate(ids)]
    try:
        remaining = len(pumps)
        while remaining:
            item = await queue.get()
            if item is None:
                remaining -= 1
            else:
                yield item
    finally:
        for task in pumps:
            task.cancel()


openai_handlers: list[tuple[str, Any]] = [
    ("llm/v1/models", ModelListHandler),
    ("llm/v1/chat/completions", ChatCompletionsHandler),
    ("llm/v1/completions", CompletionsHandler),
]
