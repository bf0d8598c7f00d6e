"""The handle on one job started from the kernel: its text so far, its state, and waiting.

A ``Generation`` is fed by its follower on the kernel's background loop (``follower.py``)
and read from anywhere: the cell that started it, later cells, a view repainting. Reads are
cheap snapshots under one lock; nothing here blocks the loop.

Waiting (``wait``, iterating) is interruptible, and an interrupt while waiting cancels the
job (docs/design.md, rule 4): the Stop button means stop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

from ..errors import LLMError
from ..types import GenerationRequest, JobRecord, JobStatus, TokenEvent

__all__ = ["Generation"]

log = logging.getLogger("jupyter_llm.kernel")

Listener = Callable[["Generation"], None]

_POLL = 0.1  # seconds between checks for an interrupt while a thread waits


class Generation:
    """A job's stream as it arrives: ``text``, ``status``, ``wait()``, ``cancel()``.

    Iterate over it (``for piece in g`` or ``async for piece in g``) to get the text in
    pieces as they are made, from the first; iteration ends with the job and raises as
    ``wait`` does if it did not complete.
    """

    def __init__(
        self,
        record: JobRecord,
        request: GenerationRequest,
        canceller: Callable[[str], object],
        post: Callable[[Callable[[], None]], None],
    ) -> None:
        self.id = record.id
        self.model = record.model
        self.request = request
        self._canceller = canceller
        self._post = post  # runs a callable on the loop that feeds this generation
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pieces: list[str] = []
        self._tokens = 0
        self._status = record.status
        self._record: JobRecord | None = None
        self._failure: LLMError | None = None
        self._note: str | None = None
        self._done = False
        self._listeners: list[Listener] = []
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self.submitted_at = time.monotonic()
        self.first_token_at: float | None = None
        self.finished_at: float | None = None

    # -- reading ---------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The text so far (all of it once ``done``)."""
        with self._lock:
            return "".join(self._pieces)

    @property
    def status(self) -> JobStatus:
        return self._status

    @property
    def done(self) -> bool:
        return self._done

    @property
    def tokens(self) -> int:
        """Tokens generated so far."""
        return self._tokens

    @property
    def error(self) -> str | None:
        """Why the job did not complete (``None`` while it runs or once it completed)."""
        return None if self._failure is None else str(self._failure)

    @property
    def failure(self) -> LLMError | None:
        return self._failure

    @property
    def record(self) -> JobRecord | None:
        """The mailbox record, once the job has ended."""
        return self._record

    @property
    def note(self) -> str | None:
        """Why the job is still queued, shown as its state: ``queued: waiting for a free slot
        (3 s)``, ``loading: converting GGUF, 12 s``."""
        return self._note

    def tokens_per_second(self, now: float | None = None) -> float | None:
        if self.first_token_at is None or self._tokens < 2:
            return None
        end = self.finished_at or (time.monotonic() if now is None else now)
        span = end - self.first_token_at
        return (self._tokens - 1) / span if span > 0 else None

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return (
            f"<Generation {self.id[:8]} model={self.model!r} status={self._status.value} "
            f"tokens={self._tokens}>"
        )

    # -- waiting ---------------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> str:
        """Block until the job ends and return its text.

        Raises ``JobCancelled``, ``JobExpired``, ``WorkerLost`` or ``JobFailed`` when it did
        not complete, ``TimeoutError`` after ``timeout`` seconds (the job goes on). An
        interrupt (the kernel's Stop button) cancels the job, then raises KeyboardInterrupt.
        """
        if not self._block_until_done(timeout):
            raise TimeoutError(f"job {self.id} is still {self._status.value} after {timeout} s")
        if self._failure is not None:
            raise self._failure
        return self.text

    def cancel(self, timeout: float = 10.0) -> None:
        """Cancel the job (queued or running) and wait until it has stopped."""
        if self._done:
            return
        record = self._canceller(self.id)
        if self._block_until_done(timeout, cancel_on_interrupt=False):
            return
        if isinstance(record, JobRecord) and record.status.terminal:  # its stream went quiet
            self._post(lambda: self._finish(record, record.failure()))
            self._block_until_done(timeout, cancel_on_interrupt=False)

    def _block_until_done(self, timeout: float | None, cancel_on_interrupt: bool = True) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            with self._lock:
                while not self._done:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._changed.wait(_POLL if left is None else min(left, _POLL))
        except KeyboardInterrupt:
            if cancel_on_interrupt:
                self._cancel_quietly()
            raise
        return True

    def _cancel_quietly(self) -> None:
        """Cancel on an interrupt: the interrupt is what the caller must see, not a failure
        to reach the server while cancelling."""
        try:
            self.cancel()
        except (LLMError, TimeoutError) as exc:
            log.warning("jupyter_llm: could not cancel job %s: %s", self.id, exc)

    def __iter__(self) -> Iterator[str]:
        index = 0
        while True:
            try:
                with self._lock:
                    while index >= len(self._pieces) and not self._done:
                        self._changed.wait(_POLL)
                    pieces = self._pieces[index:]
                    finished = self._done
            except KeyboardInterrupt:
                self._cancel_quietly()
                raise
            index += len(pieces)
            yield from (piece for piece in pieces if piece)
            if finished:
                break
        if self._failure is not None:
            raise self._failure

    def __aiter__(self) -> AsyncIterator[str]:
        return self._pieces_async()

    async def _pieces_async(self) -> AsyncIterator[str]:
        index = 0
        while True:
            with self._lock:
                pieces = self._pieces[index:]
                finished = self._done
                future: asyncio.Future[None] | None = None
                if not pieces and not finished:
                    loop = asyncio.get_running_loop()
                    future = loop.create_future()
                    self._async_waiters.append((loop, future))
            if future is not None:
                await future
                continue
            index += len(pieces)
            for piece in pieces:
                if piece:
                    yield piece
            if finished:
                break
        if self._failure is not None:
            raise self._failure

    # -- listening (views) -----------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(self)`` after every change, on the loop that feeds the job."""
        self._listeners.append(listener)

    # -- feeding (the follower, on the background loop) ------------------------------------

    def _apply(self, event: TokenEvent) -> None:
        if self._done:
            return
        with self._lock:
            if event.text or event.token_ids:
                if self.first_token_at is None:
                    self.first_token_at = time.monotonic()
                self._pieces.append(event.text)
                self._tokens += len(event.token_ids)
            if not event.terminal:
                self._status = event.status
            if event.status is not JobStatus.QUEUED:
                self._note = None
        self._changed_now()

    def _set_note(self, note: str | None) -> None:
        if self._done or note == self._note:
            return
        self._note = note
        self._changed_now()

    def _finish(self, record: JobRecord | None, failure: LLMError | None) -> None:
        """The job has ended: keep its record, and say why if it did not complete."""
        if self._done:
            return
        with self._lock:
            if record is not None:
                self._record = record
                self._status = record.status
                streamed = "".join(self._pieces)
                # The mailbox is the truth: a stream resumed after the job had left the
                # pool's memory replays only its end state, so add what the stream skipped.
                if record.text != streamed and record.text.startswith(streamed):
                    self._pieces.append(record.text[len(streamed) :])
                self._tokens = max(self._tokens, record.usage.completion_tokens)
            elif failure is not None:
                self._status = JobStatus.FAILED
            self._failure = failure
            self._note = None
            self.finished_at = time.monotonic()
            self._done = True
        self._changed_now()

    def _changed_now(self) -> None:
        for listener in list(self._listeners):
            try:
                listener(self)
            except Exception:  # a broken view must not stop the stream
                log.exception("jupyter_llm: a listener of job %s failed", self.id)
        with self._lock:
            self._changed.notify_all()
            waiters, self._async_waiters = self._async_waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop has closed: nobody is waiting any more
                continue


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
