"""Reading a text/event-stream: lines in, ``(id, data)`` pairs out.

Only what the jupyter_llm routes send is needed (``id:``, ``data:``, ``:`` comments), but
the parsing follows the HTML standard so another server's stream reads the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

__all__ = ["ServerEvent", "read_events"]


@dataclass(frozen=True, slots=True)
class ServerEvent:
    id: str | None
    data: str


async def read_events(lines: AsyncIterator[str]) -> AsyncIterator[ServerEvent]:
    event_id: str | None = None
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield ServerEvent(event_id, "\n".join(data))
            data = []
            continue
        if line.startswith(":"):
            continue  # a keep-alive comment
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "id":
            event_id = value
    # An event cut off by the end of the stream is dropped, as the standard says: its last
    # line may be cut short too. The caller resumes from the last whole event instead.
