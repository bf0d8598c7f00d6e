"""Workers x threads: one worker with every core against one worker per core, one run.

    python benchmarks/threads.py [--model smollm2|tiny] [--tokens 32] [--dtype auto]

Each layout is a model of its own in one pool (the pool called in this process, workers
spawned), measured in turns at concurrency 1, 8 and 16 so drifting machine load hits all
alike: time to first token (p50 at c1) and aggregate tokens per second. Layouts:
``1x2p`` one worker, 2 threads, OpenMP threads sleep at once when idle
(OMP_WAIT_POLICY=passive, the default before 2026-11-30); ``1x2s`` the same, but a thread
spins 10,000 rounds (tens of microseconds) before it sleeps (GOMP_SPINCOUNT=10000, the
default now); ``1x2`` OpenMP's own default (300,000 rounds); ``2x1`` two workers of one
thread; ``1x1`` one worker of one thread.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import model_config

from jupyter_llm.config import ModelConfig, parse_config
from jupyter_llm.engine.loading import Progress, silent
from jupyter_llm.engine.local.spec import SPIN_ROUNDS, TransformersSpec
from jupyter_llm.pool import Pool
from jupyter_llm.types import GenerationRequest, Message, SamplingParams

LAYOUTS = {
    "1x2p": (1, 2, "passive"),
    "1x2s": (1, 2, "short"),
    "1x2": (1, 2, "openmp"),
    "2x1": (2, 1, "openmp"),
    "1x1": (1, 1, "openmp"),
}
# The OpenMP variables of each wait policy (GOMP_SPINCOUNT is always set: TransformersSpec.build
# leaves the policy alone only when one of the two is).
WAITS = {
    "passive": {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0"},
    "short": {"GOMP_SPINCOUNT": str(SPIN_ROUNDS)},
    "openmp": {"GOMP_SPINCOUNT": "300000"},  # libgomp's own default
}
QUESTIONS = [f"Write a short story about a {s} in the forest." for s in
             ["cat", "dog", "fox", "owl", "bear", "deer", "wolf", "hare"]]  # fmt: skip


@dataclass(frozen=True, slots=True)
class LayoutSpec:
    """A TransformersSpec with a fixed thread count and OpenMP wait policy (pickles)."""

    inner: TransformersSpec
    wait: str  # passive, short or openmp

    @property
    def model(self) -> str:
        return self.inner.model

    def build(self, worker_index: int, progress: Progress = silent) -> Any:
        # Before torch loads OpenMP in this (spawned) worker; set here, they win over what
        # TransformersSpec.build would set.
        os.environ.pop("OMP_WAIT_POLICY", None)
        os.environ.update(WAITS[self.wait])
        return self.inner.build(worker_index, progress)

    def counter(self, info: Any) -> Any:
        return self.inner.counter(info)


def engines(model: ModelConfig) -> LayoutSpec:
    _, threads, wait = LAYOUTS[model.name]
    return LayoutSpec(TransformersSpec(model, threads=threads), wait)


async def one(pool: Pool, model: str, text: str, tokens: int) -> tuple[float, int]:
    params = SamplingParams(max_tokens=tokens, temperature=0, ignore_eos=True)
    request = GenerationRequest(model, messages=(Message("user", text),), params=params)
    start = time.perf_counter()
    job = await pool.submit(request)
    first, count = 0.0, 0
    async for event in pool.events(job.id):
        if event.token_ids and not first:
            first = time.perf_counter() - start
        count += len(event.token_ids)
    return first, count


async def measure(entry: dict[str, Any], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    models = [
        {
            "name": name,
            **entry,
            "params": {"dtype": args.dtype, "max_num_seqs": 16, "prefix_caching": False},
            "parking_lot": {"pool": {"worker_threads": workers}},
        }
        for name, (workers, _, _) in LAYOUTS.items()
    ]
    pool = Pool(parse_config({"models": models}, "threads.yaml", Path(".")), engines=engines)
    await pool.start()
    out: dict[str, dict[str, Any]] = {
        name: {"ttft": [], "c1": [], "c8": [], "c16": []} for name in LAYOUTS
    }
    try:
        while any(m.state == "loading" for m in pool.models()):
            await asyncio.sleep(0.1)
        for name in LAYOUTS:
            await one(pool, name, "Hello", 4)  # warm-up
        for _ in range(args.rounds):
            for name in LAYOUTS:
                start, produced = time.perf_counter(), 0
                for text in QUESTIONS[:4]:
                    first, count = await one(pool, name, text, args.tokens)
                    out[name]["ttft"].append(first)
                    produced += count
                out[name]["c1"].append(produced / (time.perf_counter() - start))
                for level in (8, 16):
                    start = time.perf_counter()
                    texts = (QUESTIONS * 2)[:level]
                    results = await asyncio.gather(
                        *(one(pool, name, t, args.tokens) for t in texts)
                    )
                    elapsed = time.perf_counter() - start
                    out[name][f"c{level}"].append(sum(r[1] for r in results) / elapsed)
        return out
    finally:
        await pool.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--layouts", default=",".join(LAYOUTS), help="comma-separated")
    args = parser.parse_args()
    for name in set(LAYOUTS) - set(args.layouts.split(",")):
        del LAYOUTS[name]
    with tempfile.TemporaryDirectory() as tmp:
        config = model_config(args.model, Path(tmp))
        assert config.source is not None
        out = asyncio.run(measure({config.source.kind: config.source.value}, args))
    load = os.getloadavg()[0]
    print(f"{args.model}, dtype {args.dtype}, {args.tokens} tokens, load average {load:.1f}")
    print("layout   TTFT p50 c1   tok/s c1   tok/s c8   tok/s c16")
    base = out["2x1"] if "2x1" in out else next(iter(out.values()))
    for name, got in out.items():
        cells = [statistics.median(got["ttft"]) * 1000] + [
            statistics.median(got[c]) for c in ("c1", "c8", "c16")
        ]
        ratios = [cells[0] / (statistics.median(base["ttft"]) * 1000)] + [
            cells[i] / statistics.median(base[c]) for i, c in enumerate(("c1", "c8", "c16"), 1)
        ]
        print(
            f"{name:<6} {cells[0]:8.0f} ms ({ratios[0]:.2f}x)  "
            + "  ".join(f"{v:6.1f} ({r:.2f}x)" for v, r in zip(cells[1:], ratios[1:], strict=True))
        )
    print("ratios are to 2x1 (or the first layout)")


if __name__ == "__main__":
    main()
