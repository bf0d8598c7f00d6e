"""The transformers engine: one model replica, batched decoding, continuous batching.

``step()`` is schedule, run, postprocess: the scheduler (engine/scheduler.py) chooses a
prefill (waiting sequences get their first token) or a decode (every running sequence gets
one token); a path runs it on the model, and this module samples, detokenizes and settles
who leaves. Two paths: Llama-family models take our own forward on a preallocated slot
cache (``llama_path.py``, ``llama.py``); every other model takes transformers' forward on a
ragged, left-padded ``DynamicCache`` (``hf_path.py``).

Why our own loop and not transformers' ``generate_batch``: its paged continuous batching
runs at about half the speed of a padded ``generate`` on a CPU (docs/benchmarks.md), while
the ragged batch keeps ``generate``'s dense shapes.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from transformers import AutoModelForCausalLM
from transformers.utils import logging as transformers_logging

from ...config import ModelConfig
from ...sources.resolve import gguf_file, gguf_weight_types, resolve_model_dir
from ..base import EngineInfo, EngineRequest, StepOutput
from ..detok import Detokenizer
from ..loading import Progress, silent
from ..prompt import encode, load_tokenizer, tool_parser
from ..scheduler import Plan, Scheduler
from ..sequence import Sequence
from .device import Precision, resolve_device, resolve_precision
from .grammar import Grammars
from .hf_path import GenericPath
from .llama import Llama, unsupported
from .llama_path import LlamaPath, layout
from .prefix import PrefixCache
from .quant import matmul_label
from .quant import resolve as resolve_quantization
from .sampling import Draw, RowSampler, sample

__all__ = ["GENERIC_ENV", "TransformersEngine", "kv_bytes_per_token"]

log = logging.getLogger("jupyter_llm.engine")

#: Set (to anything but 0), every model takes transformers' forward: to compare the two paths.
GENERIC_ENV = "JUPYTER_LLM_GENERIC_FORWARD"
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
        # No HF_HUB_OFFLINE here: an hf_id downloads on first use (sources/hub.py, before
        # from_pretrained, which then reads a local folder and never the network).
        # No progress bars in a server's log (tqdm's lock is also a semaphore a worker leaks).
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        torch.set_num_threads(threads)
        params = config.params
        self.device = resolve_device(params.device, worker_index)
        model_dir = resolve_model_dir(config, progress)
        progress("loading weights", str(model_dir))
        precision = resolve_precision(params.dtype, self.device)
        if precision.note is not None and worker_index == 0:
            log.warning("model %s: %s", config.name, precision.note)
        dtype = precision.dtype
        source = config.source
        gguf_types = (
            gguf_weight_types(gguf_file(source))
            if source is not None and source.kind == "gguf"
            else None
        )
        quantization = resolve_quantization(params.quantization, gguf_types, self.device)
        if quantization != "none" and params.dtype == "auto":
            dtype = torch.float32  # FBGEMM's int8 takes and gives float32: no casts per matmul
            precision = Precision(dtype, packed=precision.packed and dtype == torch.float32)
        self.tokenizer = load_tokenizer(str(model_dir))
        model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
        model = model.to(self.device).eval()
        self.max_model_len = params.max_model_len or int(
            getattr(model.config.get_text_config(decoder=True), "max_position_embeddings", 2048)
        )
        self.eos_ids = _eos_ids(model, self.tokenizer)
        self.vocab_size = int(model.config.get_text_config(decoder=True).vocab_size)
        self.grammars = Grammars(self.tokenizer, self.vocab_size, self.eos_ids)
        progress("preparing constrained decoding", str(model_dir))
        self.grammars.warm()
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else min(self.eos_ids, default=0))
        memory = params.kvcache_mem_gpu if self.device.type == "cuda" else params.kvcache_mem_cpu
        budget = memory * 1024 * 1024 // kv_bytes_per_token(model.config, dtype)
        slots = params.max_num_seqs
        why_generic = _why_generic(model.config)
        if why_generic is not None and quantization != "none":
            if params.quantization != "auto":
                raise ValueError(
                    f"quantization {params.quantization!r} needs the Llama fast path, and "
                    f"model {config.name} takes transformers' forward: {why_generic}"
                )
            log.info("model %s keeps float weights: %s", config.name, why_generic)
            quantization = "none"
        #: How matmuls run when the weights are quantized (None: float).
        self.matmul = matmul_label(quantization)
        self.path: GenericPath | LlamaPath
        if why_generic is None:
            fixed = params.max_model_len is not None
            slots, self.max_model_len = layout(
                budget, slots, self.max_model_len, fixed, params.block_size
            )
            llama = Llama(
                model, self.max_model_len, packed=precision.packed, quantization=quantization
            )
            self.path = LlamaPath(llama, slots, self.max_model_len, self.pad_id)
            budget = slots * self.max_model_len  # what the cache holds
            del model  # its weights live on in ``llama`` (fused, or shared)
        else:
            log.info("model %s on transformers' forward: %s", config.name, why_generic)
            self.path = GenericPath(model, self.pad_id, self.device)
            precision = Precision(dtype, packed=False, device_type=self.device.type)
        self.precision = precision
        self.model: torch.nn.Module = self.path.model  # the module each step calls
        self._info = EngineInfo(
            units=max(1, budget // params.block_size),
            block_size=params.block_size,
            max_num_seqs=slots,
            max_model_len=self.max_model_len,
            device=str(self.device),
            tokenizer=str(model_dir),
            dtype=precision.dtype_name,
            matmul=precision.matmul if self.matmul is None else self.matmul,
            tool_parser=tool_parser(self.tokenizer, config.tool_parser),
        )
        self.scheduler = Scheduler(slots, _PREFILL_TOKENS)
        # Kept prefixes live beside the running batch: a quarter of the cache's memory more.
        kept = self._info.units * params.block_size // 4 if params.prefix_caching else 0
        self.prefix = PrefixCache(kept)
        log.info(
            "model %s loaded on %s (%s, %s, %s), %d units",
            config.name,
            self.device,
            precision.describe()
            if self.matmul is None
            else f"{precision.dtype_name}, {self.matmul}",
            type(self.path).__name__,
            self._info.units,
        )

    # -- the engine seam -------------------------------------------------------------------

    def info(self) -> EngineInfo:
        return self._info

    def add(self, request: EngineRequest) -> None:
        gen = request.request
        params = gen.params
        prompt_ids = encode(self.tokenizer, gen)
        if len(prompt_ids) > self.max_model_len:
            raise ValueError(
                f"the prompt has {len(prompt_ids)} tokens, more than this model's context of "
                f"{self.max_model_len}"
            )
        room = self.max_model_len - len(prompt_ids)
        max_tokens = min(params.max_tokens or 16, max(room, 1))
        stop_ids = (set() if params.ignore_eos else self.eos_ids) | set(params.stop_token_ids)
        for token_id, _ in params.logit_bias:
            if token_id >= self.vocab_size:
                raise ValueError(
                    f"logit_bias: token {token_id} is not in this model's vocabulary of "
                    f"{self.vocab_size}"
                )
        schema = gen.output_schema
        constraint = None if schema is None else self.grammars.constraint(schema)
        sampler = RowSampler(params, prompt_ids, self.device, constraint)
        detok = Detokenizer(self.tokenizer, prompt_ids, params.stop)
        seq = Sequence(request.job_id, prompt_ids, max_tokens, detok, stop_ids, sampler)
        self.scheduler.add(seq)

    def abort(self, job_id: str) -> None:
        if self.scheduler.abort(job_id) is not None:
            self.path.release([job_id])

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
        self.path.clear()
        self.prefix.clear()

    # -- steps -----------------------------------------------------------------------------

    def _prefill(self, plan: Plan) -> list[StepOutput]:
        rows = list(plan.seqs)
        hits = [self.prefix.match(seq.prompt_ids) for seq in rows]
        try:
            logits = self.path.prefill(rows, hits)
        except torch.OutOfMemoryError as exc:
            return self._out_of_memory(plan, exc)
        outputs = self._advance(rows, self._draw(rows, logits))
        self._settle(plan)
        return outputs

    def _decode(self, plan: Plan) -> list[StepOutput]:
        rows = list(plan.seqs)
        try:
            logits = self.path.decode(rows)
        except torch.OutOfMemoryError as exc:
            self.path.clear()
            return self._out_of_memory(plan, exc)
        outputs = self._advance(rows, self._draw(rows, logits))
        self._settle(plan)
        return outputs

    def _settle(self, plan: Plan) -> None:
        """Finished rows leave the path, their keys and values to the prefix cache."""
        finished = [seq for seq in plan.seqs if seq.finished]
        for seq in finished:
            if seq.finish_reason in ("stop", "length"):
                tokens = seq.prompt_ids + seq.output_ids[:-1]  # the last one was never fed
                self.prefix.put(tokens, self.path.take(seq.job_id, len(tokens)))
        self.path.release([seq.job_id for seq in finished])
        self.scheduler.postprocess(plan)

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


def _why_generic(model_config: Any) -> str | None:
    """Why this model takes transformers' forward and not the Llama fast path (None: fast)."""
    if os.environ.get(GENERIC_ENV, "") not in ("", "0"):
        return f"{GENERIC_ENV} is set"
    return unsupported(model_config)


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config, tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids
