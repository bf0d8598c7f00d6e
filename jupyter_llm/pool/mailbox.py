"""The mailbox: a JobRecord per job, from acceptance until its retention ends.

The pool runs on one asyncio event loop and calls the mailbox from it, so nothing here may
block on I/O: writes (``put``, ``sweep``) return at once, reads are coroutines. Two backends
sit behind one interface: ``MemoryMailbox`` (a dict) and ``SqliteMailbox`` (survives a
restart; see ``sqlite_mailbox.py``).
"""

from __future__ import annotations

import abc
import builtins
import concurrent.futures
import heapq
from dataclasses import dataclass
from pathlib import Path

from ..types import GenerationRequest, JobRecord, JobStatus

__all__ = ["Mailbox", "MemoryMailbox", "default_mailbox_path", "open_mailbox"]


class Mailbox(abc.ABC):
    """Keeps a JobRecord per job from acceptance until retention ends."""

    @abc.abstractmethod
    def put(self, record: JobRecord, request: GenerationRequest | None = None) -> None:
        """Insert or replace the record with this id; never blocks.

        ``request`` is kept alongside until replaced; a later put without one keeps the
        request stored before (the pool only has it at hand when the job is accepted).
        """

    @abc.abstractmethod
    async def get(self, job_id: str) -> JobRecord | None:
        """The record, or None; sees every earlier put at once."""

    @abc.abstractmethod
    async def list(
        self, limit: int = 50, *, model: str | None = None, status: JobStatus | None = None
    ) -> builtins.list[JobRecord]:
        """Newest first by ``timings.created_at`` (ties: the later put first), filtered."""

    @abc.abstractmethod
    async def unfinished(self) -> builtins.list[tuple[JobRecord, GenerationRequest | None]]:
        """Queued and running records, oldest first, with their stored requests."""

    @abc.abstractmethod
    def sweep(self, before: float) -> None:
        """Drop terminal records that finished before ``before`` (epoch secs); never blocks."""

    @abc.abstractmethod
    async def flush(self) -> None:
        """Wait until every earlier put and sweep is durable."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush, then stop and join any thread; idempotent."""

    @property
    @abc.abstractmethod
    def durable(self) -> bool:
        """Whether records survive a restart of the process."""


def _is_expired(record: JobRecord, before: float) -> bool:
    """Whether ``sweep(before)`` drops the record.

    A terminal record without ``finished_at`` falls back to ``created_at``: otherwise it
    would outlive every retention period.
    """
    if not record.status.terminal:
        return False
    timings = record.timings
    finished = timings.finished_at if timings.finished_at is not None else timings.created_at
    return finished < before


def _matches(record: JobRecord, model: str | None, status: JobStatus | None) -> bool:
    return (model is None or record.model == model) and (status is None or record.status == status)


@dataclass(frozen=True, slots=True)
class _Stored:
    record: JobRecord
    request: GenerationRequest | None
    seq: int  # put order: breaks ties between equal created_at

    @property
    def order(self) -> tuple[float, int]:
        return (self.record.timings.created_at, self.seq)


class MemoryMailbox(Mailbox):
    """A dict of records. Call it from the event loop's thread only: it takes no locks."""

    def __init__(self) -> None:
        self._records: dict[str, _Stored] = {}
        self._seq = 0

    def put(self, record: JobRecord, request: GenerationRequest | None = None) -> None:
        old = self._records.get(record.id)
        if request is None and old is not None:
            request = old.request
        self._seq += 1
        self._records[record.id] = _Stored(record, request, self._seq)

    async def get(self, job_id: str) -> JobRecord | None:
        stored = self._records.get(job_id)
        return None if stored is None else stored.record

    async def list(
        self, limit: int = 50, *, model: str | None = None, status: JobStatus | None = None
    ) -> builtins.list[JobRecord]:
        found = (s for s in self._records.values() if _matches(s.record, model, status))
        return [s.record for s in heapq.nlargest(max(limit, 0), found, key=lambda s: s.order)]

    async def unfinished(self) -> builtins.list[tuple[JobRecord, GenerationRequest | None]]:
        found = [s for s in self._records.values() if not s.record.status.terminal]
        return [(s.record, s.request) for s in sorted(found, key=lambda s: s.order)]

    def sweep(self, before: float) -> None:
        gone = [i for i, s in self._records.items() if _is_expired(s.record, before)]
        for job_id in gone:
            del self._records[job_id]

    async def flush(self) -> None:
        pass

    async def close(self) -> None:
        pass

    @property
    def durable(self) -> bool:
        return False


def default_mailbox_path() -> Path:
    """Where the sqlite mailbox lives unless configured: under the Jupyter data dir.

    Nothing is created here; ``SqliteMailbox`` creates the folders when it opens the file.
    """
    try:
        from jupyter_core.paths import jupyter_data_dir
    except ImportError:
        return Path.home() / ".local" / "share" / "jupyter" / "jupyter_llm" / "mailbox.sqlite"
    return Path(jupyter_data_dir()) / "jupyter_llm" / "mailbox.sqlite"


def open_mailbox(
    backend: str,
    path: str | None,
    *,
    executor: concurrent.futures.Executor | None = None,
) -> Mailbox:
    """The mailbox ``parking_lot.mailbox`` asks for; ``executor`` runs sqlite's reads."""
    if backend == "memory":
        return MemoryMailbox()
    if backend == "sqlite":
        # Imported here: a memory mailbox should not pay for sqlite3 and the writer thread.
        from .sqlite_mailbox import SqliteMailbox

        return SqliteMailbox(path or default_mailbox_path(), executor=executor)
    raise ValueError(f"unknown mailbox backend {backend!r}; expected 'memory' or 'sqlite'")
