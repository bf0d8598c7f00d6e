"""What every benchmark script shares: percentiles, and (from ``jupyter_llm.testing``, as the
tests use it) a free loopback port."""

from __future__ import annotations

import math
from collections.abc import Sequence

from jupyter_llm.testing import free_port  # the one copy, shared with the tests

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
