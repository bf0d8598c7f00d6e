"""Keeps one model's workers alive: starts them, restarts the ones that die, stops them all.

It knows workers, not jobs. What a worker says (ready, could not load, outputs, gone) is
handed to a ``WorkerEvents`` listener, the model's lot, which accounts for units and jobs.
While a worker loads, the supervisor keeps the phase it last reported (``LoadingInfo``) and
logs each step: started, each new phase, ready after how long, or why it failed.
Restarts back off with the crashes of the last minute (0.25 s, 0.5 s, 1 s ... up to 30 s),
so a worker that dies at every start does not spin; a worker that reports a load error is
not restarted (loading again would fail the same way).

A model whose spec is a ``LoopSpec`` (a remote one) gets ``LoopHandle``s instead: its engine
is driven from the pool's loop (``direct.py``); the news it gives is the same.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from ..engine.base import AnySpec, EngineInfo, LoopSpec, StepOutput
from ..engine.loading import LoadPhase
from .direct import LoopHandle
from .stats import LoadingInfo, WorkerInfo
from .worker import WireMessage, WorkerHandle, WorkerKind

__all__ = ["Supervisor", "WorkerEvents"]

Handle = WorkerHandle | LoopHandle

log = logging.getLogger("jupyter_llm.pool")

_RESTART_WINDOW = 60.0  # seconds in which crashes count towards the restart backoff
_MAX_BACKOFF = 30.0
_STOP_SECS = 5.0  # a ready worker's time to stop before it is terminated


class WorkerEvents(Protocol):
    """What the supervisor reports; called on the pool's loop."""

    def worker_ready(self, index: int, info: EngineInfo) -> None: ...

    def worker_outputs(self, index: int, outputs: list[StepOutput]) -> None: ...

    def worker_failed(self, index: int, reason: str, all_failed: bool) -> None: ...

    def worker_lost(self, index: int, exitcode: int | None) -> None: ...

    def workers_settled(self) -> None:
        """After each burst of news: the moment to start waiting jobs."""
        ...


@dataclass
class _Load:
    """One worker's load while it lasts (monotonic times)."""

    started: float
    phase: LoadPhase
    phase_started: float
    first_done: float | None = None  # the phase's ``done`` when it began: for the rate

    def info(self, now: float) -> LoadingInfo:
        phase = self.phase
        rate = phase.rate  # the reporter's own, else the average since the phase began
        counted = phase.done is not None and self.first_done is not None
        if rate is None and counted and now > self.phase_started:
            assert phase.done is not None and self.first_done is not None
            rate = (phase.done - self.first_done) / (now - self.phase_started)
        return LoadingInfo(
            phase.name,
            round(now - self.started, 1),
            phase.detail,
            phase.done,
            phase.total,
            phase.unit,
            None if rate is None else round(rate, 1),
        )


class Supervisor:
    def __init__(
        self,
        spec: AnySpec,
        count: int,
        *,
        kind: WorkerKind,
        loop: asyncio.AbstractEventLoop,
        executor: Executor,
        stack_size: int,
        events: WorkerEvents,
        nice: int = 0,
    ) -> None:
        self._spec = spec
        self._count = count
        self._kind = kind
        self._loop = loop
        self._executor = executor
        self._stack_size = stack_size
        self._nice = nice
        self._events = events
        self._handles: dict[int, Handle] = {}
        self._states: dict[int, str] = {}  # starting | ready | failed | restarting
        self._crashes: list[float] = []
        self._restarts: dict[int, asyncio.TimerHandle] = {}
        self._loads: dict[int, _Load] = {}  # workers loading now
        self._load_secs: dict[int, float] = {}  # how long each took to become ready
        self._precision: dict[int, tuple[str | None, str | None]] = {}  # dtype, matmul
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
        handles = list(self._handles.items())
        self._handles.clear()
        await asyncio.gather(
            *(
                # A worker still loading cannot read "stop" until its model is in memory, and
                # nothing of it is worth waiting for: it is terminated after a short grace.
                self._loop.run_in_executor(
                    self._executor, h.stop, _STOP_SECS if self._states.get(i) == "ready" else 0.5
                )
                for i, h in handles
            )
        )

    def describe(self) -> tuple[WorkerInfo, ...]:
        now = time.monotonic()
        return tuple(
            WorkerInfo(
                i,
                h.pid,
                self._states.get(i, "starting"),
                self._loads[i].info(now) if i in self._loads else None,
                self._load_secs.get(i),
                *self._precision.get(i, (None, None)),
            )
            for i, h in sorted(self._handles.items())
        )

    def loading(self) -> LoadingInfo | None:
        """Where the first worker still loading stands (None: none is)."""
        now = time.monotonic()
        return next((self._loads[i].info(now) for i in sorted(self._loads)), None)

    def _spawn(self, index: int) -> None:
        handle: Handle
        if isinstance(self._spec, LoopSpec):
            handle = LoopHandle(self._spec, index, self._loop, self._on_messages)
        else:
            handle = WorkerHandle(
                self._spec,
                index,
                self._kind,
                self._loop,
                self._on_messages,
                self._on_exit,
                self._stack_size,
                self._nice,
            )
        self._handles[index] = handle
        self._states[index] = "starting"
        now = time.monotonic()
        self._loads[index] = _Load(now, LoadPhase("starting"), now)
        future = self._loop.run_in_executor(self._executor, handle.start)
        future.add_done_callback(lambda f: self._on_start(handle, f))

    def _current(self, handle: Handle) -> bool:
        return self._handles.get(handle.index) is handle

    def _on_start(self, handle: Handle, future: asyncio.Future[None]) -> None:
        if not self._current(handle):
            return
        error = future.exception()
        if error is not None:
            self._failed(handle.index, f"the worker could not start: {error}")
            self._events.workers_settled()
        else:
            log.info(
                "model %s: worker %d started (%s %s), loading",
                self._spec.model,
                handle.index,
                {
                    "process": "pid",
                    "thread": "thread in pid",
                    "loop": "driven from the loop of pid",
                }[handle.kind],
                handle.pid,
            )

    def _on_messages(self, handle: Handle, batch: list[WireMessage]) -> None:
        if not self._current(handle):
            return  # news from a worker already replaced or stopped
        for message in batch:
            if message[0] == "out":
                self._events.worker_outputs(handle.index, message[1])
            elif message[0] == "phase":
                self._phase(handle.index, message[1])
            elif message[0] == "ready":
                self._states[handle.index] = "ready"
                self._ready(handle.index, message[1])
                self._events.worker_ready(handle.index, message[1])
            elif message[0] == "load_error":
                self._failed(handle.index, message[1])
                # The worker waits to be told to go (so that its message is not lost).
                self._loop.run_in_executor(self._executor, handle.stop)
        self._events.workers_settled()

    def _phase(self, index: int, phase: LoadPhase) -> None:
        load = self._loads.get(index)
        if load is None:
            return
        now = time.monotonic()
        if (phase.name, phase.detail) != (load.phase.name, load.phase.detail):
            load.phase_started, load.first_done = now, phase.done
            log.info(
                "model %s: worker %d: %s%s (%.1f s)",
                self._spec.model,
                index,
                phase.name,
                f" {phase.detail}" if phase.detail else "",
                now - load.started,
            )
        load.phase = phase

    def _ready(self, index: int, info: EngineInfo) -> None:
        load = self._loads.pop(index, None)
        seconds = 0.0 if load is None else time.monotonic() - load.started
        self._load_secs[index] = round(seconds, 1)
        self._precision[index] = (info.dtype, info.matmul)
        log.info(
            "model %s: worker %d ready after %.1f s (%s, %d units of %d tokens)",
            self._spec.model,
            index,
            seconds,
            ", ".join(filter(None, (info.device, info.dtype, info.matmul))),
            info.units,
            info.block_size,
        )

    def _failed(self, index: int, reason: str) -> None:
        load = self._loads.pop(index, None)
        after = "" if load is None else f" after {time.monotonic() - load.started:.1f} s"
        model = self._spec.model
        log.error("model %s: worker %d failed to load%s: %s", model, index, after, reason)
        self._states[index] = "failed"
        all_failed = all(state == "failed" for state in self._states.values())
        self._events.worker_failed(index, reason, all_failed)

    def _on_exit(self, handle: WorkerHandle) -> None:
        if not self._current(handle) or handle.stopping:
            return
        index = handle.index
        self._loads.pop(index, None)
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
