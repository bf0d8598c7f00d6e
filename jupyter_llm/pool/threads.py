"""The pool's own threads, started with the configured stack size.

``threading.stack_size`` is process-wide state: one lock guards every change to it, and it
is set only around the start of our threads, then put back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

__all__ = ["Helpers", "start_thread"]

_STACK_LOCK = threading.Lock()


def start_thread(target: Callable[[], None], name: str, stack_size: int = 0) -> threading.Thread:
    """Start a daemon thread with ``stack_size`` bytes of stack (0: the platform's default)."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    with _STACK_LOCK:
        previous = threading.stack_size(stack_size)
        try:
            thread.start()
        finally:
            threading.stack_size(previous)
    return thread


class Helpers(ThreadPoolExecutor):
    """The helper executor for blocking chores; its threads get ``stack_size`` too."""

    def __init__(self, max_workers: int, stack_size: int) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="jupyter_llm-helper")
        self._stack_size = stack_size

    def _adjust_thread_count(self) -> None:
        with _STACK_LOCK:
            previous = threading.stack_size(self._stack_size)
            try:
                super()._adjust_thread_count()
            finally:
                threading.stack_size(previous)
