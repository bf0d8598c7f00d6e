"""The HTTP backend: the REST routes of a jupyter_llm server (``{base_url}llm/api/``).

Runs on the kernel's background loop (one ``httpx.AsyncClient``). The server's error bodies
(``{"error": {"message", "type", "param", "code"}}``) become the domain errors they stand
for, in the server's own words, so a cell shows what the server said. An event stream that
breaks is resumed with ``Last-Event-ID``: no event is lost or repeated.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from ..errors import (
    InvalidRequest,
    LLMError,
    ModelNotReady,
    QueueFull,
    ServerRefused,
    ServerUnreachable,
    UnknownJob,
    error_class,
)
from ..types import GenerationRequest, JobRecord, JobStatus, Logprob, SamplingParams, TokenEvent
from .sse import read_events

__all__ = ["RemoteBackend", "job_body", "token_event"]

_DEFAULT_PARAMS = SamplingParams().to_dict()


class RemoteBackend:
    """A jupyter_llm server at ``url`` (its base URL), with its Jupyter token."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        where: str = "",
        hint: str = "",
        socket: str | None = None,
        timeout: float = 10.0,
        stream_timeout: float = 30.0,
        retries: int = 5,
    ) -> None:
        self.url = url.rstrip("/") + "/"
        self.where = where or f"the jupyter_llm server at {self.url}"
        self._hint = hint
        self._headers = {"Authorization": f"token {token}"} if token else {}
        self._socket = socket
        self._timeout = timeout
        # Longer than the server's keep-alive period (10 s by default): a silent stream is
        # a job waiting in the queue, not a dead connection.
        self._stream_timeout = stream_timeout
        self._retries = retries
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # created on the loop that will use it
            transport = httpx.AsyncHTTPTransport(uds=self._socket) if self._socket else None
            self._client = httpx.AsyncClient(
                base_url=self.url + "llm/api/",
                headers=self._headers,
                timeout=self._timeout,
                transport=transport,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- requests --------------------------------------------------------------------------

    async def _call(self, method: str, path: str, *, model: str | None = None, **kw: Any) -> Any:
        try:
            response = await self._http().request(method, path, **kw)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, _reason(exc), self._hint) from exc
        if response.status_code >= 400:
            raise self._failure(response, model=model, job_id=_job_id(path))
        try:
            return response.json()
        except ValueError:
            raise ServerRefused(
                self.url, response.status_code, f"the server at {self.url} sent no JSON for {path}"
            ) from None

    async def models(self) -> list[dict[str, Any]]:
        return list((await self._call("GET", "models"))["models"])

    async def status(self) -> dict[str, Any]:
        return dict(await self._call("GET", "status"))

    async def jobs(self, limit: int = 50) -> list[JobRecord]:
        data = await self._call("GET", "jobs", params={"limit": limit})
        return [JobRecord.from_dict(item) for item in data["jobs"]]

    async def get(self, job_id: str) -> JobRecord:
        return JobRecord.from_dict(await self._call("GET", f"jobs/{job_id}"))

    async def submit(self, request: GenerationRequest) -> JobRecord:
        data = await self._call("POST", "jobs", model=request.model, json=job_body(request))
        return JobRecord.from_dict(data)

    async def cancel(self, job_id: str) -> JobRecord:
        return JobRecord.from_dict(await self._call("DELETE", f"jobs/{job_id}"))

    async def events(self, job_id: str, after: int = -1) -> AsyncGenerator[TokenEvent, None]:
        failures = 0
        timeout = httpx.Timeout(self._timeout, read=self._stream_timeout)
        while True:
            headers = {"Last-Event-ID": str(after)} if after >= 0 else {}
            try:
                async with self._http().stream(
                    "GET", f"jobs/{job_id}/events", headers=headers, timeout=timeout
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise self._failure(response, job_id=job_id)
                    async for item in read_events(response.aiter_lines()):
                        event = token_event(json.loads(item.data))
                        after, failures = event.index, 0
                        yield event
                        if event.terminal:
                            return
            except httpx.TransportError as exc:
                broken = _reason(exc)
            else:
                broken = "it ended before the job did"
            # Resume after the last event, unless the server has stopped answering.
            failures += 1
            if failures > self._retries:
                why = f"the event stream of job {job_id} broke: {broken}"
                raise ServerUnreachable(self.url, why, self._hint)
            await asyncio.sleep(min(0.1 * 2**failures, 5.0))

    # -- errors ----------------------------------------------------------------------------

    def _failure(
        self, response: httpx.Response, *, model: str | None = None, job_id: str | None = None
    ) -> LLMError:
        status = response.status_code
        error = _error_body(response)
        if error is None:
            if status == 404:
                return ServerRefused(
                    self.url,
                    status,
                    f"the server at {self.url} does not serve jupyter_llm (HTTP 404 for "
                    "llm/api/); enable it: jupyter server extension enable jupyter_llm",
                )
            return ServerRefused(
                self.url, status, f"the server at {self.url} answered HTTP {status}"
            )
        message = str(error.get("message") or f"HTTP {status}")
        if status in (401, 403):
            return ServerRefused(
                self.url,
                status,
                f"the server at {self.url} refused the token (HTTP {status}: {message}); "
                "set JUPYTER_LLM_TOKEN to the server's token",
            )
        # The body's fields, with what this request knows for any an older server left out.
        details = {"model": model, "job_id": job_id, **error}
        if "retry_after" not in error:
            details["retry_after"] = _number(response.headers.get("Retry-After"), 1.0)
        kind = error_class(error.get("code"))
        if kind is None:  # no code of ours: go by the status alone
            kind = _BY_STATUS.get(status)
            if status == 404 and job_id is None:
                kind = None
        if kind is None:
            return ServerRefused(self.url, status, f"the server answered HTTP {status}: {message}")
        return kind.restore(message, details)


# What a status means when the body names no code of ours.
_BY_STATUS: dict[int, type[LLMError]] = {
    400: InvalidRequest,
    404: UnknownJob,
    429: QueueFull,
    503: ModelNotReady,
}


def job_body(request: GenerationRequest) -> dict[str, Any]:
    """The JSON of ``POST llm/api/jobs``: only the parameters that differ from the defaults."""
    params = {
        key: value
        for key, value in request.params.to_dict().items()
        if value != _DEFAULT_PARAMS[key]
    }
    body: dict[str, Any] = {
        "model": request.model,
        "params": params,
        "priority": request.priority.value,
    }
    if request.prompt is not None:
        body["prompt"] = request.prompt
    else:
        assert request.messages is not None  # GenerationRequest holds one of the two
        body["messages"] = [m.to_dict() for m in request.messages]
    if request.response_format is not None:
        body["response_format"] = request.response_format.to_openai()
    return body


def token_event(data: dict[str, Any]) -> TokenEvent:
    """A ``TokenEvent`` from the JSON of one SSE event."""
    return TokenEvent(
        job_id=data["id"],
        index=int(data["index"]),
        status=JobStatus(data["status"]),
        text=data.get("text") or "",
        token_ids=tuple(data.get("token_ids") or ()),
        finish_reason=data.get("finish_reason"),
        error=data.get("error"),
        logprobs=None
        if data.get("logprobs") is None
        else tuple(Logprob.from_dict(lp) for lp in data["logprobs"]),
        error_type=data.get("error_type"),
    )


def _error_body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return None
    return error if isinstance(error, dict) else None


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    cause: BaseException | None = exc
    while cause is not None:  # anyio words a refusal "All connection attempts failed"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    return str(exc) or type(exc).__name__


def _job_id(path: str) -> str | None:
    return path.split("/")[1] if path.startswith("jobs/") else None


def _number(value: str | None, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default
