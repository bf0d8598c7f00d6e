"""``backend: openai`` in front of real vLLM (CPU build), when $JUPYTER_LLM_VLLM_VENV names it.

Runs SmolLM2 (converted by scripts/setup_vllm.sh) in `vllm serve`, and a jupyter_llm server
with a remote model in front of it; checks that answers, usage, sampling, errors and cancel
come through, and prints time to first token and tokens a second, straight and proxied
(``pytest -s`` shows them; benchmarks/remote.py measures them under load).
"""

from __future__ import annotations

import os
import secrets
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from jupyter_llm.testing import free_port

from .servers import VLLM, Launched

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.timeout(1800)]

CHAT = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def vllm_and_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VLLM, Launched]]:
    venv = Path(os.environ["JUPYTER_LLM_VLLM_VENV"])
    # $JUPYTER_LLM_VLLM_PORT: a `vllm serve` already running on 127.0.0.1 (serving the model
    # as smollm2) instead of starting one, which takes minutes.
    running = os.environ.get("JUPYTER_LLM_VLLM_PORT")
    port = int(running) if running else free_port()
    vllm = VLLM(venv, tmp_path_factory.mktemp("vllm"), port, external=bool(running))
    config = {
        "models": [
            {
                "name": "smollm2",
                "backend": "openai",
                "base_url": vllm.v1,
                "params": {"max_num_seqs": 16, "max_tokens": 32},
            }
        ]
    }
    proxy = Launched(tmp_path_factory.mktemp("proxy"), config, free_port(), secrets.token_hex(8))
    try:
        print(f"\nvllm serve ready in {vllm.start():.0f} s")
        proxy.start()
        proxy.wait_models({"smollm2": "ready"})
        yield vllm, proxy
    finally:
        proxy.stop()
        vllm.stop()


def clients(vllm: VLLM, proxy: Launched) -> tuple[openai.OpenAI, openai.OpenAI]:
    direct = openai.OpenAI(base_url=vllm.v1, api_key="none", max_retries=0, timeout=120)
    proxied = openai.OpenAI(base_url=proxy.v1, api_key=proxy.token, max_retries=0, timeout=120)
    return direct, proxied


def test_answers_usage_and_sampling_come_through(vllm_and_proxy) -> None:
    vllm, proxy = vllm_and_proxy
    direct, proxied = clients(vllm, proxy)
    greedy: dict[str, Any] = {"max_tokens": 24, "temperature": 0}
    want = direct.chat.completions.create(model="smollm2", messages=CHAT, **greedy)
    got = proxied.chat.completions.create(model="smollm2", messages=CHAT, **greedy)
    assert got.choices[0].message.content == want.choices[0].message.content
    assert "Paris" in (got.choices[0].message.content or "")
    assert got.usage is not None and want.usage is not None
    assert got.usage.prompt_tokens == want.usage.prompt_tokens
    assert got.usage.completion_tokens == want.usage.completion_tokens

    stream = proxied.chat.completions.create(
        model="smollm2",
        messages=CHAT,
        stream=True,
        stream_options={"include_usage": True},
        **greedy,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == want.choices[0].message.content
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == want.usage.completion_tokens

    seeded = [
        proxied.completions.create(
            model="smollm2", prompt="Once upon a time", max_tokens=16, temperature=1.0, seed=11
        )
        .choices[0]
        .text
        for _ in range(2)
    ]
    assert seeded[0] == seeded[1]
    stopped = proxied.completions.create(
        model="smollm2", prompt="1, 2, 3, 4,", max_tokens=30, temperature=0, stop=[" 7"]
    )
    assert stopped.choices[0].finish_reason == "stop" and " 7" not in stopped.choices[0].text

    with pytest.raises(openai.BadRequestError) as rejected:
        proxied.chat.completions.create(model="smollm2", messages=CHAT, max_tokens=5000)
    assert "rejected the request" in rejected.value.message


def test_a_cancel_aborts_the_request_in_vllm(vllm_and_proxy) -> None:
    vllm, proxy = vllm_and_proxy
    with proxy.client() as client:
        body = {"model": "smollm2", "prompt": "Tell me a story.", "max_tokens": 1500}
        job = client.post("llm/api/jobs", json={**body, "ignore_eos": True}).json()
        deadline = time.monotonic() + 120
        while not client.get(f"llm/api/jobs/{job['id']}").json()["text"]:
            assert time.monotonic() < deadline, "no token in 120 s"
            time.sleep(0.1)
        assert vllm.running_requests() == 1
        client.delete(f"llm/api/jobs/{job['id']}")
        deadline = time.monotonic() + 10
        while vllm.running_requests() > 0:
            assert time.monotonic() < deadline, "vLLM still runs the cancelled request"
            time.sleep(0.1)
        record = client.get(f"llm/api/jobs/{job['id']}").json()
    assert record["status"] == "cancelled"
    assert record["usage"]["completion_tokens"] < 1500


def test_time_to_first_token_and_throughput_straight_and_proxied(vllm_and_proxy) -> None:
    vllm, proxy = vllm_and_proxy
    direct, proxied = clients(vllm, proxy)
    numbers: dict[str, dict[str, list[float]]] = {"direct": {}, "proxied": {}}
    for _ in range(3):
        for name, client in (("direct", direct), ("proxied", proxied)):
            start = time.perf_counter()
            first = 0.0
            count = 0
            for chunk in client.completions.create(
                model="smollm2", prompt="Tell me a story.", max_tokens=64, temperature=0,
                stream=True, extra_body={"ignore_eos": True},
            ):  # fmt: skip
                if chunk.choices and chunk.choices[0].text:
                    first = first or time.perf_counter() - start
                    count += 1
            wall = time.perf_counter() - start
            numbers[name].setdefault("ttft_ms", []).append(first * 1000)
            numbers[name].setdefault("tok_s", []).append(count / wall)
    for name, values in numbers.items():
        print(
            f"{name}: TTFT median {statistics.median(values['ttft_ms']):.1f} ms, "
            f"{statistics.median(values['tok_s']):.1f} tok/s (one stream, 64 tokens)"
        )
    ratio = statistics.median(numbers["proxied"]["tok_s"]) / statistics.median(
        numbers["direct"]["tok_s"]
    )
    assert ratio > 0.5, f"the proxy halves a single stream's speed ({ratio:.2f}x)"
