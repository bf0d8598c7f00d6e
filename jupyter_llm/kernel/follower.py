"""Feeding a ``Generation`` from its job's events, on the kernel's background loop.

One task per job: it reads the event stream until the terminal event, fetches the job's
record from the mailbox and finishes the generation with it. While the job is queued
behind a model that is still loading, a second task polls the model list once a second
and words the progress as the server reports it (``loading: converting GGUF, 12 s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from contextlib import aclosing

from ..errors import JobFailed, LLMError
from ..types import JobStatus
from .backend import Backend
from .generation import Generation
from .reports import loading_text

__all__ = ["follow"]

PROGRESS_DELAY = 0.5  # seconds before a queued job starts reporting why it waits
PROGRESS_EVERY = 1.0


async def follow(generation: Generation, backend: Backend) -> None:
    """Stream the job into ``generation`` until it ends; never raises (the generation
    carries the failure instead)."""
    progress = asyncio.create_task(_report_waiting(generation, backend))
    try:
        async with aclosing(backend.events(generation.id)) as events:
            async for event in events:
                generation._apply(event)
                if event.terminal:
                    break
        record = await backend.get(generation.id)
        generation._finish(record, record.failure())
    except LLMError as exc:  # the server went away, or forgot the job
        generation._finish(None, exc)
    except asyncio.CancelledError:
        generation._finish(None, JobFailed(generation.id, "the kernel stopped following it"))
        raise
    except Exception as exc:  # a bug: say so in the cell rather than hang
        generation._finish(None, JobFailed(generation.id, f"{type(exc).__name__}: {exc}"))
    finally:
        progress.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await progress


async def _report_waiting(generation: Generation, backend: Backend) -> None:
    started = time.monotonic()
    await asyncio.sleep(PROGRESS_DELAY)
    while not generation.done and generation.status is JobStatus.QUEUED:
        try:
            models = await backend.models()
        except LLMError:
            models = []
        info = next((m for m in models if m.get("name") == generation.model), None)
        waited = time.monotonic() - started
        if info is not None and info.get("state") == "loading":
            loading = info.get("loading") or {"phase": "loading", "seconds": waited}
            generation._set_note(f"loading: {loading_text(loading)}")
        else:
            generation._set_note(f"queued: waiting for a free slot ({waited:.0f} s)")
        await asyncio.sleep(PROGRESS_EVERY)
