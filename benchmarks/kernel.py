"""How free the kernel stays while ``%%llm`` cells stream, and what the streaming costs.

Two measurements, on a real ipykernel (jupyter_client) against a real jupyter-server
subprocess serving the tiny random Llama (built offline in about a second):

* the latency of a ``1+1`` cell (execute request to execute reply, as the frontend sees it)
  while 0, 1 and 4 ``%%llm`` cells stream into their outputs: p50 and p99;
* how an answer streams into its cell, for answers of 300 and 2,000 tokens: the gap between
  updates of the answer while tokens arrive (p50/p99/max), the lag of the shown text behind
  the generated one (before each update, how long the oldest text it shows for the first
  time had been generated; max and p99), and the bytes a second of display messages the
  cell sends (each message as the server's websocket carries it: header, parent header,
  metadata, content). With the fake engine (a steady ~100 tokens a second, ~11 bytes a
  token: the 2,000-token answer passes 16 KB) and the tiny model (as fast as it goes, a few
  hundred tokens a second on 2 busy cores; 1,900 tokens, its context's limit). With a
  server, generation times are when each piece reached a second client of the server (its
  SSE stream, read by this process); embedded, a second follower of the job in the kernel
  (on the kernel's loop, beside the cell's own);
* the same for the chat widget (``ChatWidget.send``): its comm messages instead of display
  messages, the gap between repaints of the streaming answer (its ``live`` state), the lag
  (fake engine only: the shown text is read back from the answer's HTML, which for the
  tiny model's random text is not the generated text), and the bytes sent per byte of
  answer, from the send to the answer's end (the repaints, the transcript and the state).

::

    python benchmarks/kernel.py                    # about a minute on 2 cores
    python benchmarks/kernel.py --quick            # about half that
    python benchmarks/kernel.py --mode embedded    # no server: the kernel's embedded pool
    python benchmarks/kernel.py --mode both
    python benchmarks/kernel.py --part streaming   # only the streaming table (--part latency)
    python benchmarks/kernel.py --part widget      # only the chat widget's table

Targets (docs/design.md): ``1+1`` p99 <= 100 ms while 4 cells stream; the shown answer lags the
generation by <= 0.5 s up to 16 KB and <= 1 s beyond, at <= ~200 KB/s of display traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import html
import itertools
import json
import math
import os
import platform
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from common import percentile
from jupyter_client.manager import AsyncKernelManager

from jupyter_llm.testing import JupyterServer

STREAM_TOKENS = 1900  # per streaming cell: the tiny model's context is 2048 tokens
STREAM = f"%%llm -m tiny -n {STREAM_TOKENS} -p ignore_eos=true\nTell me a long story."
LATENCY_TARGET_MS = 100.0
LAG_TARGET = {False: 0.5, True: 1.0}  # seconds, for answers up to 16 KB / beyond
RATE_TARGET = 200_000  # bytes a second of display messages per cell
LARGE = 16 * 1024
WORDS = "streaming answers repaint continuously"  # what the fake engine echoes
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
    from jupyter_llm.engine.local.tiny import build_tiny_llama

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


def wire_bytes(msg: dict[str, Any]) -> int:
    """A message's size as the server's websocket sends it to the browser (JSON)."""
    wire = {key: msg.get(key) for key in ("header", "parent_header", "metadata", "content")}
    wire.update(channel="iopub", buffers=[], msg_id=msg["header"]["msg_id"])
    wire["msg_type"] = msg["header"]["msg_type"]
    return len(json.dumps(wire, default=str).encode())


@dataclass(frozen=True, slots=True)
class Display:
    sent: float  # the kernel's send time (header.date, seconds since the epoch)
    display_id: str
    text: str  # the answer as shown (empty for the status line)
    wire_bytes: int
    final: bool


@dataclass(frozen=True, slots=True)
class CommUpdate:
    sent: float  # the kernel's send time (seconds since the epoch)
    comm_id: str
    state: dict[str, Any]
    wire_bytes: int


@dataclass
class CellLog:
    reply: asyncio.Future[float]
    first_token: bool = False
    final_text: str | None = None
    displays: list[Display] = field(default_factory=list)
    stdout: str = ""


class Kernel:
    """A kernel and two reader tasks that file every message by the cell it belongs to."""

    def __init__(self) -> None:
        self.manager = AsyncKernelManager(kernel_name="python3")
        self.cells: dict[str, CellLog] = {}
        self.comms: list[CommUpdate] = []  # widget state updates, in the order they came
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
            cell = self._cell(msg["parent_header"].get("msg_id", ""))
            if kind == "stream" and msg["content"]["name"] == "stdout":
                cell.stdout += msg["content"]["text"]
            if kind == "comm_msg" and msg["content"]["data"].get("method") == "update":
                update = CommUpdate(
                    _sent(msg), msg["content"]["comm_id"], msg["content"]["data"]["state"],
                    wire_bytes(msg),
                )  # fmt: skip
                self.comms.append(update)
            if kind not in ("display_data", "update_display_data"):
                continue
            content = msg["content"]
            display_id = content.get("transient", {}).get("display_id", "")
            data = content["data"]
            final = bool(content.get("metadata", {}).get("jupyter_llm", {}).get("final"))
            shown = ""
            if not display_id.endswith("-status"):
                shown = str(data.get("text/plain", data.get("text/markdown", "")))
                shown = shown.removesuffix("\n```")  # a code block closed while it streams
                cell.first_token = cell.first_token or bool(shown)
                if final:
                    cell.final_text = data.get("text/plain", "")
            cell.displays.append(Display(_sent(msg), display_id, shown, wire_bytes(msg), final))

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


def _sent(msg: dict[str, Any]) -> float:
    sent = msg["header"]["date"]
    return (sent if isinstance(sent, datetime) else datetime.fromisoformat(sent)).timestamp()


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
    kernel: Kernel, server: JupyterServer, streams: int, sizes: Sizes
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


class Arrivals:
    """When each piece of a job's text reached a client of the server: (time, characters
    so far), read from the job's SSE stream while the kernel follows the same job."""

    def __init__(self, server: JupyterServer | None = None, job_id: str = "") -> None:
        self.seen: list[tuple[float, int]] = []
        if server is not None:
            self.task = asyncio.create_task(self._read(server, job_id))

    @classmethod
    def of(cls, seen: list[tuple[float, int]]) -> Arrivals:
        arrivals = cls()
        arrivals.seen = [(float(at), int(size)) for at, size in seen]
        return arrivals

    async def _read(self, server: JupyterServer, job_id: str) -> None:
        headers = {"Authorization": f"token {server.token}"}
        size = 0
        url = f"{server.url}llm/api/jobs/{job_id}/events"
        async with (
            httpx.AsyncClient(headers=headers, timeout=None) as http,
            http.stream("GET", url) as response,
        ):
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event["text"]:
                        size += len(event["text"])
                        self.seen.append((time.time(), size))
                    if event["status"] not in ("queued", "running"):
                        break

    def first_beyond(self, size: int) -> float | None:
        return next((at for at, total in self.seen if total > size), None)


@dataclass(frozen=True, slots=True)
class Streaming:
    label: str
    answer_bytes: int
    tokens_per_second: float  # the generation's own pace
    updates: int
    gaps: list[float]  # seconds between answer updates while tokens arrive
    lags: list[tuple[bool, float]]  # (past 16 KB, seconds) before each answer update
    bytes_per_second: float  # display messages (answer and status) while streaming

    def lag_max(self, large: bool) -> float:
        return max((lag for big, lag in self.lags if big == large), default=math.nan)

    def lag_p99(self) -> float:
        return percentile([lag for _, lag in self.lags], 99)


async def streaming(
    kernel: Kernel, server: JupyterServer | None, label: str, code: str
) -> Streaming:
    msg_id = kernel.execute(code)
    cell = kernel.cells[msg_id]
    await cell.reply

    def answers() -> list[str]:
        return [d.display_id for d in cell.displays if not d.display_id.endswith("-status")]

    await kernel.until(lambda: bool(answers()), 30, "the answer's first display")
    answer_id = answers()[0]
    job_id = answer_id.removeprefix("jupyter_llm-")
    if server is not None:
        arrivals = Arrivals(server, job_id)
    else:
        await kernel.run(WATCH.format(job_id=job_id))
    await kernel.until(lambda: cell.final_text is not None, 120, "the final paint")
    if server is not None:
        await asyncio.wait_for(arrivals.task, 30)
    else:
        seen = await kernel_value(kernel, f"_bench_arrivals.pop({job_id!r}).result(30)")
        arrivals = Arrivals.of(seen)
    await asyncio.sleep(0.3)  # nothing more should come; let stragglers in
    record = await kernel_value(kernel, f"_Client.default().get({job_id!r}).to_dict()")
    answer = [d for d in cell.displays if d.display_id == answer_id][1:]  # updates only
    first_beyond = arrivals.first_beyond
    lags: list[tuple[bool, float]] = []
    before = 0
    for update in answer:
        first = first_beyond(before)
        if first is not None and len(update.text) > before:
            lags.append((before > LARGE, update.sent - first))
        before = len(update.text)
    gaps = [b.sent - a.sent for a, b in itertools.pairwise(answer)]
    start, end = answer[0].sent, answer[-1].sent
    sent = sum(d.wire_bytes for d in cell.displays if start < d.sent <= end)
    timings = record["timings"]
    span = timings["finished_at"] - timings["first_token_at"]
    return Streaming(
        label,
        len(record["text"].encode()),
        (record["usage"]["completion_tokens"] - 1) / span if span > 0 else math.nan,
        len(answer),
        gaps,
        lags,
        sent / (end - start) if end > start else math.nan,
    )


@dataclass(frozen=True, slots=True)
class WidgetStreaming:
    streaming: Streaming
    sent_bytes: int  # every comm message of the widget from the send to the answer's end

    @property
    def ratio(self) -> float:
        return self.sent_bytes / max(1, self.streaming.answer_bytes)


def _shown(state: dict[str, Any]) -> str:
    """The text a repaint of the chat shows (its HTML without tags), for the lag."""
    return html.unescape(re.sub(r"<[^>]+>", "", str(state["live"].get("html", "")))).strip()


async def widget_streaming(
    kernel: Kernel, server: JupyterServer | None, label: str, model: str, tokens: int
) -> WidgetStreaming:
    """One answer of ``tokens`` into a ChatWidget, measured from its comm messages."""
    name = f"_bench_chat_{model}_{tokens}"
    await kernel.run(
        f"{name} = ChatWidget({model!r}, max_tokens={tokens}, ignore_eos=True)\n"
        f"display({name}); _bench_answer = {name}.send({WORDS!r})"
    )
    comm_id, job_id = await kernel_value(kernel, f"[{name}.model_id, _bench_answer.id]")
    if server is not None:
        arrivals = Arrivals(server, job_id)
    else:
        await kernel.run(WATCH.format(job_id=job_id))

    def ours() -> list[CommUpdate]:
        return [u for u in list(kernel.comms) if u.comm_id == comm_id]

    await kernel.until(lambda: any(u.state.get("busy") is False for u in ours()), 120, label)
    if server is not None:
        await asyncio.wait_for(arrivals.task, 30)
    else:
        seen = await kernel_value(kernel, f"_bench_arrivals.pop({job_id!r}).result(30)")
        arrivals = Arrivals.of(seen)
    await asyncio.sleep(0.3)
    record = await kernel_value(kernel, f"_Client.default().get({job_id!r}).to_dict()")
    updates = ours()
    start = next(u.sent for u in updates if u.state.get("busy") is True)
    end = next(u.sent for u in updates if u.state.get("busy") is False)
    paints = [u for u in updates if u.state.get("live")]
    lags: list[tuple[bool, float]] = []
    before = 0
    for paint in paints if model == "fake" else ():
        shown = len(_shown(paint.state))
        first = arrivals.first_beyond(before)
        if first is not None and shown > before:
            lags.append((before > LARGE, paint.sent - first))
        before = shown
    during = [u for u in updates if start <= u.sent <= end]
    sent = sum(u.wire_bytes for u in during)
    timings = record["timings"]
    span = timings["finished_at"] - timings["first_token_at"]
    streamed = Streaming(
        label,
        len(record["text"].encode()),
        (record["usage"]["completion_tokens"] - 1) / span if span > 0 else math.nan,
        len(paints),
        [b.sent - a.sent for a, b in itertools.pairwise(paints)],
        lags,
        sent / (end - start) if end > start else math.nan,
    )
    await kernel.run(f"{name}.close(); del {name}")
    return WidgetStreaming(streamed, sent)


async def kernel_value(kernel: Kernel, expression: str) -> Any:
    """The value of a Python expression in the kernel (through JSON on stdout)."""
    msg_id = kernel.execute(f"print(__import__('json').dumps({expression}))")
    await kernel.cells[msg_id].reply
    await kernel.until(lambda: "\n" in kernel.cells[msg_id].stdout, 10, expression)
    return json.loads(kernel.cells[msg_id].stdout)


# In the kernel (embedded pool): a second follower of the job on the client's loop, which
# notes when each piece of text reaches the kernel (replayed pieces count as arriving now).
WATCH = """
import time as _time

async def _bench_watch(job_id):
    seen, size = [], 0
    async for event in _Client.default().backend.events(job_id):
        if event.text:
            size += len(event.text)
            seen.append((_time.time(), size))
        if event.terminal:
            return seen

_bench_arrivals = globals().get("_bench_arrivals", {{}})
_bench_arrivals[{job_id!r}] = _Client.default().loop.spawn(_bench_watch({job_id!r}))
"""


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
    streams: list[Streaming] = field(default_factory=list)
    widget: list[WidgetStreaming] = field(default_factory=list)


async def measure(mode: str, config: Path, folder: Path, sizes: Sizes, parts: set[str]) -> Report:
    server = None
    if mode == "server":
        server = JupyterServer(
            folder / f"{mode}-server",
            config=config,
            base_url=BASE_URL,
            argv=["--ServerApp.jpserver_extensions={'jupyter_llm': True}"],
        )
    kernel = Kernel()
    runtime = folder / f"{mode}-kernel-runtime"
    runtime.mkdir(parents=True)
    try:
        if server is not None:
            server.start(timeout=120)
            env = base_env(runtime, JUPYTER_LLM_URL=server.url, JUPYTER_LLM_TOKEN=server.token)
        else:
            env = base_env(runtime, JUPYTER_LLM_CONFIG=str(config))
        await kernel.start(env, folder)
        await kernel.run("%load_ext jupyter_llm\nfrom jupyter_llm.kernel import Client as _Client")
        # Warm up: models loaded (embedded), connections open, code paths imported.
        await kernel.run("%%llm -m tiny -n 32 --wait\nwarm up")
        await kernel.run("%%llm -m fake -n 4 --wait\nwarm up")
        report = Report(mode, "jupyter-server" if server else "embedded pool in the kernel")
        for streams in (0, 1, 4) if "latency" in parts else ():
            samples, rounds = await latencies(kernel, streams, sizes)
            label = f"{streams} `%%llm` cell{'' if streams == 1 else 's'} streaming"
            if streams:
                label += f" ({rounds} round{'s' if rounds > 1 else ''} of streams)"
            report.rows.append(Row(label, samples, streams))
        if server is not None and "latency" in parts:
            samples = await latencies_elsewhere(kernel, server, 4, sizes)
            label = "control: 4 jobs streaming to another process (the machine's load only)"
            report.rows.append(Row(label, samples, 4, in_kernel=False))
        cases = [
            ("fake", 300, f"%%llm -m fake -n 300 -p ignore_eos=true\n{WORDS}"),
            ("fake", 2000, f"%%llm -m fake -n 2000 -p ignore_eos=true\n{WORDS}"),
            ("tiny", 300, "%%llm -m tiny -n 300 -p ignore_eos=true\nTell me a story."),
            ("tiny", 1900, "%%llm -m tiny -n 1900 -p ignore_eos=true\nTell me a story."),
        ]
        for model, tokens, code in cases if "streaming" in parts else ():
            label = f"{model}, {tokens:,} tokens"
            report.streams.append(await streaming(kernel, server, label, code))
        if "widget" in parts:
            await kernel.run("from jupyter_llm import ChatWidget")
        for model, tokens, _ in cases if "widget" in parts else ():
            label = f"{model}, {tokens:,} tokens"
            report.widget.append(await widget_streaming(kernel, server, label, model, tokens))
        return report
    finally:
        await kernel.stop()
        if server is not None:
            server.stop()


def print_report(report: Report) -> None:
    print(f"\n### {report.mode}: the kernel talks to the {report.where}")
    if report.rows:
        print_latency(report.rows)
    if report.streams:
        print_streaming(report.streams)
    if report.widget:
        print_widget(report.widget)


def print_latency(rows: list[Row]) -> None:
    print("\n| `1+1` cell latency, while | p50 ms | p99 ms | max ms | samples |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        ms = [s * 1000 for s in row.samples]
        print(
            f"| {row.label} | {percentile(ms, 50):.1f} | {percentile(ms, 99):.1f} | "
            f"{max(ms, default=math.nan):.1f} | {len(ms)} |"
        )
    four = next(row.samples for row in rows if row.streams == 4 and row.in_kernel)
    p99 = percentile([s * 1000 for s in four], 99)
    print(
        f"\ntarget `1+1` p99 <= {LATENCY_TARGET_MS:.0f} ms while 4 cells stream: {p99:.1f} ms "
        f"({'met' if p99 <= LATENCY_TARGET_MS else 'MISSED'})"
    )


def print_streaming(streams: list[Streaming]) -> None:
    print(
        "\n| answer streaming into its cell | bytes | tok/s | updates "
        "| update gap p50 / p99 / max ms | lag max, <= 16 KB / beyond ms | lag p99 ms "
        "| display KB/s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for t in streams:
        gaps = [g * 1000 for g in t.gaps]
        beyond = t.lag_max(True) * 1000
        print(
            f"| {t.label} | {t.answer_bytes:,} | {t.tokens_per_second:.0f} | {t.updates} | "
            f"{percentile(gaps, 50):.0f} / "
            f"{percentile(gaps, 99):.0f} / {max(gaps, default=math.nan):.0f} | "
            f"{t.lag_max(False) * 1000:.0f} / {'-' if math.isnan(beyond) else f'{beyond:.0f}'} | "
            f"{t.lag_p99() * 1000:.0f} | {t.bytes_per_second / 1000:.1f} |"
        )
    print()
    for large in (False, True):
        lags = [t.lag_max(large) for t in streams if not math.isnan(t.lag_max(large))]
        worst = max(lags, default=math.nan)
        target = LAG_TARGET[large]
        print(
            f"target lag <= {target:.1f} s ({'beyond' if large else 'up to'} 16 KB): "
            f"{worst:.3f} s ({'met' if worst <= target else 'MISSED'})"
        )
    rate = max(t.bytes_per_second for t in streams)
    print(
        f"target display traffic <= ~{RATE_TARGET // 1000} KB/s per cell: {rate / 1000:.1f} KB/s "
        f"({'met' if rate <= RATE_TARGET else 'MISSED'})"
    )


def print_widget(widget: list[WidgetStreaming]) -> None:
    print(
        "\n| answer streaming into the chat widget | bytes | tok/s | repaints "
        "| repaint gap p50 / p99 / max ms | lag max, <= 16 KB / beyond ms "
        "| comm KB/s | bytes sent per answer byte |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for w in widget:
        t = w.streaming
        gaps = [g * 1000 for g in t.gaps]
        small, beyond = t.lag_max(False) * 1000, t.lag_max(True) * 1000
        print(
            f"| {t.label} | {t.answer_bytes:,} | {t.tokens_per_second:.0f} | {t.updates} | "
            f"{percentile(gaps, 50):.0f} / {percentile(gaps, 99):.0f} / "
            f"{max(gaps, default=math.nan):.0f} | "
            f"{'-' if math.isnan(small) else f'{small:.0f}'} / "
            f"{'-' if math.isnan(beyond) else f'{beyond:.0f}'} | "
            f"{t.bytes_per_second / 1000:.1f} | {w.ratio:.1f} |"
        )
    print()
    for large in (False, True):
        lags = [w.streaming.lag_max(large) for w in widget]
        worst = max((lag for lag in lags if not math.isnan(lag)), default=math.nan)
        if not math.isnan(worst):
            target = LAG_TARGET[large]
            print(
                f"target chat lag <= {target:.1f} s ({'beyond' if large else 'up to'} 16 KB): "
                f"{worst:.3f} s ({'met' if worst <= target else 'MISSED'})"
            )
    rate = max(w.streaming.bytes_per_second for w in widget)
    print(
        f"target chat traffic <= ~{RATE_TARGET // 1000} KB/s: {rate / 1000:.1f} KB/s "
        f"({'met' if rate <= RATE_TARGET else 'MISSED'})"
    )


async def main_async(modes: list[str], sizes: Sizes, parts: set[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="jupyter_llm-kernel-bench-") as tmp:
        folder = Path(tmp)
        config = write_config(folder)
        print(
            f"# kernel benchmark: {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}"
        )
        for mode in modes:
            print_report(await measure(mode, config, folder, sizes, parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples per row")
    parser.add_argument("--mode", choices=["server", "embedded", "both"], default="server")
    parser.add_argument("--part", choices=["latency", "streaming", "widget", "all"], default="all")
    args = parser.parse_args()
    modes = ["server", "embedded"] if args.mode == "both" else [args.mode]
    parts = {"latency", "streaming", "widget"} if args.part == "all" else {args.part}
    asyncio.run(main_async(modes, QUICK if args.quick else FULL, parts))


if __name__ == "__main__":
    main()
