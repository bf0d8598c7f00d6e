"""The engine's two paths side by side, interleaved: the Llama fast path against
transformers' forward, in one process, on the same model, prompts and threads.

    python benchmarks/paths.py [--model smollm2|tiny] [--dtype float32] [--rounds 3]

Both engines are built once; each round runs c1 (4 prompts one after another), c8 and c16
(8 prompts, twice for 16, all added at once) on one engine, then on the other, 64 tokens
each (``ignore_eos``). Interleaving keeps a busy machine's drift out of the ratio, which
``benchmarks/engine.py --compare`` (one whole pool run after the other) cannot. Prints, per
concurrency, the median tok/s of each path, the ratio of each round and the time to first
token (an engine step, no pool or pipe in between).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from engine import chat_prompts, model_config

from jupyter_llm.config import ModelConfig
from jupyter_llm.engine.base import EngineRequest
from jupyter_llm.engine.local.engine import GENERIC_ENV, TransformersEngine
from jupyter_llm.engine.local.spec import TransformersSpec, brief_openmp_spin
from jupyter_llm.types import GenerationRequest, SamplingParams

LEVELS = (1, 8, 16)


def build(config: ModelConfig, generic: bool) -> TransformersEngine:
    brief_openmp_spin()  # as a pool worker has it
    if generic:
        os.environ[GENERIC_ENV] = "1"
    try:
        return TransformersSpec.for_model(config).build(0)
    finally:
        os.environ.pop(GENERIC_ENV, None)


def run(engine: TransformersEngine, prompts: list[str], tokens: int) -> tuple[float, float]:
    """tok/s of ``prompts`` added at once, and their median time to first token."""
    params = SamplingParams(max_tokens=tokens, temperature=0, ignore_eos=True)
    start = time.perf_counter()
    for i, prompt in enumerate(prompts):
        engine.add(EngineRequest(f"j{i}", GenerationRequest("m", prompt=prompt, params=params), 0))
    first: dict[str, float] = {}
    count = 0
    while engine.has_work():
        for out in engine.step():
            count += len(out.token_ids)
            first.setdefault(out.job_id, time.perf_counter() - start)
    return count / (time.perf_counter() - start), statistics.median(first.values())


def level(
    engine: TransformersEngine, prompts: list[str], streams: int, tokens: int
) -> tuple[float, float]:
    if streams == 1:  # one after another
        runs = [run(engine, [p], tokens) for p in prompts[:4]]
        return statistics.mean(r[0] for r in runs), statistics.median(r[1] for r in runs)
    return run(engine, (prompts * 2)[:streams], tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", help="smollm2 or tiny")
    parser.add_argument("--dtype", default="float32", help="float32 or bfloat16")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = model_config(args.model, Path(tmp), dtype=args.dtype)
        engines = {"fast": build(config, False), "transformers": build(config, True)}
    prompts = chat_prompts(engines["fast"].tokenizer, 8)
    for engine in engines.values():
        run(engine, prompts[:1], 4)  # warm-up
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for streams in LEVELS:
            for name, engine in engines.items():
                measured = level(engine, prompts, streams, args.tokens)
                results.setdefault((name, streams), []).append(measured)
    print(
        f"\nmodel {args.model} ({args.dtype}, {os.cpu_count()} cores), {args.tokens} tokens, "
        f"{args.rounds} interleaved rounds: fast path / transformers' forward"
    )
    for streams in LEVELS:
        fast, slow = results[("fast", streams)], results[("transformers", streams)]
        ratios = [f[0] / s[0] for f, s in zip(fast, slow, strict=True)]
        print(
            f"c{streams:<3} fast {statistics.median(f[0] for f in fast):6.1f} tok/s, "
            f"transformers {statistics.median(s[0] for s in slow):6.1f} tok/s, "
            f"ratio {statistics.median(ratios):.2f} (rounds: "
            f"{', '.join(f'{r:.2f}' for r in ratios)}); TTFT p50 "
            f"{statistics.median(f[1] for f in fast) * 1000:.0f} ms against "
            f"{statistics.median(s[1] for s in slow) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
