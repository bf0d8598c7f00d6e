"""What each engine step runs: the policy of continuous batching, without torch.

A step is either a prefill (waiting sequences join, run together, and get their first token)
or a decode (every running sequence gets one token). Prefill and decode alternate while both
have work, so a new request waits at most one decode step to start and running ones skip at
most one step for it. At most ``max_num_seqs`` sequences run at once, and one prefill takes
at most ``prefill_tokens`` padded prompt tokens (and always at least one sequence).

The engine executes a ``Plan`` and then calls ``postprocess``: finished sequences leave, the
others (re)join ``running`` in the order the engine keeps its cache rows.

``Burst`` is the policy for a worker woken from idle: jobs submitted together arrive a few
hundred microseconds apart, and prefilling them in one step instead of two or three is worth
making the first one wait a couple of milliseconds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .sequence import Sequence

__all__ = ["Burst", "Plan", "Scheduler"]


@dataclass(frozen=True, slots=True)
class Plan:
    """One step's work: ``seqs`` to prefill (new) or to decode (all running, in row order)."""

    prefill: bool
    seqs: tuple[Sequence, ...]


class Scheduler:
    def __init__(self, max_num_seqs: int, prefill_tokens: int = 4096) -> None:
        if max_num_seqs < 1:
            raise ValueError(f"max_num_seqs must be at least 1, got {max_num_seqs}")
        self.max_num_seqs = max_num_seqs
        self.prefill_tokens = prefill_tokens
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self._prefilled_last = False

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    def abort(self, job_id: str) -> int | None:
        """Drop the job; returns the running row it held (its cache row goes too), if any."""
        self.waiting = deque(s for s in self.waiting if s.job_id != job_id)
        for row, seq in enumerate(self.running):
            if seq.job_id == job_id:
                del self.running[row]
                return row
        return None

    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def schedule(self) -> Plan | None:
        """The next step's plan (prefill seqs leave ``waiting``), or None when idle."""
        room = self.max_num_seqs - len(self.running)
        prefill = bool(self.waiting) and room > 0
        prefill = prefill and (not self.running or not self._prefilled_last)
        self._prefilled_last = prefill
        if prefill:
            return Plan(True, tuple(self._take(room)))
        if self.running:
            return Plan(False, tuple(self.running))
        return None

    def postprocess(self, plan: Plan) -> list[int]:
        """After the step: the indexes into ``plan.seqs`` that go on running."""
        keep = [i for i, seq in enumerate(plan.seqs) if not seq.finished]
        if plan.prefill:
            self.running.extend(plan.seqs[i] for i in keep)
        else:
            self.running = [plan.seqs[i] for i in keep]
        return keep

    def clear(self) -> None:
        self.waiting.clear()
        self.running.clear()

    def _take(self, room: int) -> list[Sequence]:
        new = [self.waiting.popleft()]
        longest = len(new[0].prompt_ids)
        while self.waiting and len(new) < room:
            longest = max(longest, len(self.waiting[0].prompt_ids))
            if longest * (len(new) + 1) > self.prefill_tokens:  # padded to the longest
                break
            new.append(self.waiting.popleft())
        return new


@dataclass(frozen=True, slots=True)
class Burst:
    """From idle, wait ``gap_secs`` for each next job of a burst, ``max_secs`` in all."""

    gap_secs: float = 0.002
    max_secs: float = 0.010

    def gather(
        self,
        poll: Callable[[float], bool],
        take: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> bool:
        """``poll(timeout)`` says whether a command came; ``take()`` applies it (False: stop).

        Returns False once ``take`` said stop.
        """
        deadline = clock() + self.max_secs
        while clock() < deadline and poll(self.gap_secs):
            if not take():
                return False
        return True
