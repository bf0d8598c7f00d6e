"""Device and precision choice: ``dtype: auto`` follows the hardware."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jupyter_llm.engine.local.device import (
    cpu_has_native_bf16,
    onednn_packs,
    resolve_device,
    resolve_dtype,
    resolve_precision,
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
    native = cpu_has_native_bf16(flags) and onednn_packs(torch.bfloat16)
    expected = torch.bfloat16 if native else torch.float32
    assert resolve_dtype("auto", torch.device("cpu")) == expected
    assert resolve_dtype("float32", torch.device("cpu")) == torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16


def test_auto_is_float32_on_a_cpu_without_bf16(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("jupyter_llm.engine.local.device.cpu_has_native_bf16", lambda: False)
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32


def test_devices_spread_round_robin_and_cuda_needs_cuda():
    assert resolve_device(("cpu", "cpu"), 3) == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda:1", 0)
        assert resolve_device("auto", 0) == torch.device("cpu")


def test_precision_is_what_oneDNN_packs_here():
    for name in ("float32", "bfloat16", "float16", "auto"):
        precision = resolve_precision(name, torch.device("cpu"))
        assert precision.packed == onednn_packs(precision.dtype)
        asked = resolve_dtype(name, torch.device("cpu"))
        if onednn_packs(asked) or asked == torch.float32:
            assert precision.dtype == asked and precision.note is None
        else:  # half precision that oneDNN refuses to pack here runs in float32, and says so
            assert precision.dtype == torch.float32 and precision.note is not None
            assert name in precision.note and "float32" in precision.note
    assert resolve_precision("float32", torch.device("cpu")).describe() == "float32, oneDNN packed"


_CAPPED = """
import torch
from jupyter_llm.engine.local.device import resolve_precision
for name in ("auto", "bfloat16", "float16", "float32"):
    p = resolve_precision(name, torch.device("cpu"))
    print(name, "->", p.describe(), "|", p.note)
print("capability", torch.backends.cpu.get_cpu_capability())
"""


def test_an_avx2_cap_is_honoured_like_a_cpu_without_avx512():
    """CI's second pass caps oneDNN and ATen at AVX2: every dtype then loads as on an
    AVX2-only CPU (float32, packed) and ``auto`` picks float32."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    out = subprocess.run(
        [sys.executable, "-c", _CAPPED], env=env, capture_output=True, text=True, check=True
    ).stdout
    lines = dict(line.split(" -> ") for line in out.splitlines() if " -> " in line)
    assert lines["auto"] == "float32, oneDNN packed | None", out
    assert lines["float32"] == "float32, oneDNN packed | None", out
    for half in ("bfloat16", "float16"):
        assert lines[half].startswith("float32, oneDNN packed | " + half), out
    assert "capability AVX2" in out
