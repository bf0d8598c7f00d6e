"""The waiting line of one model: bounded, by priority, FIFO within a priority.

Policy, in the order ``drain`` applies it:

1. Jobs are tried high priority first, then normal, then low. A low job waits while any
   higher one can start, up to the bound of rule 3.
   Within one priority the users take turns (fair queueing): the next job tried is the
   oldest of the user with the fewest jobs running, counted afresh after each start; ties
   go to the oldest job. With one user this is plain FIFO. A user at
   ``max_running_per_user`` is passed over: their jobs neither start nor block others.
2. The first job that does not fit (its units or a batch seat are not free) becomes the
   *head*. Other jobs that fit may start before it: skip-ahead keeps the cache busy with
   small jobs while a large one waits for room. Once there is a head, every other job that
   starts passes it, a higher-priority one that arrived later too (high-priority inline
   completions arriving one after another must not keep a long chat waiting for ever).
3. Starvation bound: once ``skip_limit`` jobs have passed the head, nothing passes it any
   more, whatever its priority. Running jobs only finish (each is bounded by its
   ``max_tokens``), so the head gets its room and starts after a bounded wait: the jobs
   running at that moment. With several users every job that starts while there is a head
   counts against it, whoever's turn it was, so the bound holds across users too.
4. ``max_depth`` bounds the line; the pool refuses the next job (``QueueFull``) before it
   is pushed. Deadlines are the pool's: it removes expired jobs with ``remove``.

Nothing here does I/O or knows about workers: ``drain`` is handed a ``start`` callback that
reserves and dispatches, and returns whether the job started.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import Generic, Protocol, TypeVar

from ..types import Priority

__all__ = ["JobQueue"]


class Queued(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def priority(self) -> Priority: ...

    @property
    def user(self) -> str | None: ...


J = TypeVar("J", bound=Queued)

_ORDER = (Priority.HIGH, Priority.NORMAL, Priority.LOW)

#: How many jobs a user has running now (the pool's live count, read at every turn).
Running = Callable[[str | None], int]


class JobQueue(Generic[J]):
    def __init__(self, skip_limit: int = 16, max_running_per_user: int | None = None) -> None:
        if skip_limit < 0:
            raise ValueError("skip_limit must be at least 0")
        self.skip_limit = skip_limit
        self.max_running_per_user = max_running_per_user
        # dicts keep insertion order and remove in O(1): FIFO with cheap cancel.
        self._lines: dict[Priority, dict[str, J]] = {p: {} for p in _ORDER}
        self._head: str | None = None
        self._head_skips = 0

    def __len__(self) -> int:
        return sum(len(line) for line in self._lines.values())

    def __iter__(self) -> Iterator[J]:
        for priority in _ORDER:
            yield from list(self._lines[priority].values())

    def __contains__(self, job_id: object) -> bool:
        return any(job_id in line for line in self._lines.values())

    def push(self, job: J) -> None:
        self._lines[job.priority][job.id] = job

    def waiting(self, user: str | None) -> int:
        """How many of the jobs in line are ``user``'s."""
        return sum(job.user == user for job in self)

    def remove(self, job_id: str) -> J | None:
        for line in self._lines.values():
            job = line.pop(job_id, None)
            if job is not None:
                if job_id == self._head:
                    self._head, self._head_skips = None, 0
                return job
        return None

    @property
    def head_skips(self) -> int:
        """How many jobs have passed the current head (0 when no job is blocked)."""
        return self._head_skips

    def drain(self, start: Callable[[J], bool], running: Running = lambda user: 0) -> list[J]:
        """Start what may start now, by the policy above; returns the started jobs.

        ``running`` counts a user's running jobs; ``start`` must count a job it starts there.
        """
        started: list[J] = []
        if self._head is not None and self._head_skips >= self.skip_limit:
            head = self._find(self._head)
            if not start(head):
                return started  # it was passed enough: nothing else starts before it
            self._lines[head.priority].pop(head.id)
            started.append(head)
            self._head, self._head_skips = None, 0
        blocked: str | None = None
        for job in self._turns(running):
            if self._head is not None and self._head_skips >= self.skip_limit:
                break
            if start(job):
                self._lines[job.priority].pop(job.id)
                started.append(job)
                if job.id == self._head:
                    self._head, self._head_skips = None, 0
                elif self._head is not None:
                    self._head_skips += 1
            elif blocked is None:
                blocked = job.id
                if self._head is None:  # the head stays until it starts or leaves
                    self._head, self._head_skips = blocked, 0
        return started

    def _turns(self, running: Running) -> Iterator[J]:
        """The jobs in the order they are tried: by priority, then users in turn (rule 1).

        Lazy: a user's turn is worked out again after each of their jobs is tried, since
        starting it raised their running count.
        """
        cap = self.max_running_per_user
        for priority in _ORDER:
            owners: list[str | None] = []
            lines: list[list[tuple[int, J]]] = []  # each user's (age, job), oldest first
            seat: dict[str | None, int] = {}
            for age, job in enumerate(list(self._lines[priority].values())):
                n = seat.setdefault(job.user, len(owners))
                if n == len(owners):
                    owners.append(job.user)
                    lines.append([])
                lines[n].append((age, job))
            # (jobs running, age of the user's next job, user, that job's place in their line)
            turns = [(running(owners[n]), line[0][0], n, 0) for n, line in enumerate(lines)]
            heapq.heapify(turns)
            while turns:
                load, age, n, i = heapq.heappop(turns)
                now = running(owners[n])
                if cap is not None and now >= cap:
                    continue  # at their limit: the rest of their line waits for a later drain
                if now != load:  # a job of theirs started since this turn was queued
                    heapq.heappush(turns, (now, age, n, i))
                    continue
                yield lines[n][i][1]
                if i + 1 < len(lines[n]):
                    heapq.heappush(turns, (running(owners[n]), lines[n][i + 1][0], n, i + 1))

    def _find(self, job_id: str) -> J:
        for line in self._lines.values():
            if job_id in line:
                return line[job_id]
        raise KeyError(job_id)
