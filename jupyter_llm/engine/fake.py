"""A scripted engine: the test seam for the pool and the server (STYLE.md, rule 8).

It behaves like a batching engine without a model: each ``step()`` sleeps ``step_delay``
once, then gives every active sequence one token. Tokens echo the prompt's words (or follow
``script``); stop strings and ``max_tokens`` end a sequence as a real engine would. Two
markers in a prompt drive failure paths: ``<<fail>>`` fails that job in its first step, and
``<<crash>>`` ends the worker process abruptly (a stand-in for a segfault or the OOM killer).
"""

from __future__ import annotations

import multiprocessing
import os
import time
import zlib
from dataclasses import dataclass

from ..types import EngineInfo, EngineRequest, GenerationRequest, StepOutput
from .base import TokenCounter

__all__ = ["FAIL_MARKER", "CRASH_MARKER", "FakeEngine", "FakeSpec", "fake_text"]

FAIL_MARKER = "<<fail>>"
CRASH_MARKER = "<<crash>>"
_MESSAGE_OVERHEAD = 2  # tokens a chat template spends per message (role, separator)


def _prompt_words(request: GenerationRequest) -> list[str]:
    if request.prompt is not None:
        return request.prompt.split()
    assert request.messages is not None  # GenerationRequest guarantees one of the two
    return request.messages[-1].content.split()


def count_tokens(request: GenerationRequest) -> int:
    """The fake tokenizer: one token per whitespace-separated word."""
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

    def build(self, worker_index: int) -> FakeEngine:
        if self.load_delay:
            time.sleep(self.load_delay)
        if self.load_error is not None:
            raise RuntimeError(self.load_error)
        return FakeEngine(self, worker_index)

    def counter(self, info: EngineInfo) -> TokenCounter:
        return count_tokens


class _Sequence:
    __slots__ = ("fail", "job_id", "max_tokens", "produced", "stop", "text", "words")

    def __init__(self, request: EngineRequest, script: tuple[str, ...] | None) -> None:
        gen = request.request
        self.job_id = request.job_id
        self.words = list(script) if script is not None else (_prompt_words(gen) or ["token"])
        self.max_tokens = gen.params.max_tokens or 16
        self.stop = gen.params.stop
        self.produced = 0
        self.text = ""
        self.fail = FAIL_MARKER in (gen.prompt or "".join(m.content for m in gen.messages or ()))


class FakeEngine:
    """A batching engine without a model; see the module docstring."""

    def __init__(self, spec: FakeSpec, worker_index: int) -> None:
        self._spec = spec
        self._worker_index = worker_index
        self._active: dict[str, _Sequence] = {}

    def info(self) -> EngineInfo:
        return EngineInfo(
            units=self._spec.units,
            block_size=self._spec.block_size,
            max_num_seqs=self._spec.max_num_seqs,
            max_model_len=self._spec.max_model_len,
            device="fake",
        )

    def add(self, request: EngineRequest) -> None:
        text = request.request.prompt or "".join(m.content for m in request.request.messages or ())
        if CRASH_MARKER in text:
            self._crash()
        self._active[request.job_id] = _Sequence(request, self._spec.script)

    def abort(self, job_id: str) -> None:
        self._active.pop(job_id, None)

    def has_work(self) -> bool:
        return bool(self._active)

    def step(self) -> list[StepOutput]:
        if self._spec.step_delay:
            time.sleep(self._spec.step_delay)
        outputs = []
        for seq in list(self._active.values())[: self._spec.max_num_seqs]:
            output = self._advance(seq)
            outputs.append(output)
            if output.finish_reason is not None:
                del self._active[seq.job_id]
        return outputs

    def close(self) -> None:
        self._active.clear()

    def _advance(self, seq: _Sequence) -> StepOutput:
        if seq.fail:
            return StepOutput(
                seq.job_id,
                finish_reason="error",
                error=f"the fake engine failed on request ({FAIL_MARKER} in the prompt)",
            )
        if self._spec.script is not None and seq.produced >= len(seq.words):
            return StepOutput(seq.job_id, finish_reason="stop")
        word = seq.words[seq.produced % len(seq.words)]
        piece = word if seq.produced == 0 else " " + word
        seq.produced += 1
        token_id = zlib.crc32(word.encode()) % 50_000
        for stop in seq.stop:
            where = (seq.text + piece).find(stop)
            if where >= 0:
                return StepOutput(
                    seq.job_id,
                    text=(seq.text + piece)[len(seq.text) : where],
                    token_ids=(token_id,),
                    finish_reason="stop",
                )
        seq.text += piece
        finish = None
        if seq.produced >= seq.max_tokens:
            finish = "length"
        elif self._spec.script is not None and seq.produced >= len(seq.words):
            finish = "stop"
        return StepOutput(seq.job_id, text=piece, token_ids=(token_id,), finish_reason=finish)

    @staticmethod
    def _crash() -> None:
        # Only a spawned worker may die this way; in a thread it would take the tests down.
        if multiprocessing.parent_process() is None:
            raise RuntimeError(
                f"{CRASH_MARKER} asks for a worker crash, but this worker is a thread"
            )
        os._exit(13)
