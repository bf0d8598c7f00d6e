"""The pool: the one object the server (or an embedded kernel) talks to.

It lives on one asyncio event loop and never blocks it: model work runs in worker processes,
blocking chores (spawning, joining, counting prompts, sqlite reads) run in a helper executor,
and worker news arrives by ``call_soon_threadsafe``. See ``lot.py`` for one model's share,
``queue.py`` for the waiting policy and ``admission.py`` for units.

Lifecycle: ``Pool(config)`` builds nothing; ``await start()`` opens the mailbox, recovers
persisted jobs and starts the workers (models load in the background: ``start`` returns at
once); ``await stop()`` drains and leaves no thread or process behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable

from ..config import Config, ModelConfig
from ..engine import spec_for
from ..engine.base import AnySpec
from ..errors import (
    LLMError,
    ModelNotReady,
    QueueFull,
    UnknownJob,
    UnknownModel,
    UserLimitReached,
    failure_type,
)
from ..types import GenerationRequest, JobRecord, JobStatus, TokenEvent
from .job import Job
from .lot import ModelLot
from .mailbox import Mailbox, open_mailbox
from .observer import PoolObserver
from .stats import LoadingInfo, ModelInfo, ModelStats, PoolStats
from .threads import Helpers
from .worker import WorkerKind

__all__ = ["Pool"]

log = logging.getLogger("jupyter_llm.pool")


class Pool:
    """Admission, queueing, workers and the mailbox for every configured model.

    ``engines`` maps a model's configuration to its engine spec (the test seam: pass one
    that returns a ``FakeSpec``). ``worker_kind="thread"`` runs engines in threads, for tests.
    """

    def __init__(
        self,
        config: Config,
        *,
        engines: Callable[[ModelConfig], AnySpec] = spec_for,
        worker_kind: WorkerKind = "process",
        skip_limit: int = 16,
        keep_finished: int = 1000,
        drain_secs: float = 5.0,
        observer: PoolObserver | None = None,
    ) -> None:
        self.config = config
        self._engines = engines
        self._worker_kind = worker_kind
        self._skip_limit = skip_limit
        self._keep_finished = keep_finished
        self._drain_secs = drain_secs
        self._observer = observer or PoolObserver()
        self._jobs: dict[str, Job] = {}
        # An editor's latest completion job. Not keyed by user: jupyter-server's default
        # identity names each token-authenticated request anew; editors send random ids.
        self._editors: dict[str, Job] = {}
        self._finished: deque[str] = deque()
        self._lots: dict[str, ModelLot] = {}
        self._mailbox: Mailbox | None = None
        self._executor: Helpers | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._state = "new"

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._state != "new":
            raise RuntimeError(f"the pool is {self._state}; a pool starts once")
        self._state = "starting"
        loop = asyncio.get_running_loop()
        settings = self.config.parking_lot
        self._executor = Helpers(
            settings.pool.max_blocking_threads, settings.pool.thread_stack_size
        )
        settings_mailbox = settings.mailbox
        # Opening sqlite creates folders and tables: a blocking chore, done off the loop.
        self._mailbox = await loop.run_in_executor(
            self._executor,
            functools.partial(
                open_mailbox,
                settings_mailbox.backend,
                settings_mailbox.path,
                executor=self._executor,
            ),
        )
        for model in self.config.models:
            spec: AnySpec | LLMError
            try:
                spec = self._engines(model)
            except LLMError as exc:
                spec = exc
            self._lots[model.name] = ModelLot(
                model,
                spec,
                loop=loop,
                executor=self._executor,
                persist=self._persist,
                worker_kind=self._worker_kind,
                skip_limit=self._skip_limit,
                observer=self._observer,
            )
        await self._recover()
        for lot in self._lots.values():
            lot.start()
        self._sweeper = asyncio.create_task(self._sweep_forever())
        self._state = "running"

    async def stop(self) -> None:
        """Drain running jobs (up to ``drain_secs``), stop every worker, close the mailbox."""
        if self._state in ("stopping", "stopped"):
            return
        self._state = "stopping"
        if self._sweeper is not None:
            self._sweeper.cancel()
        keep = self.config.parking_lot.queue.persistence
        await asyncio.gather(*(lot.stop(self._drain_secs, keep) for lot in self._lots.values()))
        if self._mailbox is not None:
            await self._mailbox.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._state = "stopped"

    async def _recover(self) -> None:
        """Bring back what a previous run left unfinished in a durable mailbox."""
        assert self._mailbox is not None
        if not self._mailbox.durable:
            return
        keep = self.config.parking_lot.queue.persistence
        for record, request in await self._mailbox.unfinished():
            lot = self._lots.get(record.model)
            if keep and request is not None and lot is not None:
                job = Job(
                    record.id, request, created_at=record.timings.created_at, user=record.user
                )
                self._jobs[job.id] = job
                await lot.admit(job, self._persist)
                log.info("job %s: recovered from the persistent queue", job.id)
                continue
            why = (
                "queue.persistence is off"
                if not keep
                else f"model {record.model!r} is no longer configured"
                if lot is None
                else "its request was not kept"
            )
            failed = dataclasses.replace(
                record,
                status=JobStatus.FAILED,
                finish_reason="error",
                error=f"the server restarted before this job finished ({why})",
                error_type=failure_type(JobStatus.FAILED),
                timings=dataclasses.replace(record.timings, finished_at=time.time()),
            )
            self._mailbox.put(failed)

    # -- jobs ------------------------------------------------------------------------------

    async def submit(self, request: GenerationRequest, *, user: str | None = None) -> JobRecord:
        """Accept a job (returns its record, status ``queued`` or ``running``) or raise.

        ``user`` owns the job: its per-user limits and fair share count it, its record names
        them. Raises UnknownModel, ModelNotReady (failed to load, or stopping), QueueFull
        (UserLimitReached among them), InvalidRequest (JobTooLarge among them).
        """
        lot = self._lot(request.model)
        if self._state != "running":
            raise ModelNotReady(request.model, f"the pool is {self._state}")
        if lot.state == "error":
            raise ModelNotReady(request.model, lot.error or "it failed to load")
        job = Job(uuid.uuid4().hex, request, user=user)
        if job.editor is not None:
            self._supersede(job.editor)  # first: its units and queue place go to the new one
            self._editors[job.editor] = job
        depth = lot.config.parking_lot.limits.max_queue_depth
        if lot.waiting >= depth:
            full = QueueFull(request.model, lot.waiting, retry_after=self._retry_after(lot))
            self._forget_editor(job)
            lot.reject(full, request.kind)
            raise full
        most = lot.config.parking_lot.limits.max_queued_per_user
        if most is not None and lot.waiting_of(user) >= most:
            mine = UserLimitReached(
                request.model, user, "max_queued_per_user", most, self._retry_after(lot)
            )
            self._forget_editor(job)
            lot.reject(mine, request.kind)
            raise mine
        try:
            await lot.admit(job, self._accept)
        except LLMError as refused:
            self._forget_editor(job)
            lot.reject(refused, request.kind)
            raise
        if job.editor is not None and self._editors.get(job.editor) is not job:
            lot.cancel(job)  # the editor asked again while this one was being priced
        return job.record()

    def _supersede(self, editor: str) -> None:
        """Cancel the completion an editor asked for before: its text is stale now.

        One still being priced is not in its lot yet: ``submit`` cancels it once it is."""
        previous = self._editors.pop(editor, None)
        if previous is not None and previous.id in self._jobs and not previous.status.terminal:
            self._lots[previous.model].cancel(previous)

    def _forget_editor(self, job: Job) -> None:
        if job.editor is not None and self._editors.get(job.editor) is job:
            del self._editors[job.editor]

    def _accept(self, job: Job) -> None:
        self._jobs[job.id] = job
        assert self._mailbox is not None
        self._mailbox.put(job.record(), job.request)

    async def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued or running job; a finished one is returned as it is."""
        job = self._jobs.get(job_id)
        if job is None:
            return await self.get(job_id)
        if not job.status.terminal:
            self._lots[job.model].cancel(job)
        return job.record()

    async def get(self, job_id: str) -> JobRecord:
        job = self._jobs.get(job_id)
        if job is not None:
            return job.record()
        assert self._mailbox is not None
        record = await self._mailbox.get(job_id)
        if record is None:
            raise UnknownJob(job_id)
        return record

    async def jobs(
        self,
        limit: int = 50,
        *,
        model: str | None = None,
        status: JobStatus | None = None,
        owner: str | None = None,
        kind: str | None = None,
    ) -> list[JobRecord]:
        """Recent records, newest first; live jobs show their text so far.

        ``owner``: only that user's jobs (None: everyone's); ``kind``: ``generate`` or
        ``completion`` only.
        """
        assert self._mailbox is not None
        records = await self._mailbox.list(
            limit, model=model, status=status, owner=owner, kind=kind
        )
        live = [self._jobs[r.id].record() if r.id in self._jobs else r for r in records]
        return [r for r in live if status is None or r.status is status]

    async def events(self, job_id: str, after: int = -1) -> AsyncIterator[TokenEvent]:
        """The job's events with ``index > after``, live until its terminal event.

        A job that is no longer live (evicted, or from before a restart) replays as one
        terminal event carrying its whole text (only its status when ``after`` >= 0).
        """
        job = self._jobs.get(job_id)
        if job is None:
            record = await self.get(job_id)
            yield TokenEvent(
                record.id,
                max(after + 1, 0),
                record.status,
                text=record.text if after < 0 else "",
                finish_reason=record.finish_reason,
                error=record.error,
                error_type=record.error_type,
            )
            return
        index = after + 1
        job.readers += 1
        try:
            while True:
                if job.compacted:  # it ended before we came: serve the rest at once
                    for event in job.replay(index - 1):
                        yield event
                    return
                if index < len(job.events):
                    event = job.events[index]
                    index += 1
                    yield event
                    if event.terminal:
                        return
                    continue
                if job.status.terminal:
                    return
                await job.changed()
        finally:
            job.readers -= 1
            job.compact()

    async def wait(self, job_id: str) -> JobRecord:
        """Wait until the job ends; returns its final record."""
        async for _ in self.events(job_id, after=_last_index(self._jobs.get(job_id))):
            pass
        return await self.get(job_id)

    # -- reports ---------------------------------------------------------------------------

    def stats(self) -> PoolStats:
        per_model = {name: lot.stats() for name, lot in self._lots.items()}
        total = sum(per_model.values(), ModelStats())
        return PoolStats(total, per_model)

    def models(self) -> list[ModelInfo]:
        """Every configured model, from the start: one whose lot is not built yet (the pool
        is still opening its mailbox) is ``loading``, phase ``starting``."""
        return [
            self._lots[m.name].describe() if m.name in self._lots else _starting(m)
            for m in self.config.models
        ]

    @property
    def busy(self) -> bool:
        return any(lot.running or lot.waiting for lot in self._lots.values())

    # -- internals -------------------------------------------------------------------------

    def _lot(self, name: str) -> ModelLot:
        lot = self._lots.get(name)
        if lot is None:
            names = list(self._lots) or [m.name for m in self.config.models]
            if name not in names:
                raise UnknownModel(name, names)
            raise ModelNotReady(name, f"the pool is {self._state}")
        return lot

    def _persist(self, job: Job) -> None:
        assert self._mailbox is not None
        self._mailbox.put(job.record())
        if job.status.terminal:
            self._forget_editor(job)
            self._finished.append(job.id)
            while len(self._finished) > self._keep_finished:
                self._jobs.pop(self._finished.popleft(), None)

    def _retry_after(self, lot: ModelLot) -> float:
        """A hint for 429 answers: about how long the line ahead takes to move."""
        return float(min(60, max(1, lot.waiting // max(1, lot.config.params.max_num_seqs))))

    async def _sweep_forever(self) -> None:
        retention = self.config.parking_lot.mailbox.retention_secs
        while True:
            await asyncio.sleep(min(60.0, retention / 10))
            cutoff = time.time() - retention
            assert self._mailbox is not None
            self._mailbox.sweep(cutoff)
            while self._finished:
                job = self._jobs.get(self._finished[0])
                if job is not None and (job.finished_at or 0) >= cutoff:
                    break
                self._jobs.pop(self._finished.popleft(), None)


def _last_index(job: Job | None) -> int:
    return -1 if job is None or not job.status.terminal else job.event_count - 1


def _starting(model: ModelConfig) -> ModelInfo:
    return ModelInfo(
        name=model.name,
        backend=model.backend,
        state="loading",
        error=None,
        device=None,
        workers=(),
        total_units=0,
        block_size=model.params.block_size,
        max_num_seqs=model.params.max_num_seqs,
        loading=LoadingInfo("starting", 0.0),
    )
