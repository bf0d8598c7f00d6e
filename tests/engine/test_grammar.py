"""Constrained decoding in the continuous batch: constrained rows obey their schema, free rows
in the same steps are untouched."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from jupyter_llm.engine.base import EngineRequest
from jupyter_llm.structured import ResponseFormat, Tool, ToolChoice, canonical_json
from jupyter_llm.types import GenerationRequest, Message, SamplingParams

from ..schemas import random_schema
from .test_runner import engine_for, greedy, run

CHAT = (Message("user", "Describe a city as JSON."),)


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path):
    return engine_for(tiny_model_dir)


def constrained(schema: dict, seed: int, temperature: float = 1.0) -> GenerationRequest:
    return GenerationRequest(
        "m",
        messages=CHAT,
        params=SamplingParams(max_tokens=400, temperature=temperature, seed=seed),
        response_format=ResponseFormat("json_schema", canonical_json(schema), "x", True),
    )


def test_random_schemas_hold_in_a_shared_batch(engine) -> None:
    schemas = {f"s{i}": random_schema(i) for i in range(12)}
    requests = {job: constrained(schema, seed=i) for i, (job, schema) in enumerate(schemas.items())}
    requests["free"] = greedy("The quick brown fox", 24)
    alone = run(engine, {"free": greedy("The quick brown fox", 24)})[0]["free"]
    tokens, texts, finish = run(engine, requests, join_every=1)
    assert tokens["free"] == alone  # the free row shares every step and is not masked
    for job, schema in schemas.items():
        assert finish[job] == "stop", (job, texts[job])
        jsonschema.validate(json.loads(texts[job]), schema)


def test_json_object_is_an_object_and_greedy_too(engine) -> None:
    request = GenerationRequest(
        "m",
        messages=CHAT,
        params=SamplingParams(max_tokens=300, temperature=0),
        response_format=ResponseFormat("json_object"),
    )
    _, texts, finish = run(engine, {"a": request})
    if finish["a"] == "stop":
        assert isinstance(json.loads(texts["a"]), dict)
    else:  # a random model may write one long string: what there is still opens an object
        assert texts["a"].startswith("{")


def test_a_named_tool_call_writes_its_arguments(engine) -> None:
    parameters = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 8}},
        "required": ["city"],
        "additionalProperties": False,
    }
    request = GenerationRequest(
        "m",
        messages=CHAT,
        params=SamplingParams(max_tokens=100, temperature=0.8, seed=5),
        tools=(Tool("get_weather", "", canonical_json(parameters)),),
        tool_choice=ToolChoice("function", "get_weather"),
    )
    _, texts, finish = run(engine, {"a": request})
    assert finish["a"] == "stop"
    jsonschema.validate(json.loads(texts["a"]), parameters)


def test_logit_bias_forces_and_forbids(engine) -> None:
    forced = greedy("The quick brown fox", 5, logit_bias=((65, 100.0),))
    tokens, _, _ = run(engine, {"a": forced})
    assert tokens["a"] == [65] * 5
    free = run(engine, {"b": greedy("The quick brown fox", 5)})[0]["b"]
    banned = greedy("The quick brown fox", 5, logit_bias=((free[0], -100.0),))
    assert run(engine, {"c": banned})[0]["c"][0] != free[0]


def test_a_token_outside_the_vocabulary_is_refused(engine) -> None:
    with pytest.raises(ValueError, match="not in this model's vocabulary"):
        engine.add(EngineRequest("x", greedy("a", 2, logit_bias=((10**6, 1.0),)), 1))
    assert not engine.has_work()


def test_properties_come_in_the_schema_s_order(engine) -> None:
    schema = {
        "type": "object",
        "properties": {name: {"type": "boolean"} for name in ("zeta", "alpha", "mid")},
        "required": ["zeta", "alpha", "mid"],
        "additionalProperties": False,
    }
    _, texts, finish = run(engine, {"a": constrained(schema, seed=1)})
    assert finish["a"] == "stop"
    assert list(json.loads(texts["a"])) == ["zeta", "alpha", "mid"]
