"""The kernel's background event loop: where streams are read and displays repainted.

One daemon thread runs one asyncio loop for the whole kernel process. Every HTTP request,
every event stream, an embedded pool and every view's repaint timer live on it, so the
kernel's main thread (where cells run) never waits on a token. Code on other threads hands
work over with ``run`` (blocks for the result) or ``spawn`` (returns a future).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["BackgroundLoop", "shared_loop"]

T = TypeVar("T")

_shared: BackgroundLoop | None = None
_shared_lock = threading.Lock()


class BackgroundLoop:
    """An asyncio loop in a daemon thread, started on construction."""

    def __init__(self, name: str = "jupyter_llm-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._closers: list[Callable[[], Coroutine[Any, Any, None]]] = []
        started = threading.Event()
        # A plain thread, started outside any cell's context: output it makes on its own
        # belongs to no cell. Views publish with the parent header they captured instead.
        self.thread = threading.Thread(target=self._run, args=(started,), name=name, daemon=True)
        self.thread.start()
        started.wait()

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(started.set)
        self.loop.run_forever()

    @property
    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self.thread

    def spawn(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the loop; returns at once."""
        if not self.thread.is_alive() or not self.loop.is_running():
            coro.close()
            raise RuntimeError("the jupyter_llm background loop has stopped")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result (from any other thread)."""
        if self.in_loop_thread:
            coro.close()
            raise RuntimeError("BackgroundLoop.run would wait on itself; await the coroutine")
        future = self.spawn(coro)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()  # an interrupt or a timeout: leave nothing running behind us
            raise

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        self.loop.call_soon_threadsafe(callback, *args)

    def on_close(self, closer: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``closer`` on the loop when it closes (an embedded pool stops its workers)."""
        self._closers.append(closer)

    def close(self, timeout: float = 10.0) -> None:
        if self.loop.is_closed() or not self.thread.is_alive():
            return
        for closer in reversed(self._closers):
            try:
                self.run(closer(), timeout)
            except Exception:  # closing down: one failure must not stop the rest
                continue
        self._closers.clear()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)


def shared_loop() -> BackgroundLoop:
    """The kernel's one background loop, started on first use and closed at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = BackgroundLoop()
            atexit.register(_shared.close)
        return _shared
