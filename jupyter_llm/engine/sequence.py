"""One request's state inside an engine: its tokens so far, its limits, its detokenizer.

Torch-free, so the scheduler and the fake engine share it with the transformers engine.
``append`` is the one place a new token is judged: a stop token, a stop string or the
length limit ends the sequence, and the text that is final so far goes out with the token.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..types import Logprob
from .base import StepOutput

__all__ = ["Detok", "Sequence"]


class Detok(Protocol):
    """Turns tokens into final text (engine/detok.py; the fake engine has its own)."""

    def push(self, token_id: int) -> tuple[str, bool]:
        """The text that became final with this token, and whether a stop string ended it."""
        ...

    def flush(self) -> str:
        """The text still held back, at the end of the sequence."""
        ...


class Sequence:
    __slots__ = (
        "detok",
        "finish_reason",
        "job_id",
        "max_tokens",
        "output_ids",
        "prompt_ids",
        "sampler",
        "stop_ids",
    )

    def __init__(
        self,
        job_id: str,
        prompt_ids: list[int],
        max_tokens: int,
        detok: Detok,
        stop_ids: frozenset[int] | set[int] = frozenset(),
        sampler: Any = None,
    ) -> None:
        self.job_id = job_id
        self.prompt_ids = prompt_ids
        self.output_ids: list[int] = []
        self.max_tokens = max_tokens
        self.stop_ids = stop_ids
        self.detok = detok
        self.sampler = sampler  # the engine's per-row sampling state; opaque here
        self.finish_reason: str | None = None

    def __repr__(self) -> str:
        return f"Sequence({self.job_id!r}, {len(self.prompt_ids)}+{len(self.output_ids)} tokens)"

    @property
    def position(self) -> int:
        """The position id of the last token, the one fed to the next decode step."""
        return len(self.prompt_ids) + len(self.output_ids) - 1

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    def append(self, token_id: int, logprob: Logprob | None = None) -> StepOutput:
        """Take the token this step made; the output says what the client sees of it."""
        self.output_ids.append(token_id)
        if token_id in self.stop_ids:
            text, self.finish_reason = self.detok.flush(), "stop"
        else:
            text, stopped = self.detok.push(token_id)
            if stopped:
                self.finish_reason = "stop"
            elif len(self.output_ids) >= self.max_tokens:
                text, self.finish_reason = text + self.detok.flush(), "length"
        logprobs = None if logprob is None else (logprob,)
        return StepOutput(self.job_id, text, (token_id,), self.finish_reason, logprobs=logprobs)
