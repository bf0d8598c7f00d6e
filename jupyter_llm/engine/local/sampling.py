"""Per-request sampling over a batch of next-token logits.

Each row keeps its own parameters and its own ``torch.Generator``, so a seeded request draws
the same tokens whatever else shares the batch. Order of operations (as in vLLM and HF):
``logit_bias`` and the grammar's mask (a constrained row, engine/grammar.py), penalties, then
temperature (0: greedy), then top-k, top-p and min-p filters, then a draw.
Log-probabilities, when asked, are those of the biased and masked distribution.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from ...types import Logprob, SamplingParams
from .grammar import Constraint

__all__ = ["GREEDY_BELOW", "RowSampler", "sample"]

GREEDY_BELOW = 1e-5


@dataclass(slots=True)
class Draw:
    token_id: int
    logprob: Logprob | None


class RowSampler:
    """One sequence's sampling state: its parameters, generator and token counts."""

    def __init__(
        self,
        params: SamplingParams,
        prompt_ids: list[int],
        device: torch.device,
        constraint: Constraint | None = None,
    ) -> None:
        self.params = params
        self.constraint = constraint
        self._bias: tuple[torch.Tensor, torch.Tensor] | None = None
        if params.logit_bias:
            ids, values = zip(*params.logit_bias, strict=True)
            self._bias = (
                torch.tensor(ids, dtype=torch.long, device=device),
                torch.tensor(values, dtype=torch.float32, device=device),
            )
        # None was resolved by the pool; 0 is greedy, and so is anything too small to divide
        # float32 logits by (vLLM's rule, with its threshold).
        self.greedy = not params.temperature or params.temperature < GREEDY_BELOW
        seed = params.seed if params.seed is not None else random.getrandbits(63)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self._seen = set(prompt_ids)  # for repetition_penalty: prompt and output (HF's rule)
        self._counts: dict[int, int] = {}  # output only: presence / frequency (OpenAI's rule)

    @property
    def plain(self) -> bool:
        """True when nothing but argmax is needed: batched together."""
        p = self.params
        return (
            self.greedy
            and not p.logprobs
            and p.repetition_penalty == 1.0
            and not p.presence_penalty
            and not p.frequency_penalty
        )

    @property
    def shapes(self) -> bool:
        """True when the row's logits change before sampling (bias or grammar)."""
        return self._bias is not None or self.constraint is not None

    def shape(self, logits: torch.Tensor) -> None:
        """Add the logit bias and apply the grammar's mask to one row, in place."""
        if self._bias is not None:
            ids, values = self._bias
            logits.index_add_(0, ids, values.to(logits.dtype))
        if self.constraint is not None:
            self.constraint.mask(logits)

    def observe(self, token_id: int) -> None:
        if self.constraint is not None:
            self.constraint.advance(token_id)
        self._seen.add(token_id)
        self._counts[token_id] = self._counts.get(token_id, 0) + 1

    def draw(self, logits: torch.Tensor, decode: object) -> Draw:
        p = self.params
        raw = logits
        logits = self._penalized(logits.float())
        if self.greedy:
            token = int(torch.argmax(logits))
        else:
            # From the top logit down, so that a tiny temperature sends the others to -inf
            # (never the top one to +inf: inf - inf would make the whole row NaN).
            logits = (logits - logits.max()) / float(p.temperature or 1.0)
            logits = _filter(logits, p.top_k, p.top_p, p.min_p)
            token = _draw(torch.softmax(logits, dim=-1), self.generator)
        return Draw(token, _logprob(raw, token, p.top_logprobs, decode) if p.logprobs else None)

    def _penalized(self, logits: torch.Tensor) -> torch.Tensor:
        p = self.params
        if p.repetition_penalty != 1.0 and self._seen:
            logits = logits.clone()
            index = torch.tensor(sorted(self._seen), device=logits.device)
            scores = logits[index]
            logits[index] = torch.where(
                scores < 0, scores * p.repetition_penalty, scores / p.repetition_penalty
            )
        if (p.presence_penalty or p.frequency_penalty) and self._counts:
            logits = logits.clone()
            index = torch.tensor(list(self._counts), device=logits.device)
            counts = torch.tensor(
                list(self._counts.values()), dtype=logits.dtype, device=logits.device
            )
            logits[index] -= p.presence_penalty + p.frequency_penalty * counts
        # An extreme penalty overflows float32: keep every logit finite so that one request's
        # values cannot turn its row into NaN (and fail the step of everyone in the batch).
        limit = torch.finfo(logits.dtype).max / 2
        return torch.nan_to_num(logits, nan=-limit, posinf=limit, neginf=-limit).clamp(
            -limit, limit
        )


def _draw(probs: torch.Tensor, generator: torch.Generator) -> int:
    """A token drawn from ``probs`` by inverting its cumulative sum at one uniform number.

    One uniform number and one search, where ``torch.multinomial`` costs more than ten times
    as much per row over a vocabulary of 50,000 tokens (docs/benchmarks.md). Sums in float64,
    so a token's share of [0, 1) is its probability to within 1e-12; a token of probability 0
    owns an empty interval and is never drawn (``right=True``: the first sum above the point).
    """
    cumulative = probs.double().cumsum(dim=-1)
    point = torch.rand(1, generator=generator, dtype=torch.float64, device=probs.device)
    index = int(torch.searchsorted(cumulative, point * cumulative[-1], right=True))
    if index == probs.shape[-1]:  # the point rounded up onto the total (about 1 in 2**53)
        index = int(torch.nonzero(probs).max())  # the last token that can be drawn
    return index


def _filter(logits: torch.Tensor, top_k: int, top_p: float, min_p: float) -> torch.Tensor:
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        drop = cumulative - torch.softmax(sorted_logits, dim=-1) >= top_p  # keep the first over p
        drop[0] = False  # the most likely token always stays, however small top_p is
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    if min_p > 0.0:
        probs = torch.softmax(logits, dim=-1)
        logits = logits.masked_fill(probs < min_p * probs.max(), float("-inf"))
    return logits


def _logprob(raw: torch.Tensor, token: int, top: int, decode: object) -> Logprob:
    logprobs = torch.log_softmax(raw.float(), dim=-1)
    assert callable(decode)
    alternatives: tuple[tuple[str, int, float], ...] = ()
    if top:
        values, ids = torch.topk(logprobs, top)
        alternatives = tuple(
            (decode([int(i)]), int(i), float(v)) for v, i in zip(values, ids, strict=True)
        )
    return Logprob(decode([token]), token, float(logprobs[token]), alternatives)


def sample(samplers: list[RowSampler], logits: torch.Tensor, decode: object) -> list[Draw]:
    """One draw per row of ``logits`` ([rows, vocab]); plain greedy rows share one argmax.

    Sampled rows go one at a time: a row's float32 logits (196 KB for a 49,152-token vocabulary)
    stay in the core's cache through its few passes, where the same passes over all rows at
    once stream megabytes from memory, several times slower."""
    draws: list[Draw | None] = [None] * len(samplers)
    for i, sampler in enumerate(samplers):
        if sampler.shapes:
            sampler.shape(logits[i])
    plain = [i for i, s in enumerate(samplers) if s.plain]
    if plain:
        tokens = torch.argmax(logits[plain], dim=-1).tolist()
        for i, token in zip(plain, tokens, strict=True):
            draws[i] = Draw(int(token), None)
    for i, sampler in enumerate(samplers):
        if draws[i] is None:
            draws[i] = sampler.draw(logits[i], decode)
    return [d for d in draws if d is not None]
