"""Device and precision choice: ``dtype: auto`` follows the hardware."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jupyter_llm.engine.device import (
    cpu_has_native_bf16,
    resolve_device,
    resolve_dtype,
)

EPYC = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni avx512_bf16 vaes\n"
SKYLAKE = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"
SAPPHIRE = "processor\t: 0\nflags\t\t: fpu avx512f amx_tile amx_bf16 amx_int8\n"


def test_native_bf16_is_read_from_the_cpu_flags():
    assert cpu_has_native_bf16(EPYC) and cpu_has_native_bf16(SAPPHIRE)
    assert not cpu_has_native_bf16(SKYLAKE)
    assert not cpu_has_native_bf16("")


def test_auto_is_bfloat16_exactly_where_the_cpu_has_it():
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    expected = torch.bfloat16 if cpu_has_native_bf16(flags) else torch.float32
    assert resolve_dtype("auto", torch.device("cpu")) == expected
    assert resolve_dtype("float32", torch.device("cpu")) == torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16


def test_auto_is_float32_on_a_cpu_without_bf16(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("jupyter_llm.engine.device.cpu_has_native_bf16", lambda: False)
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32


def test_devices_spread_round_robin_and_cuda_needs_cuda():
    assert resolve_device(("cpu", "cpu"), 3) == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda:1", 0)
        assert resolve_device("auto", 0) == torch.device("cpu")
