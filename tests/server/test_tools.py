"""Tools and structured output end to end: the openai client against a real jupyter-server
whose models are tiny random Llamas speaking Qwen2.5's and Llama 3.1's chat formats.

A random model writes nonsense, so what these tests pin is what constrained decoding
guarantees whatever the weights: a forced call's arguments and a schema's document parse and
validate, and the calls come back in OpenAI's shapes, streamed and not.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest
import yaml

from jupyter_llm.engine.prompt import load_tokenizer

from ..schemas import random_schema
from ..support import until
from ..templates import build_llama31, build_qwen25
from .client import LLMServer, read_events
from .conftest import BASE_CONFIG
from .test_openapi import Contract, contract  # noqa: F401  (the fixture)

pytestmark = pytest.mark.timeout(300)

PARAMETERS = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 8},
        "unit": {"enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": PARAMETERS,
    },
}
CLOCK = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
ASK = [{"role": "user", "content": "What is the weather in Oslo?"}]


@pytest.fixture(scope="session")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_qwen25(tmp_path_factory.mktemp("qwen25"))


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_llama31(tmp_path_factory.mktemp("llama31"))


@pytest.fixture
def llm_yaml(tmp_path: Path, qwen_dir: Path, llama_dir: Path) -> Path:
    params = {"dtype": "float32", "max_num_seqs": 16, "max_tokens": 64}
    config = {
        "parking_lot": {"pool": {"worker_threads": 1}, "limits": {"timeout_secs": 120}},
        "models": [
            *BASE_CONFIG["models"][:2],
            {"name": "qwen", "local_path": str(qwen_dir), "params": params},
            {"name": "llama", "local_path": str(llama_dir), "params": params},
        ],
    }
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
async def models(llm: LLMServer) -> LLMServer:
    await until(lambda: all(m.state == "ready" for m in llm.pool.models()), timeout=120)
    return llm


@pytest.fixture
async def client(models: LLMServer) -> Any:
    client = openai.AsyncOpenAI(
        base_url=models.v1, api_key=models.token, max_retries=0, timeout=120
    )
    yield client
    await client.close()


def arguments_of(call: Any) -> dict[str, Any]:
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, PARAMETERS)
    return arguments


async def test_models_report_the_parser_their_template_calls_for(models: LLMServer) -> None:
    parsers = {m.name: m.tool_parser for m in models.pool.models()}
    assert parsers["qwen"] == "hermes" and parsers["llama"] == "llama3"


@pytest.mark.parametrize("model", ["qwen", "llama"])
async def test_a_tool_call_round_trip(client: openai.AsyncOpenAI, model: str) -> None:
    first = await client.chat.completions.create(
        model=model,
        messages=ASK,  # type: ignore[arg-type]
        tools=[WEATHER, CLOCK],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0.8,
        seed=3,
        max_tokens=120,
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_weather"  # type: ignore[union-attr]
    arguments_of(call)
    answer = await client.chat.completions.create(
        model=model,
        messages=[
            *ASK,
            choice.message,  # the SDK's own object, as agents send it back
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21, "sky": "clear"}'},
        ],  # type: ignore[list-item]
        tools=[WEATHER, CLOCK],  # type: ignore[list-item]
        max_tokens=12,
        temperature=0,
    )
    final = answer.choices[0]
    assert final.finish_reason in ("stop", "length")
    assert isinstance(final.message.content, str) and not final.message.tool_calls
    assert answer.usage is not None and answer.usage.prompt_tokens > first.usage.prompt_tokens  # type: ignore[union-attr]


@pytest.mark.parametrize("choice", ["required", "named"])
async def test_a_streamed_tool_call_arrives_in_deltas(
    client: openai.AsyncOpenAI, choice: str
) -> None:
    tool_choice: Any = (
        "required"
        if choice == "required"
        else {"type": "function", "function": {"name": "get_weather"}}
    )
    stream = await client.chat.completions.create(
        model="llama",
        messages=ASK,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice=tool_choice,
        temperature=0.8,
        seed=11,
        max_tokens=120,
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finishes = []
    async for chunk in stream:
        for part in chunk.choices:
            for delta in part.delta.tool_calls or []:
                entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += delta.id or ""
                if delta.function is not None:
                    entry["name"] += delta.function.name or ""
                    entry["arguments"] += delta.function.arguments or ""
            if part.finish_reason:
                finishes.append(part.finish_reason)
    assert finishes == ["tool_calls"]
    (call,) = calls.values()
    assert call["name"] == "get_weather" and call["id"].startswith("call_")
    jsonschema.validate(json.loads(call["arguments"]), PARAMETERS)


async def test_fifty_random_schemas_parse_and_validate(client: openai.AsyncOpenAI) -> None:
    schemas = [random_schema(seed) for seed in range(50)]

    async def ask(seed: int, schema: dict[str, Any]) -> tuple[str | None, str | None]:
        reply = await client.chat.completions.create(
            model="qwen",
            messages=[{"role": "user", "content": "Answer in JSON."}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": f"s{seed}", "schema": schema, "strict": True},
            },
            temperature=1.0,
            seed=seed,
            max_tokens=400,
        )
        return reply.choices[0].message.content, reply.choices[0].finish_reason

    answers = await asyncio.gather(*(ask(i, s) for i, s in enumerate(schemas)))
    for schema, (content, finish) in zip(schemas, answers, strict=True):
        assert finish == "stop", (schema, content)
        jsonschema.validate(json.loads(content or ""), schema)


async def test_json_object_streams_one_object(client: openai.AsyncOpenAI) -> None:
    schema = random_schema(99)
    stream = await client.chat.completions.create(
        model="qwen",
        messages=[{"role": "user", "content": "JSON please"}],
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        temperature=0.7,
        seed=2,
        max_tokens=400,
        stream=True,
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    jsonschema.validate(json.loads(text), schema)


async def test_logit_bias_forces_a_token(client: openai.AsyncOpenAI, qwen_dir: Path) -> None:
    tokenizer = load_tokenizer(str(qwen_dir))
    token = tokenizer.convert_tokens_to_ids("the") if "the" in tokenizer.get_vocab() else 65
    reply = await client.chat.completions.create(
        model="qwen",
        messages=ASK,  # type: ignore[arg-type]
        logit_bias={str(token): 100},
        temperature=1.0,
        max_tokens=4,
    )
    assert reply.choices[0].message.content == tokenizer.decode([token] * 4)


async def test_answers_fit_the_openapi_document(
    models: LLMServer,
    contract: Contract,  # noqa: F811
) -> None:
    body = {
        "model": "qwen",
        "messages": ASK,
        "tools": [WEATHER],
        "tool_choice": "required",
        "temperature": 0.5,
        "seed": 1,
        "max_tokens": 120,
    }
    async with models.client(timeout=120) as http:
        whole = await http.post("llm/v1/chat/completions", json=body)
        contract.check(whole)
        assert whole.json()["choices"][0]["message"]["tool_calls"]
        async with http.stream(
            "POST", "llm/v1/chat/completions", json={**body, "stream": True}
        ) as stream:
            contract.check(stream)
            async for event in read_events(stream):
                if event.data != "[DONE]":
                    contract.validate(contract.schema("CompletionChunk"), event.json())
        models_reply = await http.get("llm/api/models")
        contract.check(models_reply)
