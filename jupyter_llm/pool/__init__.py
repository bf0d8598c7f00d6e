"""The parking lot: admission by units, a bounded queue, workers and the mailbox.

Knows nothing of HTTP, IPython or torch (engines are reached through ``engine.base``).
"""

from .observer import PoolObserver
from .pool import Pool
from .stats import ModelInfo, ModelStats, PoolStats, WorkerInfo

__all__ = [
    "ModelInfo",
    "ModelStats",
    "Pool",
    "PoolObserver",
    "PoolStats",
    "WorkerInfo",
]
