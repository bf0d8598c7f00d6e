"""The server under load: 16 OpenAI streams against a real `jupyter server`, one run.

    python benchmarks/server.py [--model fake|tiny|smollm2] [--streams 16] [--tokens N]
                                [--rounds 2] [--client openai|httpx] [--no-transformers-serve]

Measured in turn, never two loads at once, on 127.0.0.1 only:
1. the raw engine: FakeEngine stepped directly (fake), or ``model.generate`` on a left-padded
   batch of the same prompts (tiny, smollm2: benchmarks/engine.py's ``Raw``);
2. a `jupyter server` subprocess with jupyter_llm (its own PID, stopped with SIGTERM) and the
   pool called directly in this process, same models.yaml: time to first token at
   concurrency 1, the two in turns (so drifting machine load hits both alike); the direct
   pool's tok/s under ``--streams`` streams;
3. ``--streams`` concurrent streams through the server (aggregate tok/s), read with the
   ``openai`` client (or ``--client httpx``: bare SSE lines, less client CPU), while another
   process polls ``GET {base}llm/api/status`` every 20 ms (the server loop's responsiveness;
   also polled idle, as a baseline);
4. `transformers serve` on the same model folder, the same way, when it can run here.
Prints one table. Targets (docs/design.md): status-poll p99 <= 10 ms under 16 streams; time to
first token <= the pool's own + 20 ms at concurrency 1.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib.util
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai
import yaml
from common import cpu_description, free_port, percentile

from jupyter_llm.config import DEFAULT_CONFIG, load_config
from jupyter_llm.engine.base import EngineRequest
from jupyter_llm.engine.fake import FakeEngine, FakeSpec
from jupyter_llm.pool import Pool
from jupyter_llm.testing import JupyterServer
from jupyter_llm.types import GenerationRequest, Message, SamplingParams

MODEL = "m"
SUBJECTS = ["cat", "dog", "fox", "owl", "bear", "deer", "wolf", "hare"]
POLL_SECS = 0.02
LAG_TARGET_MS = 10.0
TTFT_BUDGET_MS = 20.0
FAKE_STEP = 0.01  # engine.spec_for gives `backend: fake` models 10 ms steps
MS = 1000.0

Stream = tuple[float, int]  # one stream read to its end: (time to first token, tokens)


@dataclass
class Row:
    name: str
    value: str
    note: str = ""


def cpu_secs(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spread(values: Sequence[float]) -> str:
    """p50 / p99 / max in ms."""
    p50, p99 = percentile(values, 50) * MS, percentile(values, 99) * MS
    return f"{p50:.1f} / {p99:.1f} / {max(values) * MS:.1f} ms"


# -- the model under test --------------------------------------------------------------------


@dataclass
class Subject:
    kind: str  # fake | tiny | smollm2
    entry: dict[str, Any]  # the models.yaml entry, without its name
    folder: Path | None  # the model folder (real models): raw generate, transformers serve

    def config_file(self, tmp: Path, streams: int) -> Path:
        params: dict[str, Any] = {"max_num_seqs": streams, "max_tokens": 16, "temperature": 0}
        if self.kind != "fake":
            params["dtype"] = "float32"
        data = {
            "parking_lot": {"pool": {"worker_threads": 1}},
            "models": [{"name": MODEL, **self.entry, "params": params}],
        }
        path = tmp / f"{self.kind}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path


def subject(kind: str, tmp: Path) -> Subject:
    if kind == "fake":
        return Subject(kind, {"backend": "fake"}, None)
    from jupyter_llm.sources.resolve import resolve_model_dir

    if kind == "tiny":
        from jupyter_llm.engine.local.tiny import build_tiny_llama

        folder = build_tiny_llama(tmp / "tiny")
        return Subject(kind, {"local_path": str(folder)}, folder)
    model = load_config(DEFAULT_CONFIG).model("smollm2")
    assert model.source is not None
    return Subject(kind, {"gguf": model.source.value}, Path(resolve_model_dir(model)))


def texts(count: int) -> list[str]:
    return [
        f"Write a short story about a {SUBJECTS[i % len(SUBJECTS)]} in the forest."
        for i in range(count)
    ]


# -- 1. the raw engine -------------------------------------------------------------------------


def raw_fake(streams: int, tokens: int) -> float:
    engine = FakeEngine(FakeSpec(max_num_seqs=streams, step_delay=FAKE_STEP), 0)
    params = SamplingParams(max_tokens=tokens)
    for i, text in enumerate(texts(streams)):
        request = GenerationRequest(MODEL, messages=(Message("user", text),), params=params)
        engine.add(EngineRequest(f"j{i}", request, prompt_tokens=10))
    start, produced = time.perf_counter(), 0
    while engine.has_work():
        produced += sum(len(out.token_ids) for out in engine.step())
    return produced / (time.perf_counter() - start)


def raw_real(subject: Subject, streams: int, tokens: int) -> float:
    sys.path.insert(0, str(Path(__file__).parent))
    from engine import Raw, chat_prompts  # benchmarks/engine.py: the engine benchmark's raw side

    from jupyter_llm.config import parse_config

    config = parse_config(
        {"models": [{"name": MODEL, **subject.entry, "params": {"dtype": "float32"}}]},
        "benchmark.yaml",
        Path("."),
    ).models[0]
    raw = Raw(config)
    prompts = chat_prompts(raw.tokenizer, streams)
    raw.generate(prompts[:2], 4)  # warm-up
    return streams * tokens / raw.generate(prompts, tokens)


# -- 2. the pool, called directly ------------------------------------------------------------


def request_for(text: str, tokens: int) -> GenerationRequest:
    params = SamplingParams(max_tokens=tokens, temperature=0, ignore_eos=True)
    return GenerationRequest(MODEL, messages=(Message("user", text),), params=params)


@asynccontextmanager
async def direct_pool(config_file: Path) -> AsyncIterator[Callable[[str, int], Awaitable[Stream]]]:
    """The pool in this process, with the same models.yaml; yields ``one(text, max_tokens)``."""
    pool = Pool(load_config(config_file))
    await pool.start()
    try:
        while pool.models()[0].state == "loading":
            await asyncio.sleep(0.05)
        if pool.models()[0].state != "ready":
            raise SystemExit(f"the model did not load: {pool.models()[0].error}")

        async def one(text: str, max_tokens: int) -> Stream:
            start = time.perf_counter()
            job = await pool.submit(request_for(text, max_tokens))
            first, count = 0.0, 0
            async for event in pool.events(job.id):
                if event.token_ids:
                    first = first or time.perf_counter() - start
                    count += len(event.token_ids)
            return first, count

        yield one
    finally:
        await pool.stop()


async def concurrent(
    one: Callable[[str, int], Awaitable[Stream]], streams: int, tokens: int
) -> tuple[float, int]:
    """``streams`` streams at once: (aggregate tok/s, tokens)."""
    start = time.perf_counter()
    results = await asyncio.gather(*(one(text, tokens) for text in texts(streams)))
    produced = sum(r[1] for r in results)
    return produced / (time.perf_counter() - start), produced


# -- 3, 4. servers in subprocesses -------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    v1: str  # the OpenAI base URL
    probe: str  # the path polled for responsiveness
    headers: dict[str, str]
    model: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # only the PID we started
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_jupyter(config_file: Path, tmp: Path) -> Server:
    jupyter = JupyterServer(
        tmp / "jupyter", config=config_file, argv=["--ServerApp.log_level=WARN"]
    ).start()
    assert jupyter.process is not None
    return Server(
        "jupyter_llm",
        jupyter.process,
        jupyter.port,
        f"{jupyter.url}llm/v1",
        f"{urlsplit(jupyter.url).path}llm/api/status",
        jupyter.headers,
        MODEL,
    )


def start_transformers_serve(folder: Path, tmp: Path) -> Server:
    port = free_port()
    argv = [
        "transformers", "serve", str(folder), "--host", "127.0.0.1", "--port", str(port),
        "--device", "cpu", "--dtype", "float32", "--continuous-batching",
    ]  # fmt: skip
    log = (tmp / "transformers.log").open("wb")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = Server(
        "transformers serve",
        process,
        port,
        f"http://127.0.0.1:{port}/v1",
        "/health",
        {},
        str(folder),
    )
    wait_ready(server, "/health", b"", tmp / "transformers.log")
    return server


def wait_ready(server: Server, path: str, needle: bytes, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {log.read_text()[-2000:]}")
        try:
            status, body = get(server.port, path, server.headers)
            if status == 200 and needle in body:
                return
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{server.name} was not ready within {timeout:.0f} s")


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def poll(port: int, path: str, headers: dict[str, str], ready: Any, stop: Any, out: Any) -> None:
    """In its own process: GET ``path`` every 20 ms on one connection until ``stop`` is set."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies: list[float] = []
    next_at = time.perf_counter()
    while not stop.is_set():
        start = time.perf_counter()
        connection.request("GET", path, headers=headers)
        connection.getresponse().read()
        latencies.append(time.perf_counter() - start)
        ready.set()
        next_at += POLL_SECS
        time.sleep(max(0.0, next_at - time.perf_counter()))
    connection.close()
    out.put(latencies)


class Poller:
    """Polls a server from another process (so this process's own work does not skew it)."""

    def __init__(self, server: Server) -> None:
        context = multiprocessing.get_context("spawn")
        self._ready = context.Event()
        self._stop = context.Event()
        self._out: Any = context.Queue()
        self._process = context.Process(
            target=poll,
            args=(server.port, server.probe, server.headers, self._ready, self._stop, self._out),
        )

    def __enter__(self) -> Poller:
        self._process.start()
        if not self._ready.wait(timeout=60):  # the first poll is done: measure from here
            raise RuntimeError("the poller did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.latencies: list[float] = self._out.get(timeout=30)
        self._process.join(timeout=10)


async def openai_stream(client: openai.AsyncOpenAI, model: str, text: str, tokens: int) -> Stream:
    """One chat stream read to the end: (time to first content, completion tokens)."""
    start = time.perf_counter()
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": text}],
        max_tokens=tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True} if model == MODEL else None,
    )
    first, chunks, usage = 0.0, 0, 0
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            chunks += 1
            first = first or time.perf_counter() - start
        if chunk.usage is not None:
            usage = chunk.usage.completion_tokens
    return first, usage or chunks


async def httpx_stream(client: httpx.AsyncClient, model: str, text: str, tokens: int) -> Stream:
    """The same stream read as bare SSE lines (json, no models): a content chunk is a token."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "max_tokens": tokens,
        "temperature": 0,
        "stream": True,
    }
    if model == MODEL:
        body["ignore_eos"] = True
    start = time.perf_counter()
    first, chunks = 0.0, 0
    async with client.stream("POST", "chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if (choices[0].get("delta") or {}).get("content"):
                chunks += 1
                first = first or time.perf_counter() - start
    return first, chunks


async def measure(
    server: Server, args: argparse.Namespace, tokens: int, direct: Path | None = None
) -> dict[str, Any]:
    """Time to first token at concurrency 1 (paired, in turns, with the pool called directly
    from ``direct``'s models.yaml: drifting load hits both alike), the direct pool's tok/s;
    then polls idle, and ``args.streams`` streams while polled."""
    api_key = server.headers.get("Authorization", "token none").split()[1]
    oai = openai.AsyncOpenAI(base_url=server.v1, api_key=api_key, max_retries=0, timeout=600)
    bare = httpx.AsyncClient(
        base_url=server.v1 + "/",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=600,
        limits=httpx.Limits(max_connections=args.streams * 2),
    )

    async def one(text: str, max_tokens: int) -> Stream:
        if args.client == "openai":
            return await openai_stream(oai, server.model, text, max_tokens)
        return await httpx_stream(bare, server.model, text, max_tokens)

    out: dict[str, Any] = {"ttft": [], "direct_ttft": []}
    try:
        for text in texts(3):
            await one(text, 4)  # warm-up
        if direct is None:
            out["ttft"] = [(await one(text, 4))[0] for text in texts(args.samples)]
        else:
            async with direct_pool(direct) as pooled:
                for text in texts(3):
                    await pooled(text, 4)  # warm-up
                for text in texts(args.samples):
                    out["direct_ttft"].append((await pooled(text, 4))[0])
                    out["ttft"].append((await one(text, 4))[0])
                out["direct_rate"] = (await concurrent(pooled, args.streams, tokens))[0]
        with Poller(server) as idle:
            await asyncio.sleep(1.0)
        rates, produced = [], 0
        server_cpu, client_cpu = cpu_secs(server.process.pid), time.process_time()
        with Poller(server) as loaded:
            for _ in range(args.rounds):
                rate, count = await concurrent(one, args.streams, tokens)
                rates.append(rate)
                produced += count
        out.update(
            rate=statistics.median(rates),
            idle=idle.latencies,
            loaded=loaded.latencies,
            server_us=(cpu_secs(server.process.pid) - server_cpu) / produced * 1e6,
            client_us=(time.process_time() - client_cpu) / produced * 1e6,
        )
        return out
    finally:
        await oai.close()
        await bare.aclose()


def transformers_serve_missing(subject: Subject) -> str | None:
    if subject.folder is None:
        return "not run: the fake model exists only in jupyter_llm"
    if shutil.which("transformers") is None:
        return "not run: no `transformers` command"
    for module in ("fastapi", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            return "not run: needs pip install 'transformers[serving]'"
    return None


# -- the table ---------------------------------------------------------------------------------


def measure_all(
    args: argparse.Namespace, tokens: int, tmp: Path
) -> tuple[Subject, float, dict[str, Any], dict[str, Any] | str]:
    """Raw engine, pool direct, jupyter_llm, transformers serve: in turn, never together."""
    what = subject(args.model, tmp)
    config_file = what.config_file(tmp, args.streams)
    if what.kind == "fake":
        raw = raw_fake(args.streams, tokens)
    else:
        raw = raw_real(what, args.streams, tokens)
    server = start_jupyter(config_file, tmp)
    try:
        ours = asyncio.run(measure(server, args, tokens, direct=config_file))
    finally:
        server.stop()
    missing = transformers_serve_missing(what)
    if args.no_transformers_serve:
        missing = "not run: --no-transformers-serve"
    if missing is not None or what.folder is None:
        return what, raw, ours, missing or ""
    try:
        other = start_transformers_serve(what.folder, tmp)
    except RuntimeError as exc:
        return what, raw, ours, f"not run: {str(exc).splitlines()[0][:120]}"
    try:
        return what, raw, ours, asyncio.run(measure(other, args, tokens))
    finally:
        other.stop()


def table(
    args: argparse.Namespace,
    what: Subject,
    raw: float,
    ours: dict[str, Any],
    theirs: dict[str, Any] | str,
) -> list[Row]:
    raw_name = "FakeEngine.step, direct" if what.kind == "fake" else "padded model.generate"
    direct_ttft = statistics.median(ours["direct_ttft"])
    overhead = (statistics.median(ours["ttft"]) - direct_ttft) * MS
    lag_p99 = percentile(ours["loaded"], 99) * MS
    streams = f"{args.streams} {args.client} streams"
    rows = [
        Row(f"raw engine, {args.streams} sequences ({raw_name})", f"{raw:.0f} tok/s"),
        Row(
            f"pool called directly, {args.streams} streams",
            f"{ours['direct_rate']:.0f} tok/s",
            f"{ours['direct_rate'] / raw:.2f}x raw",
        ),
        Row(
            f"jupyter_llm, {streams}",
            f"{ours['rate']:.0f} tok/s",
            f"{ours['rate'] / raw:.2f}x raw, "
            f"{ours['rate'] / ours['direct_rate']:.2f}x the pool direct",
        ),
        Row("TTFT c=1, pool called directly, p50", f"{direct_ttft * MS:.1f} ms", "in turns with:"),
        Row(
            f"TTFT c=1, {args.client} stream via jupyter_llm, p50",
            f"{statistics.median(ours['ttft']) * MS:.1f} ms",
            f"+{overhead:.1f} ms over the pool (target <= {TTFT_BUDGET_MS:.0f} ms): "
            + ("ok" if overhead <= TTFT_BUDGET_MS else "MISSED"),
        ),
        Row(
            "CPU per streamed token: server / client",
            f"{ours['server_us']:.0f} / {ours['client_us']:.0f} us",
            "server: its process, polls included; client: this process",
        ),
        Row("GET llm/api/status every 20 ms, idle", spread(ours["idle"]), "p50 / p99 / max"),
        Row(
            f"GET llm/api/status every 20 ms, {streams}",
            spread(ours["loaded"]),
            f"p99 target <= {LAG_TARGET_MS:.0f} ms: "
            + ("ok" if lag_p99 <= LAG_TARGET_MS else "MISSED")
            + f" ({len(ours['loaded'])} polls)",
        ),
    ]
    if isinstance(theirs, str):
        return [*rows, Row("transformers serve", "-", theirs)]
    return [
        *rows,
        Row(
            f"transformers serve, {streams}",
            f"{theirs['rate']:.0f} tok/s",
            f"{theirs['rate'] / raw:.2f}x raw; jupyter_llm is {ours['rate'] / theirs['rate']:.2f}x",
        ),
        Row("transformers serve TTFT c=1, p50", f"{statistics.median(theirs['ttft']) * MS:.1f} ms"),
        Row(f"transformers serve GET /health, {streams}", spread(theirs["loaded"])),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", choices=["fake", "tiny", "smollm2"], default="fake")
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--tokens", type=int, help="per stream (fake 300, tiny 128, smollm2 64)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of concurrent streams")
    parser.add_argument("--samples", type=int, default=20, help="time-to-first-token samples")
    parser.add_argument(
        "--client",
        choices=["openai", "httpx"],
        default="openai",
        help="read streams with the openai client, or as bare SSE lines (httpx: less CPU)",
    )
    parser.add_argument("--no-transformers-serve", action="store_true")
    args = parser.parse_args()
    tokens = args.tokens or {"fake": 300, "tiny": 128, "smollm2": 64}[args.model]
    tmp = Path(tempfile.mkdtemp(prefix="jupyter_llm-bench-"))
    try:
        what, raw, ours, theirs = measure_all(args, tokens, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = table(args, what, raw, ours, theirs)
    model = {
        "fake": "fake (FakeEngine, 10 ms a step)",
        "tiny": "tiny random Llama",
        "smollm2": "SmolLM2-135M-Instruct",
    }[what.kind]
    print(
        f"\nmodel {model}; {tokens} tokens a stream, {args.rounds} rounds; CPU: {cpu_description()}"
    )
    width = max(len(r.name) for r in rows)
    value_width = max(len(r.value) for r in rows)
    for row in rows:
        print(f"{row.name:<{width}}  {row.value:>{value_width}}  {row.note}")


if __name__ == "__main__":
    main()
