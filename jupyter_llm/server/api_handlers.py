"""The REST job API under ``{base_url}llm/api/`` (docs/interfaces.md, "REST").

| route                   | verbs       | answer                                              |
| ----------------------- | ----------- | --------------------------------------------------- |
| ``models``              | GET         | models with state, device, workers                  |
| ``status``              | GET         | pool stats, totals and per model                    |
| ``jobs``                | GET, POST   | recent records (newest first) / 202 and the record  |
| ``jobs/{id}``           | GET, DELETE | the record / cancel, then the record                |
| ``jobs/{id}/events``    | GET         | SSE of the job's events; ``Last-Event-ID`` resumes  |
| ``openapi.json``        | GET         | the OpenAPI 3.1 description of every route          |

Leaving an event stream never cancels its job: the job belongs to whoever submitted it.
Each job records its user; unless the state's admin policy says this request sees all, a
user's jobs are all it lists, and another user's job id answers 404 as an unknown one does.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import InvalidRequest
from ..types import JobStatus
from .base import LLMHandler
from .openapi import openapi_document
from .schema import parse_job
from .sse import ClientGone, EventStream

__all__ = ["api_handlers"]

# Any path segment: an id that is not one of ours gets the JSON 404 of an unknown job, not
# tornado's HTML page for an unmatched route.
_JOB_ID = r"(?P<job_id>[^/]+)"
_MAX_LIMIT = 1000


class ModelsHandler(LLMHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json({"models": [m.to_dict() for m in self.pool.models()]})


class StatusHandler(LLMHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json(self.pool.stats().to_dict())


class JobsHandler(LLMHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        limit = _int_argument(self.get_argument("limit", "50"), "limit", 1, _MAX_LIMIT)
        status = self.get_argument("status", None)
        try:
            wanted = None if status is None else JobStatus(status)
        except ValueError:
            choices = ", ".join(s.value for s in JobStatus)
            raise InvalidRequest(f"status must be one of {choices}", param="status") from None
        kind = self.get_argument("kind", None)
        if kind not in (None, "generate", "completion"):
            raise InvalidRequest("kind must be one of generate, completion", param="kind")
        records = await self.pool.jobs(
            limit,
            model=self.get_argument("model", None),
            status=wanted,
            owner=self.owner,
            kind=kind,
        )
        self.write_json({"jobs": [r.to_dict() for r in records]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        record = await self.pool.submit(parse_job(self.read_json()), user=self.user)
        self.set_header("Location", self.request.path.rstrip("/") + "/" + record.id)
        self.write_json(record.to_dict(), status=202)


class JobHandler(LLMHandler):
    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        self.write_json((await self.visible_job(job_id)).to_dict())

    @web.authenticated
    @authorized
    async def delete(self, job_id: str) -> None:
        await self.visible_job(job_id)
        self.write_json((await self.pool.cancel(job_id)).to_dict())


class JobEventsHandler(LLMHandler):
    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        after = _int_argument(self.request.headers.get("Last-Event-ID", "-1"), "Last-Event-ID", -1)
        pool = self.pool
        await self.visible_job(job_id)  # an unknown id is a 404 before the stream starts
        stream = EventStream(self, self.gone, self.llm.keepalive_secs)

        async def relay() -> None:
            await stream.comment("job events")  # the headers reach the client now, not at event 1
            async for event in pool.events(job_id, after=after):
                await stream.send(json.dumps(event.to_dict()), event_id=event.index)

        try:
            await stream.run(relay())
        except ClientGone:
            return  # the job goes on; its record and events stay in the mailbox
        self.finish()


class OpenAPIHandler(LLMHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        pool = self.llm.pool
        names = [] if pool is None else [m.name for m in pool.models()]
        self.write_json(openapi_document(self.base_url, names))


def _int_argument(value: str, name: str, minimum: int, maximum: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum or (maximum is not None and number > maximum):
        top = f" to {maximum}" if maximum is not None else " or more"
        raise InvalidRequest(
            f"{name}: expected an integer from {minimum}{top}, got {value!r}", name
        )
    return number


api_handlers: list[tuple[str, Any]] = [
    ("llm/api/models", ModelsHandler),
    ("llm/api/status", StatusHandler),
    ("llm/api/jobs", JobsHandler),
    (f"llm/api/jobs/{_JOB_ID}", JobHandler),
    (f"llm/api/jobs/{_JOB_ID}/events", JobEventsHandler),
    ("llm/api/openapi.json", OpenAPIHandler),
]
