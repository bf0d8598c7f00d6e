"""Engine throughput: raw ``model.generate`` against the pool with the real engine, one run.

    python benchmarks/engine.py [--model smollm2|tiny] [--tokens 64] [--dtype D] [--compare]
    python benchmarks/engine.py --model NAME --config models.yaml   (jupyter llm bench NAME)

Sections, each measured in this process on this machine, raw first (then the raw model is
freed so the pool's worker has the cores):
1. raw ``generate``: the 8 prompts one at a time (batch 1), and as one left-padded batch of 8;
2. the pool (one spawned worker, the real engine, streaming events) at concurrency 1, 8, 16;
3. a mixed workload (prompts of 10-400 tokens, max_tokens 16-128, arrivals spread over
   time): static batching (padded ``generate`` over whatever has arrived, up to 8, each batch
   running to its longest request) against the pool.
Every request generates exactly its max_tokens (``min_new_tokens`` / ``ignore_eos``), so
both sides do the same work. ``--compare`` runs the pool a second time on transformers' own
forward (the path every model took before engine/local/llama.py), for a side-by-side ratio. Prints
one table of figures and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from common import percentile

from jupyter_llm.config import DEFAULT_CONFIG, ModelConfig, load_config, parse_config
from jupyter_llm.engine.local.engine import GENERIC_ENV
from jupyter_llm.engine.local.spec import TransformersSpec
from jupyter_llm.pool import Pool
from jupyter_llm.types import GenerationRequest, SamplingParams

SUBJECTS = ["cat", "dog", "fox", "owl", "bear", "deer", "wolf", "hare"]
TEXT = (
    "Jupyter notebooks mix code, text and results. A kernel runs the code while the browser "
    "shows the output. Language models predict one token after another, and a cache of keys "
    "and values lets each new token reuse the work done for the ones before it. "
) * 40


@dataclass
class Row:
    name: str
    value: str
    note: str = ""


def model_config(
    name: str, tmp: Path, config_file: str | None = None, dtype: str | None = None
) -> ModelConfig:
    if config_file is not None:  # a configured model, as it is, on one worker
        model = load_config(config_file).model(name)
        if model.backend != "transformers":
            raise SystemExit(f"model {name!r} is a {model.backend} model: nothing to measure here")
        pool = replace(model.parking_lot.pool, worker_threads=1)
        params = model.params if dtype is None else replace(model.params, dtype=dtype)
        return replace(model, params=params, parking_lot=replace(model.parking_lot, pool=pool))
    if name not in ("smollm2", "tiny"):
        raise SystemExit(f"--model {name}: give --config, the models.yaml that defines it")
    if name == "smollm2":
        base = load_config(DEFAULT_CONFIG).model("smollm2")
        source: dict[str, Any] = {"gguf": base.source.value if base.source else ""}
    else:
        from jupyter_llm.engine.local.tiny import build_tiny_llama

        source = {"local_path": str(build_tiny_llama(tmp / "tiny"))}
    data = {
        "parking_lot": {"pool": {"worker_threads": 1}},
        "models": [
            {
                "name": "m",
                **source,
                "params": {"dtype": dtype or "float32", "max_num_seqs": 16},
            },
        ],
    }
    return parse_config(data, "benchmark.yaml", tmp).models[0]


# -- raw generate ----------------------------------------------------------------------------


class Raw:
    def __init__(self, config: ModelConfig, dtype: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        from jupyter_llm.engine.local.device import resolve_dtype
        from jupyter_llm.engine.prompt import load_tokenizer
        from jupyter_llm.sources.resolve import resolve_model_dir

        # The same torch threads as a pool worker gets, so both sides run the same kernels.
        torch.set_num_threads(TransformersSpec.for_model(config).threads)
        folder = resolve_model_dir(config)
        self.torch = torch
        self.tokenizer = load_tokenizer(str(folder))
        self.tokenizer.padding_side = "left"  # decoder-only models continue from the right
        # The engine's dtype unless one is given: what the config says (auto: resolved as the
        # engine does).
        torch_dtype = resolve_dtype(dtype or config.params.dtype, torch.device("cpu"))
        model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype)
        self.model = model.eval()

    def generate(self, prompts: list[str], tokens: int) -> float:
        """Seconds for a left-padded batch of ``prompts``, exactly ``tokens`` new tokens each."""
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True)
        with self.torch.inference_mode():
            start = time.perf_counter()
            self.model.generate(
                **batch,
                max_new_tokens=tokens,
                min_new_tokens=tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            return time.perf_counter() - start


def chat_prompts(tokenizer: Any, count: int) -> list[str]:
    subjects = (SUBJECTS * (count // len(SUBJECTS) + 1))[:count]
    return [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": f"Write a short story about a {s} in the forest."}],
            add_generation_prompt=True,
            tokenize=False,
        )
        for s in subjects
    ]


@dataclass
class Arrival:
    at: float
    prompt: str
    max_tokens: int


def mixed_workload(tokenizer: Any, count: int, spread: float, seed: int = 3) -> list[Arrival]:
    rng = random.Random(seed)
    ids = tokenizer(TEXT)["input_ids"]
    arrivals, now = [], 0.0
    for _ in range(count):
        length = rng.randint(10, 400)
        start = rng.randint(0, len(ids) - length)
        prompt = tokenizer.decode(ids[start : start + length])
        arrivals.append(Arrival(now, prompt, rng.randint(16, 128)))
        now += rng.expovariate(count / spread)
    return arrivals


def static_batching(raw: Raw, arrivals: list[Arrival]) -> tuple[float, list[float]]:
    """Makespan and latencies of padded generate over whatever has arrived, up to 8 a batch."""
    start = time.perf_counter()
    waiting, latencies = list(arrivals), []
    while waiting:
        now = time.perf_counter() - start
        if waiting[0].at > now:
            time.sleep(waiting[0].at - now)
            now = waiting[0].at
        batch = [a for a in waiting if a.at <= now][:8]
        raw.generate([a.prompt for a in batch], max(a.max_tokens for a in batch))
        done = time.perf_counter() - start
        latencies += [done - a.at for a in batch]
        waiting = [a for a in waiting if a not in batch]
    return time.perf_counter() - start, latencies


# -- the pool --------------------------------------------------------------------------------


async def stream(pool: Pool, prompt: str, tokens: int) -> tuple[float, float, int]:
    """Submit and read every event: (time to first token, total time, tokens)."""
    params = SamplingParams(max_tokens=tokens, temperature=0, ignore_eos=True)
    start = time.perf_counter()
    job = await pool.submit(GenerationRequest("m", prompt=prompt, params=params))
    first, count = 0.0, 0
    async for event in pool.events(job.id):
        if event.token_ids and not count:
            first = time.perf_counter() - start
        count += len(event.token_ids)
    return first, time.perf_counter() - start, count


async def concurrency(pool: Pool, prompts: list[str], tokens: int) -> tuple[float, list[float]]:
    """Aggregate tok/s and the TTFTs of ``prompts`` streamed all at once."""
    start = time.perf_counter()
    results = await asyncio.gather(*(stream(pool, p, tokens) for p in prompts))
    elapsed = time.perf_counter() - start
    return sum(r[2] for r in results) / elapsed, [r[0] for r in results]


async def pool_mixed(pool: Pool, arrivals: list[Arrival]) -> tuple[float, list[float]]:
    start = time.perf_counter()

    async def one(arrival: Arrival) -> float:
        await asyncio.sleep(max(0.0, arrival.at - (time.perf_counter() - start)))
        await stream(pool, arrival.prompt, arrival.max_tokens)
        return time.perf_counter() - start - arrival.at

    latencies = await asyncio.gather(*(one(a) for a in arrivals))
    return time.perf_counter() - start, list(latencies)


async def run_pool(
    config: ModelConfig, prompts: list[str], tokens: int, arrivals: list[Arrival]
) -> dict[str, Any]:
    pool = Pool(_single(config))
    await pool.start()
    try:
        while pool.models()[0].state == "loading":
            await asyncio.sleep(0.1)
        if pool.models()[0].state != "ready":
            raise SystemExit(f"the model did not load: {pool.models()[0].error}")
        await stream(pool, prompts[0], 4)  # warm-up
        out: dict[str, Any] = {}
        start = time.perf_counter()
        singles = [await stream(pool, p, tokens) for p in prompts]
        out["c1"] = (
            sum(s[2] for s in singles) / (time.perf_counter() - start),
            [s[0] for s in singles],
        )
        out["c8"] = await concurrency(pool, prompts, tokens)
        out["c16"] = await concurrency(pool, prompts + prompts, tokens)
        out["mixed"] = await pool_mixed(pool, arrivals)
        return out
    finally:
        await pool.stop()


def _single(model: ModelConfig) -> Any:
    from jupyter_llm.config import Config

    return Config(path="benchmark.yaml", parking_lot=model.parking_lot, models=(model,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="smollm2", help="smollm2, tiny, or a model that --config defines"
    )
    parser.add_argument("--config", help="a models.yaml: measure its --model (on one worker)")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument(
        "--dtype", help="float32 or bfloat16, on both sides (default: float32, or --config's)"
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help=f"also run the pool on transformers' forward ({GENERIC_ENV}=1), beside the default",
    )
    parser.add_argument("--quick", action="store_true", help="fewer tokens and requests")
    args = parser.parse_args()
    tokens = 16 if args.quick else args.tokens
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "jupyter_llm-bench"
    tmp.mkdir(parents=True, exist_ok=True)
    config = model_config(args.model, tmp, args.config, args.dtype)

    raw = Raw(config)
    dtype = str(raw.model.dtype).removeprefix("torch.")
    prompts = chat_prompts(raw.tokenizer, 8)
    arrivals = mixed_workload(raw.tokenizer, 8 if args.quick else 24, 4.0 if args.quick else 12.0)
    raw.generate(prompts[:1], 4)  # warm-up
    ttft_raw = [raw.generate([p], 1) for p in prompts]
    b1_time = sum(raw.generate([p], tokens) for p in prompts)
    b1 = len(prompts) * tokens / b1_time
    b8 = len(prompts) * tokens / raw.generate(prompts, tokens)
    static_makespan, static_latency = static_batching(raw, arrivals)
    del raw
    gc.collect()

    runs = {"pool": asyncio.run(run_pool(config, prompts, tokens, arrivals))}
    if args.compare:
        os.environ[GENERIC_ENV] = "1"  # the spawned worker inherits it
        try:
            runs["pool, transformers' forward"] = asyncio.run(
                run_pool(config, prompts, tokens, arrivals)
            )
        finally:
            del os.environ[GENERIC_ENV]
    useful = sum(a.max_tokens for a in arrivals)
    ms = 1000.0
    raw_ttft = statistics.median(ttft_raw)

    rows = [
        Row("raw generate, batch 1 (8 prompts in turn)", f"{b1:.1f} tok/s"),
        Row("raw generate, padded batch of 8", f"{b8:.1f} tok/s"),
        Row("raw time to first token p50", f"{raw_ttft * ms:.0f} ms"),
        Row(
            f"mixed ({len(arrivals)} requests): static batching",
            f"{useful / static_makespan:.1f} tok/s",
            f"makespan {static_makespan:.1f} s, "
            f"latency p50 {statistics.median(static_latency):.1f} s",
        ),
    ]
    for name, ours in runs.items():
        c1, ttft1 = ours["c1"]
        c8, ttft8 = ours["c8"]
        c16, ttft16 = ours["c16"]
        mixed_makespan, mixed_latency = ours["mixed"]
        rows += [
            Row(f"{name}, concurrency 1", f"{c1:.1f} tok/s", f"{c1 / b1:.2f}x raw batch 1"),
            Row(f"{name}, concurrency 8", f"{c8:.1f} tok/s", f"{c8 / b8:.2f}x raw batch 8"),
            Row(f"{name}, concurrency 16", f"{c16:.1f} tok/s", f"{c16 / b8:.2f}x raw batch 8"),
            Row(
                f"{name}, TTFT p50 / p95, concurrency 1",
                f"{statistics.median(ttft1) * ms:.0f} / {percentile(ttft1, 95) * ms:.0f} ms",
                f"{(statistics.median(ttft1) - raw_ttft) * ms:+.0f} ms against raw",
            ),
            Row(
                f"{name}, TTFT p50 / p95, concurrency 8",
                f"{statistics.median(ttft8) * ms:.0f} / {percentile(ttft8, 95) * ms:.0f} ms",
            ),
            Row(
                f"{name}, TTFT p50 / p95, concurrency 16",
                f"{statistics.median(ttft16) * ms:.0f} / {percentile(ttft16, 95) * ms:.0f} ms",
            ),
            Row(
                f"{name}, mixed ({len(arrivals)} requests)",
                f"{useful / mixed_makespan:.1f} tok/s",
                f"makespan {mixed_makespan:.1f} s, "
                f"latency p50 {statistics.median(mixed_latency):.1f} s; "
                f"{static_makespan / mixed_makespan:.2f}x static throughput",
            ),
        ]
    if len(runs) == 2:
        (new, old) = runs.values()
        for level in ("c1", "c8", "c16"):
            rows.append(
                Row(
                    f"pool / transformers' forward, {level}",
                    f"{new[level][0] / old[level][0]:.2f}x tok/s",
                    f"TTFT p50 {statistics.median(new[level][1]) * ms:.0f} ms against "
                    f"{statistics.median(old[level][1]) * ms:.0f} ms",
                )
            )
    threads = TransformersSpec.for_model(config).threads
    print(
        f"\nmodel {args.model} ({dtype}, CPU, {os.cpu_count()} cores, {threads} torch thread(s) "
        f"on both sides), {tokens} new tokens per request"
    )
    width = max(len(r.name) for r in rows)
    vwidth = max(len(r.value) for r in rows)
    for row in rows:
        print(f"{row.name:<{width}}  {row.value:>{vwidth}}  {row.note}")


if __name__ == "__main__":
    main()
