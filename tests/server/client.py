"""A small HTTP client for the tests: plain requests, and event streams read as a user would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, cast

import httpx

from jupyter_llm.server.app import LLMExtension
from jupyter_llm.server.base import STATE_KEY


@dataclass(frozen=True)
class Event:
    """One server-sent event: its id, its data, and the comments that came before it."""

    id: str | None
    data: str
    comments: tuple[str, ...] = ()

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class LLMServer:
    fetch: Any  # pytest-jupyter's jp_fetch
    url: str  # http://127.0.0.1:PORT{base_url}
    token: str
    extension: LLMExtension
    _headers: dict[str, str] = field(default_factory=dict)

    @property
    def v1(self) -> str:
        return self.url + "llm/v1"

    @property
    def pool(self) -> Any:
        return self.extension.pool

    def client(
        self, token: str | None = "", timeout: float = 20, cookies: dict[str, str] | None = None
    ) -> httpx.AsyncClient:
        """An httpx client for the server; ``token=None`` sends no token (``cookies`` only)."""
        token = self.token if token == "" else token
        headers = {} if token is None else {"Authorization": f"token {token}"}
        return httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=timeout, cookies=cookies
        )

    def set_keepalive(self, secs: float) -> None:
        """Change the handlers' keep-alive interval (they read the state the extension set)."""
        serverapp = self.extension.serverapp
        assert serverapp is not None
        settings = serverapp.web_app.settings
        settings[STATE_KEY] = replace(settings[STATE_KEY], keepalive_secs=secs)

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async with self.client() as client:
            return await client.request(method, path, **kwargs)

    async def submit(self, **body: Any) -> dict[str, Any]:
        response = await self.request("POST", "llm/api/jobs", json=body)
        assert response.status_code == 202, response.text
        return cast(dict[str, Any], response.json())

    async def job(self, job_id: str) -> dict[str, Any]:
        response = await self.request("GET", f"llm/api/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return cast(dict[str, Any], response.json())

    async def status(self) -> dict[str, Any]:
        response = await self.request("GET", "llm/api/status")
        assert response.status_code == 200, response.text
        return cast(dict[str, Any], response.json())

    @asynccontextmanager
    async def stream(
        self, method: str, path: str, **kwargs: Any
    ) -> AsyncIterator[tuple[httpx.Response, AsyncIterator[Event]]]:
        """Open an event stream: the response (status, headers) and its events as they come."""
        async with self.client() as client, client.stream(method, path, **kwargs) as response:
            yield response, read_events(response)

    async def events(self, method: str, path: str, **kwargs: Any) -> list[Event]:
        async with self.stream(method, path, **kwargs) as (response, events):
            assert response.status_code == 200, await response.aread()
            return [event async for event in events]


async def read_events(response: httpx.Response) -> AsyncIterator[Event]:
    event_id: str | None = None
    data: list[str] = []
    comments: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith(":"):
            comments.append(line[1:].strip())
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            yield Event(event_id, "\n".join(data), tuple(comments))
            event_id, data, comments = None, [], []
