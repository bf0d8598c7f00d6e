"""The transformers engine's spec: plain data that pickles into a worker, where it loads."""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...config import ModelConfig
from ..base import EngineInfo, TokenCounter
from ..loading import Progress, silent
from ..placement import worker_devices

if TYPE_CHECKING:
    from .engine import TransformersEngine

__all__ = ["SPIN_ROUNDS", "TransformersSpec", "brief_openmp_spin"]

# How long an idle OpenMP thread spins before it sleeps, in GOMP's rounds (tens of
# microseconds): enough to span the gap between two ops of a step, short enough that a thread
# whose partner lost its core to another process soon yields its own. Sleeping at once makes
# a decode step wake its threads at every op; OpenMP's own 300,000 rounds make threads spin
# against the server's loop (docs/benchmarks.md; benchmarks/threads.py has the pool's view).
SPIN_ROUNDS = 10_000


def brief_openmp_spin(environ: MutableMapping[str, str] | None = None) -> None:
    """Before torch loads OpenMP: idle threads spin ``SPIN_ROUNDS`` rounds, then sleep.

    A wait policy or spin count already set (the user's) is left as it is.
    """
    env: MutableMapping[str, str] = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        env["GOMP_SPINCOUNT"] = str(SPIN_ROUNDS)


@dataclass(frozen=True, slots=True)
class TransformersSpec:
    config: ModelConfig
    threads: int  # torch threads per worker (intra-op), sized from the cores and the workers

    @classmethod
    def for_model(cls, config: ModelConfig) -> TransformersSpec:
        # The cores are shared out among the workers, none kept back for the server: one
        # request's prefill and decode may use every core. That is safe because build() makes
        # idle OpenMP threads sleep soon instead of spinning long; threads that spin long
        # while the server's loop holds a core wait on each other at every layer
        # (benchmarks/threads.py measures the layouts).
        workers = len(worker_devices(config))
        return cls(config, threads=max(1, (os.cpu_count() or 1) // workers))

    @property
    def model(self) -> str:
        return self.config.name

    def build(self, worker_index: int, progress: Progress = silent) -> TransformersEngine:
        brief_openmp_spin()  # before torch loads OpenMP in this spawned worker
        progress("importing torch")
        from .engine import TransformersEngine  # torch is imported here, in the worker

        return TransformersEngine(self.config, worker_index, self.threads, progress)

    def counter(self, info: EngineInfo) -> TokenCounter:
        from ..prompt import token_counter

        if info.tokenizer is None:
            raise RuntimeError(f"model {self.model!r}: the worker reported no tokenizer")
        return token_counter(info.tokenizer)
