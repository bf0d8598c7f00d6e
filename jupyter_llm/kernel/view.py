"""A generation's view in its cell: a status line and the answer, repainted as it streams.

The view owns two display ids (the status line, then the answer), renders from the
generation's state (``render.py``) and sends through a sink that pins the cell it was made
in (``sink.py``). Changes arrive on the kernel's background loop; the view coalesces them
and asks a ``Pacer`` (``pacing.py``) when to repaint:

* the answer repaints by time, never per token: at most ten times a second, less often as
  it grows (one cell sends at most ~200 KB/s), but never trailing the generated text by
  more than 0.5 s (answers up to 16 KB) or 1 s (beyond);
* the status line's counters (tokens, tok/s) refresh at least once a second while tokens
  come; a change of state (queued, running, a note on why it waits) shows at once;
* when the job ends, one final paint of both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .generation import Generation
from .pacing import Pacer
from .render import answer_bundle, status_bundle
from .sink import Sink

__all__ = ["GenerationView"]


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
        self.pacer = Pacer(clock)
        self.final_note: str | None = None  # added to the final status line
        self._sink = sink
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self._counters_only = False  # the timer waits for the counters, not for the text
        self._finished = False
        self._painted_text = ""
        self._painted_state: tuple[str, str | None] = ("", None)
        self._painted_tokens = -1

    # -- in the cell (the kernel's main thread) --------------------------------------------

    def show(self) -> None:
        """The first paint, in the cell: both displays exist before the cell ends."""
        self._paint_status(update=False)
        data, _ = answer_bundle("", self.fmt, final=False)
        self._sink.show(self.display_id, data, None, update=False)
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
        elif self._timer is None or self._counters_only:
            self._arm()  # a timer set for the counters alone may be later than the text's

    def _arm(self) -> None:
        """Schedule the next repaint for when the first pending change is due, if any."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        delays = []
        text = self.generation.text
        if text != self._painted_text:
            delays.append(self.pacer.delay(len(text.encode())))
        if (self.generation.status.value, self.generation.note) != self._painted_state:
            delays.append(0.0)
        self._counters_only = not delays
        if self.generation.tokens != self._painted_tokens:
            delays.append(self.pacer.counters_delay())
        if delays:
            self._timer = self._loop.call_later(min(delays), self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self._finished or self.generation.done:
            return
        text = self.generation.text
        size = len(text.encode())
        if text != self._painted_text and self.pacer.delay(size) <= 0:
            data, _ = answer_bundle(text, self.fmt, final=False)
            self.pacer.painted(self._sink.show(self.display_id, data, None, update=True))
            self._painted_text = text
        state = (self.generation.status.value, self.generation.note)
        if state != self._painted_state or (
            self.generation.tokens != self._painted_tokens and self.pacer.counters_delay() <= 0
        ):
            self._paint_status(update=True)
        self._arm()  # what changed meanwhile, or was not due yet

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
        self.pacer.painted(self._sink.show(self.display_id, data, metadata, update=True))
        self._painted_text = text

    # -- painting --------------------------------------------------------------------------

    def _paint_status(self, *, update: bool) -> None:
        data = status_bundle(self.generation, self.final_note)
        sent = self._sink.show(self.status_id, data, None, update=update)
        self.pacer.counters_painted(sent)
        self._painted_state = (self.generation.status.value, self.generation.note)
        self._painted_tokens = self.generation.tokens
