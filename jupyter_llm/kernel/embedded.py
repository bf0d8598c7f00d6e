"""The embedded backend: a ``Pool`` inside the kernel process, when no server is found.

The pool runs on the kernel's background loop and its workers are still separate processes,
so the kernel stays free while they load and generate; the pool's public API is used as the
server uses it. It reads the same models.yaml a server would (``JUPYTER_LLM_CONFIG``, else
``models.yaml`` in the kernel's working directory, else the packaged default), starts on
first use and stops when the kernel exits.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from ..config import load_config
from ..pool import Pool
from ..types import GenerationRequest, JobRecord, TokenEvent

__all__ = ["EmbeddedBackend"]


class EmbeddedBackend:
    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.where = f"an embedded pool in this kernel (models from {config_path})"
        self._pool: Pool | None = None
        self._starting: asyncio.Lock | None = None

    async def pool(self) -> Pool:
        """The started pool (models load in the background; jobs wait for them)."""
        if self._pool is not None:
            return self._pool
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._pool is None:
                # The pool's token counter imports transformers (never torch) in this
                # process, and tqdm warns on stderr that ipywidgets is missing: noise in
                # whichever cell ran last, about nothing the user asked for.
                warnings.filterwarnings("ignore", message="IProgress not found")
                pool = Pool(load_config(self.config_path))  # a ConfigError says what is wrong
                await pool.start()
                self._pool = pool
        return self._pool

    async def models(self) -> list[dict[str, Any]]:
        return [model.to_dict() for model in (await self.pool()).models()]

    async def status(self) -> dict[str, Any]:
        return (await self.pool()).stats().to_dict()

    async def jobs(self, limit: int = 50) -> list[JobRecord]:
        return await (await self.pool()).jobs(limit)

    async def get(self, job_id: str) -> JobRecord:
        return await (await self.pool()).get(job_id)

    async def submit(self, request: GenerationRequest) -> JobRecord:
        return await (await self.pool()).submit(request)

    async def cancel(self, job_id: str) -> JobRecord:
        return await (await self.pool()).cancel(job_id)

    async def events(self, job_id: str, after: int = -1) -> AsyncGenerator[TokenEvent, None]:
        async for event in (await self.pool()).events(job_id, after):
            yield event

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.stop()
            self._pool = None
