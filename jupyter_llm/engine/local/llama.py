"""Our own forward for Llama-family models, on a ``SlotCache``: fewer, larger ops per step.

transformers loads the checkpoint (and stays the reference the tests compare with); this
module takes its weights and computes the same function with less per-step overhead: the
query, key and value projections fused into one matmul, gate and up into another, RoPE's
cos and sin looked up from a table built once, keys and values written in place into the
preallocated cache, one ``scaled_dot_product_attention`` per layer with each row's own
causal mask. Each op mirrors the one in transformers' ``modeling_llama`` (RMSNorm in float32,
RoPE in float32 cast to the model's dtype), so float32 greedy output matches ``generate``.

Grouped-query attention without repeating keys: a kv head's query heads attend as extra
query rows of that kv head (``[rows, kv_heads, groups * tokens, head_dim]``), so keys and
values are read from the cache as they are, a view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from . import quant
from .device import onednn_packs
from .kvcache import SlotCache

__all__ = ["Llama", "unsupported"]

# RoPE types whose frequencies change with the sequence length (transformers'
# dynamic_rope_update); every other type is a fixed table, which this module builds.
_DYNAMIC_ROPE = ("dynamic", "longrope")


def unsupported(config: Any) -> str | None:
    """Why this model cannot take the fast path (None: it can)."""
    text = config.get_text_config(decoder=True)
    if getattr(text, "model_type", None) != "llama":
        return f"model_type {getattr(text, 'model_type', None)!r} is not llama"
    if getattr(text, "hidden_act", "silu") != "silu":
        return f"hidden_act {text.hidden_act!r} is not silu"
    rope = getattr(text, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") in _DYNAMIC_ROPE:
        return f"rope_type {rope['rope_type']!r} changes with the sequence length"
    return None


#: A matmul weight: float (maybe in oneDNN's packed layout) or quantized (``quant.py``).
Weight = torch.Tensor | quant.QuantLinear


@dataclass(frozen=True, slots=True)
class _Layer:
    input_norm: torch.Tensor
    qkv: Weight  # [q_heads + 2 * kv_heads) * head_dim, hidden]
    qkv_bias: torch.Tensor | None
    out: Weight
    out_bias: torch.Tensor | None
    post_norm: torch.Tensor
    gate_up: Weight  # [2 * intermediate, hidden]
    gate_up_bias: torch.Tensor | None
    down: Weight
    down_bias: torch.Tensor | None


class Llama(torch.nn.Module):
    """A loaded ``LlamaForCausalLM``'s function, over a ``SlotCache``."""

    def __init__(
        self,
        model: Any,
        max_positions: int,
        packed: bool | None = None,
        quantization: str = "none",
    ) -> None:
        """``packed``: keep float matmul weights in oneDNN's layout (None: where oneDNN packs
        the model's dtype, ``device.resolve_precision``'s rule); ``quantization``: ``none``,
        or the form (``quant.py``) matmul weights are held in."""
        super().__init__()
        reason = unsupported(model.config)
        if reason is not None:
            raise ValueError(f"not a model for the Llama fast path: {reason}")
        text = model.config.get_text_config(decoder=True)
        self.heads = int(text.num_attention_heads)
        self.kv_heads = int(getattr(text, "num_key_value_heads", None) or self.heads)
        self.head_dim = int(getattr(text, "head_dim", None) or text.hidden_size // self.heads)
        self.groups = self.heads // self.kv_heads
        self.eps = float(text.rms_norm_eps)
        self.scale = self.head_dim**-0.5
        inner = model.model
        self.embed: torch.Tensor = inner.embed_tokens.weight.detach()
        self.norm: torch.Tensor = inner.norm.weight.detach()
        self.lm_head: Weight = model.lm_head.weight.detach()
        pack = _packs(self.embed) if packed is None else packed
        self.quantization = quantization
        self.layers = [_fused(layer, pack, quantization) for layer in inner.layers]
        if quantization != "none":
            self.lm_head = quant.quantize(model.lm_head.weight, quantization)
        elif pack:
            self.lm_head = _pack(model.lm_head.weight.detach())
        self.cos, self.sin = _rope_table(inner.rotary_emb, max_positions, self.embed.dtype)

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.dtype

    @property
    def device(self) -> torch.device:
        return self.embed.device

    def new_cache(self, slots: int, capacity: int) -> SlotCache:
        return SlotCache(
            len(self.layers),
            slots,
            self.kv_heads,
            capacity,
            self.head_dim,
            self.dtype,
            self.device,
        )

    def forward(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        cache: SlotCache,
        first: int,
        last: torch.Tensor,
    ) -> torch.Tensor:
        """Run ``ids`` ``[rows, tokens]`` at ``positions`` (each row's own, in its slot
        ``first + row``); returns the logits of each row's token ``last[row]``.

        A row's keys and values go into its slot at its positions; attention reads columns
        ``[0, max(positions) + 1)`` and sees, for a token at position p, the columns up to p.
        Columns a row holds beyond its length are masked and must be finite (``prepare``).
        """
        rows, tokens = ids.shape
        width = int(positions.max()) + 1
        cache.prepare(first, rows, width)
        cos = self.cos[positions].unsqueeze(2)  # [rows, tokens, 1, head_dim]
        sin = self.sin[positions].unsqueeze(2)
        row_index = torch.arange(rows, device=ids.device)[:, None]
        columns = torch.arange(width, device=ids.device)
        hidden = F.embedding(ids, self.embed)
        allowed = (columns <= positions[:, :, None]).unsqueeze(1)  # [rows, 1, tokens, width]
        # Additive, in the model's dtype, once for every layer (a boolean mask is converted
        # in every attention call).
        mask = torch.zeros(allowed.shape, dtype=hidden.dtype, device=ids.device)
        mask.masked_fill_(~allowed, float("-inf"))
        if tokens > 1 and self.groups > 1:  # one copy of the mask per query head of a group
            mask = mask.repeat(1, 1, self.groups, 1)
        rotated = self.heads + self.kv_heads  # query and key heads, rotated together
        for index, layer in enumerate(self.layers):
            x = _rms_norm(hidden, layer.input_norm, self.eps)
            qkv = _linear(x, layer.qkv, layer.qkv_bias).view(rows, tokens, -1, self.head_dim)
            qk = _rotate(qkv[:, :, :rotated], cos, sin)
            keys = cache.keys[index, first : first + rows]
            values = cache.values[index, first : first + rows]
            keys[row_index, :, positions] = qk[:, :, self.heads :]
            values[row_index, :, positions] = qkv[:, :, rotated:]
            q = qk[:, :, : self.heads]
            attended = F.scaled_dot_product_attention(
                self._grouped(q, rows, tokens),
                keys[:, :, :width],
                values[:, :, :width],
                attn_mask=mask,
                scale=self.scale,
            )
            attended = attended.view(rows, self.kv_heads, self.groups, tokens, self.head_dim)
            attended = attended.permute(0, 3, 1, 2, 4).reshape(rows, tokens, -1)
            hidden = hidden + _linear(attended, layer.out, layer.out_bias)
            x = _rms_norm(hidden, layer.post_norm, self.eps)
            gate, up = _linear(x, layer.gate_up, layer.gate_up_bias).chunk(2, dim=-1)
            hidden = hidden + _linear(F.silu(gate) * up, layer.down, layer.down_bias)
        hidden = _rms_norm(hidden[row_index[:, 0], last], self.norm, self.eps)
        return _linear(hidden, self.lm_head, None)

    def _grouped(self, q: torch.Tensor, rows: int, tokens: int) -> torch.Tensor:
        """``[rows, tokens, heads, head_dim]`` as ``[rows, kv_heads, groups * tokens, head_dim]``
        (query head h belongs to kv head h // groups, as transformers' ``repeat_kv`` has it)."""
        q = q.view(rows, tokens, self.kv_heads, self.groups, self.head_dim)
        return q.permute(0, 2, 3, 1, 4).reshape(rows, self.kv_heads, -1, self.head_dim)


def _packs(weight: torch.Tensor) -> bool:
    """Whether oneDNN's packed layout serves ``weight``'s matmuls here (CPU, float32 or
    bfloat16 where oneDNN packs it).

    ``F.linear`` goes to MKL for float32 (slow on AMD) and repacks bfloat16 weights at every
    call; packed once, both skip that.
    """
    return (
        weight.device.type == "cpu"
        and weight.dtype in (torch.float32, torch.bfloat16)
        and onednn_packs(weight.dtype)
    )


def _pack(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` in oneDNN's layout for any batch size (no batch-size hint: a hint of one
    row picks a layout that slows matmuls of several rows)."""
    packed: torch.Tensor = torch.ops.mkldnn._reorder_linear_weight(weight)
    return packed


def _linear(x: torch.Tensor, weight: Weight, bias: torch.Tensor | None) -> torch.Tensor:
    if isinstance(weight, quant.QuantLinear):
        return quant.linear(x, weight, bias)
    if weight.is_mkldnn:
        out: torch.Tensor = torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
        return out
    return F.linear(x, weight, bias)


def _fused(layer: Any, pack: bool, quantization: str = "none") -> _Layer:
    attn, mlp = layer.self_attn, layer.mlp

    def weight(*linears: Any) -> Weight:
        w = torch.cat([linear.weight.detach() for linear in linears])
        if quantization != "none":
            return quant.quantize(w, quantization)
        return _pack(w) if pack else w

    def bias(*linears: Any) -> torch.Tensor | None:
        if linears[0].bias is None:
            return None
        return torch.cat([linear.bias.detach() for linear in linears])

    return _Layer(
        input_norm=layer.input_layernorm.weight.detach(),
        qkv=weight(attn.q_proj, attn.k_proj, attn.v_proj),
        qkv_bias=bias(attn.q_proj, attn.k_proj, attn.v_proj),
        out=weight(attn.o_proj),
        out_bias=bias(attn.o_proj),
        post_norm=layer.post_attention_layernorm.weight.detach(),
        gate_up=weight(mlp.gate_proj, mlp.up_proj),
        gate_up_bias=bias(mlp.gate_proj, mlp.up_proj),
        down=weight(mlp.down_proj),
        down_bias=bias(mlp.down_proj),
    )


def _rope_table(
    rotary: Any, positions: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin for every position, as transformers' rotary embedding computes them."""
    inv_freq = rotary.inv_freq.float()
    freqs = torch.arange(positions, device=inv_freq.device).float()[:, None] * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    scaling = rotary.attention_scaling
    return (emb.cos() * scaling).to(dtype), (emb.sin() * scaling).to(dtype)


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    dtype = x.dtype
    x = x.to(torch.float32)
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x.to(dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return (x * cos) + (torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin)
