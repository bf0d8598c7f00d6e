"""Faults on a real server: a worker killed with -9, the server killed with -9 (sqlite
mailbox and queue persistence) and stopped with SIGTERM while jobs run, and models whose
files are missing or corrupt. Nothing is lost: every record is there afterwards, with a
status that says what happened.

After ``kill -9`` of the server, jobs that were running run again from the start (their
request is kept with the queue; a partial answer is dropped, as a half-made answer cannot
be resumed across a restart), and queued jobs run as they would have.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from jupyter_llm.testing import JupyterServer

from .live import alive, record, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CHAT = "llm/v1/chat/completions"


def fake(**limits: Any) -> dict[str, Any]:
    """The fake engine in a real worker process: 100 tokens a second, one sequence at a time."""
    entry: dict[str, Any] = {
        "name": "fake",
        "backend": "fake",
        "params": {"max_tokens": 20, "max_num_seqs": 1},
    }
    if limits:
        entry["parking_lot"] = {"limits": limits}
    return entry


def durable(tmp_path: Path, persistence: bool) -> dict[str, Any]:
    return {
        "pool": {"worker_threads": 1},
        "queue": {"backend": "sqlite", "persistence": persistence},
        "mailbox": {"backend": "sqlite", "path": str(tmp_path / "mailbox.sqlite")},
    }


def submit(client: httpx.Client, prompt: str, max_tokens: int) -> str:
    body = {"model": "fake", "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True}
    response = client.post("llm/api/jobs", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def until(condition: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def records(client: httpx.Client) -> dict[str, dict[str, Any]]:
    jobs = client.get("llm/api/jobs", params={"limit": 1000}).json()["jobs"]
    return {job["id"]: job for job in jobs}


def test_kill_9_a_worker_mid_generation(tmp_path: Path) -> None:
    config = {"parking_lot": {"pool": {"worker_threads": 1}}, "models": [fake()]}
    server = JupyterServer(
        tmp_path, config=write_config(tmp_path, config), drain_secs=2.0, ready_models=("fake",)
    ).start(timeout=300)
    try:
        with server.client() as client:
            running = submit(client, "long story", 2000)
            queued = submit(client, "waits its turn", 5)
            until(lambda: client.get(f"llm/api/jobs/{running}").json()["text"], 30, "tokens")
            (pid,) = server.worker_pids()
            os.kill(pid, signal.SIGKILL)
            until(
                lambda: client.get(f"llm/api/jobs/{running}").json()["status"] == "failed",
                10,
                "the running job fails",
            )
            lost = client.get(f"llm/api/jobs/{running}").json()
            assert lost["error_type"] == "WorkerLost" and "exit code -9" in lost["error"]
            served_again = until(
                lambda: client.post(CHAT, json=chat("again")).status_code == 200,
                10,
                "served again",
            )
            assert client.get(f"llm/api/jobs/{queued}").json()["status"] in (
                "running",
                "completed",
            )
            assert not alive(pid) and server.worker_pids() != [pid]
        record("kill -9 a worker", served_again_s=served_again, lost_records=0)
    finally:
        server.stop()


def chat(text: str) -> dict[str, Any]:
    return {"model": "fake", "messages": [{"role": "user", "content": text}], "max_tokens": 2}


def test_kill_9_the_server_keeps_every_record_and_runs_the_queue(tmp_path: Path) -> None:
    config = {"parking_lot": durable(tmp_path, persistence=True), "models": [fake()]}
    path = write_config(tmp_path, config)
    server = JupyterServer(tmp_path, config=path, drain_secs=2.0, ready_models=("fake",)).start(
        timeout=300
    )
    try:
        with server.client() as client:
            finished = [submit(client, f"done {i}", 3) for i in range(3)]
            until(
                lambda: all(records(client)[j]["status"] == "completed" for j in finished),
                30,
                "the first jobs finish",
            )
            before = records(client)
            running = submit(client, "long story", 3000)
            queued = [submit(client, f"queued {i}", 4) for i in range(3)]
            until(lambda: records(client)[running]["text"], 30, "the long job streams")
            time.sleep(0.5)  # let the mailbox's writer commit the running state
            workers = server.worker_pids()
        assert server.signal(signal.SIGKILL) == -signal.SIGKILL
        # Its workers see the pipe close and exit on their own.
        until(lambda: not any(alive(pid) for pid in workers), 20, "orphaned workers exit")

        server.start(timeout=300)
        with server.client() as client:
            until(
                lambda: all(
                    records(client)[j]["status"] == "completed" for j in [running, *queued]
                ),
                60,
                "the recovered jobs finish",
            )
            after = records(client)
        for job_id in finished:
            assert after[job_id] == before[job_id]  # intact, field for field
        assert after[running]["usage"]["completion_tokens"] == 3000  # ran again, whole
        lost = {*finished, running, *queued} - after.keys()
        assert not lost
        record("kill -9 the server", records=len(after), lost_records=len(lost), rerun=1)
    finally:
        server.stop()


def test_sigterm_drains_then_cancels_and_leaves_no_process(tmp_path: Path) -> None:
    config = {"parking_lot": durable(tmp_path, persistence=False), "models": [fake()]}
    path = write_config(tmp_path, config)
    server = JupyterServer(tmp_path, config=path, drain_secs=1.0, ready_models=("fake",)).start(
        timeout=300
    )
    try:
        with server.client() as client:
            short = submit(client, "short", 20)  # 0.2 s: done within the drain
            long = submit(client, "long", 5000)  # 50 s: cancelled at the drain's end
            waiting = submit(client, "waiting", 5)
            until(lambda: records(client)[short]["status"] != "queued", 10, "short starts")
            workers = server.worker_pids()
        started = time.monotonic()
        assert server.signal(signal.SIGTERM) == 0
        took = time.monotonic() - started
        assert took < 1.0 + 10, took  # the drain, then a prompt exit
        assert not any(alive(pid) for pid in workers)

        server.start(timeout=300)
        with server.client() as client:
            after = records(client)
        assert after[short]["status"] == "completed"
        assert after[long]["status"] == "cancelled"
        assert after[waiting]["status"] in ("cancelled", "completed")
        record("SIGTERM with jobs in flight", stop_s=took, lost_records=0)
    finally:
        server.stop()


def test_missing_and_corrupt_model_files_fail_that_model_only(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text('{"model_type": "llama", "hidden_size": ')
    (corrupt / "model.safetensors").write_bytes(b"\x00not weights")
    config = {
        "parking_lot": {"pool": {"worker_threads": 1}},
        "models": [
            fake(),
            {"name": "missing", "local_path": str(tmp_path / "nowhere")},
            {"name": "corrupt", "local_path": str(corrupt)},
        ],
    }
    server = JupyterServer(
        tmp_path, config=write_config(tmp_path, config), drain_secs=2.0, ready_models=("fake",)
    ).start(timeout=300)
    try:
        until(
            lambda: all(m["state"] == "error" for n, m in server.models().items() if n != "fake"),
            240,
            "the broken models report error",
        )
        models = server.models()
        assert "nowhere" in models["missing"]["error"]
        assert models["corrupt"]["error"]
        with server.client() as client:
            assert client.post(CHAT, json=chat("fine")).status_code == 200
            refused = client.post(CHAT, json={**chat("x"), "model": "corrupt"})
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "model_not_ready"
        record("missing and corrupt model files", models_in_error=2, lost_records=0)
    finally:
        server.stop()
