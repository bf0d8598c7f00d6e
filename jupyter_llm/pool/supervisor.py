"""Keeps one model's workers alive: starts them, restarts the ones that die, stops them all.

It knows workers, not jobs. What a worker says (ready, could not load, outputs, gone) is
handed to a ``WorkerEvents`` listener, the model's lot, which accounts for units and jobs.
Restarts back off with the crashes of the last minute (0.25 s, 0.5 s, 1 s ... up to 30 s),
so a worker that dies at every start does not spin; a worker that reports a load error is
not restarted (loading again would fail the same way).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from typing import Protocol

from ..engine.base import EngineInfo, EngineSpec, StepOutput
from .stats import WorkerInfo
from .worker import WireMessage, WorkerHandle, WorkerKind

__all__ = ["Supervisor", "WorkerEvents"]

log = logging.getLogger("jupyter_llm.pool")

_RESTART_WINDOW = 60.0  # seconds in which crashes count towards the restart backoff
_MAX_BACKOFF = 30.0


class WorkerEvents(Protocol):
    """What the supervisor reports; called on the pool's loop."""

    def worker_ready(self, index: int, info: EngineInfo) -> None: ...

    def worker_outputs(self, index: int, outputs: list[StepOutput]) -> None: ...

    def worker_failed(self, index: int, reason: str, all_failed: bool) -> None: ...

    def worker_lost(self, index: int, exitcode: int | None) -> None: ...

    def workers_settled(self) -> None:
        """After each burst of news: the moment to start waiting jobs."""
        ...


class Supervisor:
    def __init__(
        self,
        spec: EngineSpec,
        count: int,
        *,
        kind: WorkerKind,
        loop: asyncio.AbstractEventLoop,
        executor: Executor,
        stack_size: int,
        events: WorkerEvents,
    ) -> None:
        self._spec = spec
        self._count = count
        self._kind = kind
        self._loop = loop
        self._executor = executor
        self._stack_size = stack_size
        self._events = events
        self._handles: dict[int, WorkerHandle] = {}
        self._states: dict[int, str] = {}  # starting | ready | failed | restarting
        self._crashes: list[float] = []
        self._restarts: dict[int, asyncio.TimerHandle] = {}
        self._closing = False

    def start(self) -> None:
        for index in range(self._count):
            self._spawn(index)

    def send(self, index: int, message: WireMessage) -> None:
        self._handles[index].send(message)

    async def stop(self) -> None:
        """Stop every worker (off the loop) and cancel pending restarts."""
        self._closing = True
        for timer in self._restarts.values():
            timer.cancel()
        handles = list(self._handles.values())
        self._handles.clear()
        await asyncio.gather(*(self._loop.run_in_executor(self._executor, h.stop) for h in handles))

    def describe(self) -> tuple[WorkerInfo, ...]:
        return tuple(
            WorkerInfo(i, h.pid, self._states.get(i, "starting"))
            for i, h in sorted(self._handles.items())
        )

    def _spawn(self, index: int) -> None:
        handle = WorkerHandle(
            self._spec,
            index,
            self._kind,
            self._loop,
            self._on_messages,
            self._on_exit,
            self._stack_size,
        )
        self._handles[index] = handle
        self._states[index] = "starting"
        future = self._loop.run_in_executor(self._executor, handle.start)
        future.add_done_callback(lambda f: self._on_start(handle, f))

    def _current(self, handle: WorkerHandle) -> bool:
        return self._handles.get(handle.index) is handle

    def _on_start(self, handle: WorkerHandle, future: asyncio.Future[None]) -> None:
        error = future.exception()
        if error is not None and self._current(handle):
            self._failed(handle.index, f"the worker could not start: {error}")
            self._events.workers_settled()

    def _on_messages(self, handle: WorkerHandle, batch: list[WireMessage]) -> None:
        if not self._current(handle):
            return  # news from a worker already replaced or stopped
        for message in batch:
            if message[0] == "out":
                self._events.worker_outputs(handle.index, message[1])
            elif message[0] == "ready":
                self._states[handle.index] = "ready"
                self._events.worker_ready(handle.index, message[1])
            elif message[0] == "load_error":
                self._failed(handle.index, message[1])
                # The worker waits to be told to go (so that its message is not lost).
                self._loop.run_in_executor(self._executor, handle.stop)
        self._events.workers_settled()

    def _failed(self, index: int, reason: str) -> None:
        log.error("model %s: worker %d failed to load: %s", self._spec.model, index, reason)
        self._states[index] = "failed"
        all_failed = all(state == "failed" for state in self._states.values())
        self._events.worker_failed(index, reason, all_failed)

    def _on_exit(self, handle: WorkerHandle) -> None:
        if not self._current(handle) or handle.stopping:
            return
        index = handle.index
        self._events.worker_lost(index, handle.exitcode)
        if self._states.get(index) != "failed" and not self._closing:
            now = time.monotonic()
            self._crashes = [t for t in self._crashes if now - t < _RESTART_WINDOW] + [now]
            delay = min(_MAX_BACKOFF, 0.25 * 2 ** (len(self._crashes) - 1))
            log.error(
                "model %s: worker %d (pid %s) died with exit code %s; restarting in %.2f s",
                self._spec.model,
                index,
                handle.pid,
                handle.exitcode,
                delay,
            )
            self._states[index] = "restarting"
            self._restarts[index] = self._loop.call_later(delay, self._restart, index)
        self._events.workers_settled()

    def _restart(self, index: int) -> None:
        del self._restarts[index]
        if not self._closing:
            self._spawn(index)
