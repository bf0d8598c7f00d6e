"""Loading progress: what a worker is doing while it builds its engine, as named phases.

Loading a model takes from a second to minutes, and a user waiting on ``loading`` wants to
know why. So ``EngineSpec.build`` gets a ``Progress`` and calls it whenever the load moves
on to a new phase, or a phase's numbers move::

    progress("converting GGUF", detail=str(target))        # once, into the cache folder
    progress("loading weights", detail=str(folder))
    progress("downloading", detail=file, done=bytes_so_far, total=size, unit="bytes", rate=r)

Phase names are free text, short and lower case, shown as they are ("loading: converting
GGUF, 12 s"); frontends display whatever name and numbers come. Names in use: ``starting``
(the pool's, before the worker reports anything: spawning the process, importing),
``importing torch``, ``downloading``, ``converting GGUF``, ``loading weights``, ``loading``
(the fake engine).

The worker turns each call into a ``LoadPhase`` message to the pool (``pool/worker.py``),
which keeps the latest per worker, adds the seconds elapsed and a rate, and reports them in
``GET llm/api/models``. A ``Progress`` may be called from any thread (a download's worker
threads, say); calls that only move the numbers are thinned to a few a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["LoadPhase", "PhaseReporter", "Progress", "silent"]

NUMBERS_EVERY = 0.25  # seconds between reports that only move a phase's numbers


@dataclass(frozen=True, slots=True)
class LoadPhase:
    """One step of loading, as a worker reports it (plain data: it crosses a pipe)."""

    name: str
    detail: str | None = None  # what it works on: a folder, a file, a repository
    done: float | None = None  # progress numbers, when the phase can count them
    total: float | None = None
    unit: str | None = None  # what done and total count: "bytes", "files", "layers"...
    rate: float | None = None  # units a second, when the reporter measures it


class Progress(Protocol):
    def __call__(
        self,
        phase: str,
        detail: str | None = None,
        *,
        done: float | None = None,
        total: float | None = None,
        unit: str | None = None,
        rate: float | None = None,
    ) -> None:
        """Say that loading is now in ``phase`` (or that its numbers moved)."""
        ...


def silent(
    phase: str,
    detail: str | None = None,
    *,
    done: float | None = None,
    total: float | None = None,
    unit: str | None = None,
    rate: float | None = None,
) -> None:
    """A ``Progress`` that tells no one (an engine built outside a worker)."""


class PhaseReporter:
    """A ``Progress`` that hands each phase to ``send``; thread-safe, thins number updates."""

    def __init__(
        self, send: Callable[[LoadPhase], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._send = send
        self._clock = clock
        self._lock = threading.Lock()
        self._last: LoadPhase | None = None
        self._last_at = 0.0

    def __call__(
        self,
        phase: str,
        detail: str | None = None,
        *,
        done: float | None = None,
        total: float | None = None,
        unit: str | None = None,
        rate: float | None = None,
    ) -> None:
        news = LoadPhase(phase, detail, done, total, unit, rate)
        with self._lock:
            now = self._clock()
            last = self._last
            same_phase = last is not None and (last.name, last.detail) == (phase, detail)
            finished = done is not None and total is not None and done >= total
            recent = now - self._last_at < NUMBERS_EVERY
            if news == last or (same_phase and not finished and recent):
                return
            self._last, self._last_at = news, now
            self._send(news)
