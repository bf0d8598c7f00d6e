"""How free the kernel stays while ``%%llm`` cells stream, and what the streaming costs.

Two measurements, on a real ipykernel (jupyter_client) against a real jupyter-server
subprocess serving the tiny random Llama (built offline in about a second):

* the latency of a ``1+1`` cell (execute request to execute reply, as the frontend sees it)
  while 0, 1 and 4 ``%%llm`` cells stream into their outputs: p50 and p99;
* the bytes of display messages sent to the frontend for a 300-token answer (each message
  as the server's websocket carries it: header, parent header, metadata, content), against
  the answer's own size in UTF-8. Once for the tiny model (about 1,000 tokens a second) and
  once for the fake engine, paced at 100 tokens a second (a stream that lasts 3 s).

::

    python benchmarks/kernel.py                    # about a minute on 2 cores
    python benchmarks/kernel.py --quick            # about half that
    python benchmarks/kernel.py --mode embedded    # no server: the kernel's embedded pool
    python benchmarks/kernel.py --mode both

Targets (DESIGN.md and the kernel issue): ``1+1`` p99 <= 100 ms while 4 cells stream;
display traffic <= 20x the answer's size.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from common import free_port, percentile
from jupyter_client.manager import AsyncKernelManager

STREAM_TOKENS = 1900  # per streaming cell: the tiny model's context is 2048 tokens
STREAM = f"%%llm -m tiny -n {STREAM_TOKENS} -p ignore_eos=true\nTell me a long story."
LATENCY_TARGET_MS = 100.0
TRAFFIC_TARGET = 20.0
BASE_URL = "/bench/"


@dataclass(frozen=True, slots=True)
class Sizes:
    samples: int  # 1+1 cells per row
    round_limit: float  # seconds a round of streams may take before it is restarted


FULL = Sizes(300, 30.0)
QUICK = Sizes(120, 30.0)


# --- numbers ------------------------------------------------------------------------------


# --- the server and the kernel ------------------------------------------------------------


def write_config(folder: Path) -> Path:
    from jupyter_llm.engine.tiny import build_tiny_llama

    tiny = build_tiny_llama(folder / "tiny-llama")
    config = {
        "parking_lot": {"pool": {"worker_threads": 1}, "limits": {"timeout_secs": 120}},
        "models": [
            {
                "name": "tiny",
                "local_path": str(tiny),
                "backend": "transformers",
                "params": {
                    "device": "cpu",
                    "dtype": "float32",
                    "kvcache_mem_cpu": 256,
                    "max_num_seqs": 8,
                },
            },
            {"name": "fake", "backend": "fake", "params": {"max_tokens": 300}},
        ],
    }
    path = folder / "models.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def base_env(runtime: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_LLM_")}
    env.update(JUPYTER_RUNTIME_DIR=str(runtime), HF_HUB_OFFLINE="1", **extra)
    return env


class Server:
    """A jupyter-server subprocess with jupyter_llm, on 127.0.0.1 and a random token."""

    def __init__(self, config: Path, folder: Path) -> None:
        root = folder / "root"
        root.mkdir(parents=True)
        self.runtime = folder / "server-runtime"
        self.runtime.mkdir()
        self.log = folder / "server.log"
        port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{port}{BASE_URL}"
        command = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.base_url={BASE_URL}",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.jpserver_extensions={'jupyter_llm': True}",
            f"--LLMExtension.config_file={config}",
        ]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, env=base_env(self.runtime), stdout=out, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"token {self.token}"}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log.read_text()[-3000:]}")
            try:
                models = httpx.get(f"{self.url}llm/api/models", headers=headers).json()["models"]
                if all(m["state"] == "ready" for m in models):
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server was not ready in {timeout:.0f} s")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def wire_bytes(msg: dict[str, Any]) -> int:
    """A message's size as the server's websocket sends it to the browser (JSON)."""
    wire = {key: msg.get(key) for key in ("header", "parent_header", "metadata", "content")}
    wire.update(channel="iopub", buffers=[], msg_id=msg["header"]["msg_id"])
    wire["msg_type"] = msg["header"]["msg_type"]
    return len(json.dumps(wire, default=str).encode())


@dataclass
class CellLog:
    reply: asyncio.Future[float]
    display_bytes: int = 0
    display_messages: int = 0
    first_token: bool = False
    final_text: str | None = None
    displays: list[dict[str, Any]] = field(default_factory=list)


class Kernel:
    """A kernel and two reader tasks that file every message by the cell it belongs to."""

    def __init__(self) -> None:
        self.manager = AsyncKernelManager(kernel_name="python3")
        self.cells: dict[str, CellLog] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, env: dict[str, str], cwd: Path) -> None:
        await self.manager.start_kernel(env=env, cwd=str(cwd))
        self.client = self.manager.client()
        self.client.start_channels()
        await self.client.wait_for_ready(timeout=60)
        self._tasks = [
            asyncio.create_task(self._read_iopub()),
            asyncio.create_task(self._read_shell()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.client.stop_channels()
        await self.manager.shutdown_kernel(now=False)

    def _cell(self, msg_id: str) -> CellLog:
        if msg_id not in self.cells:
            self.cells[msg_id] = CellLog(asyncio.get_running_loop().create_future())
        return self.cells[msg_id]

    async def _read_shell(self) -> None:
        while True:
            msg = await self.client.get_shell_msg()
            cell = self._cell(msg["parent_header"].get("msg_id", ""))
            if not cell.reply.done():
                if msg["content"].get("status") != "ok":
                    cell.reply.set_exception(RuntimeError(str(msg["content"].get("evalue"))))
                else:
                    cell.reply.set_result(time.perf_counter())

    async def _read_iopub(self) -> None:
        while True:
            msg = await self.client.get_iopub_msg()
            kind = msg["header"]["msg_type"]
            if kind not in ("display_data", "update_display_data"):
                continue
            cell = self._cell(msg["parent_header"].get("msg_id", ""))
            cell.display_bytes += wire_bytes(msg)
            cell.display_messages += 1
            content = msg["content"]
            display_id = content.get("transient", {}).get("display_id", "")
            if display_id.endswith("-status"):
                continue
            data = content["data"]
            if any(data.get(mime) for mime in ("text/markdown", "text/plain")):
                cell.first_token = True
            if content.get("metadata", {}).get("jupyter_llm", {}).get("final"):
                cell.final_text = data.get("text/plain", "")

    def execute(self, code: str) -> str:
        msg_id: str = self.client.execute(code)
        self._cell(msg_id)
        return msg_id

    async def run(self, code: str) -> float:
        """Run a cell; its latency in seconds (request sent to reply read)."""
        started = time.perf_counter()
        msg_id = self.execute(code)
        return await self.cells[msg_id].reply - started

    def started(self, cells: Sequence[str]) -> bool:
        """Whether every cell of ``cells`` has shown its first token."""
        return all(self.cells[c].first_token for c in cells)

    def ended(self, cells: Sequence[str], every: bool = True) -> bool:
        """Whether every (or any) cell of ``cells`` has had its final paint."""
        done = [self.cells[c].final_text is not None for c in cells]
        return all(done) if every else any(done)

    async def until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            await asyncio.sleep(0.01)


# --- the measurements ---------------------------------------------------------------------


async def latencies(kernel: Kernel, streams: int, sizes: Sizes) -> tuple[list[float], int]:
    """``1+1`` latencies while ``streams`` cells stream (only samples whose reply came while
    every stream was still going); also the number of rounds of streams it took."""
    samples: list[float] = []
    rounds = 0
    while len(samples) < sizes.samples:
        rounds += 1
        cells = [kernel.execute(STREAM) for _ in range(streams)]
        for msg_id in cells:
            await kernel.cells[msg_id].reply
        await kernel.until(functools.partial(kernel.started, cells), 60, "the first tokens")
        started = time.monotonic()
        while len(samples) < sizes.samples and time.monotonic() - started < sizes.round_limit:
            latency = await kernel.run("1+1")
            if kernel.ended(cells, every=False):
                break  # a stream ended while this cell ran: the sample does not count
            samples.append(latency)
        if cells:
            await kernel.run("%llm cancel all")
            await kernel.until(functools.partial(kernel.ended, cells), 60, "the streams to end")
    return samples, rounds


async def latencies_elsewhere(
    kernel: Kernel, server: Server, streams: int, sizes: Sizes
) -> list[float]:
    """``1+1`` latencies while ``streams`` jobs of the same size stream to this process (not
    to the kernel): what the machine's load alone costs the kernel."""
    samples: list[float] = []
    headers = {"Authorization": f"token {server.token}"}
    params = {"max_tokens": STREAM_TOKENS, "ignore_eos": True}
    body = {"model": "tiny", "prompt": "Tell me a long story.", "params": params}
    async with httpx.AsyncClient(base_url=server.url + "llm/api/", headers=headers) as http:
        while len(samples) < sizes.samples:
            ids = [(await http.post("jobs", json=body)).json()["id"] for _ in range(streams)]
            first: list[asyncio.Event] = [asyncio.Event() for _ in ids]
            ended: list[str] = []
            readers = [
                asyncio.create_task(_read_stream(http, job, event, ended))
                for job, event in zip(ids, first, strict=True)
            ]
            for event in first:
                await event.wait()
            started = time.monotonic()
            while len(samples) < sizes.samples and time.monotonic() - started < sizes.round_limit:
                latency = await kernel.run("1+1")
                if ended:
                    break
                samples.append(latency)
            for job in ids:
                await http.delete(f"jobs/{job}")
            await asyncio.gather(*readers)
    return samples


async def _read_stream(
    http: httpx.AsyncClient, job: str, first: asyncio.Event, ended: list[str]
) -> None:
    async with http.stream("GET", f"jobs/{job}/events", timeout=None) as response:
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                data = json.loads(line[5:])
                if data["text"]:
                    first.set()
                if data["status"] not in ("queued", "running"):
                    break
    ended.append(job)


@dataclass(frozen=True, slots=True)
class Traffic:
    label: str
    answer_bytes: int
    messages: int
    display_bytes: int

    @property
    def ratio(self) -> float:
        return self.display_bytes / max(1, self.answer_bytes)


async def traffic(kernel: Kernel, label: str, code: str) -> Traffic:
    msg_id = kernel.execute(code)
    cell = kernel.cells[msg_id]
    await cell.reply
    await kernel.until(lambda: cell.final_text is not None, 120, "the final paint")
    await asyncio.sleep(0.3)  # the status line's last paint comes with the final one
    assert cell.final_text is not None
    return Traffic(label, len(cell.final_text.encode()), cell.display_messages, cell.display_bytes)


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    samples: list[float]
    streams: int = 0
    in_kernel: bool = True  # the streams go to the kernel's cells (not to another client)


@dataclass
class Report:
    mode: str
    where: str
    rows: list[Row] = field(default_factory=list)
    traffic: list[Traffic] = field(default_factory=list)


async def measure(mode: str, config: Path, folder: Path, sizes: Sizes) -> Report:
    server = Server(config, folder / f"{mode}-server") if mode == "server" else None
    kernel = Kernel()
    runtime = folder / f"{mode}-kernel-runtime"
    runtime.mkdir(parents=True)
    try:
        if server is not None:
            server.wait_ready()
            env = base_env(runtime, JUPYTER_LLM_URL=server.url, JUPYTER_LLM_TOKEN=server.token)
        else:
            env = base_env(runtime, JUPYTER_LLM_CONFIG=str(config))
        await kernel.start(env, folder)
        await kernel.run("%load_ext jupyter_llm")
        # Warm up: models loaded (embedded), connections open, code paths imported.
        await kernel.run("%%llm -m tiny -n 32 --wait\nwarm up")
        await kernel.run("%%llm -m fake -n 4 --wait\nwarm up")
        report = Report(mode, "jupyter-server" if server else "embedded pool in the kernel")
        for streams in (0, 1, 4):
            samples, rounds = await latencies(kernel, streams, sizes)
            label = f"{streams} `%%llm` cell{'' if streams == 1 else 's'} streaming"
            if streams:
                label += f" ({rounds} round{'s' if rounds > 1 else ''} of streams)"
            report.rows.append(Row(label, samples, streams))
        if server is not None:
            samples = await latencies_elsewhere(kernel, server, 4, sizes)
            label = "control: 4 jobs streaming to another process (the machine's load only)"
            report.rows.append(Row(label, samples, 4, in_kernel=False))
        report.traffic.append(
            await traffic(
                kernel,
                "tiny model (~1,000 tok/s)",
                "%%llm -m tiny -n 300 -p ignore_eos=true\nTell me a story.",
            )
        )
        words = " ".join(["the", "kernel", "stays", "free", "while", "tokens", "stream"])
        report.traffic.append(
            await traffic(kernel, "fake engine (100 tok/s)", f"%%llm -m fake -n 300\n{words}")
        )
        return report
    finally:
        await kernel.stop()
        if server is not None:
            server.stop()


def print_report(report: Report) -> None:
    print(f"\n### {report.mode}: the kernel talks to the {report.where}\n")
    print("| `1+1` cell latency, while | p50 ms | p99 ms | max ms | samples |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in report.rows:
        ms = [s * 1000 for s in row.samples]
        print(
            f"| {row.label} | {percentile(ms, 50):.1f} | {percentile(ms, 99):.1f} | "
            f"{max(ms, default=math.nan):.1f} | {len(ms)} |"
        )
    print()
    print("| 300-token answer | answer bytes | display messages | display bytes | ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for t in report.traffic:
        print(
            f"| {t.label} | {t.answer_bytes:,} | {t.messages} | {t.display_bytes:,} | "
            f"{t.ratio:.1f}x |"
        )
    four = next(row.samples for row in report.rows if row.streams == 4 and row.in_kernel)
    p99 = percentile([s * 1000 for s in four], 99)
    worst = max(t.ratio for t in report.traffic)
    print()
    print(
        f"target `1+1` p99 <= {LATENCY_TARGET_MS:.0f} ms while 4 cells stream: {p99:.1f} ms "
        f"({'met' if p99 <= LATENCY_TARGET_MS else 'MISSED'})"
    )
    print(
        f"target display traffic <= {TRAFFIC_TARGET:.0f}x the answer: {worst:.1f}x "
        f"({'met' if worst <= TRAFFIC_TARGET else 'MISSED'})"
    )


async def main_async(modes: list[str], sizes: Sizes) -> None:
    with tempfile.TemporaryDirectory(prefix="jupyter_llm-kernel-bench-") as tmp:
        folder = Path(tmp)
        config = write_config(folder)
        print(
            f"# kernel benchmark: {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}"
        )
        for mode in modes:
            print_report(await measure(mode, config, folder, sizes))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples per row")
    parser.add_argument("--mode", choices=["server", "embedded", "both"], default="server")
    args = parser.parse_args()
    modes = ["server", "embedded"] if args.mode == "both" else [args.mode]
    asyncio.run(main_async(modes, QUICK if args.quick else FULL))


if __name__ == "__main__":
    main()
