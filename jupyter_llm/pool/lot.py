"""One model's share of the pool: its ledger of units, its waiting line and its jobs.

Its workers are kept alive by a ``Supervisor``, which reports to the lot what they say.

Everything here runs on the pool's event loop, which owns all state: worker threads only
post callbacks (``call_soon_threadsafe``), and blocking chores (spawning or joining a
worker, counting a prompt) go to the helper executor. So there are no locks, and no step of
the loop waits on a worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor

from ..completion import assemble, resolve
from ..config import ModelConfig
from ..engine.base import (
    AnySpec,
    EngineInfo,
    EngineRequest,
    ProbedSpec,
    StepOutput,
    TokenCounter,
)
from ..engine.placement import worker_devices
from ..errors import LLMError, ModelNotReady
from ..types import JobStatus
from .admission import UnitLedger
from .health import HealthWatch
from .job import Job, tokens_in
from .observer import PoolObserver
from .pricing import job_limit, price, with_defaults
from .queue import JobQueue
from .stats import LoadingInfo, ModelInfo, ModelStats
from .supervisor import Supervisor
from .worker import WorkerKind

__all__ = ["ModelLot"]

log = logging.getLogger("jupyter_llm.pool")


class ModelLot:
    def __init__(
        self,
        config: ModelConfig,
        spec: AnySpec | LLMError,
        *,
        loop: asyncio.AbstractEventLoop,
        executor: Executor,
        persist: Callable[[Job], None],
        worker_kind: WorkerKind,
        skip_limit: int,
        observer: PoolObserver,
    ) -> None:
        self.config = config
        self.name = config.name
        self._spec = spec
        self._loop = loop
        self._executor = executor
        self._persist = persist
        self._kind = worker_kind
        self._observer = observer
        self._limits = config.parking_lot.limits
        self._n_workers = len(worker_devices(config))
        self._stack_size = config.parking_lot.pool.thread_stack_size
        self.state = "loading"
        self.error: str | None = None
        self.info: EngineInfo | None = None
        self.counter: TokenCounter | None = None
        self.ledger = UnitLedger()
        self.queue: JobQueue[Job] = JobQueue(skip_limit, self._limits.max_running_per_user)
        self.pending: dict[str, Job] = {}  # accepted, waiting for the model to load to be priced
        self.running: dict[str, Job] = {}  # holding units on a worker (until the worker says so)
        self.closing = False
        self._pricing: Counter[str | None] = Counter()  # by user: jobs being priced
        self._running_by_user: Counter[str | None] = Counter()  # jobs holding units, by user
        self._pricing_task: asyncio.Task[None] | None = None
        self._crew: Supervisor | None = None
        self._health: HealthWatch | None = None  # remote models only
        self._dirty = False  # units came free or a worker joined: try the queue again
        self._started = 0.0  # the loop's time when loading began
        self._counts = dict.fromkeys(("completed", "failed", "cancelled", "expired", "rejected"), 0)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._started = self._loop.time()
        if isinstance(self._spec, LLMError):
            spec_error = self._spec
            self._fail_model(
                spec_error.reason if isinstance(spec_error, ModelNotReady) else str(spec_error)
            )
            return
        self._crew = Supervisor(
            self._spec,
            self._n_workers,
            kind=self._kind,  # a remote model's LoopSpec runs on this loop, without workers
            loop=self._loop,
            executor=self._executor,
            stack_size=self._stack_size,
            events=self,
            nice=self.config.parking_lot.pool.worker_nice,
        )
        self._crew.start()

    async def stop(self, drain_secs: float, keep_unfinished: bool) -> None:
        """Stop taking work, let running jobs finish for ``drain_secs``, then stop workers.

        With ``keep_unfinished`` (queue persistence) the jobs that did not finish keep their
        mailbox record as it is, to run again after a restart; otherwise they are cancelled.
        """
        self.closing = True
        for job in [*self.pending.values(), *self.queue]:
            self._drop_waiting(job)
            self._end_unfinished(job, keep_unfinished, "before this job ran")
        deadline = self._loop.time() + drain_secs
        while self._live_running() and self._loop.time() < deadline:
            await asyncio.sleep(0.02)
        for job in self._live_running():
            self._end_unfinished(job, keep_unfinished, "while this job ran")
        if self._health is not None:
            self._health.stop()
        if self._crew is not None:
            await self._crew.stop()

    def _end_unfinished(self, job: Job, keep: bool, when: str) -> None:
        if keep:  # tell consumers, but leave the mailbox record for the restart
            job.finish(
                JobStatus.CANCELLED,
                "cancelled",
                f"the server stopped {when}; it is kept and runs after a restart",
            )
        else:
            self._finish(job, JobStatus.CANCELLED, "cancelled", f"the server stopped {when}")

    # -- admission -------------------------------------------------------------------------

    @property
    def waiting(self) -> int:
        return len(self.queue) + len(self.pending) + self._pricing.total()

    def waiting_of(self, user: str | None) -> int:
        """How many of the jobs waiting for this model are ``user``'s."""
        pending = sum(job.user == user for job in self.pending.values())
        return self.queue.waiting(user) + pending + self._pricing[user]

    def running_of(self, user: str | None) -> int:
        """How many jobs of ``user`` hold units on a worker of this model."""
        return self._running_by_user[user]

    def job_limit(self) -> int:
        """The most units one job may cost: one worker's share of max_units, or its cache."""
        assert self.info is not None
        return self._share(self.info.units)

    def _share(self, cache_units: int) -> int:
        return job_limit(cache_units, self._limits.max_units, self._n_workers)

    async def admit(self, job: Job, accepted: Callable[[Job], None]) -> None:
        """Price and queue a new job, calling ``accepted`` once it is in.

        A job that could never fit raises here, before it is accepted. While the model loads,
        the job is accepted at once and priced when the model is ready.
        """
        job.request = with_defaults(job.request, self.config.params)
        if self.counter is not None:
            self._pricing[job.user] += 1  # holds its place in the depth count while priced
            try:
                await self._price(job)
            finally:
                self._pricing[job.user] -= 1
                if not self._pricing[job.user]:
                    del self._pricing[job.user]
            if self.closing:
                raise ModelNotReady(self.name, "the server is stopping")
        accepted(job)
        self._arm_expiry(job)
        if job.cost:
            self.queue.push(job)
            self.schedule()
        else:
            self.pending[job.id] = job

    async def _price(self, job: Job) -> None:
        assert self.counter is not None and self.info is not None
        context = self.config.params.max_model_len or self.info.max_model_len
        if job.request.completion is not None:
            # Its prompt needs the tokenizer (FIM tokens, a chat template): known by now.
            special: frozenset[str] = getattr(self.counter, "special_tokens", frozenset())
            fim = resolve(self.config.fim, special)
            job.request = assemble(job.request, fim, getattr(self.counter, "chat", True))
        if self.info.counts_inline:  # an estimate: cheaper than a hop to a helper thread
            prompt_tokens = self.counter(job.request, context)
        else:
            prompt_tokens = await self._loop.run_in_executor(
                self._executor, self.counter, job.request, context
            )
        max_tokens = job.request.params.max_tokens
        assert max_tokens is not None  # admit resolved it
        job.cost = price(
            prompt_tokens,
            max_tokens,
            model=self.name,
            context=context,
            block_size=self.info.block_size,
            limit=self.job_limit(),
            prompt_param="prompt" if job.request.prompt is not None else "messages",
        )
        job.prompt_tokens = prompt_tokens

    def reject(self, error: LLMError, kind: str = "generate") -> None:
        self._counts["rejected"] += 1
        self._observer.job_rejected(self.name, type(error).__name__, kind=kind)

    async def _price_pending(self) -> None:
        for job in list(self.pending.values()):
            try:
                await self._price(job)
            except LLMError as exc:
                if self.pending.pop(job.id, None) is not None:
                    self._finish(job, JobStatus.FAILED, "error", str(exc))
                continue
            if self.pending.pop(job.id, None) is not None:
                self.queue.push(job)
        self.schedule()

    def _arm_expiry(self, job: Job) -> None:
        job.expiry = self._loop.call_later(self._limits.timeout_secs, self._expire, job)

    def _expire(self, job: Job) -> None:
        job.expiry = None
        if self._drop_waiting(job):
            self._finish(
                job,
                JobStatus.EXPIRED,
                None,
                f"waited {self._limits.timeout_secs:g} s in the queue of model "
                f"{self.name!r} without starting (limits.timeout_secs)",
            )

    def _drop_waiting(self, job: Job) -> bool:
        return self.pending.pop(job.id, None) is not None or self.queue.remove(job.id) is not None

    # -- scheduling ------------------------------------------------------------------------

    def schedule(self) -> None:
        if not self.closing:
            self.queue.drain(self._try_start, self.running_of)

    def _try_start(self, job: Job) -> bool:
        worker = self.ledger.can_reserve(job.cost)
        if worker is None:
            return False
        self.ledger.reserve(worker, job.cost)
        if job.expiry is not None:
            job.expiry.cancel()
            job.expiry = None
        self.running[job.id] = job
        self._running_by_user[job.user] += 1
        job.start(worker)
        assert job.started_at is not None
        self._observer.job_started(self.name, job.started_at - job.created_at, kind=job.kind)
        assert self._crew is not None
        self._crew.send(worker, ("add", EngineRequest(job.id, job.request, job.prompt_tokens)))
        self._persist(job)
        return True

    def cancel(self, job: Job) -> None:
        if self._drop_waiting(job):
            self._finish(job, JobStatus.CANCELLED, "cancelled")
        elif job.status is JobStatus.RUNNING and job.worker is not None:
            self._finish(job, JobStatus.CANCELLED, "cancelled")
            assert self._crew is not None
            self._crew.send(job.worker, ("abort", job.id))  # units come back on its answer

    def _finish(
        self,
        job: Job,
        status: JobStatus,
        reason: str | None,
        error: str | None = None,
        error_type: str | None = None,
    ) -> None:
        if job.status.terminal:
            return
        job.finish(status, reason, error, error_type)
        self._counts[status.value] += 1
        self._observer.job_finished(self.name, status, job.completion_tokens, kind=job.kind)
        self._persist(job)

    # -- what the workers say (WorkerEvents, called by the supervisor) ----------------------

    def worker_ready(self, index: int, info: EngineInfo) -> None:
        self.ledger.open(index, self._share(info.units), info.max_num_seqs)
        self._dirty = True
        if self.info is None:
            self.info = info
            self._loop.run_in_executor(self._executor, self._spec_counter, info).add_done_callback(
                self._on_counter
            )

    def worker_outputs(self, index: int, outputs: list[StepOutput]) -> None:
        for out in outputs:
            job = self.running.get(out.job_id)
            if job is None:
                continue
            if job.status is JobStatus.RUNNING and (out.text or out.token_ids):
                self._add_tokens(job, out)
                if job.trimmer is not None and job.trimmer.done and out.finish_reason is None:
                    self._cut(job)  # the rest of the reply is past the block: stop it now
                    continue
            if out.finish_reason is None:
                continue
            if job.trimmer is not None and job.status is JobStatus.RUNNING:
                rest = job.trimmer.finish()  # the last line, held until the reply ended
                if rest:
                    job.add_tokens(rest, (), None)
            self._release(job)
            self._dirty = True
            if out.usage is not None:  # a remote engine's own count is the true one
                job.prompt_tokens = out.usage.prompt_tokens
                job.completion_tokens = out.usage.completion_tokens
            if out.finish_reason == "error":
                message = out.error or "the engine failed"
                self._finish(job, JobStatus.FAILED, "error", message, out.error_type)
                if out.error_type == "ModelNotReady" and self._health is not None:
                    self._health.check_now()  # the upstream may be gone: let the state say so
            elif out.finish_reason == "cancelled":
                self._finish(job, JobStatus.CANCELLED, "cancelled")
            else:
                self._finish(job, JobStatus.COMPLETED, out.finish_reason)

    def worker_failed(self, index: int, reason: str, all_failed: bool) -> None:
        self.error = reason
        if all_failed:
            self._fail_model(reason)

    def worker_lost(self, index: int, exitcode: int | None) -> None:
        self.ledger.close(index)
        self._dirty = True
        for job in [job for job in self.running.values() if job.worker == index]:
            self._release(job)
            self._finish(
                job,
                JobStatus.FAILED,
                "error",
                f"the worker process running this job died (exit code {exitcode}); "
                "it has been restarted, submit the job again",
                error_type="WorkerLost",
            )

    def workers_settled(self) -> None:
        if self._dirty:
            self._dirty = False
            self.schedule()

    def _cut(self, job: Job) -> None:
        """End a completion whose reply is complete before the model's own end; its units
        come back when the worker confirms the abort, as for a cancel."""
        self._finish(job, JobStatus.COMPLETED, "stop")
        if job.worker is not None:
            assert self._crew is not None
            self._crew.send(job.worker, ("abort", job.id))

    def _add_tokens(self, job: Job, out: StepOutput) -> None:
        previous = job.last_token_at
        text = out.text if job.trimmer is None else job.trimmer.feed(out.text)
        job.add_tokens(text, out.token_ids, out.logprobs)
        count = tokens_in(out.text, out.token_ids)
        if not count:
            return
        now = job.last_token_at
        assert now is not None
        gap = None if previous is None else now - previous
        if previous is None:
            self._observer.first_token(self.name, now - job.created_at, kind=job.kind)
        self._observer.tokens(self.name, count, gap, kind=job.kind)

    def _release(self, job: Job) -> None:
        del self.running[job.id]
        self._running_by_user[job.user] -= 1
        if not self._running_by_user[job.user]:
            del self._running_by_user[job.user]
        if job.worker is not None:
            self.ledger.release(job.worker, job.cost)
            job.worker = None

    def _spec_counter(self, info: EngineInfo) -> TokenCounter:
        assert not isinstance(self._spec, LLMError)
        return self._spec.counter(info)

    def _on_counter(self, future: asyncio.Future[TokenCounter]) -> None:
        if future.exception() is not None:
            self._fail_model(f"the token counter failed to load: {future.exception()}")
            return
        self.counter = future.result()
        spec = self._spec
        assert not isinstance(spec, LLMError)  # a model whose spec failed never gets here
        if isinstance(spec, ProbedSpec):  # ready once its upstream answers
            self._health = HealthWatch(
                self.name,
                spec.probe,
                self._health_changed,
                loop=self._loop,
                executor=self._executor,
            )
            self._health.start()
            return
        self._ready()

    def _ready(self) -> None:
        if self.state == "loading":
            log.info("model %s ready after %.1f s", self.name, self._loop.time() - self._started)
        self.state = "ready"
        self.error = None
        self._pricing_task = self._loop.create_task(self._price_pending())

    def _health_changed(self, reason: str | None) -> None:
        if self.closing:
            return
        if reason is None:
            self._ready()
            self.schedule()
        else:
            self._fail_model(reason, "is not available")

    def _fail_model(self, reason: str, why: str = "failed to load") -> None:
        log.error("model %s %s: %s", self.name, why, reason)
        self.state = "error"
        self.error = reason
        for job in [*self.pending.values(), *self.queue]:
            self._drop_waiting(job)
            self._finish(
                job,
                JobStatus.FAILED,
                "error",
                f"model {self.name!r} {why}: {reason}",
                error_type="ModelNotReady",
            )

    # -- reports ---------------------------------------------------------------------------

    def _live_running(self) -> list[Job]:
        return [job for job in self.running.values() if job.status is JobStatus.RUNNING]

    def stats(self) -> ModelStats:
        return ModelStats(
            workers=self.ledger.workers,
            running=len(self._live_running()),
            queued=self.waiting,
            used_units=self.ledger.used_units,
            total_units=self.ledger.total_units,
            **self._counts,
        )

    def describe(self) -> ModelInfo:
        return ModelInfo(
            name=self.name,
            backend=self.config.backend,
            state=self.state,
            error=self.error,
            device=None if self.info is None else self.info.device,
            workers=() if self._crew is None else self._crew.describe(),
            total_units=self.ledger.total_units,
            block_size=self.config.params.block_size,
            max_num_seqs=self.config.params.max_num_seqs,
            loading=self._loading(),
            tool_parser=None
            if self.info is None
            else self.config.tool_parser or self.info.tool_parser,
        )

    def _loading(self) -> LoadingInfo | None:
        if self.state != "loading" or self._crew is None:
            return None
        workers = self._crew.loading()
        if workers is not None or self.info is None:
            return workers
        # A worker is ready; the server builds its prompt counter (a tokenizer) before it
        # prices the jobs that wait, and a remote model waits for its upstream to answer.
        phase = "loading the tokenizer" if self.counter is None else "checking the upstream"
        return LoadingInfo(phase, round(self._loop.time() - self._started, 1))
