"""Server-Sent Events over a tornado handler: headers once, a flush per event, keep-alives.

``EventStream.run(body)`` runs the coroutine that sends a stream's events, in one task, and
stops it as soon as the client hangs up (``ClientGone``). Meanwhile a timer writes a keep-alive
comment after ``keepalive_secs`` of silence (committing the headers then, if nothing has been
sent yet). So an event costs only its own write and flush: no task, no timer per event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from tornado.iostream import StreamClosedError
from tornado.web import RequestHandler

__all__ = ["ClientGone", "EventStream"]

CONTENT_TYPE = "text/event-stream"


class ClientGone(Exception):
    """The client closed the connection of an event stream."""


class EventStream:
    """One event-stream response of ``handler``; ``gone`` resolves when the client leaves."""

    def __init__(
        self, handler: RequestHandler, gone: asyncio.Future[None], keepalive_secs: float
    ) -> None:
        self._handler = handler
        self._gone = gone
        self._keepalive = keepalive_secs
        self._loop = asyncio.get_running_loop()
        self._last_write = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self.started = False

    def start(self) -> None:
        """Commit the 200 and the headers; from now on errors go into the stream."""
        if self.started:
            return
        self.started = True
        handler = self._handler
        handler.set_status(200)
        handler.set_header("Content-Type", CONTENT_TYPE)
        handler.set_header("Cache-Control", "no-cache")
        handler.set_header("X-Accel-Buffering", "no")  # nginx: pass each event on at once
        stream = getattr(handler.request.connection, "stream", None)
        if stream is not None:
            # Small writes in a row: without this, Nagle holds each event until the client
            # ACKs the one before, and delayed ACKs make that up to 40 ms. Tornado turns it
            # back off when the response ends.
            stream.set_nodelay(True)

    async def send(self, data: str, event_id: int | None = None) -> None:
        """One event, flushed to the client before this returns."""
        head = f"id: {event_id}\n" if event_id is not None else ""
        body = "".join(f"data: {line}\n" for line in data.split("\n"))
        self._write(f"{head}{body}\n")
        await self._flush()

    async def comment(self, text: str) -> None:
        self._write(f": {text}\n\n")
        await self._flush()

    def _write(self, frame: str) -> None:
        self.start()
        self._handler.write(frame)
        self._last_write = self._loop.time()

    async def _flush(self) -> None:
        if self._gone.done():
            raise ClientGone
        try:
            await self._handler.flush()
        except StreamClosedError:
            raise ClientGone from None

    async def run(self, body: Coroutine[Any, Any, None]) -> None:
        """Run ``body`` with keep-alives until it ends; ``ClientGone`` if the client leaves.

        ``body``'s own exceptions come through; when the client leaves first, ``body`` is
        cancelled (its ``finally`` blocks run) before ``ClientGone`` is raised.
        """
        task = asyncio.ensure_future(body)
        self._timer = self._loop.call_later(self._keepalive, self._tick)
        try:
            await asyncio.wait((task, self._gone), return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ClientGone):
                    await task
                raise ClientGone
            task.result()
        finally:
            self._timer.cancel()
            self._timer = None
            if not task.done():  # we are cancelled ourselves: take the body down too
                task.cancel()

    def _tick(self) -> None:
        silent = self._loop.time() - self._last_write
        if silent >= self._keepalive and not self._gone.done():
            self._write(": keep-alive\n\n")
            self._handler.flush().add_done_callback(_ignore_closed)
            silent = 0.0
        self._timer = self._loop.call_later(self._keepalive - silent, self._tick)


def _ignore_closed(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: a closed stream shows up as ClientGone elsewhere
