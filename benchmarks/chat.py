"""A 10-turn chat: time to first token per turn, with and without prefix caching, one run.

    python benchmarks/chat.py [--model smollm2|tiny] [--turns 10] [--tokens 64] [--dtype auto]

The chat widget and the JupyterLab chat resend the whole conversation every turn. Two copies
of the model (one worker each, the pool called in this process) answer the same chat in turns,
one with ``prefix_caching`` and one without, so drifting machine load hits both alike. Target
(docs/design.md): the 10th turn's time to first token <= 1.5x the first turn's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from engine import model_config

from jupyter_llm.config import parse_config
from jupyter_llm.pool import Pool
from jupyter_llm.types import GenerationRequest, Message, SamplingParams

QUESTIONS = [
    "What is a Jupyter kernel?",
    "How does it run my code?",
    "What happens when I interrupt it?",
    "Can two notebooks share one kernel?",
    "How do I see which variables exist?",
    "What does %timeit measure?",
    "Why would a cell hang?",
    "How do I restart without losing data?",
    "What is the difference between a kernel and a server?",
    "Summarize what you told me.",
    "Which of these matters most for beginners?",
    "Thank you. Anything else?",
]
SYSTEM = "You are a patient tutor for scientists who are new to Jupyter notebooks."


async def turn(pool: Pool, model: str, messages: list[Message], tokens: int) -> tuple[float, str]:
    params = SamplingParams(max_tokens=tokens, temperature=0, ignore_eos=True)
    start = time.perf_counter()
    job = await pool.submit(GenerationRequest(model, messages=tuple(messages), params=params))
    first, text = 0.0, ""
    async for event in pool.events(job.id):
        if event.token_ids and not first:
            first = time.perf_counter() - start
        text += event.text
    return first, text


async def chat(folder_entry: dict[str, Any], args: argparse.Namespace) -> dict[str, list[float]]:
    params = {"dtype": args.dtype, "max_num_seqs": 4}
    models = [
        {"name": name, **folder_entry, "params": {**params, "prefix_caching": name == "cached"}}
        for name in ("cached", "uncached")
    ]
    data = {"parking_lot": {"pool": {"worker_threads": 1}}, "models": models}
    pool = Pool(parse_config(data, "chat.yaml", Path(".")))
    await pool.start()
    try:
        while any(m.state == "loading" for m in pool.models()):
            await asyncio.sleep(0.1)
        for model in pool.models():
            if model.state != "ready":
                raise SystemExit(f"model {model.name} did not load: {model.error}")
        history = {"cached": [Message("system", SYSTEM)], "uncached": [Message("system", SYSTEM)]}
        for name in history:  # warm-up, on another conversation
            await turn(pool, name, [Message("user", "Hello!")], 4)
        ttft: dict[str, list[float]] = {"cached": [], "uncached": []}
        for question in QUESTIONS[: args.turns]:
            for name, messages in history.items():
                messages.append(Message("user", question))
                first, answer = await turn(pool, name, messages, args.tokens)
                messages.append(Message("assistant", answer))
                ttft[name].append(first)
        return ttft
    finally:
        await pool.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = model_config(args.model, Path(tmp))
        assert config.source is not None
        entry = {config.source.kind: config.source.value}
        ttft = asyncio.run(chat(entry, args))
    print(f"{args.model}, dtype {args.dtype}, {args.turns} turns of {args.tokens} tokens")
    print("turn   cached TTFT   uncached TTFT")
    for i, (a, b) in enumerate(zip(ttft["cached"], ttft["uncached"], strict=True), 1):
        print(f"{i:>4}   {a * 1000:8.1f} ms   {b * 1000:10.1f} ms")
    for name, values in ttft.items():
        first, last = values[0], values[-1]
        later = statistics.median(values[1:]) if len(values) > 1 else first
        print(
            f"{name}: last turn / first = {last / first:.2f}x "
            f"(target <= 1.5x); later turns' median / first = {later / first:.2f}x"
        )


if __name__ == "__main__":
    main()
