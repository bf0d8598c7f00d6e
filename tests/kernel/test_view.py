"""The view's pacing: at most ten repaints a second, a byte budget, one final paint.

A real Generation is fed on a real background loop at a steady token rate; the sink
records each message the view would send to the frontend.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from jupyter_llm.kernel.generation import Generation
from jupyter_llm.kernel.loop import BackgroundLoop
from jupyter_llm.kernel.view import MIN_INTERVAL, GenerationView
from jupyter_llm.types import (
    GenerationRequest,
    JobRecord,
    JobStatus,
    Message,
    Timings,
    TokenEvent,
    Usage,
)


@dataclass
class Sent:
    at: float
    display_id: str
    data: dict[str, Any]
    metadata: dict[str, Any] | None
    update: bool


class RecordingSink:
    def __init__(self) -> None:
        self.sent: list[Sent] = []

    def show(
        self,
        display_id: str,
        data: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        *,
        update: bool,
    ) -> int:
        self.sent.append(Sent(time.monotonic(), display_id, data, metadata, update))
        return sum(len(str(v)) for v in data.values())


@pytest.fixture
def loop() -> Iterator[BackgroundLoop]:
    background = BackgroundLoop("test-view")
    yield background
    background.close()


def _generation(loop: BackgroundLoop) -> Generation:
    request = GenerationRequest("m", messages=(Message("user", "hi"),))
    record = JobRecord("job1", "m", JobStatus.RUNNING, Timings(time.time()))
    return Generation(record, request, canceller=lambda _: None, post=loop.call_soon)


def _stream(loop: BackgroundLoop, generation: Generation, pieces: list[str], rate: float) -> None:
    for index, piece in enumerate(pieces):
        event = TokenEvent("job1", index, JobStatus.RUNNING, text=piece, token_ids=(index,))
        loop.call_soon(generation._apply, event)
        time.sleep(1 / rate)
    record = JobRecord(
        "job1",
        "m",
        JobStatus.COMPLETED,
        Timings(time.time()),
        text="".join(pieces),
        usage=Usage(3, len(pieces)),
        finish_reason="length",
    )
    loop.call_soon(generation._finish, record, None)


def test_repaints_are_paced_budgeted_and_end_with_the_whole_text(loop: BackgroundLoop) -> None:
    generation = _generation(loop)
    sink = RecordingSink()
    view = GenerationView(generation, sink, "markdown", loop.loop)
    view.show()
    pieces = [f" word{i}" for i in range(300)]
    _stream(loop, generation, pieces, rate=200.0)
    generation.wait(5)
    time.sleep(0.05)
    text = "".join(pieces)

    answer = [s for s in sink.sent if s.display_id == view.display_id]
    status = [s for s in sink.sent if s.display_id == view.status_id]
    assert not answer[0].update and not status[0].update  # display_data first, then updates
    streamed = answer[1:-1]
    gaps = [b.at - a.at for a, b in itertools.pairwise(streamed)]
    assert all(gap >= MIN_INTERVAL * 0.9 for gap in gaps), gaps
    assert all(text.startswith(s.data["text/markdown"]) for s in streamed)
    final = answer[-1]
    assert final.data == {"text/markdown": text, "text/plain": text}
    assert final.metadata == {
        "jupyter_llm": {"job_id": "job1", "status": "completed", "final": True}
    }
    assert status[-1].data["text/plain"].startswith("llm · m · completed · 300 tokens · ")
    assert sink.sent[-1] is final
    assert view.sent_bytes <= 20 * len(text)


def test_a_job_that_ends_before_the_view_subscribes_still_gets_its_final_paint(
    loop: BackgroundLoop,
) -> None:
    generation = _generation(loop)
    _stream(loop, generation, ["all", " at", " once"], rate=1000.0)
    generation.wait(5)
    sink = RecordingSink()
    view = GenerationView(generation, sink, "text", loop.loop)
    view.show()
    deadline = time.monotonic() + 2
    while not any(s.metadata for s in sink.sent) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.sent[-1].data == {"text/plain": "all at once"}


def test_a_long_answer_repaints_less_often_rather_than_resending_everything(
    loop: BackgroundLoop,
) -> None:
    generation = _generation(loop)
    sink = RecordingSink()
    view = GenerationView(generation, sink, "markdown", loop.loop)
    view.show()
    pieces = ["x" * 16_000] + ["y"] * 200  # a long answer that then grows slowly, for 2 s
    _stream(loop, generation, pieces, rate=100.0)
    generation.wait(5)
    time.sleep(0.05)
    text_bytes = len("".join(pieces))
    answer = [s for s in sink.sent if s.display_id == view.display_id]
    assert len(answer) <= 12  # 20 at ten a second, if each repaint did not cost its size
    assert view.sent_bytes <= 13 * text_bytes  # the budget (10x), then the final paint
