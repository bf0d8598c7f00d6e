"""Inline completions: from the last keystroke to the first ghost character, one run.

    python benchmarks/completions.py [--model tiny|smollm2 ...] [--rounds 30]
                                     [--debounce-ms 300] [--chat-tokens 1000]

A `jupyter server` subprocess (127.0.0.1 only, its own PID, stopped with SIGTERM) serves the
models; this process plays the labextension's provider over HTTP, as the browser does: at
each "keystroke" it cancels the editor's running completion (DELETE), waits the debounce,
posts a ``kind: "completion"`` job and reads its event stream until the first event with
text: the first ghost character. Meanwhile chat answers stream from the same model, one
after another (``ignore_eos``), read as a client would; their tokens per second alone and
while the completions run tell whether the chat keeps streaming.

Prints, per model: the latency after the debounce and from the keystroke (p50, p95), the
completions' trimmed lengths, and the chat's tok/s. Target (DESIGN.md): the first ghost
character <= 300 ms after the debounce with SmolLM2 on a CPU, the chat still streaming.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from jupyter_llm.config import DEFAULT_CONFIG, load_config
from jupyter_llm.testing import JupyterServer

TARGET_MS = 300.0
CODE = '''import numpy as np
import pandas as pd


def load(path):
    """Read the measurements and drop the empty rows."""
    frame = pd.read_csv(path)
    return frame.dropna()


def summarize(frame):
'''
TYPED = "    means = frame.mean()\n    return "  # what the "user" types, one key a round
CHAT = [{"role": "user", "content": "Tell me a long story about a notebook."}]


def model_entries(names: list[str], tmp: Path) -> list[dict[str, Any]]:
    entries = []
    for name in names:
        if name == "smollm2":
            base = load_config(DEFAULT_CONFIG).model("smollm2")
            source = {"gguf": base.source.value if base.source else ""}
        else:
            from jupyter_llm.engine.local.tiny import build_tiny_llama

            source = {"local_path": str(build_tiny_llama(tmp / "tiny"))}
        entries.append({"name": name, **source, "params": {"dtype": "float32"}})
    return entries


async def events(client: httpx.AsyncClient, job_id: str) -> AsyncIterator[dict[str, Any]]:
    async with client.stream("GET", f"llm/api/jobs/{job_id}/events") as response:
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])
                yield event
                if event["status"] not in ("queued", "running"):
                    return


class Chat:
    """Chat answers streaming in the background, one after another until ``stop``; counts
    their tokens by the clock."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.job_id = ""
        self.stopped = False

    async def run(self, client: httpx.AsyncClient, model: str, tokens: int) -> None:
        body = {"model": model, "messages": CHAT, "max_tokens": tokens, "ignore_eos": True}
        while not self.stopped:
            response = await client.post("llm/api/jobs", json=body)
            response.raise_for_status()
            self.job_id = response.json()["id"]
            async for event in events(client, self.job_id):
                self.times.extend([time.perf_counter()] * len(event["token_ids"]))

    async def stop(self, client: httpx.AsyncClient) -> None:
        self.stopped = True
        await client.delete(f"llm/api/jobs/{self.job_id}")

    def rate(self, start: float, end: float) -> float:
        count = sum(1 for t in self.times if start <= t < end)
        return count / (end - start) if end > start else 0.0


async def first_ghost(
    client: httpx.AsyncClient, model: str, prefix: str, previous: str | None, debounce: float
) -> tuple[float, float, str, str]:
    """One keystroke: (seconds to the first ghost character after the debounce, from the
    keystroke, the suggestion, its job id)."""
    keystroke = time.perf_counter()
    if previous is not None:
        await client.delete(f"llm/api/jobs/{previous}")
    await asyncio.sleep(max(0.0, debounce - (time.perf_counter() - keystroke)))
    asked = time.perf_counter()
    body = {"model": model, "kind": "completion", "editor": "bench", "language": "python"}
    response = await client.post("llm/api/jobs", json={**body, "prefix": prefix, "suffix": ""})
    response.raise_for_status()
    job_id = response.json()["id"]
    first, text = 0.0, ""
    async for event in events(client, job_id):
        if event["text"] and not first:
            first = time.perf_counter()
        text += event["text"]
    end = first or time.perf_counter()  # an empty suggestion: no ghost text, its end counts
    return end - asked, end - keystroke, text, job_id


async def measure(server: JupyterServer, model: str, args: argparse.Namespace) -> dict[str, Any]:
    debounce = args.debounce_ms / 1000
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=60) as c:
        await first_ghost(c, model, CODE, None, 0)  # warm-up
        chat = Chat()
        chat_task = asyncio.create_task(chat.run(c, model, args.chat_tokens))
        while len(chat.times) < 8:  # streaming
            if chat_task.done():
                chat_task.result()  # its failure, if it failed
                raise SystemExit(f"the chat ended before it streamed: {chat.job_id}")
            await asyncio.sleep(0.05)
        alone_start = time.perf_counter()
        await asyncio.sleep(2.0)
        alone_end = time.perf_counter()
        after, total, lengths, empty = [], [], [], 0
        previous = None
        for i in range(args.rounds):
            prefix = CODE + TYPED[: 1 + i % len(TYPED)]
            a, t, text, previous = await first_ghost(c, model, prefix, previous, debounce)
            after.append(a)
            total.append(t)
            lengths.append(len(text))
            empty += not text
        busy_end = time.perf_counter()
        await chat.stop(c)
        await asyncio.gather(chat_task, return_exceptions=True)
    return {
        "after": after,
        "total": total,
        "lengths": lengths,
        "empty": empty,
        "chat_alone": chat.rate(alone_start, alone_end),
        "chat_busy": chat.rate(alone_end, busy_end),
    }


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--model", nargs="+", choices=["tiny", "smollm2"], default=["tiny", "smollm2"]
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--debounce-ms", type=float, default=300)
    parser.add_argument("--chat-tokens", type=int, default=1000)
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        config = {
            "parking_lot": {"pool": {"worker_threads": 1}},
            "models": model_entries(args.model, tmp),
        }
        (tmp / "models.yaml").write_text(yaml.safe_dump(config))
        with JupyterServer(tmp / "server", config=tmp / "models.yaml").start(timeout=600) as server:
            for name in args.model:
                results[name] = asyncio.run(measure(server, name, args))
    print(
        f"{cpu_name()}; {args.rounds} keystrokes a model, "
        f"debounce {args.debounce_ms:g} ms, a chat streaming from the same model"
    )
    print(
        "model     after debounce p50 / p95   keystroke p50 / p95   chars  empty  "
        "chat tok/s alone / busy"
    )
    for name, r in results.items():
        a50, a95 = (percentile(r["after"], q) * 1000 for q in (0.5, 0.95))
        t50, t95 = (percentile(r["total"], q) * 1000 for q in (0.5, 0.95))
        print(
            f"{name:<9} {a50:8.0f} / {a95:5.0f} ms      {t50:6.0f} / {t95:5.0f} ms   "
            f"{statistics.median(r['lengths']):5.0f}  {r['empty']:5d}  "
            f"{r['chat_alone']:7.1f} / {r['chat_busy']:5.1f}"
        )
    if "smollm2" in results:
        p50 = percentile(results["smollm2"]["after"], 0.5) * 1000
        verdict = "meets" if p50 <= TARGET_MS else "misses"
        print(
            f"target: first ghost character <= {TARGET_MS:g} ms after the debounce (smollm2): "
            f"p50 {p50:.0f} ms {verdict} it"
        )


if __name__ == "__main__":
    main()
