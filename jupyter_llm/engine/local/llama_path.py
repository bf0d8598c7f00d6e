"""The Llama fast path: engine/local/llama.py's forward on a preallocated ``SlotCache``.

A prefill claims one slot per new sequence: prompts without a cached prefix run together,
right-padded (a row's padding sits after its real tokens, at later positions, so causal
masking alone keeps it out of every real token's attention; its columns are overwritten by
the row's next tokens). A prompt with a cached prefix gets the prefix's keys and values
copied into its slot and runs alone from where the prefix ends. A decode runs every slot
in use, in slot order, one token each.

How big the cache is (``layout``): the model's KV budget (``kvcache_mem_cpu`` /
``kvcache_mem_gpu``) split into slots, each as long as the context the engine then reports
(so the pool refuses longer jobs), at most ``max_num_seqs`` of them (reported too, so the
pool sends no more at once). The units reported are the slots' tokens in blocks: memory
held. A job's units do not map to blocks it holds: it holds a whole slot.
"""

from __future__ import annotations

import logging

import torch

from ..sequence import Sequence
from .llama import Llama
from .prefix import Hit

__all__ = ["LlamaPath", "layout"]

log = logging.getLogger("jupyter_llm.engine")

_MIN_CONTEXT = 2048  # tokens a slot holds at least (unless the model's context is shorter)


def layout(
    budget_tokens: int, max_num_seqs: int, context: int, fixed_context: bool, block_size: int
) -> tuple[int, int]:
    """``(slots, tokens per slot)`` for a cache of about ``budget_tokens`` tokens.

    Every slot holds the longest sequence the engine accepts, so whatever admission admits
    (at most ``slots`` jobs, none longer than the context) fits. A context set in the config
    (``fixed_context``) is kept and the slots are as many as the budget holds. Otherwise each
    of ``max_num_seqs`` slots gets an equal share of the budget, but never less than
    ``_MIN_CONTEXT`` tokens (fewer slots, then): a large ``max_num_seqs`` must not shrink
    the context to a few hundred tokens.
    """
    if fixed_context:
        capacity = context
    else:
        share = budget_tokens // max_num_seqs // block_size * block_size
        capacity = min(context, max(share, _MIN_CONTEXT))
    slots = max(1, min(max_num_seqs, budget_tokens // capacity))
    if capacity < context or slots < max_num_seqs:
        log.info(
            "KV cache of %d tokens: %d slots (max_num_seqs %d) of %d tokens (context %d)",
            budget_tokens,
            slots,
            max_num_seqs,
            capacity,
            context,
        )
    return slots, capacity


class LlamaPath:
    def __init__(self, model: Llama, slots: int, capacity: int, pad_id: int) -> None:
        self.model = model
        self.cache = model.new_cache(slots, capacity)
        self.pad_id = pad_id

    def __len__(self) -> int:
        return len(self.cache)

    def prefill(self, seqs: list[Sequence], hits: list[Hit | None]) -> torch.Tensor:
        """Last logits of each of ``seqs`` (in order); each now holds a slot."""
        fresh = [i for i, hit in enumerate(hits) if hit is None]
        logits: dict[int, torch.Tensor] = {}
        claimed: list[str] = []
        try:
            if fresh:
                first = len(self.cache)
                for i in fresh:
                    self.cache.claim(seqs[i].job_id)
                    claimed.append(seqs[i].job_id)
                out = self._run([seqs[i] for i in fresh], first, 0)
                logits.update(zip(fresh, out, strict=True))
            for i, hit in enumerate(hits):
                if hit is not None:
                    slot = self.cache.claim(seqs[i].job_id)
                    claimed.append(seqs[i].job_id)
                    keys, values = hit.layers
                    self.cache.put(slot, keys[:, :, : hit.length], values[:, :, : hit.length])
                    logits[i] = self._run([seqs[i]], slot, hit.length)[0]
        except BaseException:
            self.release(claimed)
            raise
        for seq in seqs:
            self.cache.lengths[self.cache.slot(seq.job_id)] = len(seq.prompt_ids)
        return torch.stack([logits[i] for i in range(len(seqs))])

    def decode(self, seqs: list[Sequence]) -> torch.Tensor:
        """One token for every sequence holding a slot; logits in ``seqs`` order."""
        slots = [self.cache.slot(seq.job_id) for seq in seqs]
        by_slot = sorted(zip(slots, seqs, strict=True), key=lambda pair: pair[0])
        device = self.model.device
        ids = torch.tensor([[seq.output_ids[-1]] for _, seq in by_slot], device=device)
        positions = torch.tensor([[seq.position] for _, seq in by_slot], device=device)
        last = torch.zeros(len(seqs), dtype=torch.long, device=device)
        out: torch.Tensor = self.model(ids, positions, self.cache, 0, last)
        for slot, seq in by_slot:
            self.cache.lengths[slot] = seq.position + 1
        if slots == sorted(slots):
            return out
        return out[torch.tensor(slots, device=device)]

    def take(self, job_id: str, tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Copies of the job's keys and values for its first ``tokens`` tokens."""
        return self.cache.take(self.cache.slot(job_id), tokens)

    def release(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            self.cache.release(job_id)

    def clear(self) -> None:
        self.cache.clear()

    def _run(self, seqs: list[Sequence], first: int, done: int) -> torch.Tensor:
        """Prefill ``seqs`` (in slots ``first ..``) from position ``done`` on."""
        longest = max(len(seq.prompt_ids) for seq in seqs)
        ids = torch.full((len(seqs), longest - done), self.pad_id, dtype=torch.long)
        for row, seq in enumerate(seqs):  # pad right: positions go on into the padding
            ids[row, : len(seq.prompt_ids) - done] = torch.tensor(seq.prompt_ids[done:])
        positions = torch.arange(done, longest).expand(len(seqs), -1)
        last = torch.tensor([len(seq.prompt_ids) - done - 1 for seq in seqs])
        device = self.model.device
        out: torch.Tensor = self.model(
            ids.to(device), positions.to(device), self.cache, first, last.to(device)
        )
        return out
