"""What every benchmark script shares: percentiles, and (from ``jupyter_llm.testing``, as the
tests use it) a free loopback port.

Imported before torch by every benchmark, it also makes idle OpenMP threads sleep after a
brief spin, as a pool worker's do (engine/local/spec.py), in the benchmark's own process and in the
servers it starts: with OpenMP's long default spin, raw ``generate`` measured in a
benchmark's own process ran 5x slower than the same model in a worker whenever anything
else wanted the cores (12.9 against 2.4 tok/s, SmolLM2 float32, on a busy 2-core machine).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from jupyter_llm.engine.local.spec import brief_openmp_spin
from jupyter_llm.testing import free_port  # the one copy, shared with the tests

brief_openmp_spin()

__all__ = ["cpu_description", "free_port", "percentile"]

# The instruction sets that decide which kernels run (Linux's names in /proc/cpuinfo).
_ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_bf16")
_CAPS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def cpu_description() -> str:
    """The CPU's model, its instruction sets that matter here, and any cap in force:
    ``AMD EPYC; avx2 fma avx512f ...; cores 2`` (every benchmark names the CPU it ran on)."""
    model, flags = "unknown CPU", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    isa = " ".join(f for f in _ISA_FLAGS if f in flags) or "no AVX2"
    caps = ", ".join(f"{name}={os.environ[name]}" for name in _CAPS if os.environ.get(name))
    return f"{model}; {isa}; {os.cpu_count()} cores" + (f"; capped: {caps}" if caps else "")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between closest ranks; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    where = (len(ordered) - 1) * q / 100
    low = math.floor(where)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (where - low)
