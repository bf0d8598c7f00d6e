"""The transformers engine's spec: plain data that pickles into a worker, where it loads."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import ModelConfig
from .base import EngineInfo, TokenCounter
from .placement import worker_devices
from .progress import Progress, silent

if TYPE_CHECKING:
    from .runner import TransformersEngine

__all__ = ["TransformersSpec"]


@dataclass(frozen=True, slots=True)
class TransformersSpec:
    config: ModelConfig
    threads: int  # torch threads per worker (intra-op), sized from the cores and the workers

    @classmethod
    def for_model(cls, config: ModelConfig) -> TransformersSpec:
        # The cores are shared out among the workers, none kept back for the server: one
        # request's prefill and decode may use every core. That is safe because build() makes
        # idle OpenMP threads sleep instead of spin; spinning threads that compete with the
        # server's loop for a core wait on each other at every layer (measured on 2 cores:
        # the tiny model streamed 5x slower with 2 spinning threads, and 4x faster with 2
        # passive ones than with 1; benchmarks/threads.py).
        workers = len(worker_devices(config))
        return cls(config, threads=max(1, (os.cpu_count() or 1) // workers))

    @property
    def model(self) -> str:
        return self.config.name

    def build(self, worker_index: int, progress: Progress = silent) -> TransformersEngine:
        # Before torch loads OpenMP in this spawned worker (a user's own setting wins).
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        progress("importing torch")
        from .runner import TransformersEngine  # torch is imported here, in the worker

        return TransformersEngine(self.config, worker_index, self.threads, progress)

    def counter(self, info: EngineInfo) -> TokenCounter:
        from .prompt import token_counter

        if info.tokenizer is None:
            raise RuntimeError(f"model {self.model!r}: the worker reported no tokenizer")
        return token_counter(info.tokenizer)
