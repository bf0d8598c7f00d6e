"""Workers: where engines run, and the server's handle on each of them.

A worker is a spawned process by default (a crash, a leak or a stuck CUDA call stays in it;
the GIL of the server is never shared with model code), or a thread for fast tests. Both run
``worker_main`` over a ``multiprocessing`` pipe, so the two kinds share one code path.

Protocol, all tuples. Server to worker: ``("add", EngineRequest)``, ``("abort", job_id)``,
``("stop",)``. Worker to server: ``("phase", LoadPhase)`` while it loads, then ``("ready",
EngineInfo)`` or ``("load_error", reason)``; ``("out", [StepOutput, ...])`` once per step.

On the server side a reader thread turns each burst of messages into one
``loop.call_soon_threadsafe`` callback, and a sender thread writes commands, so the event
loop neither reads nor writes a pipe and can never block on a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.util
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Literal, NoReturn

from ..engine.base import EngineSpec, StepOutput
from ..engine.loading import PhaseReporter
from ..engine.scheduler import Burst
from .threads import start_thread

__all__ = ["WorkerHandle", "WorkerKind", "worker_main"]

log = logging.getLogger("jupyter_llm.pool")

WorkerKind = Literal["process", "thread"]
WireMessage = tuple[Any, ...]  # one message between the pool and a worker (a command or a reply)

_BURST_POLICY = Burst()
_BURST = 256  # outputs folded into one loop callback at most: bounds the loop's time in it


def worker_main(conn: Connection, spec: EngineSpec, index: int) -> None:
    """The worker loop: commands between steps, one step at a time, outputs after each."""
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C in a terminal reaches the whole process group: the server decides, not us.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        engine = spec.build(index, PhaseReporter(lambda phase: conn.send(("phase", phase))))
        info = engine.info()
        conn.send(("ready", info))
    except BaseException as exc:  # a worker reports any load failure rather than dying mute
        conn.send(("load_error", f"{type(exc).__name__}: {exc}"))
        # Wait for the server's "stop" (or its end) before exiting: a worker that exited at
        # once sometimes left the server reading EOF without this message.
        with contextlib.suppress(EOFError, OSError):
            conn.recv()
        conn.close()
        return
    active: set[str] = set()
    try:
        while True:
            idle = not engine.has_work()
            waiting = conn.poll(None if idle else 0)
            if waiting and not _apply_commands(conn, engine, active):
                break
            if idle and waiting and not _gather(conn, engine, active):
                break
            if not engine.has_work():
                continue
            try:
                outputs = engine.step()
            except Exception as exc:  # the engine could not say which jobs: fail the batch
                outputs = [
                    StepOutput(job_id, finish_reason="error", error=f"{type(exc).__name__}: {exc}")
                    for job_id in active
                ]
                for job_id in active:
                    engine.abort(job_id)
            for output in outputs:
                if output.finish_reason is not None:
                    active.discard(output.job_id)
            if outputs:
                conn.send(("out", outputs))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the server went away; nothing is left to report to
    finally:
        engine.close()
        conn.close()


def _size(message: WireMessage) -> int:
    return len(message[1]) if message[0] == "out" else 1


def _process_main(conn: Connection, spec: EngineSpec, index: int, nice: int) -> None:
    """A spawned worker's entry point: runs at ``nice`` (``parking_lot.pool.worker_nice``),
    ends without teardown."""
    # A positive niceness makes model work yield the CPU to the server when cores are short,
    # so the server's loop (streaming, status, the UI) wins; it also yields to every other
    # busy program on the machine, which is why it is a setting (docs/benchmarks.md has the
    # status poll's latency both ways).
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)
    # Stopped while it loads (it cannot read "stop" then), the worker is terminated.
    signal.signal(signal.SIGTERM, lambda signum, frame: _end(128 + signum))
    worker_main(conn, spec, index)
    _end(0)


def _end(code: int) -> NoReturn:
    """End a spawned worker at once, but not before multiprocessing's own clean-up.

    Tearing down torch and transformers takes seconds and there is nothing left to save: a
    stopped worker's exit should not hold up the server's shutdown, hence ``os._exit``. But
    semaphores made in the worker (tqdm's lock, taken while a GGUF file converts) are
    registered with the server's resource tracker and unregistered only by their
    finalizers; skipped, the tracker warns of "leaked semaphore objects" when the server
    stops. So run the finalizers a normal exit would run first.
    """
    multiprocessing.util._run_finalizers(0)  # type: ignore[attr-defined]
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _gather(conn: Connection, engine: Any, active: set[str]) -> bool:
    """Woken from idle: take in the rest of a burst of jobs before the first step (the policy
    is engine/scheduler.py's ``Burst``). False once told to stop."""
    return _BURST_POLICY.gather(conn.poll, lambda: _apply_commands(conn, engine, active))


def _apply_commands(conn: Connection, engine: Any, active: set[str]) -> bool:
    """Apply every command waiting on the pipe; False once told to stop."""
    aborted: list[StepOutput] = []
    while True:
        message = conn.recv()
        if message[0] == "add":
            try:
                engine.add(message[1])
            except Exception as exc:  # one request's bad values must not end the worker
                log.exception("job %s could not start", message[1].job_id)
                failed = f"could not start: {type(exc).__name__}: {exc}"
                aborted.append(StepOutput(message[1].job_id, finish_reason="error", error=failed))
            else:
                active.add(message[1].job_id)
        elif message[0] == "abort":
            engine.abort(message[1])
            if message[1] in active:
                active.discard(message[1])
                aborted.append(StepOutput(message[1], finish_reason="cancelled"))
        elif message[0] == "stop":
            return False
        if not conn.poll(0):
            break
    if aborted:  # the units come back now, before the next step (failed adds too)
        conn.send(("out", aborted))
    return True


class WorkerHandle:
    """The server's end of one worker. ``start`` and ``stop`` block: call them off the loop."""

    def __init__(
        self,
        spec: EngineSpec,
        index: int,
        kind: WorkerKind,
        loop: asyncio.AbstractEventLoop,
        on_messages: Callable[[WorkerHandle, list[WireMessage]], None],
        on_exit: Callable[[WorkerHandle], None],
        stack_size: int = 0,
        nice: int = 0,
    ) -> None:
        self.spec = spec
        self.index = index
        self.kind = kind
        self.stopping = False
        self.pid: int | None = None
        self._loop = loop
        self._on_messages = on_messages
        self._on_exit = on_exit
        self._stack_size = stack_size
        self._nice = nice
        self._outbox: queue.SimpleQueue[WireMessage | None] = queue.SimpleQueue()
        self._conn: Connection | None = None
        self._process: Any = None  # multiprocessing.Process under the spawn context
        self._threads: list[threading.Thread] = []
        # multiprocessing.Process may not be joined from two threads at once (both would
        # waitpid; the loser thinks a dead worker is alive): the reader and stop() take turns.
        self._reap_lock = threading.Lock()
        self._exitcode: int | None = None
        self._stop_lock = threading.Lock()
        self.stopped = False

    @property
    def name(self) -> str:
        return f"jupyter_llm-{self.spec.model}-{self.index}"

    @property
    def exitcode(self) -> int | None:
        """The worker process's exit code once it has been reaped (None for a thread)."""
        return self._exitcode

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        conn, child = context.Pipe()
        self._conn = conn
        if self.kind == "process":
            self._process = context.Process(
                target=_process_main,
                args=(child, self.spec, self.index, self._nice),
                name=self.name,
                daemon=True,
            )
            self._process.start()
            self.pid = self._process.pid
            child.close()  # else the pipe never reports EOF when the worker dies
        if self.kind == "thread":
            self.pid = os.getpid()
            self._threads.append(
                start_thread(
                    lambda: worker_main(child, self.spec, self.index), self.name, self._stack_size
                )
            )
        self._threads.append(start_thread(self._read, f"{self.name}-reader", self._stack_size))
        self._threads.append(start_thread(self._write, f"{self.name}-sender", self._stack_size))

    def send(self, message: WireMessage) -> None:
        """Queue a command; never blocks."""
        self._outbox.put(message)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to stop, then make sure it did, and join every thread we started.

        Idempotent: a second call (the pool stopping a worker that is already being stopped)
        waits for the first and returns.
        """
        with self._stop_lock:
            if self.stopped:
                return
            self.stopping = True
            self._outbox.put(("stop",))
            self._outbox.put(None)
            if self._process is not None and self.pid is not None:
                self._reap(timeout)
            for thread in self._threads:
                thread.join(timeout)
            if self._conn is not None:
                self._conn.close()
            self.stopped = True

    def _reap(self, timeout: float) -> None:
        with self._reap_lock:
            self._process.join(timeout)
            if self._process.is_alive():
                log.warning("worker %s did not stop in %.1f s; terminating it", self.name, timeout)
                self._process.terminate()
                self._process.join(2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._exitcode = self._process.exitcode

    def _read(self) -> None:
        assert self._conn is not None
        conn = self._conn
        try:
            while True:
                batch = [conn.recv()]
                size = _size(batch[0])
                while size < _BURST and conn.poll(0):
                    batch.append(conn.recv())
                    size += _size(batch[-1])
                self._post(self._on_messages, self, batch)
        except (EOFError, OSError):
            pass
        if self._process is not None:
            with self._reap_lock:  # so that the exit code is known when the pool reports it
                self._process.join(1)
                self._exitcode = self._process.exitcode
        self._outbox.put(None)
        self._post(self._on_exit, self)

    def _write(self) -> None:
        assert self._conn is not None
        while (message := self._outbox.get()) is not None:
            try:
                self._conn.send(message)
            except (OSError, ValueError):
                return  # the worker is gone; the reader reports it

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        # A closed loop raises RuntimeError: the pool is gone and wants no more news.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)
