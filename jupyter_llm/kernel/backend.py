"""What the Client needs from whoever runs the models: a server over HTTP, or a pool here.

Both backends are used from the kernel's background loop only (``loop.py``) and speak in
domain values and errors, so nothing above them knows which one it talks to. Models and
stats come as the plain dicts of ``GET llm/api/models`` and ``GET llm/api/status``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Protocol

from ..types import GenerationRequest, JobRecord, TokenEvent

__all__ = ["Backend"]


class Backend(Protocol):
    #: Where the models run, in words (for ``%llm status``).
    where: str

    async def models(self) -> list[dict[str, Any]]: ...

    async def status(self) -> dict[str, Any]: ...

    async def jobs(self, limit: int = 50) -> list[JobRecord]: ...

    async def get(self, job_id: str) -> JobRecord: ...

    async def submit(self, request: GenerationRequest) -> JobRecord: ...

    async def cancel(self, job_id: str) -> JobRecord: ...

    def events(self, job_id: str, after: int = -1) -> AsyncGenerator[TokenEvent, None]:
        """The job's events with ``index > after``, live until the terminal one."""
        ...

    async def close(self) -> None: ...
