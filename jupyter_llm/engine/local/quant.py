"""Quantized matmul weights for the Llama fast path: one seam, kernels from torch.

``params.quantization`` picks the form a model's matmul weights are held in:

* ``none``: float, as loaded (oneDNN's packed layout on a CPU, ``llama.py``);
* ``int8``: int8 per output channel, multiplied by FBGEMM's dynamic int8 linear
  (``quantized::linear_dynamic``: each call quantizes its input to uint8, multiplies in
  integers and rescales to float32);
* ``int4``: 4-bit groups of 32 with a scale and a minimum each (GGUF's Q4_1 form), through
  ``aten._weight_int4pack_mm_for_cpu``: the least memory, but slower than float32 on
  AVX2 and AVX-512 CPUs alike, so ``auto`` never picks it;
* ``auto``: a GGUF file's own quantized type as the fastest kept kernel holds it (int8, see
  ``for_gguf``); float for anything else.

Why these kernels: per matmul on an AVX-512 and an AVX2 CPU, FBGEMM's int8 ran 2-16x faster
than float32 packed by oneDNN, while torch's weight-only int8 and int4 kernels and torchao's
CPU paths (which lower to them, or to ``aten._int_mm``) ran 2-30x slower. A better kernel
replaces ``quantize`` and ``linear`` here and nothing else.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "GGUF_KEPT",
    "QUANTIZATIONS",
    "QuantLinear",
    "for_gguf",
    "linear",
    "matmul_label",
    "quantize",
    "resolve",
]

log = logging.getLogger("jupyter_llm.engine")

QUANTIZATIONS = ("none", "int8", "int4", "auto")
#: GGUF types whose weights stay quantized under ``auto`` (as int8); others are dequantized.
GGUF_KEPT = frozenset({"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"})
_FLOAT_GGUF = frozenset({"F32", "F16", "BF16", "F64"})
_GROUP = 32  # int4: weights per scale, as GGUF's Q4 blocks
# FBGEMM quantizes activations to 7 bits, not 8: AVX2's vpmaddubsw adds pairs of uint8 *
# int8 products in saturating int16, which full-range activations can overflow (torch's
# own dynamic Linear does the same).
_REDUCE_RANGE = True
_LEVELS = 127  # steps of an input in [0, 1] that FBGEMM keeps, with _REDUCE_RANGE


@dataclass(frozen=True, slots=True)
class QuantLinear:
    """A linear layer's weight ``[out_features, in_features]`` held quantized."""

    kind: str  # int8 | int4
    packed: Any  # int8: FBGEMM's packed weight (a TorchScript object); int4: a tensor
    scales_and_zeros: torch.Tensor | None  # int4: [in_features / 32, out_features, 2]
    out_features: int
    in_features: int
    nbytes: int  # held for the weight, scales included
    row_sums: torch.Tensor | None = None  # int8: each output's weights summed, dequantized


def resolve(quantization: str, gguf_types: Iterable[str] | None, device: torch.device) -> str:
    """The form weights take: ``none``, ``int8`` or ``int4``.

    ``gguf_types`` are the GGUF file's matmul weight types (None: not a GGUF source).
    ``int8`` and ``int4`` asked for where the kernels do not run are errors; ``auto`` falls
    back to float there.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization {quantization!r}: expected one of {QUANTIZATIONS}")
    if quantization == "auto":
        kind = for_gguf(gguf_types) if gguf_types is not None else "none"
        if kind != "none" and device.type != "cpu":
            log.info("quantization auto on %s: float weights (the kernels are CPU ones)", device)
            return "none"
        return kind
    if quantization != "none" and device.type != "cpu":
        raise ValueError(f"quantization {quantization!r} runs on a CPU only, not on {device}")
    return quantization


def for_gguf(types: Iterable[str]) -> str:
    """What ``auto`` keeps of a GGUF file whose matmul weights have ``types``.

    int8 for the quantized types people download: FBGEMM's int8 is the fastest kernel we
    have, faster than float32, while torch's 4-bit kernels are slower than float32.
    """
    found = set(types)
    if not found or found <= _FLOAT_GGUF:
        return "none"
    other = found - GGUF_KEPT - _FLOAT_GGUF
    if other:
        log.info("GGUF weights of type %s are dequantized to float", ", ".join(sorted(other)))
        return "none"
    return "int8"


def matmul_label(kind: str) -> str | None:
    """How matmuls run under ``kind``, for the engine's info (None: float, not ours to say)."""
    return {"int8": "int8, FBGEMM dynamic", "int4": "int4 groups of 32, torch weight-only"}.get(
        kind
    )


def quantize(weight: torch.Tensor, kind: str) -> QuantLinear:
    """``weight`` ``[out, in]`` (float, on a CPU) in the form ``kind`` (int8 or int4)."""
    out_features, in_features = weight.shape
    weight = weight.detach().float()
    if kind == "int8":  # int8 values; a float32 scale, an int32 offset and a sum a row
        size = out_features * (in_features + 12)
        packed, row_sums = _pack_int8(weight)
        return QuantLinear(kind, packed, None, out_features, in_features, size, row_sums)
    if kind == "int4":
        packed, scales_and_zeros = _pack_int4(weight)
        size = sum(t.numel() * t.element_size() for t in (packed, scales_and_zeros))
        return QuantLinear(kind, packed, scales_and_zeros, out_features, in_features, size)
    raise ValueError(f"no quantized form {kind!r}")


def linear(x: torch.Tensor, weight: QuantLinear, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ weight.T + bias`` in ``x``'s dtype."""
    dtype = x.dtype
    flat = x.reshape(-1, weight.in_features).float()
    if weight.row_sums is not None:  # int8: FBGEMM's packed weight
        # FBGEMM quantizes its whole input with one scale and offset, and a prompt's first
        # token can be 100x larger than the rest (perplexity 31.7 -> 118 on SmolLM2). Each
        # row mapped onto [0, 1] gets its own, in one call:
        # W x = (hi - lo) * W x' + lo * W 1, with x' = (x - lo) / (hi - lo).
        low = flat.amin(dim=1, keepdim=True)
        span = (flat.amax(dim=1, keepdim=True) - low).clamp(min=1e-30)
        unit = (flat - low) / span
        # 7 bits of x' (see _REDUCE_RANGE) cost SmolLM2 perplexity 31.7 -> 39; a second call
        # on what they missed gives 14: x' = q / 127 + rest.
        coarse = torch.round(unit * _LEVELS) / _LEVELS
        out: torch.Tensor = torch.ops.quantized.linear_dynamic(
            coarse.contiguous(), weight.packed, _REDUCE_RANGE
        )
        out += torch.ops.quantized.linear_dynamic(
            (unit - coarse).contiguous(), weight.packed, _REDUCE_RANGE
        )
        out = torch.addcmul(low * weight.row_sums, out, span)
    elif weight.scales_and_zeros is not None:  # int4
        out = torch._weight_int4pack_mm_for_cpu(
            flat.contiguous(), weight.packed, _GROUP, weight.scales_and_zeros
        )
    else:
        raise ValueError(f"a {weight.kind} weight without its scales")
    if bias is not None:
        out = out + bias
    return out.view(*x.shape[:-1], weight.out_features).to(dtype)


@contextmanager
def _engine(name: str) -> Iterator[None]:
    """Prepack for ``name``: the packed weight carries its backend, calls need no setting."""
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = name
    try:
        yield
    finally:
        torch.backends.quantized.engine = before


def _pack_int8(weight: torch.Tensor) -> tuple[Any, torch.Tensor]:
    scale = (weight.abs().amax(dim=1) / 127).clamp(min=1e-12)
    zero = torch.zeros(weight.shape[0], dtype=torch.long)
    # torch.quantize_per_channel is the only way into FBGEMM's prepack; it warns that
    # quantized tensors are deprecated, but the packed weight we keep is FBGEMM's own.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        q = torch.quantize_per_channel(weight, scale.double(), zero, 0, torch.qint8)
    with _engine("fbgemm"):
        packed = torch.ops.quantized.linear_prepack(q, None)
    return packed, q.dequantize().sum(dim=1)


def _pack_int4(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out_features, in_features = weight.shape
    if in_features % _GROUP:
        raise ValueError(f"int4 needs rows of a multiple of {_GROUP} weights, not {in_features}")
    groups = weight.view(out_features, in_features // _GROUP, _GROUP)
    low, high = groups.amin(dim=-1), groups.amax(dim=-1)
    scale = ((high - low) / 15).clamp(min=1e-12)
    q = torch.round((groups - low[..., None]) / scale[..., None]).clamp(0, 15).to(torch.int32)
    packed = torch._convert_weight_to_int4pack_for_cpu(q.view(out_features, in_features), 1)
    # The kernel computes (q - 8) * scale + zero: the zero is the group's minimum moved up.
    zero = low + 8 * scale
    return packed, torch.stack([scale.t(), zero.t()], dim=-1).contiguous()
