"""The OpenAPI document: valid 3.1, one operation per handler verb, live answers that fit it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate

from jupyter_llm.errors import InvalidRequest
from jupyter_llm.server import schema
from jupyter_llm.server.app import LLMExtension
from jupyter_llm.server.openapi import packaged_document
from jupyter_llm.server.schema import parse_chat, parse_completion, parse_job
from jupyter_llm.types import SamplingParams

from .client import LLMServer, read_events
from .conftest import MODEL
from .test_auth import routes


class Contract:
    """Checks responses against the document the server serves."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.base = document["servers"][0]["url"].rstrip("/")
        self.checked: set[tuple[str, str, int]] = set()

    def operation(self, method: str, url: httpx.URL) -> tuple[str, dict[str, Any]]:
        path = url.raw_path.decode().split("?")[0][len(self.base) :]
        for template, item in self.document["paths"].items():
            pattern = re.sub(r"\{\w+\}", "[^/]+", template) + "$"
            if re.match(pattern, path) and method.lower() in item:
                return template, item[method.lower()]
        raise AssertionError(f"{method} {path} is not in the OpenAPI document")

    def validate(self, schema: dict[str, Any], value: Any) -> None:
        jsonschema.Draft202012Validator(
            {**schema, "components": self.document["components"]}
        ).validate(value)

    def check(self, response: httpx.Response, body: Any = None) -> None:
        """``response`` has a documented status, content type, headers and body."""
        method = response.request.method
        template, operation = self.operation(method, response.request.url)
        spec = operation["responses"].get(str(response.status_code))
        assert spec is not None, (method, template, response.status_code, response.text)
        ctype = response.headers["content-type"].split(";")[0]
        assert ctype in spec.get("content", {}), (method, template, ctype)
        for name in spec.get("headers", {}):
            assert name in response.headers, (method, template, name)
        if ctype == "application/json":
            self.validate(spec["content"][ctype]["schema"], response.json())
        elif body is not None:
            self.validate(body, None)
        self.checked.add((method, template, response.status_code))

    def schema(self, name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{name}"}


@pytest.fixture
async def contract(llm: LLMServer) -> Contract:
    response = await llm.request("GET", "llm/api/openapi.json")
    assert response.status_code == 200
    document = response.json()
    contract = Contract(document)
    contract.check(response)
    return contract


def test_the_packaged_document_is_valid_openapi_3_1() -> None:
    document = packaged_document()
    assert document["openapi"].startswith("3.1")
    validate(document)


async def test_the_served_document_fits_the_server(llm: LLMServer, contract: Contract) -> None:
    document = contract.document
    validate(document)
    assert document["servers"] == [{"url": "/a%40b"}]  # pytest-jupyter's base URL
    assert document["components"]["schemas"]["ModelName"]["enum"] == [MODEL, "tight", "remote"]
    async with llm.client(token=None) as client:
        assert (await client.get("llm/api/openapi.json")).status_code == 403


async def test_every_route_and_verb_is_described(llm_extension: LLMExtension) -> None:
    """Adding a route without its description (or the reverse) fails here."""
    described = {
        (verb.upper(), path.lstrip("/").replace("{job_id}", "some-id"))
        for path, item in packaged_document()["paths"].items()
        for verb in item
        if verb != "parameters"
    }
    assert described == set(routes(llm_extension))


async def test_live_answers_fit_the_document(llm: LLMServer, contract: Contract) -> None:
    check = contract.check
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "one two three"}]}
    async with llm.client() as client:
        for path in ("llm/api/models", "llm/api/status", "llm/v1/models", "llm/api/jobs"):
            check(await client.get(path))
        submitted = await client.post(
            "llm/api/jobs", json={"model": MODEL, "prompt": "a b c", "params": {"max_tokens": 3}}
        )
        check(submitted)
        job_id = submitted.json()["id"]
        async with client.stream("GET", f"llm/api/jobs/{job_id}/events") as events:
            check(events)
            async for event in read_events(events):
                contract.validate(contract.schema("TokenEvent"), event.json())
        check(await client.get(f"llm/api/jobs/{job_id}"))
        check(await client.delete(f"llm/api/jobs/{job_id}"))
        check(await client.get("llm/api/jobs", params={"status": "completed", "limit": 2}))
        check(await client.post("llm/v1/chat/completions", json=chat))
        check(await client.post("llm/v1/completions", json={"model": MODEL, "prompt": "a b"}))
        for path, body in (
            ("llm/v1/chat/completions", chat),
            ("llm/v1/completions", {"model": MODEL, "prompt": ["a b", "c"], "n": 2}),
        ):
            body = {**body, "stream": True, "stream_options": {"include_usage": True}}
            async with client.stream("POST", path, json=body) as stream:
                check(stream)
                async for event in read_events(stream):
                    if event.data != "[DONE]":
                        contract.validate(contract.schema("CompletionChunk"), event.json())
        # Refusals carry the documented error body and headers.
        check(await client.get("llm/api/jobs/no-such-job"))
        check(await client.delete("llm/api/jobs/no-such-job"))
        check(await client.get("llm/api/jobs/no-such-job/events"))
        check(await client.get("llm/api/jobs", params={"limit": "0"}))
        check(await client.post("llm/api/jobs", json={"model": "nope", "prompt": "x"}))
        check(await client.post("llm/api/jobs", json={"model": MODEL, "prompt": "x", "top_p": 0}))
        check(await client.post("llm/v1/chat/completions", json={**chat, "model": "remote"}))
        check(await client.post("llm/v1/completions", json={"model": MODEL, "prompt": 3}))
        await client.post("llm/api/jobs", json={"model": "tight", "prompt": "x", "max_tokens": 99})
        await client.post("llm/api/jobs", json={"model": "tight", "prompt": "y", "max_tokens": 1})
        full = await client.post("llm/api/jobs", json={"model": "tight", "prompt": "z"})
        assert full.status_code == 429
        check(full)
    async with llm.client(token=None) as client:
        check(await client.get("llm/api/status"))
    statuses = {(method, path): set() for method, path, _ in contract.checked}
    for method, path, status in contract.checked:
        statuses[method, path].add(status)
    assert len(statuses) == 11, sorted(statuses)  # every operation answered at least once
    assert {400, 404, 429, 202} <= statuses["POST", "/llm/api/jobs"]


def test_the_document_is_json_serialisable_as_shipped() -> None:
    document = packaged_document()
    assert json.loads(json.dumps(document)) == document


# -- the request schemas against the parser ---------------------------------------------------

_USER = [{"role": "user", "content": "hi"}]
# What a client might put in any field: each type, each range's edges and just past them.
_VALUES: list[Any] = [
    *(None, True, False, "", "x", "low", "high", "normal", [], {}),
    *(0, 1, -1, 2, 3, 5, 6, 20, 21, 32, 33, 0.5, 1.5, 2.5, -2, -2.5, 1e300),
    *(2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1),
    *(["a"], [""], ["a"] * 16, ["a"] * 17, [1], [-1], [[1]], [1.5], _USER),
    *([{"role": "tool", "content": "x"}], [{"role": "user", "content": 1}]),
    *({"include_usage": True}, {"include_usage": 1}, {"x": 1}, {"x": None}),
    *({"max_tokens": 2}, {"top_k": -1}, {"top_k": 1, "colour": 2}),
]
_BODIES = {
    "JobRequest": (parse_job, {"model": "m", "prompt": "hi"}),
    "ChatRequest": (parse_chat, {"model": "m", "messages": _USER}),
    "CompletionRequest": (parse_completion, {"model": "m", "prompt": "hi"}),
}


def _disagreements(
    document: dict[str, Any], schema: str, build: Callable[[Any], dict[str, Any]], where: str
) -> list[str]:
    """Where the document and the parser disagree on the bodies ``build`` makes of each of
    ``_VALUES`` (the value put at ``where``)."""
    parse, _ = _BODIES[schema]
    checker = jsonschema.Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    )
    found = []
    for value in _VALUES:
        body = build(value)
        try:
            parse(body)
            parsed = True
        except InvalidRequest:
            parsed = False
        if checker.is_valid(body) != parsed and not _known(schema, where, value):
            said = "takes" if parsed else "refuses"
            found.append(f"{schema} {where} = {value!r:.40}: the parser {said} it")
    return found


def _known(schema: str, where: str, value: Any) -> bool:
    """What JSON Schema cannot state, or states otherwise: best_of must equal n (another
    field's value); a float with no fraction (1e300) is an "integer" to JSON Schema, while the
    parser, as Python's json reads it, takes only a number written as an integer."""
    if isinstance(value, float) and value.is_integer():
        return True
    return schema == "CompletionRequest" and where == "best_of" and value != 1


@pytest.mark.parametrize("schema", _BODIES)
def test_the_document_and_the_parser_agree_field_by_field(schema: str) -> None:
    document = packaged_document()
    schemas = document["components"]["schemas"]
    _, base = _BODIES[schema]
    found = []
    for field in [*schemas[schema]["properties"], "colour"]:  # and one it does not name
        found += _disagreements(document, schema, lambda v, f=field: {**base, f: v}, field)
    # One level down: a job's params; the OpenAI routes' stream_options.
    if schema == "JobRequest":
        nested, build = "SamplingParams", lambda v, f: {**base, "params": {f: v}}
    else:
        nested, build = (
            "StreamOptions",
            lambda v, f: {**base, "stream": True, "stream_options": {f: v}},
        )
    for field in [*schemas[nested]["properties"], "colour"]:
        found += _disagreements(
            document, schema, lambda v, f=field: build(v, f), f"{nested}.{field}"
        )
    assert not found, "\n".join(found)


def test_the_document_names_every_field_the_parser_takes() -> None:
    schemas = packaged_document()["components"]["schemas"]
    for name, keys in (
        ("JobRequest", schema._JOB_KEYS),
        ("ChatRequest", schema._CHAT_KEYS),
        ("CompletionRequest", schema._TEXT_KEYS),
        ("SamplingParams", frozenset(SamplingParams.__dataclass_fields__)),
    ):
        assert set(schemas[name]["properties"]) == keys, name
