"""When to repaint a text that grows while a model streams it: the policy, no display code.

Every repaint of a streaming answer resends all of it (a Jupyter ``update_display_data``,
a widget's new ``value``), so painting at every token sends a quadratic amount of data and
painting rarely leaves the reader looking at stale text. ``Pacer`` holds the balance, by
time rather than by a byte budget:

* at most ``MIN_INTERVAL`` between repaints: ten a second, never one per token;
* after a repaint of ``n`` bytes, a pause of ``n / MAX_RATE`` seconds, so that one view
  sends at most ~200 KB/s however long its text grows;
* but never a pause that would let the shown text fall further behind the generated text
  than ``lag_limit(n)``: 0.5 s for texts up to 16 KB, 1 s beyond (less ``LAG_MARGIN``,
  the time a repaint takes to reach the frontend). Past ~160 KB the lag bound wins over
  the rate: the reader is not kept waiting to save bandwidth;
* counters (a status line's tokens and tok/s) may refresh every ``COUNTER_INTERVAL``, so
  they move at least once a second even between repaints of the text.

The pacer never sleeps and knows no event loop: it says *when*, the caller keeps the timer.
Its clock is injectable (tests drive it by hand). The ``%%llm`` cell view (``view.py``) and
the chat widget use it the same way::

    pacer = Pacer()
    # whenever the text changes and no repaint is scheduled yet:
    loop.call_later(pacer.delay(len(text.encode())), repaint)
    # in repaint:
    send(text)
    pacer.painted(len(text.encode()))

A first change after a quiet spell paints at once (the pause has long passed).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = [
    "COUNTER_INTERVAL",
    "LAG_MARGIN",
    "LARGE",
    "MAX_RATE",
    "MIN_INTERVAL",
    "Pacer",
    "lag_limit",
]

MIN_INTERVAL = 0.1  # seconds: at most ten repaints a second
MAX_RATE = 200_000  # bytes a second that one view may send while its text streams
LARGE = 16 * 1024  # bytes: above this, a text may lag a whole second rather than half
LAG_MARGIN = 0.2  # seconds kept for the repaint to travel (loop, IOPub, websocket)
COUNTER_INTERVAL = 0.5  # seconds between refreshes of counters that change with every token


def lag_limit(size: int) -> float:
    """How far (seconds) a shown text of ``size`` bytes may trail the generated one."""
    return 0.5 if size <= LARGE else 1.0


class Pacer:
    """When the next repaint of a growing text is due, given the size of the last one.

    ``delay(size)`` is the time to wait before repainting (0: now); ``painted(size)``
    records a repaint that went out. ``counters_delay()`` and ``counters_painted()`` do
    the same for small counters that change with every token. ``paints`` and ``sent``
    (bytes, as the caller measured them) add up what went out.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        min_interval: float = MIN_INTERVAL,
        max_rate: float = MAX_RATE,
        counter_interval: float = COUNTER_INTERVAL,
    ) -> None:
        self._clock = clock
        self._min_interval = min_interval
        self._max_rate = max_rate
        self._counter_interval = counter_interval
        self._last_at: float | None = None
        self._last_size = 0
        self._counters_at: float | None = None
        self.paints = 0
        self.sent = 0

    def interval(self, size: int) -> float:
        """The pause after a repaint of ``size`` bytes."""
        by_rate = max(self._min_interval, size / self._max_rate)
        return min(by_rate, max(self._min_interval, lag_limit(size) - LAG_MARGIN))

    def delay(self, size: int | None = None) -> float:
        """Seconds from now until the next repaint may go (0.0: at once).

        ``size`` is the text's size now; the pause follows the larger of it and the last
        repaint's (a text only grows while it streams, and a pause sized by the bigger one
        keeps to the rate).
        """
        if self._last_at is None:
            return 0.0
        biggest = max(self._last_size, size or 0)
        return max(0.0, self._last_at + self.interval(biggest) - self._clock())

    def painted(self, size: int) -> None:
        """A repaint of ``size`` bytes went out now."""
        self._last_at = self._clock()
        self._last_size = size
        self.paints += 1
        self.sent += size

    def counters_delay(self) -> float:
        """Seconds from now until counters may refresh (0.0: at once)."""
        if self._counters_at is None:
            return 0.0
        return max(0.0, self._counters_at + self._counter_interval - self._clock())

    def counters_painted(self, size: int = 0) -> None:
        """Counters of ``size`` bytes went out now."""
        self._counters_at = self._clock()
        self.paints += 1
        self.sent += size
