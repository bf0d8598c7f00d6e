"""A prompt far beyond the context, through a real server and the tiny model's real tokenizer:
its 400 comes in well under a second, whatever its size, and so does the 413 of a body over
the server's cap (here raised to 32 MiB by the extension's trait)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
import yaml
from traitlets.config import Config

from ..support import TINY, tiny_entry, until
from .client import LLMServer
from .live import record

CAP = 32 * 1024 * 1024
JSON = {"Content-Type": "application/json"}
CONTEXT = 2048

pytestmark = pytest.mark.slow  # a worker imports torch to load the tiny model


@pytest.fixture
def llm_yaml(llm_yaml: Path, tiny_model_dir: Path) -> Path:
    config = yaml.safe_load(llm_yaml.read_text())
    config["models"].append(tiny_entry(tiny_model_dir, max_model_len=CONTEXT))
    llm_yaml.write_text(yaml.safe_dump(config))
    return llm_yaml


@pytest.fixture
def jp_server_config(jp_server_config: Config) -> Config:
    jp_server_config.LLMExtension.max_body_bytes = CAP
    return jp_server_config


@pytest.fixture
async def tiny(llm: LLMServer) -> LLMServer:
    await until(lambda: any(m.state == "ready" for m in llm.pool.models() if m.name == TINY), 120)
    return llm


def chat(content: str) -> bytes:
    body = {"model": TINY, "messages": [{"role": "user", "content": content}], "max_tokens": 4}
    return json.dumps(body).encode()


async def test_a_huge_prompt_is_refused_in_under_a_second(tiny: LLMServer) -> None:
    twelve_mb, over_cap = chat("word " * 2_400_000), chat("w" * CAP)
    async with tiny.client() as client:

        async def post(body: bytes) -> tuple[float, httpx.Response]:
            started = time.perf_counter()
            response = await client.post("llm/v1/chat/completions", content=body, headers=JSON)
            return time.perf_counter() - started, response

        took, response = await post(twelve_mb)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert f"exceeds the context of model 'tiny' ({CONTEXT} tokens)" in error["message"]
        assert error["param"] == "messages"
        assert took < 1, took

        took_413, response = await post(over_cap)
        assert response.status_code == 413, response.text
        assert response.json()["error"]["limit"] == CAP
        assert took_413 < 1, took_413

        # A prompt that fits is still counted exactly and served.
        _, reply = await post(chat("the quick brown fox"))
        assert reply.status_code == 200, reply.text
        assert 4 < reply.json()["usage"]["prompt_tokens"] < 40
    route = "llm/v1/chat/completions"
    record("body", case="a 12 MB message", route=route, status=400, seconds=round(took, 3))
    record(
        "body", case="32 MiB over a 32 MiB cap", route=route, status=413, seconds=round(took_413, 3)
    )
