"""The handle on an engine driven from the pool's own loop: a remote model's, which only
moves bytes, so it needs no worker process, worker thread nor pipe.

It has the face of ``worker.WorkerHandle`` (``start``, ``send``, ``stop``; news through
``on_messages`` as the same wire tuples), so the supervisor and the lot do not tell the two
apart. What differs is the path: a command is applied at once, on the loop (the engine only
hands it on and returns), and each burst of outputs the engine emits is passed straight on.
No thread of ours stands between the loop and the engine, and no message is pickled.

An engine like this has nothing that can die under it: an upstream that fails fails its
jobs (the engine emits an error output), and the handle ends only when it is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Literal

from ..engine.base import EngineInfo, EngineRequest, LoopEngine, LoopSpec, StepOutput
from .worker import WireMessage

__all__ = ["LoopHandle"]

log = logging.getLogger("jupyter_llm.pool")


class LoopHandle:
    """The server's handle on one ``LoopEngine``. ``start`` and ``stop`` block (they run in a
    helper thread, like a worker's); ``send`` is called on the loop."""

    kind: Literal["loop"] = "loop"

    def __init__(
        self,
        spec: LoopSpec,
        index: int,
        loop: asyncio.AbstractEventLoop,
        on_messages: Callable[[LoopHandle, list[WireMessage]], None],
    ) -> None:
        self.spec = spec
        self.index = index
        self.pid = os.getpid()
        self.stopping = False
        self.stopped = False
        self.exitcode: int | None = None  # it has no process
        self._loop = loop
        self._on_messages = on_messages
        self._engine: LoopEngine | None = None  # once ready, on the loop
        self._built: LoopEngine | None = None  # once built, for stop()
        self._active: set[str] = set()  # jobs added and not finished: an abort reports these
        self._stop_lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"jupyter_llm-{self.spec.model}-{self.index}"

    def start(self) -> None:
        """Build the engine (blocking: an HTTP client's set-up reads its CA bundle), then say
        ``ready`` or ``load_error`` on the loop."""
        try:
            engine = self.spec.build_on_loop(self.index, self._loop, self._emitted)
            info = engine.info()
        except Exception as exc:  # reported like a worker's load failure, never raised
            self._post(self._failed, f"{type(exc).__name__}: {exc}")
            return
        with self._stop_lock:
            if self.stopping:  # stopped while it was built: it never serves
                engine.close()
                return
            self._built = engine
        self._post(self._ready, engine, info)

    def send(self, message: WireMessage) -> None:
        """Apply a command now (on the loop); never blocks."""
        if message[0] == "add":
            self._add(message[1])
        elif message[0] == "abort":
            self._abort(message[1])

    def stop(self, timeout: float = 5.0) -> None:
        """Close the engine (its jobs are cancelled). Idempotent; call it off the loop."""
        with self._stop_lock:
            if self.stopped:
                return
            self.stopping = True
            if self._built is not None:
                self._built.close()
            self.stopped = True

    # -- on the loop -----------------------------------------------------------------------

    def _ready(self, engine: LoopEngine, info: EngineInfo) -> None:
        if not self.stopping:
            self._engine = engine
            self._on_messages(self, [("ready", info)])

    def _failed(self, reason: str) -> None:
        if not self.stopping:
            self._on_messages(self, [("load_error", reason)])

    def _add(self, request: EngineRequest) -> None:
        assert self._engine is not None, "a job was sent before the engine was ready"
        try:
            self._engine.add(request)
        except Exception as exc:  # one request's bad values must not stop the model
            log.exception("job %s could not start", request.job_id)
            failed = f"could not start: {type(exc).__name__}: {exc}"
            self._answer(StepOutput(request.job_id, finish_reason="error", error=failed))
            return
        self._active.add(request.job_id)

    def _abort(self, job_id: str) -> None:
        if self._engine is not None:
            self._engine.abort(job_id)
        if job_id in self._active:  # its units come back with this answer
            self._answer(StepOutput(job_id, finish_reason="cancelled"))

    def _answer(self, output: StepOutput) -> None:
        """The handle's own answer to a command: on the next turn of the loop, as a worker's
        would come (the lot is in the middle of sending the command)."""
        self._loop.call_soon(self._emitted, [output])

    def _emitted(self, outputs: list[StepOutput]) -> None:
        for output in outputs:
            if output.finish_reason is not None:
                self._active.discard(output.job_id)
        if not self.stopping:
            self._on_messages(self, [("out", outputs)])

    def _post(self, callback: Callable[..., None], *args: object) -> None:
        # A closed loop raises RuntimeError: the pool is gone and wants no more news.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)
