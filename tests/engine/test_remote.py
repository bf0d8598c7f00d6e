"""``backend: openai`` end to end: a jupyter_llm proxy in front of another jupyter_llm server.

Two real jupyter-server processes on 127.0.0.1: the upstream serves the tiny Llama and the
fake model; the proxy serves them again as remote models (``base_url`` = the upstream's
``llm/v1``, its token through ``api_key_env``). The official ``openai`` client, the REST API
and a real kernel's ``%%llm`` talk to the proxy, and what the upstream recorded is checked
through its own API. A third server, started and killed inside a test, is the upstream that
goes away and comes back.
"""

from __future__ import annotations

import asyncio
import gc
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest

from jupyter_llm.testing import free_port
from jupyter_llm.types import GenerationRequest, SamplingParams

from ..kernel.conftest import Kernels, clean_env
from ..schemas import random_schema
from ..support import make_config
from .servers import Launched

# slow: three jupyter_llm servers as subprocesses
pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]  # two servers start under the first test

PROMPT = "Name three colours."
CHAT = [{"role": "user", "content": PROMPT}]


def upstream_config(tiny_dir: Path) -> dict[str, Any]:
    return {
        "parking_lot": {"pool": {"worker_threads": 1}, "limits": {"timeout_secs": 60}},
        "models": [
            {
                "name": "tiny",
                "local_path": str(tiny_dir),
                "params": {"device": "cpu", "dtype": "float32", "kvcache_mem_cpu": 64},
            },
            # 100 tokens a second, echoing the prompt's words: long streams on demand.
            {"name": "fake", "backend": "fake", "params": {"max_tokens": 8}},
            # One sequence at a time: a request that waits here says nothing for a while.
            {"name": "tight", "backend": "fake", "params": {"max_tokens": 8, "max_num_seqs": 1}},
        ],
    }


def remote(name: str, url: str, remote_model: str | None = None, **params: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "backend": "openai",
        "base_url": url,
        "api_key_env": "UPSTREAM_KEY",
        "request_timeout_secs": 30,
        "params": {"max_num_seqs": 8, "max_tokens": 16, **params},
    }
    if remote_model is not None:
        entry["remote_model"] = remote_model
    return entry


@pytest.fixture(scope="module")
def servers(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Launched, Launched, Launched]]:
    """(upstream, proxy, flaky): flaky is configured but not started (the test starts it)."""
    token = secrets.token_hex(16)
    upstream = Launched(
        tmp_path_factory.mktemp("upstream"), upstream_config(tiny_model_dir), free_port(), token
    )
    flaky = Launched(
        tmp_path_factory.mktemp("flaky"),
        {"models": [{"name": "fake", "backend": "fake", "params": {"max_tokens": 8}}]},
        free_port(),
        token,
    )
    proxy_config = {
        "parking_lot": {"pool": {"worker_threads": 1}, "limits": {"timeout_secs": 60}},
        "models": [
            remote("tiny", upstream.v1),
            remote("echo", upstream.v1, remote_model="fake"),
            remote("flaky", flaky.v1, remote_model="fake"),
            remote("ghost", upstream.v1, remote_model="nope"),  # not served upstream
            {**remote("slowpoke", upstream.v1, remote_model="tight"), "request_timeout_secs": 1},
        ],
    }
    proxy = Launched(
        tmp_path_factory.mktemp("proxy"),
        proxy_config,
        free_port(),
        secrets.token_hex(16),
        env={"UPSTREAM_KEY": token},
    )
    try:
        upstream.start()
        proxy.start()
        upstream.wait_models({"tiny": "ready", "fake": "ready"})
        proxy.wait_models(
            {
                "tiny": "ready",
                "echo": "ready",
                "flaky": "error",
                "ghost": "error",
                "slowpoke": "ready",
            }
        )
        yield upstream, proxy, flaky
    finally:
        for server in (proxy, flaky, upstream):
            server.stop()


def openai_client(server: Launched) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key=server.token, max_retries=0, timeout=30)


def newest_job(server: Launched, model: str) -> dict[str, Any]:
    with server.client() as client:
        jobs = client.get("llm/api/jobs", params={"limit": 20}).json()["jobs"]
    return next(job for job in jobs if job["model"] == model)


def status(server: Launched) -> dict[str, Any]:
    with server.client() as client:
        return dict(client.get("llm/api/status").json())


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


def test_openai_answers_through_the_proxy_equal_the_upstream_ones(servers) -> None:
    upstream, proxy, _ = servers
    with openai_client(upstream) as direct, openai_client(proxy) as proxied:
        params: dict[str, Any] = {"max_tokens": 12, "temperature": 0, "seed": 7}
        want = direct.chat.completions.create(model="tiny", messages=CHAT, **params)
        got = proxied.chat.completions.create(model="tiny", messages=CHAT, **params)
        assert got.choices[0].message.content == want.choices[0].message.content
        assert got.choices[0].finish_reason == want.choices[0].finish_reason
        assert got.usage is not None and want.usage is not None
        assert (got.usage.prompt_tokens, got.usage.completion_tokens) == (
            want.usage.prompt_tokens,
            want.usage.completion_tokens,
        )

        want_text = direct.completions.create(model="tiny", prompt=PROMPT, **params)
        usage = {"include_usage": True}
        stream = proxied.completions.create(
            model="tiny", prompt=PROMPT, stream=True, stream_options=usage, **params
        )
        chunks = list(stream)
        assert "".join(c.choices[0].text for c in chunks if c.choices) == want_text.choices[0].text
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == want_text.usage.completion_tokens

        # Sampling parameters reach the upstream: a stop string and a seed behave the same.
        echo = proxied.completions.create(
            model="echo", prompt="red green blue", max_tokens=8, stop=["blue"]
        )
        assert echo.choices[0].text == "red green "
        assert echo.choices[0].finish_reason == "stop"
        sampled = [
            proxied.chat.completions.create(
                model="tiny", messages=CHAT, max_tokens=8, temperature=1.0, seed=seed
            )
            .choices[0]
            .message.content
            for seed in (3, 3)
        ]
        assert sampled[0] == sampled[1]

        logprobs = proxied.chat.completions.create(
            model="tiny", messages=CHAT, max_tokens=4, temperature=0, logprobs=True, top_logprobs=2
        )
        content = logprobs.choices[0].logprobs.content
        assert content and all(len(item.top_logprobs) == 2 for item in content)

        # The upstream's 400 comes back as ours, with its message.
        with pytest.raises(openai.BadRequestError) as rejected:
            proxied.chat.completions.create(model="tiny", messages=CHAT, max_tokens=30000)
        assert "rejected the request" in rejected.value.message
        assert "context" in rejected.value.message

    models = {m["name"]: m for m in proxy.wait_models({"tiny": "ready"}).values()}
    assert models["tiny"]["backend"] == "openai"
    assert models["tiny"]["device"] == upstream.v1


def test_llm_magic_streams_through_the_proxy(servers, tmp_path: Path) -> None:
    upstream, proxy, _ = servers
    kernels = Kernels(tmp_path)
    try:
        runtime = tmp_path / "runtime"
        runtime.mkdir()
        env = clean_env(runtime, JUPYTER_LLM_URL=proxy.url, JUPYTER_LLM_TOKEN=proxy.token)
        kernel = kernels.start(env)
        kernel.ok("%load_ext jupyter_llm")
        kernel.ok("%%llm -m echo -n 12 -o answer --wait\none two three")
        assert kernel.value("answer.status") == "completed"
        text = kernel.value("answer.text")
        assert text == "one two three one two three one two three one two three"
        assert newest_job(upstream, "fake")["text"] == text
    finally:
        kernels.close()


def test_a_cancel_or_a_disconnect_cancels_the_upstream_job(servers) -> None:
    upstream, proxy, _ = servers
    with proxy.client() as client:
        job = client.post(
            "llm/api/jobs", json={"model": "echo", "prompt": "a b c", "max_tokens": 600}
        ).json()
        wait_for(lambda: client.get(f"llm/api/jobs/{job['id']}").json()["text"], 10, "tokens")
        assert client.delete(f"llm/api/jobs/{job['id']}").status_code in (200, 202, 204)
    upstream_job = wait_for(
        lambda: (j := newest_job(upstream, "fake"))["status"] == "cancelled" and j, 10, "cancel"
    )
    assert upstream_job["text"].startswith("a b c")
    assert len(upstream_job["text"].split()) < 600
    wait_for(lambda: status(upstream)["used_units"] == 0, 10, "the upstream's units back")

    with openai_client(proxy) as proxied:
        stream = proxied.completions.create(
            model="echo", prompt="x y z", max_tokens=600, stream=True
        )
        for count, _chunk in enumerate(stream):
            if count == 3:
                break
        stream.close()  # the client goes away mid-stream
    proxy_job = wait_for(
        lambda: (j := newest_job(proxy, "echo"))["status"] == "cancelled" and j, 10, "proxy"
    )
    assert proxy_job["text"].startswith("x y z")
    upstream_job = wait_for(
        lambda: (j := newest_job(upstream, "fake"))["status"] == "cancelled" and j, 10, "upstream"
    )
    assert upstream_job["text"].startswith("x y z")
    wait_for(lambda: status(upstream)["used_units"] == 0, 10, "the upstream's units back")


def test_an_upstream_that_dies_fails_its_jobs_shows_unreachable_and_recovers(servers) -> None:
    _, proxy, flaky = servers
    with proxy.client() as client:
        before = proxy.wait_models({"flaky": "error"})["flaky"]
        assert before["error"].startswith("unreachable: ")
        refused = client.post("llm/api/jobs", json={"model": "flaky", "prompt": "hello"})
        assert refused.status_code == 503
        assert "unreachable" in refused.json()["error"]["message"]

        flaky.start()  # the upstream comes up: the model is ready without a restart
        flaky.wait_models({"fake": "ready"})
        proxy.wait_models({"flaky": "ready"}, timeout=15)

        job = client.post(
            "llm/api/jobs", json={"model": "flaky", "prompt": "a b", "max_tokens": 600}
        ).json()
        wait_for(lambda: client.get(f"llm/api/jobs/{job['id']}").json()["text"], 10, "tokens")
        flaky.kill()
        record = wait_for(
            lambda: (
                (r := client.get(f"llm/api/jobs/{job['id']}").json())["status"] == "failed" and r
            ),
            15,
            "the failed record",
        )
        assert "unreachable" in record["error"], record["error"]
        assert record["text"].startswith("a b")
        down = proxy.wait_models({"flaky": "error"}, timeout=15)["flaky"]
        assert down["error"].startswith("unreachable: ")

        flaky.start()
        flaky.wait_models({"fake": "ready"})
        proxy.wait_models({"flaky": "ready"}, timeout=15)
        again = client.post(
            "llm/api/jobs", json={"model": "flaky", "prompt": "back again", "max_tokens": 4}
        ).json()
        done = wait_for(
            lambda: (
                (r := client.get(f"llm/api/jobs/{again['id']}").json())["status"]
                in ("completed", "failed")
                and r
            ),
            15,
            "a job after recovery",
        )
        assert done["status"] == "completed", done
        assert done["text"] == "back again back again"
        assert done["usage"]["completion_tokens"] == 4


def test_requests_wait_for_a_free_seat_beyond_max_num_seqs(servers) -> None:
    """max_num_seqs caps the requests open upstream at once: the rest queue here."""
    upstream, proxy, _ = servers
    with proxy.client() as client:
        ids = [
            client.post(
                "llm/api/jobs", json={"model": "echo", "prompt": f"n{i}", "max_tokens": 60}
            ).json()["id"]
            for i in range(10)
        ]
        peak = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            running = status(upstream)["running"]
            peak = max(peak, running)
            records = [client.get(f"llm/api/jobs/{i}").json()["status"] for i in ids]
            if all(status == "completed" for status in records):
                break
            time.sleep(0.05)
        assert all(client.get(f"llm/api/jobs/{i}").json()["status"] == "completed" for i in ids)
    assert 1 <= peak <= 8


def test_the_proxy_imports_no_torch(servers) -> None:
    _, proxy, _ = servers
    assert proxy.process is not None
    maps = Path(f"/proc/{proxy.process.pid}/maps").read_text()
    assert "libtorch" not in maps


def test_a_wrong_remote_model_shows_an_error_naming_what_the_upstream_serves(servers) -> None:
    _, proxy, _ = servers
    ghost = proxy.wait_models({"ghost": "error"})["ghost"]
    assert "has no model 'nope'" in ghost["error"]
    assert "it serves: tiny, fake, tight" in ghost["error"]


def test_an_upstream_silent_past_the_request_timeout_fails_the_job_saying_so(servers) -> None:
    upstream, proxy, _ = servers
    with upstream.client() as direct, proxy.client() as client:
        busy = direct.post(
            "llm/api/jobs", json={"model": "tight", "prompt": "busy", "max_tokens": 300}
        ).json()  # holds the upstream's only seat for 3 s
        job = client.post("llm/api/jobs", json={"model": "slowpoke", "prompt": "hi"}).json()
        record = wait_for(
            lambda: (
                (r := client.get(f"llm/api/jobs/{job['id']}").json())["status"] == "failed" and r
            ),
            10,
            "the timed-out job",
        )
        direct.delete(f"llm/api/jobs/{busy['id']}")
    assert "did not answer within 1 s (request_timeout_secs)" in record["error"]
    assert proxy.wait_models({"slowpoke": "ready"})["slowpoke"]["error"] is None


def test_status_answers_while_remote_streams_run(servers) -> None:
    """The proxy's loop never waits on the upstream: status answers while streams run."""
    _, proxy, _ = servers
    with proxy.client() as client:
        for i in range(4):
            body = {"model": "echo", "prompt": f"p{i}", "max_tokens": 200}
            client.post("llm/api/jobs", json=body)
        times = []
        for _ in range(20):
            start = time.perf_counter()
            assert client.get("llm/api/status").status_code == 200
            times.append(time.perf_counter() - start)
        assert sorted(times)[len(times) // 2] < 0.1


async def test_a_job_cancelled_before_the_upstream_answers_hangs_up_at_once(make_pool) -> None:
    """The upstream never answers the POST; cancelling the job closes its connection now, not
    at the request timeout (tests/engine/test_http1.py pins the client's close on cancel)."""
    posted, hung_up = asyncio.Event(), asyncio.Event()
    models = json.dumps({"data": [{"id": "far"}]}).encode()

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if head.startswith(b"GET"):  # the health check
                    length = b"Content-Length: %d\r\n\r\n" % len(models)
                    writer.write(b"HTTP/1.1 200 OK\r\n" + length + models)
                    continue
                posted.set()  # and never a word back
                await reader.read()  # b"" once the proxy hangs up
                hung_up.set()
                return
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    far = {"name": "far", "backend": "openai", "base_url": url, "request_timeout_secs": 60}
    pool = await make_pool(make_config(extra_models=[far]))
    try:
        job = await pool.submit(GenerationRequest("far", prompt="hi", params=SamplingParams(4)))
        await asyncio.wait_for(posted.wait(), 5)
        gc.disable()  # the hang-up must not wait for a collection
        try:
            await pool.cancel(job.id)
            await asyncio.wait_for(hung_up.wait(), 1)
        finally:
            gc.enable()
        assert (await pool.get(job.id)).status.value == "cancelled"
    finally:
        server.close()


def test_tools_and_schemas_pass_through_the_proxy(servers) -> None:
    _, proxy, _ = servers
    parameters = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 6}},
        "required": ["city"],
        "additionalProperties": False,
    }
    tools: Any = [
        {"type": "function", "function": {"name": "get_weather", "parameters": parameters}}
    ]
    named: Any = {"type": "function", "function": {"name": "get_weather"}}
    with openai_client(proxy) as oai:
        for choice in (named, "required"):
            for stream in (False, True):
                params: Any = {
                    "model": "tiny",
                    "messages": CHAT,
                    "tools": tools,
                    "tool_choice": choice,
                    "max_tokens": 80,
                    "temperature": 0.5,
                    "seed": 1,
                }
                if stream:
                    chunks = list(oai.chat.completions.create(**params, stream=True))
                    deltas = [
                        d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []
                    ]
                    name = "".join(d.function.name or "" for d in deltas if d.function)
                    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
                    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
                    assert finish[-1] == "tool_calls", chunks
                else:
                    whole = oai.chat.completions.create(**params)
                    assert whole.choices[0].finish_reason == "tool_calls"
                    (call,) = whole.choices[0].message.tool_calls or []
                    name, arguments = call.function.name, call.function.arguments  # type: ignore[union-attr]
                assert name == "get_weather", (choice, stream)
                jsonschema.validate(json.loads(arguments), parameters)
        schema = random_schema(7)
        reply = oai.chat.completions.create(
            model="tiny",
            messages=CHAT,  # type: ignore[arg-type]
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
            max_tokens=300,
            temperature=1.0,
            seed=4,
        )
        jsonschema.validate(json.loads(reply.choices[0].message.content or ""), schema)
