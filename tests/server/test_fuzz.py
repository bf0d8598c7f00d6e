"""Schema fuzzing: schemathesis drives every operation of the served OpenAPI document against
a real `jupyter server` with the tiny model and token auth.

Bounded for CI: at most 50 examples an operation and ``FUZZ_SECS`` in all. Checked on every
answer: no 5xx, the documented status codes, content types, headers and bodies (SSE events
included), schema-invalid input refused with a 4xx, no operation open without the token.
Afterwards the server is healthy: the same worker processes serve a normal request at once,
and its log holds no traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jupyter_llm.testing import JupyterServer

from ..support import TINY, tiny_entry
from .live import record, write_config

FUZZ_SECS = int(os.environ.get("JUPYTER_LLM_FUZZ_SECS", "120"))
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance,negative_data_rejection,"
    "ignored_auth"
)
SCHEMATHESIS = "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())"


@pytest.mark.slow
@pytest.mark.timeout(FUZZ_SECS + 480)
def test_fuzzing_every_operation_finds_no_fault(tmp_path: Path, tiny_model_dir: Path) -> None:
    config = {
        "parking_lot": {
            "pool": {"worker_threads": 1},
            "limits": {"timeout_secs": 20, "max_queue_depth": 64},
        },
        "models": [
            tiny_entry(tiny_model_dir, max_tokens=8),
            {"name": "fake", "backend": "fake", "params": {"max_tokens": 8}},
        ],
    }
    server = JupyterServer(tmp_path, config=write_config(tmp_path, config), drain_secs=2.0)
    server.start(timeout=300)
    try:
        workers = sorted(server.worker_pids())
        argv = [
            sys.executable, "-c", SCHEMATHESIS, "run", f"{server.url}llm/api/openapi.json",
            "--header", f"Authorization: token {server.token}", "--checks", CHECKS,
            "--max-examples", "50", "--max-time", str(FUZZ_SECS), "--workers", "1",
            "--request-timeout", "60", "--seed", "20261130", "--no-shrink",
            "--generation-database", "none", "--output-truncate", "false",
        ]  # fmt: skip
        run = subprocess.run(
            argv,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=FUZZ_SECS + 120,
        )
        report = run.stdout + run.stderr
        assert run.returncode == 0, report[-20000:]
        selected = re.search(r"Operations:\s+(\d+) selected / (\d+) total", report)
        assert selected is not None and selected[1] == selected[2], report[-3000:]
        for phase in ("Coverage", "Fuzzing", "Stateful"):
            assert f"✅  {phase}" in report, report[-3000:]
        generated = re.search(r"(\d+) generated", report)
        record("schema fuzzing", cases=int(generated[1]) if generated else 0, server_errors=0)

        # Healthy afterwards: the same workers, and a normal request is served at once.
        assert sorted(server.worker_pids()) == workers
        with server.client() as client:
            started = time.monotonic()
            assert client.get("llm/api/status").status_code == 200
            reply = client.post(
                "llm/v1/chat/completions",
                json={"model": TINY, "messages": [{"role": "user", "content": "Hello"}]},
            )
            assert reply.status_code == 200, reply.text
            assert time.monotonic() - started < 10
            assert all(m["state"] == "ready" for m in server.models().values())
    finally:
        server.stop()
    log = server.log.read_text()
    assert "Traceback" not in log, log[log.find("Traceback") - 2000 :][:6000]
