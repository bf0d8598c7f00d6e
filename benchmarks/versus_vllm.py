"""Engine speed against vLLM, one run: raw ``generate``, vLLM and jupyter_llm, side by side.

    python benchmarks/versus_vllm.py [--vllm-venv DIR] [--dtypes native|float32,bfloat16]
                                     [--tokens 64] [--rounds 1] [--no-raw] [--no-chat]

``--dtypes native`` (the default) runs the dtypes this CPU computes natively: float32, and
bfloat16 where ``dtype: auto`` picks it. The table names the CPU and what each side ran
(jupyter_llm's dtype and matmul path as its workers report them).

SmolLM2-135M, the same 8 chat prompts, ``--tokens`` tokens each (``ignore_eos`` /
``min_new_tokens``), on 127.0.0.1 only. For each dtype, in turn (never two loads at once):
1. raw ``model.generate`` in this process: the 8 prompts one at a time (c1; time to first
   token = a 1-token generate), and as one left-padded batch of 8 (c8);
2. `vllm serve` from the venv scripts/setup_vllm.sh made (``$JUPYTER_LLM_VLLM_VENV``), at
   that dtype; skipped, with a line saying so, when there is none;
3. a `jupyter server` with jupyter_llm serving the packaged SmolLM2 entry at that dtype.
Both servers are read the same way (streamed chat completions, bare SSE lines): c1 is the 8
prompts one after another, c8 the 8 at once, c16 the 8 twice at once. Then the 10-turn chat
(benchmarks/chat.py) at the last dtype: time to first token of turn 10 against turn 1.

Prints the table of issue 12 with jupyter_llm / vLLM ratios. Targets (docs/design.md): jupyter_llm
>= 1.0x vLLM at c1, c8 and c16 at each dtype; TTFT at c1 <= raw + 20 ms; turn 10 <= 1.5x
turn 1.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from chat import chat
from common import cpu_description, percentile
from engine import SUBJECTS, Raw, chat_prompts, model_config
from plot import write_svg
from remote import VENV_ENV, start_vllm
from server import MODEL, Server, httpx_stream, start_jupyter

from jupyter_llm.config import DEFAULT_CONFIG, load_config

CONCURRENCY = (1, 8, 16)
TTFT_BUDGET_S = 0.020
CHAT_TARGET = 1.5


@dataclass
class Result:
    """One engine at one dtype: tok/s by concurrency, and TTFT p50 at c1."""

    name: str
    tok_s: dict[int, float] = field(default_factory=dict)
    ttft: float | None = None


def questions() -> list[str]:
    return [f"Write a short story about a {s} in the forest." for s in SUBJECTS]


# -- raw generate ---------------------------------------------------------------------------


def measure_raw(dtype: str, tokens: int, tmp: Path) -> Result:
    raw = Raw(model_config("smollm2", tmp), dtype)
    prompts = chat_prompts(raw.tokenizer, len(SUBJECTS))
    raw.generate(prompts[:1], 4)  # warm-up
    result = Result(f"raw `generate`, {dtype} (c8: one padded batch of 8)")
    ones = [raw.generate([p], tokens) for p in prompts]
    result.tok_s[1] = len(prompts) * tokens / sum(ones)
    result.tok_s[8] = len(prompts) * tokens / raw.generate(prompts, tokens)
    result.ttft = statistics.median(raw.generate([p], 1) for p in prompts)
    del raw
    gc.collect()
    return result


# -- a server, read as bare SSE ---------------------------------------------------------------


async def concurrent(server: Server, texts: list[str], tokens: int) -> tuple[float, list[float]]:
    limits = httpx.Limits(max_connections=len(texts) + 4)
    async with httpx.AsyncClient(
        base_url=server.v1 + "/", headers=server.headers, timeout=600, limits=limits
    ) as client:
        start = time.perf_counter()
        streams = await asyncio.gather(*(httpx_stream(client, MODEL, t, tokens) for t in texts))
        wall = time.perf_counter() - start
    return sum(count for _, count in streams) / wall, [first for first, _ in streams]


async def measure_server(server: Server, name: str, tokens: int, rounds: int) -> Result:
    texts = questions()
    await concurrent(server, texts[:2], 8)  # warm-up: connections, first steps, compiles
    result = Result(name)
    for streams in CONCURRENCY:
        rates, firsts = [], []
        for _ in range(rounds):
            if streams == 1:  # one after another
                start, count = time.perf_counter(), 0.0
                for text in texts:
                    rate, first = await concurrent(server, [text], tokens)
                    firsts.extend(first)
                    count += tokens
                rates.append(count / (time.perf_counter() - start))
            else:
                rate, first = await concurrent(server, (texts * 2)[:streams], tokens)
                rates.append(rate)
        result.tok_s[streams] = statistics.mean(rates)
        if streams == 1:
            result.ttft = percentile(firsts, 50)
    return result


def jupyter_config(dtype: str, tmp: Path) -> Path:
    """The packaged SmolLM2 entry, served as ``MODEL`` at ``dtype`` (16 sequences at once)."""
    base = load_config(DEFAULT_CONFIG).model("smollm2")
    assert base.source is not None
    entry = {
        "name": MODEL,
        base.source.kind: base.source.value,
        "params": {"dtype": dtype, "max_num_seqs": 16},
    }
    path = tmp / f"models-{dtype}.yaml"
    path.write_text(yaml.safe_dump({"models": [entry]}))
    return path


def measure_vllm(venv: Path | None, dtype: str, tokens: int, rounds: int, tmp: Path) -> Result:
    name = f"vLLM, {dtype}"
    if venv is None or not (venv / "READY").is_file():
        print(f"{name}: not run (no vLLM venv: set ${VENV_ENV} or --vllm-venv)", flush=True)
        return Result(name)
    began = time.monotonic()
    server = start_vllm(venv, tmp, dtype=dtype)
    print(f"vllm serve ({dtype}) ready in {time.monotonic() - began:.0f} s", flush=True)
    try:
        return asyncio.run(measure_server(server, name, tokens, rounds))
    finally:
        server.stop()


def measure_ours(dtype: str, tokens: int, rounds: int, tmp: Path) -> Result:
    folder = tmp / f"jupyter-{dtype}"
    folder.mkdir()
    server = start_jupyter(jupyter_config(dtype, tmp), folder)
    try:
        name = f"jupyter_llm, {dtype} asked, ran {worker_precision(server)}"
        return asyncio.run(measure_server(server, name, tokens, rounds))
    finally:
        server.stop()


def worker_precision(server: Server) -> str:
    """What the served model's workers compute in (``float32, oneDNN packed``)."""
    url = f"http://127.0.0.1:{server.port}{server.probe.removesuffix('status')}models"
    models = httpx.get(url, headers=server.headers, timeout=30).json()["models"]
    workers = [w for m in models for w in m["workers"] if w.get("dtype")]
    return "; ".join(sorted({f"{w['dtype']}, {w['matmul']}" for w in workers})) or "unknown"


def native_dtypes() -> list[str]:
    """float32, and bfloat16 where this CPU computes it natively (``dtype: auto``'s rule)."""
    import torch

    from jupyter_llm.engine.local.device import resolve_dtype

    native = resolve_dtype("auto", torch.device("cpu")) == torch.bfloat16
    return ["float32", "bfloat16"] if native else ["float32"]


# -- the table ------------------------------------------------------------------------------


def cell(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def ratio(ours: float | None, theirs: float | None) -> str:
    return "" if not ours or not theirs else f"{ours / theirs:.2f}x"


def table(groups: list[tuple[Result, Result, Result | None]]) -> list[str]:
    lines = [
        "| | c1 | c8 | c16 | TTFT p50, c1 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for vllm, ours, raw in groups:
        for result in (raw, vllm, ours):
            if result is None:
                continue
            rates = [cell(result.tok_s.get(c)) for c in CONCURRENCY]
            ttft = "" if result.ttft is None else f"{result.ttft:.3f} s"
            lines.append(f"| {result.name} | {' | '.join(rates)} | {ttft} |")
        ratios = [ratio(ours.tok_s.get(c), vllm.tok_s.get(c)) for c in CONCURRENCY]
        lines.append(f"| jupyter_llm / vLLM | {' | '.join(ratios)} | |")
    return lines


def verdicts(groups: list[tuple[Result, Result, Result | None]]) -> list[str]:
    notes = []
    for vllm, ours, raw in groups:
        for c in CONCURRENCY:
            a, b = ours.tok_s.get(c), vllm.tok_s.get(c)
            if a and b:
                met = "meets" if a >= b else "misses"
                notes.append(f"{ours.name}, c{c}: {a / b:.2f}x vLLM ({met} >= 1.0x)")
        if raw is not None and raw.ttft is not None and ours.ttft is not None:
            added = ours.ttft - raw.ttft
            met = "meets" if added <= TTFT_BUDGET_S else "misses"
            notes.append(
                f"{ours.name}: TTFT c1 {ours.ttft * 1000:.0f} ms = raw {added * 1000:+.0f} ms "
                f"({met} <= +{TTFT_BUDGET_S * 1000:.0f} ms)"
            )
    return notes


def chat_turns(dtype: str, tokens: int) -> list[str]:
    config = model_config("smollm2", Path("."))
    assert config.source is not None
    args = argparse.Namespace(dtype=dtype, turns=10, tokens=tokens)
    ttft = asyncio.run(chat({config.source.kind: config.source.value}, args))
    lines = []
    for name, values in ttft.items():
        growth = values[-1] / values[0]
        met = "meets" if growth <= CHAT_TARGET else "misses"
        lines.append(
            f"10-turn chat, {dtype}, prefix caching {'on' if name == 'cached' else 'off'}: "
            f"turn 1 {values[0] * 1000:.0f} ms, turn 10 {values[-1] * 1000:.0f} ms, "
            f"{growth:.2f}x ({met} <= {CHAT_TARGET}x)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    default_venv = os.environ.get(VENV_ENV)
    parser.add_argument(
        "--vllm-venv", type=Path, default=Path(default_venv) if default_venv else None
    )
    parser.add_argument("--dtypes", default="native")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-raw", action="store_true")
    parser.add_argument("--no-chat", action="store_true")
    parser.add_argument(
        "--plot",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "versus_vllm.svg",
        help="where to write the chart of tok/s against concurrency",
    )
    args = parser.parse_args()
    dtypes = native_dtypes() if args.dtypes == "native" else args.dtypes.split(",")
    print(f"CPU: {cpu_description()}; dtypes: {', '.join(dtypes)}", flush=True)
    groups: list[tuple[Result, Result, Result | None]] = []
    with tempfile.TemporaryDirectory(prefix="jupyter_llm-versus-") as folder:
        tmp = Path(folder)
        for dtype in dtypes:
            raw = None if args.no_raw else measure_raw(dtype, args.tokens, tmp)
            vllm = measure_vllm(args.vllm_venv, dtype, args.tokens, args.rounds, tmp)
            ours = measure_ours(dtype, args.tokens, args.rounds, tmp)
            groups.append((vllm, ours, raw))
            print(f"{dtype} measured", flush=True)
    print(
        f"\nSmolLM2-135M, {len(SUBJECTS)} chat prompts, {args.tokens} tokens each, tok/s, "
        f"{args.rounds} round(s); CPU: {cpu_description()}"
    )
    print("\n".join(table(groups)))
    # The legend names what ran, without the table's notes in parentheses.
    lines = {
        r.name.split(" (")[0].replace(" asked, ran", ", ran"): r.tok_s
        for group in groups
        for r in group
        if r is not None
    }
    title = f"SmolLM2-135M, {cpu_description().split(';')[0]}"
    print(f"chart: {write_svg(args.plot, title, lines)}")
    print("\n".join(verdicts(groups)))
    if not args.no_chat:
        print("\n".join(chat_turns(dtypes[-1], args.tokens)))


if __name__ == "__main__":
    main()
