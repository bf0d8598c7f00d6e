"""The transformers engine: one model replica, batched decoding, continuous batching.

This is the one torch-heavy module. ``step()`` is schedule, run, postprocess: the scheduler
(engine/scheduler.py) chooses a prefill (waiting sequences run together left-padded and get
their first token) or a decode (every running sequence gets one token); this module runs it.
Sequences join and leave the cache between steps through ``RaggedBatch``.

Why our own loop and not transformers' ``generate_batch``: measured on this 2-core CPU with
SmolLM2-135M fp32, 8 prompts x 64 tokens: padded ``generate`` 62.7 tok/s, ``generate_batch``
(paged continuous batching) 29.1 tok/s. The ragged batch keeps ``generate``'s dense shapes.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from transformers import AutoModelForCausalLM, DynamicCache
from transformers.utils import logging as transformers_logging

from ..config import ModelConfig
from .base import EngineInfo, EngineRequest, StepOutput
from .batch import RaggedBatch, cache_from
from .detok import Detokenizer
from .device import packed_gguf, resolve_device, resolve_dtype
from .prefix import Hit, PrefixCache
from .progress import Progress, silent
from .prompt import encode, load_tokenizer
from .sampling import Draw, RowSampler, sample
from .scheduler import Plan, Scheduler
from .sequence import Sequence
from .sources import resolve_model_dir

__all__ = ["TransformersEngine", "kv_bytes_per_token"]

log = logging.getLogger("jupyter_llm.engine")

_PREFILL_TOKENS = 4096  # prompt tokens (padded) one prefill may take; at least one sequence


def kv_bytes_per_token(model_config: Any, dtype: torch.dtype) -> int:
    text = model_config.get_text_config(decoder=True)
    heads = text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    element = torch.tensor([], dtype=dtype).element_size()
    return int(2 * text.num_hidden_layers * kv_heads * head_dim * element)


class TransformersEngine:
    def __init__(
        self, config: ModelConfig, worker_index: int, threads: int, progress: Progress = silent
    ) -> None:
        # No HF_HUB_OFFLINE here: an hf_id downloads on first use (engine/hub.py, before
        # from_pretrained, which then reads a local folder and never the network).
        # No progress bars in a server's log (tqdm's lock is also a semaphore a worker leaks).
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        torch.set_num_threads(threads)
        params = config.params
        self.device = resolve_device(params.device, worker_index)
        model_dir = resolve_model_dir(config, progress)
        progress("loading weights", str(model_dir))
        dtype = resolve_dtype(params.dtype, self.device, packed_gguf(model_dir))
        self.tokenizer = load_tokenizer(str(model_dir))
        model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
        self.model = model.to(self.device).eval()
        self.max_model_len = params.max_model_len or int(
            getattr(model.config.get_text_config(decoder=True), "max_position_embeddings", 2048)
        )
        self.eos_ids = _eos_ids(model, self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else min(self.eos_ids, default=0))
        memory = params.kvcache_mem_gpu if self.device.type == "cuda" else params.kvcache_mem_cpu
        per_block = kv_bytes_per_token(model.config, dtype) * params.block_size
        self._info = EngineInfo(
            units=max(1, memory * 1024 * 1024 // per_block),
            block_size=params.block_size,
            max_num_seqs=params.max_num_seqs,
            max_model_len=self.max_model_len,
            device=str(self.device),
            tokenizer=str(model_dir),
        )
        self.scheduler = Scheduler(params.max_num_seqs, _PREFILL_TOKENS)
        self.batch = RaggedBatch()
        # Kept prefixes live beside the running batch: a quarter of the cache's memory more.
        kept = self._info.units * params.block_size // 4 if params.prefix_caching else 0
        self.prefix = PrefixCache(kept)
        log.info(
            "model %s loaded on %s (%s), %d units",
            config.name,
            self.device,
            dtype,
            self._info.units,
        )

    # -- the engine seam -------------------------------------------------------------------

    def info(self) -> EngineInfo:
        return self._info

    def add(self, request: EngineRequest) -> None:
        gen = request.request
        params = gen.params
        prompt_ids = encode(self.tokenizer, gen)
        room = self.max_model_len - len(prompt_ids)
        max_tokens = min(params.max_tokens or 16, max(room, 1))
        stop_ids = (set() if params.ignore_eos else self.eos_ids) | set(params.stop_token_ids)
        sampler = RowSampler(params, prompt_ids, self.device)
        detok = Detokenizer(self.tokenizer, prompt_ids, params.stop)
        seq = Sequence(request.job_id, prompt_ids, max_tokens, detok, stop_ids, sampler)
        self.scheduler.add(seq)

    def abort(self, job_id: str) -> None:
        row = self.scheduler.abort(job_id)
        if row is not None:
            self.batch.keep([i for i in range(len(self.batch)) if i != row])

    def has_work(self) -> bool:
        return self.scheduler.has_work()

    def step(self) -> list[StepOutput]:
        plan = self.scheduler.schedule()
        if plan is None:
            return []
        with torch.inference_mode():
            outputs = self._prefill(plan) if plan.prefill else self._decode(plan)
        return outputs

    def close(self) -> None:
        self.scheduler.clear()
        self.batch = RaggedBatch()
        self.prefix.clear()

    # -- steps -----------------------------------------------------------------------------

    def _prefill(self, plan: Plan) -> list[StepOutput]:
        """Prompts without a cached prefix run together; each one with a prefix runs alone
        from where its prefix ends. Rows join the batch in plan order (the scheduler's)."""
        hits = [self.prefix.match(seq.prompt_ids) for seq in plan.seqs]
        joining, logits = RaggedBatch(), []
        group: list[Sequence] = []
        try:
            for seq, hit in [*zip(plan.seqs, hits, strict=True), (None, None)]:
                if group and (seq is None or hit is not None):
                    logits.append(self._run_prompts(group, None, joining))
                    group = []
                if seq is not None and hit is not None:
                    logits.append(self._run_prompts([seq], hit, joining))
                elif seq is not None:
                    group.append(seq)
        except torch.OutOfMemoryError as exc:
            return self._out_of_memory(plan, exc)
        rows = list(plan.seqs)
        outputs = self._advance(rows, self._draw(rows, torch.cat(logits)))
        self._keep_finished(rows, joining)
        joining.keep(self.scheduler.postprocess(plan))
        if joining.cache is not None and joining.mask is not None:
            self.batch.join(joining.cache, joining.mask)
        return outputs

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

    def _decode(self, plan: Plan) -> list[StepOutput]:
        rows = list(plan.seqs)
        ids = torch.tensor([[s.output_ids[-1]] for s in rows], device=self.device)
        positions = torch.tensor([[s.position] for s in rows], device=self.device)
        mask = self.batch.grow()
        try:
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                cache=self.batch.cache,
                use_cache=True,
            )
        except torch.OutOfMemoryError as exc:
            self.batch = RaggedBatch()
            return self._out_of_memory(plan, exc)
        outputs = self._advance(rows, self._draw(rows, out.logits[:, -1, :]))
        self._keep_finished(rows, self.batch)
        self.batch.keep(self.scheduler.postprocess(plan))
        return outputs

    def _keep_finished(self, rows: list[Sequence], batch: RaggedBatch) -> None:
        """Finished rows leave their keys and values to the prefix cache."""
        for index, seq in enumerate(rows):
            if seq.finish_reason in ("stop", "length"):
                tokens = seq.prompt_ids + seq.output_ids[:-1]  # the last one was never fed
                self.prefix.put(tokens, batch.row(index, len(tokens)))

    def _draw(self, rows: list[Sequence], logits: torch.Tensor) -> list[Draw]:
        return sample([s.sampler for s in rows], logits, self.tokenizer.decode)

    @staticmethod
    def _advance(rows: list[Sequence], draws: list[Draw]) -> list[StepOutput]:
        outputs = []
        for seq, draw in zip(rows, draws, strict=True):
            seq.sampler.observe(draw.token_id)
            outputs.append(seq.append(draw.token_id, draw.logprob))
        return outputs

    def _out_of_memory(self, plan: Plan, exc: BaseException) -> list[StepOutput]:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        message = f"out of memory on {self.device} in this step ({exc}); retry with fewer tokens"
        log.error("model step failed: %s", message)
        for seq in plan.seqs:
            seq.finish_reason = "error"
        self.scheduler.postprocess(plan)
        return [StepOutput(s.job_id, finish_reason="error", error=message) for s in plan.seqs]


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config, tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids
