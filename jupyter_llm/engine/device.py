"""Where a worker runs and in which precision: ``device: auto`` and ``dtype: auto``.

``dtype: auto`` is bfloat16 where the hardware computes it natively and float32 elsewhere. On
a CPU, native means the AVX512-BF16 or AMX-BF16 instructions (read from the CPU flags): there
bfloat16 halves the bytes every step moves and runs 1.4-1.8x float32 for SmolLM2 (measured on
a 2-core AMD EPYC with avx512_bf16); without them bfloat16 is emulated and slower than float32.
On CUDA, bfloat16 where the GPU supports it (Ampere and later). A ``gguf:`` source is
converted to plain tensors (``sources.py``), so it follows the same rule.
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["cpu_has_native_bf16", "resolve_device", "resolve_dtype"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # Linux's names in /proc/cpuinfo


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bfloat16 natively; ``cpuinfo`` is /proc/cpuinfo's text."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False  # not Linux: no flags to read, so no claim
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return bool(_BF16_FLAGS & set(value.split()))
    return False


def resolve_device(device: str | tuple[str, ...], worker_index: int) -> torch.device:
    """Place worker ``worker_index``: a list spreads workers round-robin over its devices."""
    if isinstance(device, tuple):
        device = device[worker_index % len(device)]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} was asked for, but CUDA is not available here")
        if device == "cuda":
            device = f"cuda:{worker_index % torch.cuda.device_count()}"
    return torch.device(device)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name != "auto":
        return DTYPES[name]
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    else:
        native = device.type == "cpu" and cpu_has_native_bf16()
    return torch.bfloat16 if native else torch.float32
