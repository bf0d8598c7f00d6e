"""A remote model driven from the pool's own loop (``pool/direct.py``): no worker, no pipe.

The upstream is a small OpenAI-style HTTP/1.1 server on 127.0.0.1 in this test's loop
(``/v1/models`` and streaming ``/v1/completions``: one word every ``delay`` seconds), which
records its connections, the requests on them and when a client hung up.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from jupyter_llm.pool.pool import Pool
from jupyter_llm.types import GenerationRequest, JobStatus, SamplingParams

from ..support import make_config, until


@dataclass
class Upstream:
    """What the server saw: requests per connection, and how many connections hung up."""

    delay: float = 0.01
    connections: list[list[str]] = field(default_factory=list)
    hung_up: int = 0
    server: asyncio.Server | None = None
    open: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        return int(self.server.sockets[0].getsockname()[1])

    async def kill(self) -> None:
        """Go away at once: stop listening and drop every open connection."""
        assert self.server is not None
        if not self.server.is_serving():
            return
        self.server.close()
        for writer in list(self.open):
            writer.transport.abort()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen: list[str] = []
        self.connections.append(seen)
        self.open.add(writer)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                line, *headers = head.decode().split("\r\n")
                length = next(
                    (
                        int(h.split(":")[1])
                        for h in headers
                        if h.lower().startswith("content-length")
                    ),
                    0,
                )
                body = json.loads(await reader.readexactly(length)) if length else {}
                seen.append(line.split()[1])
                if line.startswith("GET /v1/models"):
                    await _answer(writer, json.dumps({"data": [{"id": "up"}]}).encode())
                else:
                    await self._stream(writer, body)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.hung_up += 1
        finally:
            self.open.discard(writer)
            writer.close()

    async def _stream(self, writer: asyncio.StreamWriter, body: dict[str, object]) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        count = int(str(body["max_tokens"]))
        events: list[dict[str, object] | str] = [
            {"choices": [{"index": 0, "text": f"w{i} ", "finish_reason": None}]}
            for i in range(count)
        ]
        events.append({"choices": [{"index": 0, "text": "", "finish_reason": "length"}]})
        events.append({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": count}})
        for event in events:
            _chunk(writer, f"data: {json.dumps(event)}\n\n")
            await writer.drain()
            await asyncio.sleep(self.delay)
        _chunk(writer, "data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")  # the body's end
        await writer.drain()


def _chunk(writer: asyncio.StreamWriter, text: str) -> None:
    data = text.encode()
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))


async def _answer(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(data), data)
    )
    await writer.drain()


@pytest.fixture
async def upstreams() -> AsyncIterator[Callable[..., Awaitable[tuple[Upstream, int]]]]:
    """``await upstreams(delay=..., port=...)``: a started upstream and its port; all killed."""
    started: list[Upstream] = []

    async def start(delay: float = 0.01, port: int = 0) -> tuple[Upstream, int]:
        upstream = Upstream(delay)
        started.append(upstream)
        return upstream, await upstream.start(port)

    yield start
    for upstream in started:
        await upstream.kill()


async def remote_pool(make_pool, port: int) -> Pool:  # type: ignore[no-untyped-def]
    remote = {
        "name": "r",
        "backend": "openai",
        "base_url": f"http://127.0.0.1:{port}/v1",
        "remote_model": "up",
        "params": {"max_num_seqs": 4, "max_tokens": 3},
    }
    pool: Pool = await make_pool(make_config(extra_models=[remote]), wait_ready=False)
    await until(lambda: pool.models()[1].state == "ready")
    return pool


def job(max_tokens: int = 3) -> GenerationRequest:
    return GenerationRequest("r", prompt="hello", params=SamplingParams(max_tokens=max_tokens))


async def first_tokens(pool: Pool, job_id: str) -> None:
    async for event in pool.events(job_id):
        if event.text:
            return


async def test_remote_jobs_need_no_worker_and_share_one_upstream_connection(make_pool, upstreams):
    upstream, port = await upstreams()
    threads = {t.name for t in threading.enumerate()}
    pool = await remote_pool(make_pool, port)
    added = {t.name for t in threading.enumerate()} - threads
    # The remote model runs on the pool's loop: no thread of its own, no worker, reader or
    # sender.
    assert not {name for name in added if name.startswith("jupyter_llm-r")}, added
    assert pool.models()[1].workers[0].state == "ready"

    for _ in range(2):
        record = await pool.wait((await pool.submit(job())).id)
        assert record.status is JobStatus.COMPLETED
        assert record.text == "w0 w1 w2 "
        assert (record.usage.prompt_tokens, record.usage.completion_tokens) == (7, 3)
    # Each stream was read to its end, so the second job found the first one's connection.
    streams = [seen for seen in upstream.connections if "/v1/completions" in seen]
    assert streams == [["/v1/completions", "/v1/completions"]]
    assert pool.stats().models["r"].used_units == 0


async def test_a_cancel_closes_the_upstream_stream_and_gives_the_units_back(make_pool, upstreams):
    upstream, port = await upstreams(delay=0.02)
    pool = await remote_pool(make_pool, port)
    submitted = await pool.submit(job(max_tokens=500))
    await first_tokens(pool, submitted.id)
    assert pool.stats().models["r"].used_units > 0
    record = await pool.cancel(submitted.id)
    assert record.status is JobStatus.CANCELLED
    await until(lambda: upstream.hung_up == 1, timeout=2)  # the upstream saw it go
    await until(lambda: pool.stats().models["r"].used_units == 0, timeout=2)
    assert len(record.text.split()) < 500


async def test_an_upstream_that_dies_fails_the_job_shows_unreachable_and_recovers(
    make_pool, upstreams
):
    upstream, port = await upstreams(delay=0.02)
    pool = await remote_pool(make_pool, port)
    submitted = await pool.submit(job(max_tokens=500))
    await first_tokens(pool, submitted.id)
    await upstream.kill()
    record = await pool.wait(submitted.id)
    assert record.status is JobStatus.FAILED
    assert "unreachable" in (record.error or "") and record.text.startswith("w0 ")
    await until(lambda: pool.models()[1].state == "error", timeout=5)
    assert (pool.models()[1].error or "").startswith("unreachable: ")
    assert pool.stats().models["r"].used_units == 0

    await upstreams(port=port)  # back at the same address: ready again without a restart
    await until(lambda: pool.models()[1].state == "ready", timeout=5)
    again = await pool.wait((await pool.submit(job())).id)
    assert again.status is JobStatus.COMPLETED and again.text == "w0 w1 w2 "


async def test_stopping_the_pool_cancels_remote_jobs_and_hangs_up(make_pool, upstreams):
    upstream, port = await upstreams(delay=0.02)
    pool = await remote_pool(make_pool, port)
    submitted = await pool.submit(job(max_tokens=500))
    await first_tokens(pool, submitted.id)
    await pool.stop()
    assert (await pool.get(submitted.id)).status is JobStatus.CANCELLED
    await until(lambda: upstream.hung_up == 1, timeout=2)
