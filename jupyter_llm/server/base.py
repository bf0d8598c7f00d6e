"""What every jupyter_llm handler shares: the pool, JSON in and out, errors, disconnects.

The extension leaves an ``LLMState`` in the web app's settings and handlers read it from
there (as jupyter_server_terminals hands its manager over), so nothing here imports the
extension app. Handlers raise domain errors (``UnknownModel``, ``QueueFull``...) and let
``write_error`` answer through the one translator in ``http_errors``. ``gone`` resolves
when the client closes its connection, so a handler waiting on the pool can stop waiting.

Bodies are streamed in (``stream_request_body``) so that one over ``max_body_bytes`` is
never held in memory: it is read to its end and dropped, then refused with 413 before
anything parses it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, cast

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from ..errors import ConfigError, LLMError, RequestTooLarge, UnknownJob
from ..pool import Pool
from ..types import JobRecord
from .body import parse_object
from .http_errors import translate
from .owners import AdminPolicy, everyone, username

__all__ = ["STATE_KEY", "LLMHandler", "LLMState"]

#: The web app's setting that holds the ``LLMState``.
STATE_KEY = "jupyter_llm_state"


@dataclass(frozen=True, slots=True)
class LLMState:
    """What the handlers need of the extension, set once when the server starts."""

    pool: Pool | None
    #: Why there is no pool: the configuration could not be loaded (reported by every route).
    config_error: ConfigError | None
    created: float  # when the models were configured (OpenAI's "created" of a model)
    keepalive_secs: float
    #: Who sees every user's jobs (``owners.py``); the others see only their own.
    admin: AdminPolicy = everyone
    max_body_bytes: int = 0  # 0: no cap of ours (the server's own max_body_size still holds)

    def require_pool(self) -> Pool:
        """The pool, or the configuration error that kept it from being built."""
        if self.pool is None:
            assert self.config_error is not None
            error = self.config_error  # a fresh instance: each raise gets its own traceback
            raise ConfigError(error.file, error.key, error.problem)
        return self.pool


def _declared_length(header: str) -> int:
    """The Content-Length as a number; 0 for one that is not (tornado refuses that body with
    its own 400 once the handler has seen the headers)."""
    return int(header) if header.isascii() and header.isdigit() else 0


# text/plain: what fetch() sends for a string body when the caller names no type.
_JSON_TYPES = frozenset({"application/json", "text/plain"})


@web.stream_request_body
class LLMHandler(ExtensionHandlerMixin, APIHandler):
    """The base of every route; subclasses mark each verb ``@web.authenticated @authorized``."""

    auth_resource = "llm"
    _gone: asyncio.Future[None] | None = None
    _chunks: list[bytes]
    _received = 0  # bytes of body that arrived, kept or not
    _size = 0  # the body's length: declared, or what arrived if more

    async def prepare(self) -> None:  # type: ignore[override]  # as APIHandler.prepare
        self._chunks = []
        await super().prepare()
        self._size = _declared_length(self.request.headers.get("Content-Length", ""))

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        # A body over the cap is read to its end but not kept, then refused by the verb: a
        # refusal sent before the client has finished sending (and a close of the socket
        # with its bytes unread) reaches most clients as a connection reset, not as a 413.
        self._received += len(chunk)
        self._size = max(self._size, self._received)
        cap = self.llm.max_body_bytes
        if cap and self._size > cap:
            self._chunks.clear()
        else:
            self._chunks.append(chunk)
        return None

    @property
    def llm(self) -> LLMState:
        return cast(LLMState, self.settings[STATE_KEY])

    @property
    def pool(self) -> Pool:
        return self.llm.require_pool()

    @property
    def user(self) -> str | None:
        """Who sends this request: the name their jobs are recorded under."""
        return username(self.current_user)

    @property
    def owner(self) -> str | None:
        """Whose jobs this request may see: None for all (an admin), else the user's."""
        if self.llm.admin(self.current_user):
            return None
        if self.user is None:  # it could own no job: refuse rather than show all
            raise web.HTTPError(403, "this request names no user")
        return self.user

    async def visible_job(self, job_id: str) -> JobRecord:
        """The job's record, if this request may see it; another user's job is unknown."""
        record = await self.pool.get(job_id)
        owner = self.owner
        if owner is not None and record.user != owner:
            raise UnknownJob(job_id)
        return record

    @property
    def gone(self) -> asyncio.Future[None]:
        """Resolves when the client disconnects (also if it did before this was first read)."""
        if self._gone is None:
            self._gone = asyncio.get_running_loop().create_future()
            stream = getattr(self.request.connection, "stream", None)
            if stream is not None and stream.closed():
                self._gone.set_result(None)
        return self._gone

    def on_connection_close(self) -> None:
        super().on_connection_close()
        if not self.gone.done():
            self.gone.set_result(None)

    # -- JSON ------------------------------------------------------------------------------

    def read_json(self) -> dict[str, Any]:
        """The request body as a JSON object; a 400 that says what is wrong otherwise."""
        kind = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind and kind not in _JSON_TYPES and not kind.endswith("+json"):
            raise web.HTTPError(
                415, f"the request body must be JSON (Content-Type: application/json), got {kind}"
            )
        cap = self.llm.max_body_bytes
        if cap and self._size > cap:
            raise RequestTooLarge(self._size, cap)
        return parse_object(b"".join(self._chunks))

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))

    # -- errors ----------------------------------------------------------------------------

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        failure = translate(exc_info[1] if exc_info else None, status_code)
        self.set_status(failure.status)
        for name, value in failure.headers.items():
            self.set_header(name, value)
        self.finish(json.dumps(failure.body()))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # A refused request (bad parameter, full queue) is an answer, not a server fault.
        if isinstance(value, LLMError):
            status = translate(value).status
            self.log.info("%s %s: %d %s", self.request.method, self.request.path, status, value)
        else:
            super().log_exception(typ, value, tb)
