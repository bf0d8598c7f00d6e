"""Prometheus metrics, served by jupyter-server's own ``/metrics`` (the default registry).

Events (tokens, queue times, rejections) are counted by ``PrometheusObserver``, a pool
observer: cheap updates on the loop, at the moment they happen. Levels (requests running
and waiting, units used and total) are read from ``pool.stats()`` when ``/metrics`` is
scraped, so they are never stale. Every metric is labelled by model; the events also by the
job's ``kind`` (``generate``, or ``completion`` for an editor's inline completions).

The metrics are registered once per process, when this module is imported: several servers
in one process (tests) share them, and each adds its pool to the level collector.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..pool import Pool, PoolObserver
from ..types import JobStatus

__all__ = ["PrometheusObserver", "forget_pool", "watch_pool"]

_PREFIX = "jupyter_llm"
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_GAPS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56)
_QUEUE = (0.001, 0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

TIME_TO_FIRST_TOKEN = Histogram(
    f"{_PREFIX}_time_to_first_token_seconds",
    "From a job's submission to its first token",
    ["model", "kind"],
    buckets=_LATENCY,
)
INTER_TOKEN_LATENCY = Histogram(
    f"{_PREFIX}_inter_token_latency_seconds",
    "Between two tokens of one job",
    ["model", "kind"],
    buckets=_GAPS,
)
QUEUE_TIME = Histogram(
    f"{_PREFIX}_queue_time_seconds",
    "From a job's submission to its start on a worker",
    ["model", "kind"],
    buckets=_QUEUE,
)
GENERATED_TOKENS = Counter(f"{_PREFIX}_generated_tokens", "Tokens generated", ["model", "kind"])
REJECTIONS = Counter(
    f"{_PREFIX}_rejections",
    "Jobs refused at submission, by reason (QueueFull, JobTooLarge, ...)",
    ["model", "reason", "kind"],
)
FINISHED = Counter(
    f"{_PREFIX}_jobs_finished", "Jobs that ended, by status", ["model", "status", "kind"]
)


class _ModelMetrics:
    """One model's and kind's labelled children, looked up once (``labels()`` costs a lock
    and a dict)."""

    def __init__(self, model: str, kind: str) -> None:
        self.ttft = TIME_TO_FIRST_TOKEN.labels(model, kind)
        self.gaps = INTER_TOKEN_LATENCY.labels(model, kind)
        self.queue = QUEUE_TIME.labels(model, kind)
        self.tokens = GENERATED_TOKENS.labels(model, kind)


class PrometheusObserver(PoolObserver):
    def __init__(self) -> None:
        self._models: dict[tuple[str, str], _ModelMetrics] = {}

    def _of(self, model: str, kind: str) -> _ModelMetrics:
        metrics = self._models.get((model, kind))
        if metrics is None:
            metrics = self._models[model, kind] = _ModelMetrics(model, kind)
        return metrics

    def job_rejected(self, model: str, reason: str, *, kind: str = "generate") -> None:
        REJECTIONS.labels(model, reason, kind).inc()

    def job_started(self, model: str, queue_secs: float, *, kind: str = "generate") -> None:
        self._of(model, kind).queue.observe(queue_secs)

    def first_token(self, model: str, ttft_secs: float, *, kind: str = "generate") -> None:
        self._of(model, kind).ttft.observe(ttft_secs)

    def tokens(
        self, model: str, count: int, gap_secs: float | None, *, kind: str = "generate"
    ) -> None:
        metrics = self._of(model, kind)
        metrics.tokens.inc(count)
        if gap_secs is not None:
            for _ in range(count):  # tokens that came together share the gap
                metrics.gaps.observe(gap_secs / count)

    def job_finished(
        self, model: str, status: JobStatus, completion_tokens: int, *, kind: str = "generate"
    ) -> None:
        FINISHED.labels(model, status.value, kind).inc()


class _PoolLevels(Collector):
    """Gauges read from every live pool's stats at scrape time."""

    _GAUGES = (
        ("requests_running", "running", "Jobs running on a worker"),
        ("requests_waiting", "queued", "Jobs waiting in the queue"),
        ("units_used", "used_units", "KV-cache units held by running jobs"),
        ("units_total", "total_units", "KV-cache units of the ready workers"),
    )

    def __init__(self) -> None:
        self.pools: weakref.WeakSet[Pool] = weakref.WeakSet()

    def collect(self) -> Iterator[Metric]:
        families = []
        for name, field, help_text in self._GAUGES:
            family = GaugeMetricFamily(f"{_PREFIX}_{name}", help_text, labels=["model"])
            totals: dict[str, int] = {}
            for pool in list(self.pools):
                for model, stats in pool.stats().models.items():
                    totals[model] = totals.get(model, 0) + getattr(stats, field)
            for model, value in sorted(totals.items()):
                family.add_metric([model], value)
            families.append(family)
        return iter(families)

    def describe(self) -> Iterator[Metric]:
        return iter(())  # levels are dynamic: no description, so no collect at registration


_LEVELS = _PoolLevels()
REGISTRY.register(_LEVELS)


def watch_pool(pool: Pool) -> None:
    """Report this pool's levels in ``/metrics`` while it lives."""
    _LEVELS.pools.add(pool)


def forget_pool(pool: Pool) -> None:
    _LEVELS.pools.discard(pool)
