"""The generic path: any transformers causal LM through its own forward, on a ``RaggedBatch``.

Models the Llama fast path (``llama_path.py``) does not cover run here. Rows are kept in the
scheduler's ``running`` order: prefilled rows join at the end, finished ones leave in place.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache

from ..sequence import Sequence
from .batch import RaggedBatch, cache_from
from .prefix import Hit

__all__ = ["GenericPath"]


class GenericPath:
    def __init__(self, model: Any, pad_id: int, device: torch.device) -> None:
        self.model = model
        self.pad_id = pad_id
        self.device = device
        self.batch = RaggedBatch()
        self._jobs: list[str] = []  # the job of each batch row

    def __len__(self) -> int:
        return len(self.batch)

    def prefill(self, seqs: list[Sequence], hits: list[Hit | None]) -> torch.Tensor:
        """Prompts without a cached prefix run together; each one with a prefix runs alone
        from where its prefix ends. Rows join the batch in ``seqs`` order; returns their
        last logits."""
        joining, logits = RaggedBatch(), []
        group: list[Sequence] = []
        for seq, hit in [*zip(seqs, hits, strict=True), (None, None)]:
            if group and (seq is None or hit is not None):
                logits.append(self._run_prompts(group, None, joining))
                group = []
            if seq is not None and hit is not None:
                logits.append(self._run_prompts([seq], hit, joining))
            elif seq is not None:
                group.append(seq)
        if joining.cache is not None and joining.mask is not None:
            self.batch.join(joining.cache, joining.mask)
            self._jobs += [seq.job_id for seq in seqs]
        return torch.cat(logits)

    def decode(self, seqs: list[Sequence]) -> torch.Tensor:
        """One token for every running row (``seqs`` in row order)."""
        ids = torch.tensor([[s.output_ids[-1]] for s in seqs], device=self.device)
        positions = torch.tensor([[s.position] for s in seqs], device=self.device)
        out = self.model(
            input_ids=ids,
            attention_mask=self.batch.grow(),
            position_ids=positions,
            cache=self.batch.cache,
            use_cache=True,
        )
        last: torch.Tensor = out.logits[:, -1, :]
        return last

    def take(self, job_id: str, tokens: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Copies of the job's keys and values for its first ``tokens`` tokens (all it has)."""
        return self.batch.row(self._jobs.index(job_id), tokens)

    def release(self, job_ids: list[str]) -> None:
        gone = set(job_ids)
        keep = [row for row, job in enumerate(self._jobs) if job not in gone]
        self.batch.keep(keep)
        self._jobs = [self._jobs[row] for row in keep]

    def clear(self) -> None:
        self.batch = RaggedBatch()
        self._jobs = []

    def _run_prompts(
        self, seqs: list[Sequence], hit: Hit | None, into: RaggedBatch
    ) -> torch.Tensor:
        """Prefill ``seqs`` (left-padded together), or one sequence after its cached prefix;
        their rows join ``into``; returns their last logits."""
        done = 0 if hit is None else hit.length
        longest = max(len(seq.prompt_ids) for seq in seqs)
        ids = torch.full((len(seqs), longest - done), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), longest), dtype=torch.long)
        for row, seq in enumerate(seqs):  # pad left: decoder-only models continue from the right
            ids[row, longest - len(seq.prompt_ids) :] = torch.tensor(seq.prompt_ids[done:])
            mask[row, longest - len(seq.prompt_ids) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = ((mask.cumsum(-1) - 1).clamp(min=0))[:, done:]
        if hit is None:
            cache = DynamicCache(config=self.model.config)
        else:
            cache = cache_from(self.model.config, hit.layers, done)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        into.join(cache, mask)
        last: torch.Tensor = out.logits[:, -1, :]
        return last
