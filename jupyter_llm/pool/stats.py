"""Snapshots of the pool's state, as reported by ``GET llm/api/status`` and ``models``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["LoadingInfo", "ModelInfo", "ModelStats", "PoolStats", "WorkerInfo"]


@dataclass(frozen=True, slots=True)
class ModelStats:
    workers: int = 0
    running: int = 0
    queued: int = 0
    used_units: int = 0
    total_units: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    expired: int = 0
    rejected: int = 0

    def __add__(self, other: ModelStats) -> ModelStats:
        return ModelStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass(frozen=True, slots=True)
class PoolStats:
    """The totals over every model, and each model's own."""

    total: ModelStats
    models: dict[str, ModelStats] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = asdict(self.total)
        data["models"] = {name: asdict(stats) for name, stats in self.models.items()}
        return data


@dataclass(frozen=True, slots=True)
class LoadingInfo:
    """Where a load stands: the phase a worker reported (``engine/loading.py``), the
    seconds since the load began, and the phase's numbers when it counts (with the rate
    since the phase began, in ``unit`` a second)."""

    phase: str  # "starting", "converting GGUF", "loading weights", "downloading", ...
    seconds: float
    detail: str | None = None
    done: float | None = None
    total: float | None = None
    unit: str | None = None
    rate: float | None = None


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    index: int
    pid: int | None
    state: str  # starting | ready | failed | restarting
    loading: LoadingInfo | None = None  # while it starts
    load_secs: float | None = None  # how long it took to become ready
    dtype: str | None = None  # once ready, a local model's: what it computes in
    matmul: str | None = None  # and how its matmuls run ("oneDNN packed", "unpacked", ...)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    backend: str
    state: str  # loading | ready | error
    error: str | None
    device: str | None
    workers: tuple[WorkerInfo, ...]
    total_units: int
    block_size: int
    max_num_seqs: int
    loading: LoadingInfo | None = None  # while the model loads: its first loading worker's
    tool_parser: str | None = None  # once ready: how its tool calls read (toolcalls.py)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
