"""Where a worker runs and in which precision: ``device: auto`` and ``dtype: auto``.

``dtype: auto`` is bfloat16 where the hardware computes it natively and float32 elsewhere. On
a CPU, native means the AVX512-BF16 or AMX-BF16 instructions (read from the CPU flags) and a
oneDNN that packs bfloat16 weights here; without them bfloat16 is emulated and slower than
float32. On CUDA, bfloat16 where the GPU supports it (Ampere and later). A ``gguf:`` source
is converted to plain tensors (``sources.py``), so it follows the same rule.

A dtype asked for by name that this CPU cannot run through oneDNN's packed matmul (bfloat16
without AVX-512 BW/VL/DQ or AVX-NE-CONVERT, float16 without AVX512-FP16) runs in float32,
packed: emulated half-precision matmuls are several times slower than packed float32, and
oneDNN refuses to pack them at all. The worker says so once in the log, and reports its
precision (``Precision.describe``) to ``GET llm/api/models``.

oneDNN is asked rather than the flags read, so its own cap (``ONEDNN_MAX_CPU_ISA=AVX2``, which
CI sets for a second pass of the engine tests) is honoured like a CPU without the instructions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = [
    "Precision",
    "cpu_has_native_bf16",
    "onednn_packs",
    "resolve_device",
    "resolve_dtype",
    "resolve_precision",
]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_NAMES = {dtype: name for name, dtype in DTYPES.items()}
_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # Linux's names in /proc/cpuinfo


@dataclass(frozen=True, slots=True)
class Precision:
    """What a worker computes in, how its matmuls run, and why if not as configured."""

    dtype: torch.dtype
    packed: bool  # weights kept in oneDNN's layout (CPU)
    device_type: str = "cpu"
    note: str | None = None  # why the dtype differs from the configured one

    @property
    def dtype_name(self) -> str:
        return _NAMES.get(self.dtype, str(self.dtype).removeprefix("torch."))

    @property
    def matmul(self) -> str:
        if self.device_type == "cuda":
            return "cuBLAS"
        return "oneDNN packed" if self.packed else "unpacked"

    def describe(self) -> str:
        """``bfloat16, oneDNN packed`` / ``float32, unpacked``: what ``GET models`` shows."""
        return f"{self.dtype_name}, {self.matmul}"


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU's flags say it computes bfloat16 natively; ``cpuinfo`` is
    /proc/cpuinfo's text."""
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


@functools.cache
def onednn_packs(dtype: torch.dtype) -> bool:
    """Whether oneDNN packs ``dtype`` weights for a matmul on this CPU (under its ISA cap)."""
    if not torch.backends.mkldnn.is_available():  # type: ignore[no-untyped-call]
        return False
    try:
        torch.ops.mkldnn._reorder_linear_weight(torch.zeros(16, 16, dtype=dtype))
    except RuntimeError:  # "bf16 path needs the cpu support ..."
        return False
    return True


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
    """The configured dtype, with ``auto`` decided by the hardware."""
    if name != "auto":
        return DTYPES[name]
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    else:
        native = device.type == "cpu" and cpu_has_native_bf16() and onednn_packs(torch.bfloat16)
    return torch.bfloat16 if native else torch.float32


def resolve_precision(name: str, device: torch.device) -> Precision:
    """The dtype a worker computes in and its matmul path, for the configured ``name``."""
    dtype = resolve_dtype(name, device)
    if device.type != "cpu":
        return Precision(dtype, packed=False, device_type=device.type)
    if dtype in (torch.bfloat16, torch.float16) and not onednn_packs(dtype):
        fallback = torch.float32
        packed = onednn_packs(fallback)
        note = (
            f"{_NAMES[dtype]} has no oneDNN matmul on this CPU (it needs "
            f"{'AVX-512 BW/VL/DQ or AVX-NE-CONVERT' if dtype == torch.bfloat16 else 'AVX512-FP16'}"
            f"): computing in float32{', oneDNN packed' if packed else ''}, the faster path here"
        )
        return Precision(fallback, packed, note=note)
    return Precision(dtype, packed=onednn_packs(dtype) and dtype != torch.float16)
