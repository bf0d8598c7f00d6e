"""Health checks of a remote model: its upstream probed off the loop, changes reported on it.

A probe is blocking (an HTTP ``GET models`` with a short timeout), so it runs in the helper
executor; the loop only schedules it and hears the answer. While the upstream answers, it is
checked every ``ok_secs``; while it does not, every ``bad_secs``, so that the model is
``ready`` again within seconds of the upstream's return, without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor

__all__ = ["HealthWatch", "Probe"]

log = logging.getLogger("jupyter_llm.pool")

#: Blocking; None when healthy, else the reason it is not.
Probe = Callable[[], "str | None"]


class HealthWatch:
    """Runs ``probe`` now and then; calls ``on_change(reason)`` on the loop when it changes."""

    def __init__(
        self,
        model: str,
        probe: Probe,
        on_change: Callable[[str | None], None],
        *,
        loop: asyncio.AbstractEventLoop,
        executor: Executor,
        ok_secs: float = 10.0,
        bad_secs: float = 1.0,
    ) -> None:
        self._model = model
        self._probe = probe
        self._on_change = on_change
        self._loop = loop
        self._executor = executor
        self._ok_secs = ok_secs
        self._bad_secs = bad_secs
        self._reason: str | None = None
        self._known = False  # no answer yet: the first one is always reported
        self._probing = False
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = False

    def start(self) -> None:
        self.check_now()

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()

    def check_now(self) -> None:
        """Probe at once (unless a probe is under way already)."""
        if self._stopped or self._probing:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._probing = True
        future = self._loop.run_in_executor(self._executor, self._probe)
        future.add_done_callback(self._answered)

    def _answered(self, future: asyncio.Future[str | None]) -> None:
        self._probing = False
        if self._stopped:
            return
        error = future.exception()
        reason = f"the health check failed: {error}" if error is not None else future.result()
        if not self._known or reason != self._reason:
            if reason is None:
                log.info("model %s: upstream reachable", self._model)
            else:
                log.warning("model %s: %s", self._model, reason)
            self._known = True
            self._reason = reason
            self._on_change(reason)
        delay = self._ok_secs if reason is None else self._bad_secs
        self._timer = self._loop.call_later(delay, self.check_now)
