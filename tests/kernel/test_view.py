"""The view's pacing: by time (ten repaints a second at most, fewer as the answer grows,
never trailing far behind), counters at least once a second, one final paint.

A real Generation is fed on a real background loop at a steady token rate; the sink
records each message the view would send to the frontend.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from jupyter_llm.kernel.generation import Generation
from jupyter_llm.kernel.loop import BackgroundLoop
from jupyter_llm.kernel.pacing import MAX_RATE, MIN_INTERVAL
from jupyter_llm.kernel.view import GenerationView
from jupyter_llm.types import (
    GenerationRequest,
    JobRecord,
    JobStatus,
    Message,
    Timings,
    TokenEvent,
    Usage,
)

from .conftest import Server
from .support import KernelDriver, Received


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


def test_repaints_are_paced_by_time_and_end_with_the_whole_text(loop: BackgroundLoop) -> None:
    generation = _generation(loop)
    sink = RecordingSink()
    view = GenerationView(generation, sink, "markdown", loop.loop)
    view.show()
    pieces = [f" word{i}" for i in range(300)]
    _stream(loop, generation, pieces, rate=200.0)  # 1.5 s
    generation.wait(5)
    time.sleep(0.05)
    text = "".join(pieces)

    answer = [s for s in sink.sent if s.display_id == view.display_id]
    status = [s for s in sink.sent if s.display_id == view.status_id]
    assert not answer[0].update and not status[0].update  # display_data first, then updates
    streamed = answer[1:-1]
    gaps = [b.at - a.at for a, b in itertools.pairwise(streamed)]
    assert all(gap >= MIN_INTERVAL * 0.9 for gap in gaps), gaps
    assert max(gaps) <= 0.5, gaps  # a 2 KB answer never trails by more than half a second
    assert len(streamed) >= 8  # ~15 at ten a second: no budget runs out
    assert all(text.startswith(s.data["text/markdown"]) for s in streamed)
    counters = [s.at for s in status[1:-1]]  # the status line's refreshes while streaming
    assert len(counters) >= 2
    assert max(b - a for a, b in itertools.pairwise([status[0].at, *counters])) <= 1.0
    final = answer[-1]
    assert final.data == {"text/markdown": text, "text/plain": text}
    assert final.metadata == {
        "jupyter_llm": {"job_id": "job1", "status": "completed", "final": True}
    }
    assert status[-1].data["text/plain"].startswith("llm · m · completed · 300 tokens · ")
    assert sink.sent[-1] is final


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


def test_a_long_answer_repaints_less_often_but_keeps_up(loop: BackgroundLoop) -> None:
    generation = _generation(loop)
    sink = RecordingSink()
    view = GenerationView(generation, sink, "text", loop.loop)
    view.show()
    pieces = ["x" * 100_000] + ["y"] * 300  # a long answer that then grows slowly, for 3 s
    _stream(loop, generation, pieces, rate=100.0)
    generation.wait(5)
    time.sleep(0.05)
    answer = [s for s in sink.sent if s.display_id == view.display_id]
    streamed = answer[1:-1]
    gaps = [b.at - a.at for a, b in itertools.pairwise(streamed)]
    # 100 KB at 200 KB/s: a repaint every half second, not ten a second...
    assert all(gap >= 0.45 for gap in gaps), gaps
    assert len(streamed) <= 8
    # ...yet the text never trails the generation by more than a second.
    assert len(streamed) >= 4 and max(gaps) <= 1.0, gaps
    seconds = streamed[-1].at - streamed[0].at
    sent = sum(len(s.data["text/plain"]) for s in streamed[1:])
    assert sent / seconds <= 1.1 * MAX_RATE


# -- in a real kernel, against the real server ---------------------------------------------

# Fake-engine words (it echoes the prompt at ~100 tokens a second): ~11 bytes a token, so a
# 2,000-token answer passes 16 KB (where half a second of lag becomes a second) on its way.
WORDS = "streaming answers repaint continuously"


class Arrivals:
    """When each piece of a job's text reached a client of the server (its SSE stream),
    read on a thread of the test process: (time.time(), characters so far)."""

    def __init__(self, server: Server, job_id: str) -> None:
        self.seen: list[tuple[float, int]] = []
        self._thread = threading.Thread(target=self._read, args=(server, job_id), daemon=True)
        self._thread.start()

    def _read(self, server: Server, job_id: str) -> None:
        size = 0
        with (
            server.client() as client,
            client.stream("GET", f"llm/api/jobs/{job_id}/events", timeout=120) as response,
        ):
            for line in response.iter_lines():
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event["text"]:
                        size += len(event["text"])
                        self.seen.append((time.time(), size))

    def join(self) -> None:
        self._thread.join(30)

    def first_beyond(self, size: int) -> float | None:
        """When the first character past ``size`` arrived."""
        return next((at for at, total in self.seen if total > size), None)


def shown(message: Received) -> str:
    data = message.content["data"]
    return str(data.get("text/plain", data.get("text/markdown", ""))).removesuffix("\n```")


@pytest.mark.parametrize("tokens", [300, 2000])
@pytest.mark.slow
def test_the_answer_streams_into_its_cell_without_lagging(
    kernel: KernelDriver, server: Server, tokens: int
) -> None:
    cell = kernel.ok(f"%%llm -m fake -n {tokens} -p ignore_eos=true\n{WORDS}")
    job_id = cell.answer_id().removeprefix("jupyter_llm-")
    arrivals = Arrivals(server, job_id)
    kernel.wait_for(lambda: cell.final() is not None, 120, "the final paint")
    arrivals.join()
    record = server.job(job_id)
    assert record["usage"]["completion_tokens"] == tokens

    answer = cell.updates(cell.answer_id())
    final = answer[-1]
    assert final is cell.final()
    assert final.content["data"]["text/plain"] == record["text"]  # the last update: all of it
    assert len(record["text"]) > (16 * 1024 if tokens == 2000 else 2500)

    # Lag: before each update, how long the oldest piece it shows for the first time had
    # been at the server's clients. Measured from arrival times, not between updates, so a
    # model or a machine that stalls does not count against the view.
    lags: list[tuple[int, float]] = []  # (size shown before the update, lag)
    before = 0
    for update in answer[1:]:
        text = shown(update)
        assert record["text"].startswith(text)
        first = arrivals.first_beyond(before)
        if first is not None and len(text) > before:
            lags.append((before, update.sent.timestamp() - first))
        before = len(text)
    assert len(lags) >= tokens / 100 * 2  # a few repaints a second at least, to the end
    small = [lag for size, lag in lags if size <= 16 * 1024]
    large = [lag for size, lag in lags if size > 16 * 1024]
    gaps = [(b.sent - a.sent).total_seconds() for a, b in itertools.pairwise(answer[1:])]
    print(  # for the record (pytest -s): what the frontend saw
        f"{tokens} tokens, {len(record['text'])} chars: {len(answer)} updates, "
        f"largest gap {max(gaps):.3f} s, lag max {max(small):.3f} s (<= 16 KB) / "
        f"{max(large, default=0.0):.3f} s (beyond)"
    )
    assert max(small) <= 0.5, sorted(small)[-5:]
    assert max(large, default=0.0) <= 1.0, sorted(large)[-5:]

    status = cell.updates(cell.answer_id() + "-status")
    streaming = [m.sent.timestamp() for m in status if m.sent <= answer[-2].sent]
    assert max(b - a for a, b in itertools.pairwise(streaming)) <= 1.0  # counters refresh
