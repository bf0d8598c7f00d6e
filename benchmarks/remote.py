"""A remote engine's cost: vLLM straight, and vLLM through jupyter_llm (`backend: openai`).

    python benchmarks/remote.py [--vllm-venv DIR] [--streams 1,8,16] [--tokens 128]
                                [--rounds 2] [--upstream URL | --fake-upstream]

One run, side by side, on 127.0.0.1 only:
1. `vllm serve` from the venv that scripts/setup_vllm.sh made (SmolLM2, float32, CPU), or the
   OpenAI server at ``--upstream`` (its /v1; it must serve the model as ``m``), or with
   ``--fake-upstream`` a jupyter_llm serving the fake engine (what the proxy itself adds);
2. a `jupyter server` subprocess whose models.yaml has one `backend: openai` model in front
   of it;
3. at 1, 8 and 16 concurrent chat streams (``ignore_eos``: every stream makes ``--tokens``
   tokens): aggregate tok/s and time to first token straight to vLLM and through jupyter_llm,
   the two in turns within each round (so that the load of a busy machine hits both alike),
   while another process polls ``GET llm/api/status`` of jupyter_llm every 20 ms (in both
   turns, so that its CPU weighs on both alike; its latencies count in the proxied turn).
Prints one table. Targets (docs/design.md): throughput through jupyter_llm >= 0.95x direct; time
to first token <= direct + 10 ms (p50); status-poll p99 <= 10 ms under 16 streams.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import yaml
from common import free_port, percentile
from server import MODEL, MS, Poller, Server, cpu_secs, httpx_stream, start_jupyter, wait_ready

VENV_ENV = "JUPYTER_LLM_VLLM_VENV"
KEY_ENV = "JUPYTER_LLM_BENCH_UPSTREAM_KEY"
THROUGHPUT_TARGET = 0.95
TTFT_TARGET_MS = 10.0
LAG_TARGET_MS = 10.0
PROMPTS = ["a cat", "a dog", "a fox", "an owl", "a bear", "a deer", "a wolf", "a hare"]


def vllm_model_dir(venv: Path) -> Path:
    """The model folder scripts/setup_vllm.sh converted (named in its READY marker)."""
    ready = venv / "READY"
    if not ready.is_file():
        raise SystemExit(f"{ready} is missing: run scripts/setup_vllm.sh {venv} first")
    for line in ready.read_text().splitlines():
        if line.startswith("model_dir:"):
            return Path(line.split(":", 1)[1].strip())
    raise SystemExit(f"{ready} names no model_dir")


def start_vllm(venv: Path, tmp: Path, timeout: float = 1200, dtype: str = "float32") -> Server:
    """`vllm serve` in its own process group (its engine core and workers stop with it)."""
    port = free_port()
    argv = [
        str(venv / "bin" / "vllm"), "serve", str(vllm_model_dir(venv)),
        "--served-model-name", MODEL, "--dtype", dtype, "--max-model-len", "2048",
        "--gpu-memory-utilization", "0.3", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    log = (tmp / f"vllm-{dtype}.log").open("wb")
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2"}
    process = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    server = GroupServer(
        "vllm", process, port, f"http://127.0.0.1:{port}/v1", "/v1/models", {}, MODEL
    )
    wait_ready(server, "/v1/models", MODEL.encode(), tmp / f"vllm-{dtype}.log", timeout)
    return server


class GroupServer(Server):
    """A server started in its own session: stopping it stops its whole process group."""

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)  # the group of the PID we started
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


def start_fake_upstream(tmp: Path) -> Server:
    """A jupyter_llm serving the fake engine as ``m`` (10 ms a token): no model noise, so
    what the proxy adds stands out."""
    folder = tmp / "upstream"
    folder.mkdir()
    config = folder / "upstream.yaml"
    config.write_text(
        yaml.safe_dump(
            {"models": [{"name": MODEL, "backend": "fake", "params": {"max_num_seqs": 64}}]}
        )
    )
    server = start_jupyter(config, folder)
    os.environ[KEY_ENV] = server.headers["Authorization"].split()[1]
    return server


def proxy_config(upstream: str, tmp: Path, streams: int) -> Path:
    entry: dict[str, object] = {
        "name": MODEL,
        "backend": "openai",
        "base_url": upstream,
        "params": {"max_num_seqs": max(streams, 1), "max_model_len": 2048},
    }
    if KEY_ENV in os.environ:
        entry["api_key_env"] = KEY_ENV
    data = {"parking_lot": {"pool": {"worker_threads": 1}}, "models": [entry]}
    path = tmp / "proxy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@dataclass
class Load:
    """Streams read at one concurrency: aggregate tokens a second and each time to first."""

    tok_s: float
    ttft: list[float]


async def load(server: Server, streams: int, tokens: int) -> Load:
    limits = httpx.Limits(max_connections=streams + 4)
    async with httpx.AsyncClient(
        base_url=server.v1 + "/", headers=server.headers, timeout=600, limits=limits
    ) as client:
        start = time.perf_counter()
        results = await asyncio.gather(
            *(
                httpx_stream(client, MODEL, f"Tell me about {PROMPTS[i % len(PROMPTS)]}.", tokens)
                for i in range(streams)
            )
        )
        wall = time.perf_counter() - start
    return Load(sum(count for _, count in results) / wall, [first for first, _ in results])


@dataclass
class Row:
    streams: int
    direct: list[Load]
    proxied: list[Load]
    status: list[float]
    proxy_cpu: float = 0.0  # CPU seconds the proxy's process used for its streams
    proxy_tokens: int = 0

    def cells(self) -> list[str]:
        direct = sum(x.tok_s for x in self.direct) / len(self.direct)
        proxied = sum(x.tok_s for x in self.proxied) / len(self.proxied)
        ttft_direct = percentile([t for x in self.direct for t in x.ttft], 50) * MS
        ttft_proxied = percentile([t for x in self.proxied for t in x.ttft], 50) * MS
        return [
            str(self.streams),
            f"{direct:.1f}",
            f"{proxied:.1f}",
            f"{proxied / direct:.3f}",
            f"{ttft_direct:.1f}",
            f"{ttft_proxied:.1f}",
            f"{ttft_proxied - ttft_direct:+.1f}",
            f"{percentile(self.status, 50) * MS:.1f}",
            f"{percentile(self.status, 99) * MS:.1f}",
            f"{self.proxy_cpu / max(self.proxy_tokens, 1) * 1e6:.0f}",
        ]


HEADER = [
    "streams", "direct tok/s", "proxied tok/s", "ratio", "TTFT direct p50 ms",
    "TTFT proxied p50 ms", "added ms", "status p50 ms", "status p99 ms", "proxy CPU us/token",
]  # fmt: skip


def measure(vllm: Server, proxy: Server, streams: int, tokens: int, rounds: int) -> Row:
    row = Row(streams, [], [], [])
    for index in range(rounds):
        order = [vllm, proxy] if index % 2 == 0 else [vllm, proxy][::-1]
        for server in order:
            # The poll runs in both turns: its CPU loads the machine alike for both.
            cpu = cpu_secs(proxy.process.pid)
            with Poller(proxy) as poller:
                result = asyncio.run(load(server, streams, tokens))
            if server is proxy:
                row.proxy_cpu += cpu_secs(proxy.process.pid) - cpu  # its polls included
                row.proxy_tokens += streams * tokens
                row.status.extend(poller.latencies)
                row.proxied.append(result)
            else:
                row.direct.append(result)
    return row


def table(rows: list[Row]) -> str:
    lines = [HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in lines
    )


def verdict(rows: list[Row]) -> list[str]:
    notes = []
    for row in rows:
        cells = row.cells()
        ratio, added, p99 = float(cells[3]), float(cells[6]), float(cells[8])
        notes.append(
            f"{row.streams:>2} streams: throughput {ratio:.3f}x "
            f"({'meets' if ratio >= THROUGHPUT_TARGET else 'misses'} >= {THROUGHPUT_TARGET}x), "
            f"TTFT {added:+.1f} ms ({'meets' if added <= TTFT_TARGET_MS else 'misses'} "
            f"<= {TTFT_TARGET_MS:g} ms), status p99 {p99:.1f} ms "
            f"({'meets' if p99 <= LAG_TARGET_MS else 'misses'} <= {LAG_TARGET_MS:g} ms)"
        )
    return notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--vllm-venv", type=Path, default=Path(os.environ.get(VENV_ENV, "/work/vllm-venv"))
    )
    parser.add_argument("--upstream", help="an OpenAI server's /v1 instead of starting vLLM")
    parser.add_argument(
        "--fake-upstream",
        action="store_true",
        help="a jupyter_llm with the fake engine as the upstream (the proxy's own cost)",
    )
    parser.add_argument("--streams", default="1,8,16")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    streams = [int(s) for s in args.streams.split(",")]
    started: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="jupyter_llm-remote-") as folder:
        tmp = Path(folder)
        try:
            if args.fake_upstream:
                upstream = start_fake_upstream(tmp)
                started.append(upstream)
            elif args.upstream:
                url = args.upstream.rstrip("/")
                upstream = Server("upstream", None, 0, url, "", {}, MODEL)  # type: ignore[arg-type]
            else:
                began = time.monotonic()
                upstream = start_vllm(args.vllm_venv, tmp)
                started.append(upstream)
                print(f"vllm serve ready in {time.monotonic() - began:.0f} s", flush=True)
            proxy = start_jupyter(proxy_config(upstream.v1, tmp, max(streams)), tmp)
            proxy = replace(proxy, probe="/llm/api/status")
            started.append(proxy)
            for server in (upstream, proxy):  # warm both paths (connections, first compile)
                asyncio.run(load(server, 2, 8))
            rows = []
            for count in streams:
                rows.append(measure(upstream, proxy, count, args.tokens, args.rounds))
                print(f"{count} streams measured", flush=True)
        finally:
            for server in reversed(started):
                server.stop()
    print(f"\n{args.tokens} tokens a stream, {args.rounds} rounds, python {sys.version.split()[0]}")
    print(table(rows))
    print("\n".join(verdict(rows)))


if __name__ == "__main__":
    main()
