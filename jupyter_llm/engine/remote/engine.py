"""A remote engine: any OpenAI-compatible server (vLLM, another jupyter_llm) behind the seam.

It loads nothing and computes nothing, so it needs no worker process nor pipe: it is a
``LoopEngine``, run on the pool's own loop (``pool/direct.py``). Each job is one task there
streaming one upstream request through ``http1.Client``; ``add`` starts the task, ``abort``
cancels it, which closes the upstream connection (vLLM and jupyter_llm both cancel a job
whose client goes away). The outputs of one burst (an upstream step makes a token for each
of its sequences at about the same moment) go to the pool in one ``emit``.

Why on the pool's loop with a lean client: a thread of its own wakes once a request and once
a burst, and each wake-up waits for the GIL; httpx costs several times the lean client's CPU
a request, enough to slow the status poll if it ran on the loop (benchmarks/remote.py
measures it; docs/benchmarks.md has the numbers).
``max_num_seqs`` is the cap on requests open at once (the pool never admits more, so the
client never holds more connections).

The spec's ``probe`` is the health check (``GET models``) that the pool runs off its loop
to drive the model's state: ``ready``, ``error: unreachable``, ``ready`` again.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import math
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import httpx

from ...config import ModelConfig
from ...types import GenerationRequest
from ..base import Emit, EngineInfo, EngineRequest, StepOutput, TokenCounter
from . import http1
from .wire import (
    ToolCallText,
    estimate_tokens,
    parse_chunk,
    retry_after,
    upstream_call,
    upstream_failure,
)

__all__ = ["RemoteEngine", "RemoteSpec"]

_PROBE_TIMEOUT = 5.0
_END_TIMEOUT = 1.0  # for the end of a body after [DONE]; past it, the connection is closed
_CONNECT_TIMEOUT = 10.0
_RETRIES = 3  # 429 / 503 with a short Retry-After are retried this often
_DEFAULT_CONTEXT = 32768  # when max_model_len is not set: the upstream enforces its own


@dataclass(frozen=True, slots=True)
class RemoteSpec:
    """Plain data: how to reach the upstream and what the pool may admit to it."""

    model: str
    base_url: str  # the upstream's /v1, without a trailing slash
    remote_model: str
    api_key_env: str | None
    request_timeout: float
    block_size: int
    max_num_seqs: int
    max_model_len: int
    max_units: int | None

    @classmethod
    def for_model(cls, config: ModelConfig) -> RemoteSpec:
        assert config.base_url is not None  # the config requires it for backend: openai
        params = config.params
        return cls(
            model=config.name,
            base_url=config.base_url.rstrip("/"),
            remote_model=config.remote_model or config.name,
            api_key_env=config.api_key_env,
            request_timeout=config.request_timeout_secs,
            block_size=params.block_size,
            max_num_seqs=params.max_num_seqs,
            max_model_len=params.max_model_len or _DEFAULT_CONTEXT,
            max_units=config.parking_lot.limits.max_units,
        )

    def headers(self) -> dict[str, str]:
        if self.api_key_env is None:
            return {}
        key = os.environ.get(self.api_key_env)
        if not key:
            raise RuntimeError(
                f"api_key_env names {self.api_key_env}, but that environment variable is not set"
            )
        return {"Authorization": f"Bearer {key}"}

    def build_on_loop(
        self, worker_index: int, loop: asyncio.AbstractEventLoop, emit: Emit
    ) -> RemoteEngine:
        return RemoteEngine(self, loop, emit)

    def counter(self, info: EngineInfo) -> TokenCounter:
        return estimate_tokens

    def probe(self) -> str | None:
        """Blocking health check: None when the upstream serves our model, else why not."""
        try:
            response = _probe_client(self.base_url).get(
                f"{self.base_url}/models", headers=self.headers()
            )
        except httpx.HTTPError as exc:
            return f"unreachable: {self.base_url}: {_describe(exc)}"
        except RuntimeError as exc:
            return str(exc)
        if response.status_code != 200:
            failure = upstream_failure(
                response.status_code, response.text, self.base_url, self.remote_model
            )
            return f"unreachable: {failure.message}"
        try:
            served = [str(m.get("id")) for m in response.json().get("data", [])]
        except (ValueError, AttributeError):
            return f"unreachable: {self.base_url}/models did not answer with a model list"
        if self.remote_model not in served:
            return (
                f"the upstream {self.base_url} has no model {self.remote_model!r} "
                f"(it serves: {', '.join(served) or 'none'}); set remote_model to one of them"
            )
        return None


_probe_clients: dict[str, httpx.Client] = {}
_probe_lock = threading.Lock()


def _probe_client(base_url: str) -> httpx.Client:
    """One client per upstream for its health checks, kept: a new httpx client loads the CA
    bundle (~0.1 s holding the GIL on a loaded machine), a stall the server's loop would feel
    at every check."""
    with _probe_lock:
        client = _probe_clients.get(base_url)
        if client is None:
            client = _probe_clients[base_url] = httpx.Client(timeout=_PROBE_TIMEOUT)
        return client


def _user_agent() -> str:
    """``jupyter_llm/<version>``, read from the installed distribution (importing the
    package's ``__version__`` from here would be an import cycle); a source tree that is
    not installed says ``jupyter_llm`` rather than failing to load the model."""
    try:
        return f"jupyter_llm/{importlib.metadata.version('jupyter_llm')}"
    except importlib.metadata.PackageNotFoundError:
        return "jupyter_llm"


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return (
        text
        if isinstance(exc, (httpx.HTTPError, http1.HttpError))
        else f"{type(exc).__name__}: {text}"
    )


async def _read_to_end(lines: AsyncIterator[str]) -> None:
    """Read what follows ``[DONE]`` (the body's end): a response read to its end gives its
    connection back for the next job, one left unread is closed (and the next job pays for a
    new connection while its first token waits)."""
    with contextlib.suppress(http1.HttpError, TimeoutError):
        async with asyncio.timeout(_END_TIMEOUT):
            async for _ in lines:
                pass


class RemoteEngine:
    """See the module docstring: everything but ``close`` runs on the pool's loop."""

    def __init__(self, spec: RemoteSpec, pool_loop: asyncio.AbstractEventLoop, emit: Emit) -> None:
        self._spec = spec
        self._loop = pool_loop
        self._emit = emit
        headers = spec.headers()  # raises now, at load, when the key is missing
        headers["User-Agent"] = _user_agent()
        # Blocking for https (it loads the CA bundle): build_on_loop runs in a helper thread.
        self._client = http1.Client(
            spec.base_url, headers, timeout=spec.request_timeout, connect_timeout=_CONNECT_TIMEOUT
        )
        self._tasks: dict[str, asyncio.Task[None]] = {}  # jobs added, not finished nor aborted
        self._outbox: list[StepOutput] = []  # this burst's outputs, emitted together

    def info(self) -> EngineInfo:
        spec = self._spec
        per_seq = math.ceil(spec.max_model_len / spec.block_size)
        units = spec.max_units or spec.max_num_seqs * per_seq
        return EngineInfo(
            units=units,
            block_size=spec.block_size,
            max_num_seqs=spec.max_num_seqs,
            max_model_len=spec.max_model_len,
            device=spec.base_url,
            counts_inline=True,  # estimate_tokens only counts bytes
        )

    def add(self, request: EngineRequest) -> None:
        job_id = request.job_id
        self._tasks[job_id] = self._loop.create_task(
            self._stream(job_id, request.request), name=job_id
        )

    def abort(self, job_id: str) -> None:
        task = self._tasks.pop(job_id, None)
        if task is not None:
            task.cancel()  # closes the upstream stream: the upstream cancels its job
        self._outbox = [out for out in self._outbox if out.job_id != job_id]

    def close(self) -> None:
        """Blocking, off the loop: cancel every job and hang up (at most ~5 s)."""
        if self._loop.is_closed():
            return
        closing = asyncio.run_coroutine_threadsafe(self._close(), self._loop)
        with contextlib.suppress(Exception):  # best effort: the connections go with us
            closing.result(timeout=5)

    async def _close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._client.aclose()

    def _put(self, output: StepOutput) -> None:
        """Pass an output on, with the rest of its burst: the streams an upstream step woke
        all run before the ``_deliver`` that the first of them scheduled."""
        if output.job_id not in self._tasks:
            return  # aborted: nothing more is emitted for it
        if output.finish_reason is not None:
            del self._tasks[output.job_id]
        if not self._outbox:
            self._loop.call_soon(self._deliver)
        self._outbox.append(output)

    def _deliver(self) -> None:
        outputs, self._outbox = self._outbox, []
        if outputs:  # an abort may have taken the burst's only outputs
            self._emit(outputs)

    async def _stream(self, job_id: str, request: GenerationRequest) -> None:
        route, body = upstream_call(request, self._spec.remote_model)
        try:
            for attempt in range(_RETRIES + 1):
                calls = ToolCallText(request.tool_choice.mode if request.tools else "none")
                if await self._attempt(job_id, route, body, calls, last=attempt == _RETRIES):
                    return
        except asyncio.CancelledError:
            raise  # aborted: the pool's handle reports the cancel
        except http1.ReadTimeout as exc:
            self._fail(
                job_id,
                f"the upstream {self._spec.base_url} did not answer within "
                f"{self._spec.request_timeout:g} s (request_timeout_secs): {exc}",
                "JobFailed",
            )
        except (http1.ConnectError, http1.Disconnected) as exc:  # refused, reset, cut short
            self._fail(
                job_id,
                f"the upstream {self._spec.base_url} is unreachable: {_describe(exc)}",
                "ModelNotReady",
            )
        except Exception as exc:  # a malformed stream: say so, never hang the job
            self._fail(job_id, f"the upstream's stream broke: {_describe(exc)}", "JobFailed")

    async def _attempt(
        self, job_id: str, route: str, body: dict[str, object], calls: ToolCallText, last: bool
    ) -> bool:
        """One upstream request; False when it should be tried again after Retry-After."""
        async with self._client.post(route, json.dumps(body).encode()) as response:
            if response.status != 200:
                text = (await response.read()).decode(errors="replace")
                wait = retry_after(response.headers.get("retry-after"), 5.0)
                if response.status in (429, 503) and wait is not None and not last:
                    await asyncio.sleep(wait)
                    return False
                failure = upstream_failure(
                    response.status, text, self._spec.base_url, self._spec.remote_model
                )
                self._fail(job_id, failure.message, failure.error_type)
                return True
            finish: StepOutput | None = None
            lines = response.lines()
            async for line in lines:
                if not line.startswith("data:"):
                    continue
                chunk = parse_chunk(line[5:].strip())
                if chunk is None:  # [DONE]
                    break
                if chunk.finish_reason == "error":
                    self._fail(job_id, chunk.error or "the upstream failed", "JobFailed")
                    return True
                if finish is not None:  # the usage chunk that follows the last token
                    if chunk.usage is not None:
                        finish = replace(finish, usage=chunk.usage)
                    continue
                text = chunk.text + calls.feed(chunk.tool_calls)
                if chunk.finish_reason is not None:
                    text += calls.close()
                output = StepOutput(
                    job_id, text=text, finish_reason=chunk.finish_reason,
                    logprobs=chunk.logprobs, usage=chunk.usage,
                )  # fmt: skip
                if chunk.finish_reason is None:
                    if text or chunk.logprobs:
                        self._put(output)
                else:
                    finish = output
            if finish is None:
                message = "the upstream ended the stream without a finish reason"
                self._fail(job_id, message, "JobFailed")
            else:
                self._put(finish)
            await _read_to_end(lines)
            return True

    def _fail(self, job_id: str, message: str, error_type: str) -> None:
        self._put(StepOutput(job_id, finish_reason="error", error=message, error_type=error_type))
