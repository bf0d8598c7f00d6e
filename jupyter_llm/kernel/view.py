"""A generation's view in its cell: a status line and the answer, repainted as it streams.

The view owns two display ids (the status line, then the answer), renders from the
generation's state (``render.py``) and sends through a sink that pins the cell it was made
in (``sink.py``). Changes arrive on the kernel's background loop; the view coalesces them:

* at most one repaint per ``MIN_INTERVAL`` (10 a second), never one per token;
* a byte budget: while streaming, the bytes sent stay within ``BUDGET`` times the answer's
  size so far (or times ``FLOOR`` early on, so the first words show at once). A display
  update resends the whole answer, so a long answer repaints less often rather than sending
  a quadratic amount of data;
* the status line's counters refresh every ``STATUS_INTERVAL``; a change of state shows
  at the next repaint;
* when the job ends, one final paint of both, whatever the budget.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from .generation import Generation
from .render import answer_bundle, status_bundle
from .sink import Sink

__all__ = ["GenerationView"]

MIN_INTERVAL = 0.1  # seconds between repaints
STATUS_INTERVAL = 1.0  # seconds between refreshes of the status line's counters
BUDGET = 10  # bytes sent while streaming, per byte of answer so far
FLOOR = 1024  # the answer size the budget assumes while the answer is shorter
ENVELOPE = 700  # bytes of header, parent header and framing around each message's data


class GenerationView:
    def __init__(
        self,
        generation: Generation,
        sink: Sink,
        fmt: str,
        loop: asyncio.AbstractEventLoop,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.generation = generation
        self.fmt = fmt
        self.display_id = f"jupyter_llm-{generation.id}"
        self.status_id = f"{self.display_id}-status"
        self.sent_bytes = 0  # data and envelopes, as the budget counts them
        self.paints = 0  # display messages sent
        self.final_note: str | None = None  # added to the final status line
        self._sink = sink
        self._loop = loop
        self._clock = clock
        self._timer: asyncio.TimerHandle | None = None
        self._finished = False
        self._last_paint = -MIN_INTERVAL
        self._last_status_paint = 0.0
        self._painted_text = ""
        self._painted_state: tuple[str, str | None] = ("", None)
        self._painted_tokens = -1

    # -- in the cell (the kernel's main thread) --------------------------------------------

    def show(self) -> None:
        """The first paint, in the cell: both displays exist before the cell ends."""
        self._paint_status(update=False)
        data, _ = answer_bundle("", self.fmt, final=False)
        self._send(self.display_id, data, None, update=False)
        self.generation.subscribe(self._changed)
        # The job may have ended already (before the subscription): look once more.
        self._loop.call_soon_threadsafe(self._changed, self.generation)

    def annotate(self, note: str) -> None:
        """Add ``note`` to the final status line (after the job has ended)."""
        self.final_note = note if not self.final_note else f"{self.final_note} · {note}"
        self._paint_status(update=True)

    # -- on the background loop ------------------------------------------------------------

    def _changed(self, generation: Generation) -> None:
        if self._finished:
            return
        if generation.done:
            self._paint_final()
        elif self._timer is None:
            delay = max(0.0, self._last_paint + MIN_INTERVAL - self._clock())
            self._timer = self._loop.call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self._finished or self.generation.done:
            return
        now = self._clock()
        pending = False
        state = (self.generation.status.value, self.generation.note)
        status_due = state != self._painted_state or (
            now - self._last_status_paint >= STATUS_INTERVAL
            and self.generation.tokens != self._painted_tokens
        )
        text = self.generation.text
        if text != self._painted_text:
            data, _ = answer_bundle(text, self.fmt, final=False)
            if self._affordable(data, text):
                self._send(self.display_id, data, None, update=True)
                self._painted_text = text
            else:
                pending = True
        if status_due:
            changed_state = state != self._painted_state
            if changed_state or self._affordable(status_bundle(self.generation), text):
                self._paint_status(update=True)
            else:
                pending = True
        self._last_paint = now
        if pending:
            self._timer = self._loop.call_later(MIN_INTERVAL, self._tick)

    def _paint_final(self) -> None:
        self._finished = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        text = self.generation.text
        data, note = answer_bundle(text, self.fmt, final=True)
        if note:
            self.final_note = note
        self._paint_status(update=True)  # first: the answer's final paint is the last message
        metadata = {
            "jupyter_llm": {
                "job_id": self.generation.id,
                "status": self.generation.status.value,
                "final": True,
            }
        }
        self._send(self.display_id, data, metadata, update=True)
        self._painted_text = text

    # -- painting --------------------------------------------------------------------------

    def _paint_status(self, *, update: bool) -> None:
        data = status_bundle(self.generation, self.final_note)
        self._send(self.status_id, data, None, update=update)
        self._painted_state = (self.generation.status.value, self.generation.note)
        self._painted_tokens = self.generation.tokens
        self._last_status_paint = self._clock()

    def _affordable(self, data: dict[str, Any], text: str) -> bool:
        cost = ENVELOPE + sum(len(str(value)) for value in data.values())
        allowance = BUDGET * max(len(text.encode()), FLOOR)
        return self.sent_bytes + cost <= allowance

    def _send(
        self, display_id: str, data: dict[str, Any], metadata: dict[str, Any] | None, update: bool
    ) -> None:
        self.sent_bytes += ENVELOPE + self._sink.show(display_id, data, metadata, update=update)
        self.paints += 1
