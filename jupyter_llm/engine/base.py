"""The engine seam: what the pool asks of a model, whatever runs it.

An ``EngineSpec`` is a small picklable description that crosses into a worker process and
builds an ``Engine`` there (loading the model is the worker's job, never the server's). The
pool drives an engine with three verbs between steps, nano-vllm style:

* ``add(request)``   a sequence joins the batch (it starts decoding on the next step)
* ``abort(job_id)``  a sequence leaves at once and its cache blocks are free
* ``step()``         one decode step for every sequence in the batch; returns what it made

The worker loop (``pool/worker.py``) interleaves commands and steps, so a new or cancelled
job waits for at most one step. The spec also gives the server a ``TokenCounter`` built from
what the loaded engine reported, so admission can price a job without importing torch.

A model that lives elsewhere (a remote server) has a ``LoopSpec`` instead: its ``LoopEngine``
computes nothing and only moves bytes, so the pool drives it from its own event loop,
without a worker (``pool/direct.py``): ``add`` and ``abort`` hand its requests on at once,
and its outputs come to a callback as they arrive, not taken by steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..types import GenerationRequest, Logprob, Usage
from .loading import Progress

__all__ = [
    "AnySpec",
    "Emit",
    "Engine",
    "EngineInfo",
    "EngineRequest",
    "EngineSpec",
    "LoopEngine",
    "LoopSpec",
    "ProbedSpec",
    "StepOutput",
    "TokenCounter",
]


@dataclass(frozen=True, slots=True)
class EngineRequest:
    """A job as a worker's engine sees it: sampling already resolved, cost already paid."""

    job_id: str
    request: GenerationRequest
    prompt_tokens: int


@dataclass(frozen=True, slots=True)
class StepOutput:
    """What one engine step produced for one job.

    ``finish_reason`` is set on the last output of a job: ``stop``, ``length``,
    ``cancelled`` (after an abort) or ``error`` (then ``error`` says why).
    """

    job_id: str
    text: str = ""
    token_ids: tuple[int, ...] = ()
    finish_reason: str | None = None
    error: str | None = None
    logprobs: tuple[Logprob, ...] | None = None
    error_type: str | None = None  # with finish_reason "error": the errors.py class it stands for
    usage: Usage | None = None  # a remote engine's own count, on a job's last output


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """What a loaded engine tells the pool about itself."""

    units: int  # KV-cache blocks this worker can hold
    block_size: int
    max_num_seqs: int
    max_model_len: int
    device: str
    tokenizer: str | None = None  # where the server-side token counter finds the tokenizer
    dtype: str | None = None  # what the model computes in (None: not a local model)
    matmul: str | None = None  # how its matmuls run: "oneDNN packed", "unpacked", "cuBLAS"
    # Whether the server's token counter is a cheap estimate (no tokenizer: a remote model's
    # byte count), which admission then runs on the loop rather than in a helper thread.
    counts_inline: bool = False
    tool_parser: str = "hermes"  # how the server reads tool calls out of text (toolcalls.py)


#: Counts a request's prompt tokens (chat template included), called as ``count(request,
#: limit)``: exact up to ``limit``; past it, any number above ``limit`` and at most the true
#: count, so that a prompt far too long is refused without counting it whole. Runs in a
#: server helper thread: it must not import torch.
TokenCounter = Callable[[GenerationRequest, int], int]


class Engine(Protocol):
    """A loaded model replica in one worker. Called from one thread only."""

    def info(self) -> EngineInfo: ...

    def add(self, request: EngineRequest) -> None: ...

    def abort(self, job_id: str) -> None:
        """Drop the job now; unknown or finished ids are ignored."""
        ...

    def has_work(self) -> bool: ...

    def step(self) -> list[StepOutput]:
        """Advance every active sequence by one step.

        A job's last output has ``finish_reason`` set. A failure that concerns some jobs only
        (a CUDA out-of-memory in one step, say) is reported as outputs with ``finish_reason
        'error'``; an exception fails every job in the batch and the worker goes on.
        """
        ...

    def close(self) -> None: ...


class EngineSpec(Protocol):
    """How to build one model's engine; must pickle (it crosses into spawned workers)."""

    @property
    def model(self) -> str: ...

    def build(self, worker_index: int, progress: Progress) -> Engine:
        """Load the model in the worker process; raise with a readable message on failure.

        Call ``progress`` as loading moves from phase to phase (``progress.py``)."""
        ...

    def counter(self, info: EngineInfo) -> TokenCounter:
        """Build the server-side prompt counter from what a ready worker reported."""
        ...


@runtime_checkable
class ProbedSpec(Protocol):
    """A spec whose model lives elsewhere (a remote server) and can be health-checked.

    The pool runs ``probe`` off its loop now and then; the answer drives the model's state.
    """

    def probe(self) -> str | None:
        """Blocking, a few seconds at most: None when the model can serve, else why not."""
        ...


#: Where a ``LoopEngine`` hands its outputs, a burst at a time, on the pool's loop.
Emit = Callable[[list[StepOutput]], None]


class LoopEngine(Protocol):
    """An engine driven from the pool's event loop, without a worker (a remote one: it only
    moves bytes; its own work runs elsewhere, never on that loop).

    ``add`` and ``abort`` are called on the loop and return at once, emitting nothing
    themselves; the outputs come later through the ``Emit`` callback given at build, on the
    loop, a job's last with ``finish_reason`` set. After ``abort`` nothing more is emitted
    for the job.
    """

    def info(self) -> EngineInfo: ...

    def add(self, request: EngineRequest) -> None: ...

    def abort(self, job_id: str) -> None:
        """Drop the job now; unknown or finished ids are ignored."""
        ...

    def close(self) -> None:
        """Blocking, called off the loop: cancel every job, release what the engine holds."""
        ...


@runtime_checkable
class LoopSpec(Protocol):
    """How to build an engine that runs on the pool's loop rather than in a worker."""

    @property
    def model(self) -> str: ...

    def build_on_loop(
        self, worker_index: int, loop: asyncio.AbstractEventLoop, emit: Emit
    ) -> LoopEngine:
        """Blocking (a helper thread calls it; a client's set-up may read files): the engine
        that ``loop`` will drive. Raise with a readable message."""
        ...

    def counter(self, info: EngineInfo) -> TokenCounter:
        """Build the server-side prompt counter from what the engine reported."""
        ...


#: What the pool can run: a model in workers, or one on its own loop.
AnySpec = EngineSpec | LoopSpec
