"""The memory mailbox: a dict of records, gone when the process ends."""

from __future__ import annotations

import builtins
import heapq
from dataclasses import dataclass

from ...types import GenerationRequest, JobRecord, JobStatus
from .base import Mailbox, is_expired, matches

__all__ = ["MemoryMailbox"]


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
        self,
        limit: int = 50,
        *,
        model: str | None = None,
        status: JobStatus | None = None,
        owner: str | None = None,
        kind: str | None = None,
    ) -> builtins.list[JobRecord]:
        found = (s for s in self._records.values() if matches(s.record, model, status, owner, kind))
        return [s.record for s in heapq.nlargest(max(limit, 0), found, key=lambda s: s.order)]

    async def unfinished(self) -> builtins.list[tuple[JobRecord, GenerationRequest | None]]:
        found = [s for s in self._records.values() if not s.record.status.terminal]
        return [(s.record, s.request) for s in sorted(found, key=lambda s: s.order)]

    def sweep(self, before: float) -> None:
        gone = [i for i, s in self._records.items() if is_expired(s.record, before)]
        for job_id in gone:
            del self._records[job_id]

    async def flush(self) -> None:
        pass

    async def close(self) -> None:
        pass

    @property
    def durable(self) -> bool:
        return False
