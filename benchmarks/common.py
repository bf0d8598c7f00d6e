"""What every benchmark script shares: percentiles, and (from ``jupyter_llm.testing``, as the
tests use it) a free loopback port.

Imported before torch by every benchmark, it also makes idle OpenMP threads sleep after a
brief spin, as a pool worker's do (engine/spec.py), in the benchmark's own process and in the
servers it starts: with OpenMP's long default spin, raw ``generate`` measured in a
benchmark's own process ran 5x slower than the same model in a worker whenever anything
else wanted the cores (12.9 against 2.4 tok/s, SmolLM2 float32, on a busy 2-core machine).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from jupyter_llm.engine.spec import brief_openmp_spin
from jupyter_llm.testing import free_port  # the one copy, shared with the tests

brief_openmp_spin()

__all__ = ["free_port", "percentile"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between closest ranks; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    where = (len(ordered) - 1) * q / 100
    low = math.floor(where)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (where - low)
