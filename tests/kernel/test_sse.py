from __future__ import annotations

from collections.abc import AsyncIterator

from jupyter_llm.kernel.sse import ServerEvent, read_events


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


async def _read(*lines: str) -> list[ServerEvent]:
    return [event async for event in read_events(_lines(*lines))]


async def test_events_comments_and_multiline_data() -> None:
    events = await _read(
        ": job events",
        "",
        "id: 0",
        'data: {"a": 1}',
        "",
        ": keep-alive",
        "",
        "id: 1",
        "data: first",
        "data:second",
        "",
    )
    assert events == [ServerEvent("0", '{"a": 1}'), ServerEvent("1", "first\nsecond")]


async def test_an_event_cut_off_by_the_end_of_the_stream_is_dropped() -> None:
    assert await _read("id: 0", "data: whole", "", "id: 1", 'data: {"cut') == [
        ServerEvent("0", "whole")
    ]
