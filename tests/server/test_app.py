"""The extension's lifecycle: which models.yaml, start, busy, stop; and a real `jupyter server`."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from traitlets.config import Config

from jupyter_llm.config import DEFAULT_CONFIG
from jupyter_llm.server.app import LLMExtension
from jupyter_llm.server.collector import DEFERRED_THRESHOLD2
from jupyter_llm.testing import JupyterServer

from ..support import until
from .client import LLMServer
from .conftest import MODEL

ENABLED = {
    "ServerApp": {"jpserver_extensions": {"jupyter_llm": True, "jupyter_server_terminals": False}}
}


def write_models(path: Path, name: str) -> Path:
    path.write_text(yaml.safe_dump({"models": [{"name": name, "backend": "fake"}]}))
    return path


def extension_of(app: Any) -> LLMExtension:
    (extension,) = app.extension_manager.extension_apps["jupyter_llm"]
    assert isinstance(extension, LLMExtension)
    return extension


async def test_models_yaml_in_the_root_dir_is_used(
    jp_configurable_serverapp: Any, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JUPYTER_LLM_CONFIG", raising=False)
    write_models(jp_root_dir / "models.yaml", "rooted")
    extension = extension_of(jp_configurable_serverapp(config=Config(ENABLED)))
    assert extension.pool is not None
    assert extension.pool.config.names == ["rooted"]


async def test_the_environment_beats_the_root_dir(
    jp_configurable_serverapp: Any,
    jp_root_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_models(jp_root_dir / "models.yaml", "rooted")
    monkeypatch.setenv("JUPYTER_LLM_CONFIG", str(write_models(tmp_path / "env.yaml", "from-env")))
    extension = extension_of(jp_configurable_serverapp(config=Config(ENABLED)))
    assert extension.pool is not None
    assert extension.pool.config.names == ["from-env"]


async def test_the_trait_beats_the_environment(
    jp_configurable_serverapp: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_LLM_CONFIG", str(write_models(tmp_path / "env.yaml", "from-env")))
    trait = write_models(tmp_path / "trait.yaml", "from-trait")
    config = Config({**ENABLED, "LLMExtension": {"config_file": str(trait)}})
    extension = extension_of(jp_configurable_serverapp(config=config))
    assert extension.pool is not None
    assert extension.pool.config.names == ["from-trait"]


async def test_without_any_the_packaged_default_is_used(
    llm_extension: LLMExtension, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JUPYTER_LLM_CONFIG", raising=False)
    llm_extension.config_file = ""
    assert llm_extension.config_path() == DEFAULT_CONFIG


@pytest.mark.llm_config(fake={"params": {"block_size": 0}})
async def test_a_broken_config_leaves_the_server_up_and_says_why(llm: LLMServer) -> None:
    assert llm.extension.pool is None
    for method, path in [("GET", "llm/api/models"), ("POST", "llm/v1/completions")]:
        response = await llm.request(method, path, json={"model": MODEL, "prompt": "x"})
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "config_error"
        assert "models[0].params.block_size" in error["message"]
    assert (await llm.request("GET", "api/status")).status_code == 200  # the server itself


async def test_the_heap_is_frozen_once_the_server_has_started(
    jp_serverapp: Any, llm_extension: LLMExtension
) -> None:
    llm_extension.freeze_gc = True
    assert gc.get_freeze_count() == 0
    thresholds = gc.get_threshold()
    try:
        await jp_serverapp.extension_manager.start_extension("jupyter_llm")
        assert gc.get_freeze_count() > 10_000  # the server's objects, and this process's
        assert gc.get_threshold()[2] == DEFERRED_THRESHOLD2  # full collections while idle
        await llm_extension.stop_extension()
        assert gc.get_threshold() == thresholds
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


async def test_current_activity_reports_busy_while_jobs_run(llm: LLMServer) -> None:
    assert llm.extension.current_activity() is None
    job = await llm.submit(model=MODEL, prompt="long", max_tokens=300)
    activity = llm.extension.current_activity()
    assert activity is not None
    assert "1 jobs running" in activity[0]
    await llm.request("DELETE", f"llm/api/jobs/{job['id']}")
    await until(lambda: llm.extension.current_activity() is None)


async def test_stopping_cancels_jobs_and_leaves_no_worker_process(llm: LLMServer) -> None:
    # The remote model's worker is a thread in this process: only the fake ones are processes.
    pids = [w.pid for m in llm.pool.models() if m.backend == "fake" for w in m.workers]
    assert len(pids) == 2 and all(pids)  # fake and tight
    job = await llm.submit(model=MODEL, prompt="long", max_tokens=1000)
    started = time.monotonic()
    await llm.extension.stop_extension()
    assert time.monotonic() - started < 3  # drain_secs is 0.5
    assert (await llm.pool.get(job["id"])).status.value == "cancelled"
    for pid in pids:
        assert not alive(pid), pid


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


# -- a real `jupyter server`, enabled by the installed jupyter_server_config.d file ------------

LAUNCHER = (
    "import atexit, sys\n"
    "from jupyter_server.serverapp import main\n"
    "atexit.register(lambda: print('torch imported:', 'torch' in sys.modules, flush=True))\n"
    "sys.exit(main())\n"
)


@pytest.mark.slow  # a `jupyter server extension list` subprocess (about 10 s)
def test_jupyter_server_extension_list_shows_it_enabled(tmp_path: Path) -> None:
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "jupyter_server", "extension", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    lines = (out.stdout + out.stderr).splitlines()
    assert any("jupyter_llm" in line and "enabled" in line for line in lines), lines
    assert any("jupyter_llm" in line and "OK" in line for line in lines), lines


@contextmanager
def jupyter_server(tmp_path: Path, config: Path) -> Iterator[tuple[httpx.Client, list[str]]]:
    """A `jupyter server` subprocess (the shared launcher, wrapped to report at exit whether
    it imported torch); yields a client with its token, and (once the block ends and the
    server has been stopped with SIGTERM) its output in the list."""
    output: list[str] = []
    with JupyterServer(tmp_path, config=config, python=("-c", LAUNCHER)) as server:
        with server.client() as client:
            yield client, output
        server.stop()
        output.append(server.log_tail(chars=1_000_000))


def worker_pids(client: httpx.Client) -> list[int]:
    models = client.get("llm/api/models").json()["models"]
    return [w["pid"] for m in models for w in m["workers"] if w["pid"]]


@pytest.mark.slow
def test_a_real_jupyter_server_serves_and_stops_cleanly(tmp_path: Path) -> None:
    with jupyter_server(tmp_path, write_models(tmp_path / "models.yaml", MODEL)) as (
        client,
        output,
    ):
        started = time.monotonic()
        reply = client.post(
            "llm/v1/chat/completions",
            json={
                "model": MODEL,
                "messages": [{"role": "user", "content": "hi there"}],
                "max_tokens": 4,
            },
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"] == "hi there hi there"
        assert time.monotonic() - started < 1
        pids = worker_pids(client)
    assert "torch imported: False" in output[0], output[0][-3000:]
    assert pids and not any(alive(pid) for pid in pids)


@pytest.mark.slow
def test_the_real_engine_streams_what_it_answers(tmp_path: Path, tiny_model_dir: Path) -> None:
    config = tmp_path / "models.yaml"
    entry = {"name": "tiny", "local_path": str(tiny_model_dir), "params": {"dtype": "float32"}}
    config.write_text(yaml.safe_dump({"models": [entry]}))
    with jupyter_server(tmp_path, config) as (client, output):
        v1 = str(client.base_url) + "llm/v1"
        token = client.headers["Authorization"].split()[1]
        with openai.OpenAI(base_url=v1, api_key=token, max_retries=0) as oai:
            for messages in ([{"role": "user", "content": "The quick brown fox"}], CHAT_TWO):
                params: dict[str, Any] = {
                    "model": "tiny",
                    "messages": messages,
                    "max_tokens": 24,
                    "temperature": 0,
                }
                whole = oai.chat.completions.create(**params)
                chunks = list(
                    oai.chat.completions.create(
                        **params, stream=True, stream_options={"include_usage": True}
                    )
                )
                text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                assert text == whole.choices[0].message.content
                finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
                assert [f for f in finishes if f] == [whole.choices[0].finish_reason]
                usage = chunks[-1].usage
                assert usage is not None and usage == whole.usage
                assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
            scored = oai.chat.completions.create(
                model="tiny",
                messages=[{"role": "user", "content": "The quick brown fox"}],
                max_tokens=6,
                temperature=0,
                logprobs=True,
                top_logprobs=2,
                extra_body={"ignore_eos": True},
            )
            content = scored.choices[0].logprobs.content  # type: ignore[union-attr]
            assert content is not None and len(content) == 6
            # A token that ends inside a character shows as U+FFFD on its own; the text holds
            # such bytes back until the character completes (and drops them at the end).
            joined = "".join(lp.token for lp in content).replace("\ufffd", "")
            answer = scored.choices[0].message.content or ""
            assert joined == answer.replace("\ufffd", "")
            assert all(lp.logprob <= 0 and len(lp.top_logprobs) == 2 for lp in content)
            long = oai.completions.create(
                model="tiny", prompt="a", max_tokens=5, extra_body={"ignore_eos": True}
            )
            assert long.choices[0].finish_reason == "length"
            assert long.usage is not None and long.usage.completion_tokens == 5
        workers = client.get("llm/api/models").json()["models"][0]["workers"]
        assert [(w["dtype"], w["matmul"]) for w in workers] == [("float32", "oneDNN packed")]
        pids = worker_pids(client)
    assert "torch imported: False" in output[0], output[0][-3000:]
    assert pids and not any(alive(pid) for pid in pids)


CHAT_TWO = [
    {"role": "system", "content": "You write short stories."},
    {"role": "user", "content": "A fox in the forest"},
]


def wait_for_models(client: httpx.Client, server: subprocess.Popen[str]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stdout.read() if server.stdout else ""
        try:
            response = client.get("llm/api/models")
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        assert response.status_code == 200, f"llm/api/models: {response.status_code} (enabled?)"
        models: list[dict[str, Any]] = response.json()["models"]
        if models and models[0]["state"] == "ready":
            return models
        time.sleep(0.05)
    raise AssertionError("the server did not serve llm/api/models within 60 s")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_first_start_shows_the_gguf_conversion_and_stops_without_leaks(tmp_path: Path) -> None:
    """The README's first start: the default model converts its GGUF file into an empty
    cache. The models route and the log say so while it happens; stopping the server
    afterwards leaves no semaphore behind (tqdm takes one in the worker that converts)."""
    cache = tmp_path / "cache"
    seen: list[dict[str, Any]] = []
    server = JupyterServer(tmp_path, config=DEFAULT_CONFIG, env={"JUPYTER_LLM_CACHE": str(cache)})
    server.start(wait=False)
    try:
        with server.client() as client:
            deadline = time.monotonic() + 500
            model: dict[str, Any] = {"state": "loading"}
            while model["state"] == "loading":
                assert time.monotonic() < deadline, seen[-3:]
                time.sleep(0.2)
                try:
                    model = client.get("llm/api/models").json()["models"][0]
                except (httpx.HTTPError, ValueError):
                    continue  # not listening yet
                if model["loading"] is not None:
                    seen.append(model["loading"])
        assert model["state"] == "ready" and model["loading"] is None, model
        assert all(w["load_secs"] > 0 for w in model["workers"] if w["state"] == "ready")
    finally:
        server.stop()
    output = [server.log_tail(chars=1_000_000)]
    phases = [loading["phase"] for loading in seen]
    assert phases[0] == "starting" and "converting GGUF" in phases, phases
    converting = next(loading for loading in seen if loading["phase"] == "converting GGUF")
    folder = Path(converting["detail"])
    assert folder.parent == cache / "models" and (folder / "config.json").is_file()
    seconds = [loading["seconds"] for loading in seen]
    assert seconds == sorted(seconds)

    log = output[0]
    steps = (
        r"started \(pid \d+\), loading",
        f"converting GGUF {re.escape(str(folder))} \\(",
        "ready after ",
    )
    for step in steps:  # with several workers, any one may be first
        assert re.search(f"model smollm2: worker \\d:? {step}", log), (step, log[-3000:])
    assert "model smollm2 ready after " in log
    assert "leaked semaphore" not in log, log[-3000:]
