"""A scripted engine: the test seam for the pool and the server (STYLE.md, rule 8).

It behaves like a batching engine without a model, on the real engine's scheduler and
sequences: each ``step()`` sleeps ``step_delay`` once, then gives the scheduled sequences (new
ones in a prefill step, running ones in a decode step) one token each. Tokens echo the
prompt's words (or follow ``script``); stop strings and ``max_tokens`` end a sequence as a
real engine would. Three markers in a prompt drive failure paths: ``<<fail>>`` fails that
job in its first step, ``<<refuse>>`` raises from ``add`` (a value the engine cannot take),
and ``<<crash>>`` ends the worker process abruptly (a stand-in for a segfault or the OOM
killer).
"""

from __future__ import annotations

import multiprocessing
import os
import time
import zlib
from dataclasses import dataclass

from ..types import GenerationRequest
from .base import EngineInfo, EngineRequest, StepOutput, TokenCounter
from .loading import Progress, silent
from .scheduler import Scheduler
from .sequence import Sequence

__all__ = ["CRASH_MARKER", "FAIL_MARKER", "REFUSE_MARKER", "FakeEngine", "FakeSpec", "fake_text"]

FAIL_MARKER = "<<fail>>"
CRASH_MARKER = "<<crash>>"
REFUSE_MARKER = "<<refuse>>"
_MESSAGE_OVERHEAD = 2  # tokens a chat template spends per message (role, separator)


def _prompt_words(request: GenerationRequest) -> list[str]:
    if request.prompt is not None:
        return request.prompt.split()
    assert request.messages is not None  # GenerationRequest guarantees one of the two
    return request.messages[-1].content.split()


def count_tokens(request: GenerationRequest, limit: int | None = None) -> int:
    """The fake tokenizer: one token per whitespace-separated word (always counted whole)."""
    if request.prompt is not None:
        return max(1, len(request.prompt.split()))
    assert request.messages is not None
    return sum(len(m.content.split()) + _MESSAGE_OVERHEAD for m in request.messages)


def fake_text(
    request: GenerationRequest, max_tokens: int, script: tuple[str, ...] | None = None
) -> str:
    """The text FakeEngine produces for ``request`` when no stop string ends it early."""
    words = list(script) if script is not None else (_prompt_words(request) or ["token"])
    count = min(max_tokens, len(words)) if script is not None else max_tokens
    return " ".join(words[i % len(words)] for i in range(count))


@dataclass(frozen=True, slots=True)
class FakeSpec:
    """Builds FakeEngines; every field is plain data so the spec pickles into workers."""

    model: str = "fake"
    units: int = 2048
    block_size: int = 16
    max_num_seqs: int = 256
    max_model_len: int = 32768
    step_delay: float = 0.0
    load_delay: float = 0.0
    load_error: str | None = None
    script: tuple[str, ...] | None = None

    def build(self, worker_index: int, progress: Progress = silent) -> FakeEngine:
        steps = 4
        for step in range(steps if self.load_delay else 0):
            progress("loading", "fake engine", done=step, total=steps, unit="steps")
            time.sleep(self.load_delay / steps)
        if self.load_error is not None:
            raise RuntimeError(self.load_error)
        return FakeEngine(self, worker_index)

    def counter(self, info: EngineInfo) -> TokenCounter:
        return count_tokens


class _Words:
    """The fake detokenizer: each token is the next word; stop strings cut the text."""

    def __init__(self, words: list[str], stop: tuple[str, ...], scripted: bool) -> None:
        self._words = words
        self._stop = stop
        self._scripted = scripted  # a script ends (stop) after its last word
        self._produced = 0
        self._text = ""

    def next_token(self) -> int:
        return zlib.crc32(self._next_word().encode()) % 50_000

    def push(self, token_id: int) -> tuple[str, bool]:
        piece = self._next_word() if self._produced == 0 else " " + self._next_word()
        self._produced += 1
        for stop in self._stop:
            where = (self._text + piece).find(stop)
            if where >= 0:
                return (self._text + piece)[len(self._text) : where], True
        self._text += piece
        return piece, self._scripted and self._produced >= len(self._words)

    def flush(self) -> str:
        return ""  # nothing is held back

    def _next_word(self) -> str:
        return self._words[self._produced % len(self._words)] if self._words else ""


class FakeEngine:
    """A batching engine without a model; see the module docstring."""

    def __init__(self, spec: FakeSpec, worker_index: int) -> None:
        self._spec = spec
        self._worker_index = worker_index
        self.scheduler = Scheduler(spec.max_num_seqs, prefill_tokens=spec.max_model_len)
        self._failing: set[str] = set()

    def info(self) -> EngineInfo:
        return EngineInfo(
            units=self._spec.units,
            block_size=self._spec.block_size,
            max_num_seqs=self._spec.max_num_seqs,
            max_model_len=self._spec.max_model_len,
            device="fake",
        )

    def add(self, request: EngineRequest) -> None:
        gen = request.request
        text = gen.prompt or "".join(m.content for m in gen.messages or ())
        if CRASH_MARKER in text:
            self._crash()
        if REFUSE_MARKER in text:
            raise ValueError(f"the fake engine cannot take this request ({REFUSE_MARKER})")
        script = self._spec.script
        words = list(script) if script is not None else (_prompt_words(gen) or ["token"])
        detok = _Words(words, gen.params.stop, scripted=script is not None)
        self.scheduler.add(
            Sequence(request.job_id, [0] * count_tokens(gen), gen.params.max_tokens or 16, detok)
        )
        if FAIL_MARKER in text:
            self._failing.add(request.job_id)

    def abort(self, job_id: str) -> None:
        self.scheduler.abort(job_id)
        self._failing.discard(job_id)

    def has_work(self) -> bool:
        return self.scheduler.has_work()

    def step(self) -> list[StepOutput]:
        plan = self.scheduler.schedule()
        if plan is None:
            return []
        if self._spec.step_delay:
            time.sleep(self._spec.step_delay)
        outputs = [self._advance(seq) for seq in plan.seqs]
        self.scheduler.postprocess(plan)
        return outputs

    def close(self) -> None:
        self.scheduler.clear()

    def _advance(self, seq: Sequence) -> StepOutput:
        if seq.job_id in self._failing:
            self._failing.discard(seq.job_id)
            seq.finish_reason = "error"
            return StepOutput(
                seq.job_id,
                finish_reason="error",
                error=f"the fake engine failed on request ({FAIL_MARKER} in the prompt)",
            )
        assert isinstance(seq.detok, _Words)  # only this engine's sequences are here
        return seq.append(seq.detok.next_token())

    @staticmethod
    def _crash() -> None:
        # Only a spawned worker may die this way; in a thread it would take the tests down.
        if multiprocessing.parent_process() is None:
            raise RuntimeError(
                f"{CRASH_MARKER} asks for a worker crash, but this worker is a thread"
            )
        os._exit(13)
