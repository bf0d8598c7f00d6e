"""OpenAI-compatible routes under ``{base_url}llm/v1/``: ``models``, ``chat/completions``,
``completions``; streaming (SSE, ``data: [DONE]``) and not.

A request for n choices is n jobs. Status codes come from the one translator: a refusal at
submit (400, 404, 429, 503) and a job that expires (504) or loses its worker (503) before
the stream has started are real HTTP answers; after that, an error is the stream's last
event, as OpenAI sends it. A client that leaves, streaming or waiting, cancels its jobs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import JobFailed, LLMError
from ..pool import Pool
from ..types import JobRecord, JobStatus, Logprob, TokenEvent
from .base import LLMHandler
from .http_errors import translate
from .replies import Replies, models_list
from .schema import CompletionCall, parse_chat, parse_completion
from .sse import ClientGone, EventStream

__all__ = ["openai_handlers"]


class ModelListHandler(LLMHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        names = [m.name for m in self.pool.models()]
        self.write_json(models_list(names, self.llm.created))


class _CompletionsHandler(LLMHandler):
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
        replies = Replies(call, ids[0])
        self.write_json(replies.completion(records, [logprobs for _, logprobs in results]))

    async def _stream(self, pool: Pool, call: CompletionCall, ids: list[str]) -> None:
        replies = Replies(call, ids[0])
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
                    chunk = replies.event_chunk(index, event)
                    if chunk is not None:
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
