"""Request bodies, parsed into domain values: pure functions, no HTTP, no pool.

``parse_job`` reads a REST job (``POST llm/api/jobs``). ``parse_chat`` and ``parse_completion``
read OpenAI requests into a ``CompletionCall``: one ``GenerationRequest`` per choice (the pool
has no ``n``: a request for n choices is n jobs). Every parameter we do not implement is an
``UnsupportedParameter`` naming it; a ``null`` value counts as absent, as in OpenAI's API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..errors import InvalidRequest, UnsupportedParameter
from ..structured import ResponseFormat, Tool, ToolCall, ToolChoice, canonical_json
from ..types import CompletionInput, GenerationRequest, Message, Priority, SamplingParams
from ..validate import SAMPLING, Range, check_range, is_number

__all__ = ["CompletionCall", "parse_chat", "parse_completion", "parse_job"]

MAX_CHOICES = 32  # n: each choice is a job with its own units

_SAMPLING = frozenset(SamplingParams.__dataclass_fields__)
_COMPLETION_KEYS = frozenset(CompletionInput.__dataclass_fields__)
_JOB_KEYS = (
    frozenset({"model", "prompt", "messages", "params", "priority", "kind", "response_format"})
    | _SAMPLING
    | _COMPLETION_KEYS
)
_KINDS = ("generate", "completion")

# OpenAI names, mapped to SamplingParams fields where they differ.
_OPENAI_SAMPLING = frozenset(
    {
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "presence_penalty",
        "frequency_penalty",
        "repetition_penalty",
        "stop",
        "seed",
        "ignore_eos",  # beyond OpenAI, as in vLLM: exactly max_tokens (benchmarks)
    }
)
_COMMON = (
    frozenset({"model", "stream", "stream_options", "n", "logprobs", "logit_bias"})
    | _OPENAI_SAMPLING
)
_CHAT_KEYS = _COMMON | {
    "messages",
    "max_completion_tokens",
    "top_logprobs",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
}
_TEXT_KEYS = _COMMON | {"prompt", "echo", "best_of", "suffix"}
_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}
# What the openai client echoes back on an assistant message it received: harmless when empty.
_ASSISTANT_EXTRAS = frozenset({"refusal", "function_call", "audio", "annotations"})
_MAX_TOOLS = 128


@dataclass(frozen=True, slots=True)
class CompletionCall:
    """An OpenAI request as jobs: ``requests[i]`` answers choice ``i``."""

    kind: Literal["chat", "text"]
    model: str
    requests: tuple[GenerationRequest, ...]
    prompt_of: tuple[int, ...]  # the prompt choice i answers (usage counts each prompt once)
    stream: bool = False
    include_usage: bool = False
    parallel_tool_calls: bool = True  # False: an answer keeps its first tool call only


# -- REST ------------------------------------------------------------------------------------


def parse_job(body: Mapping[str, Any]) -> GenerationRequest:
    """``{model, prompt or messages, params: {...}, priority, response_format}``; sampling keys
    may also sit at the top level (``{"model": "m", "prompt": "hi", "max_tokens": 8}``).

    ``kind: "completion"`` is an editor's inline completion: ``prefix`` (required),
    ``suffix``, ``language``, ``context``, ``editor`` and ``stop_at`` instead of a prompt,
    and high priority unless it says otherwise.
    """
    body = _present(body)
    _reject_unknown(body, _JOB_KEYS)
    kind = body.get("kind", "generate")
    if kind not in _KINDS:
        raise InvalidRequest(f"kind: expected one of {', '.join(_KINDS)}, got {kind!r}", "kind")
    completion = _completion(body) if kind == "completion" else None
    if completion is None:
        for key in sorted(_COMPLETION_KEYS & body.keys()):
            raise InvalidRequest(f"{key}: only with kind completion", key)
    params = body.get("params", {})
    if not isinstance(params, dict):
        raise InvalidRequest("params: expected an object of sampling parameters", "params")
    params = _present(params)
    for key in _SAMPLING & body.keys():
        if key in params:
            raise InvalidRequest(f"{key}: given both at the top level and in params", key)
        params[key] = body[key]
    messages = body.get("messages")
    return GenerationRequest(
        model=_model(body),
        prompt=body.get("prompt"),
        messages=None if messages is None else _messages(messages),
        params=SamplingParams.from_dict(params),
        priority=Priority.parse(body.get("priority", "normal" if completion is None else "high")),
        response_format=_response_format(body.get("response_format")),
        completion=completion,
    )


def _completion(body: Mapping[str, Any]) -> CompletionInput:
    for key in ("prompt", "messages"):
        if key in body:
            raise InvalidRequest(f"{key}: a completion sends prefix and suffix instead", key)
    if not isinstance(body.get("prefix"), str):
        raise InvalidRequest("prefix: required, the text before the cursor", "prefix")
    context = body.get("context", [])
    if not isinstance(context, list):
        raise InvalidRequest("context: expected a list of strings (earlier cells)", "context")
    values = {key: body[key] for key in _COMPLETION_KEYS & body.keys()}
    return CompletionInput(**{**values, "context": tuple(context)})


# -- OpenAI ----------------------------------------------------------------------------------


def parse_chat(body: Mapping[str, Any]) -> CompletionCall:
    body = _present(body)
    _reject_unknown(body, _CHAT_KEYS)
    if "messages" not in body:
        raise InvalidRequest("messages: required", "messages")
    messages = _messages(body["messages"])
    sampling = _sampling(body)
    tokens = _one_of(body, "max_tokens", "max_completion_tokens")
    if tokens is not None:
        sampling["max_tokens"] = tokens
    logprobs = body.get("logprobs", False)
    if not isinstance(logprobs, bool):
        raise InvalidRequest("logprobs: expected true or false", "logprobs")
    if "top_logprobs" in body:
        if not logprobs:
            raise InvalidRequest("top_logprobs: only with logprobs true", "top_logprobs")
        sampling["top_logprobs"] = body["top_logprobs"]
    sampling["logprobs"] = logprobs
    model = _model(body)
    tools = _tools(body.get("tools", []))
    choice = _tool_choice(body.get("tool_choice", "auto" if tools else "none"), tools)
    request = GenerationRequest(
        model,
        messages=messages,
        tools=tools,
        tool_choice=choice,
        response_format=_response_format(body.get("response_format")),
    )
    parallel = body.get("parallel_tool_calls", True)
    if not isinstance(parallel, bool):
        raise InvalidRequest("parallel_tool_calls: expected true or false", "parallel_tool_calls")
    return replace(_call("chat", model, body, [request], sampling), parallel_tool_calls=parallel)


def parse_completion(body: Mapping[str, Any]) -> CompletionCall:
    body = _present(body)
    _reject_unknown(body, _TEXT_KEYS)
    if body.get("echo", False) is not False:
        raise UnsupportedParameter("echo", "only echo false is implemented")
    if body.get("suffix", "") != "":
        raise UnsupportedParameter("suffix", "insertion is not implemented")
    prompts = _prompts(body.get("prompt"))
    sampling = _sampling(body)
    if "logprobs" in body:  # completions: an integer, the number of alternatives to return
        count = body["logprobs"]
        check_range(count, Range(0, 5, integer=True), "logprobs")
        sampling.update(logprobs=True, top_logprobs=count)
    model = _model(body)
    call = _call(
        "text", model, body, [GenerationRequest(model, prompt=p) for p in prompts], sampling
    )
    n = len(call.requests) // len(prompts)
    best_of = body.get("best_of", n)
    check_range(best_of, Range(1, MAX_CHOICES, integer=True), "best_of")  # true is no 1 here
    if best_of != n:
        raise UnsupportedParameter("best_of", "only best_of equal to n is implemented")
    return call


def _call(
    kind: Literal["chat", "text"],
    model: str,
    body: Mapping[str, Any],
    prompts: list[GenerationRequest],
    sampling: dict[str, Any],
) -> CompletionCall:
    n = body.get("n", 1)
    check_range(n, Range(1, MAX_CHOICES, integer=True), "n")
    params = SamplingParams.from_dict(sampling)
    stream, include_usage = _streaming(body)
    requests: list[GenerationRequest] = []
    prompt_of: list[int] = []
    for index, prompt in enumerate(prompts):
        for choice in range(n):
            # A seeded request stays reproducible, and its n choices still differ.
            seed = None if params.seed is None else _choice_seed(params.seed, choice)
            requests.append(replace(prompt, params=replace(params, seed=seed)))
            prompt_of.append(index)
    return CompletionCall(kind, model, tuple(requests), tuple(prompt_of), stream, include_usage)


def _choice_seed(seed: int, choice: int) -> int:
    """Choice i's seed: ``seed + i``, counting down instead where that leaves 64 bits."""
    return seed + choice if SAMPLING["seed"].accepts(seed + choice) else seed - choice


def _streaming(body: Mapping[str, Any]) -> tuple[bool, bool]:
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("stream: expected true or false", "stream")
    options = body.get("stream_options")
    if options is None:
        return stream, False
    if not stream:
        raise InvalidRequest("stream_options: only with stream true", "stream_options")
    if not isinstance(options, dict):
        raise InvalidRequest("stream_options: expected an object", "stream_options")
    options = _present(options)
    for key in options:
        if key != "include_usage":
            raise UnsupportedParameter(f"stream_options.{key}")
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise InvalidRequest(
            "stream_options.include_usage: expected true or false", "stream_options.include_usage"
        )
    return stream, include_usage


def _sampling(body: Mapping[str, Any]) -> dict[str, Any]:
    sampling = {key: body[key] for key in _OPENAI_SAMPLING & body.keys()}
    if "logit_bias" in body:
        sampling["logit_bias"] = _logit_bias(body["logit_bias"])
    return sampling


def _logit_bias(value: Any) -> tuple[tuple[int, float], ...]:
    """OpenAI's ``{"token id": bias}``; ids are strings (JSON keys), biases -100 to 100."""
    if not isinstance(value, dict):
        raise InvalidRequest("logit_bias: expected an object of token ids to numbers", "logit_bias")
    pairs = []
    for key, bias in value.items():
        if not (isinstance(key, str) and key.isdigit() and len(key) <= 10):
            raise InvalidRequest(
                f"logit_bias: keys are token ids (digits), got {key!r}", "logit_bias"
            )
        if not is_number(bias) or not -100 <= bias <= 100:
            raise InvalidRequest(
                f"logit_bias[{key}]: expected a number from -100 to 100", "logit_bias"
            )
        pairs.append((int(key), float(bias)))
    return tuple(pairs)


def _tools(value: Any) -> tuple[Tool, ...]:
    if not isinstance(value, list) or len(value) > _MAX_TOOLS:
        raise InvalidRequest(f"tools: expected a list of up to {_MAX_TOOLS} functions", "tools")
    tools = []
    for i, item in enumerate(value):
        where = f"tools[{i}]"
        if not isinstance(item, dict) or item.get("type") != "function":
            raise InvalidRequest(
                f'{where}: expected {{"type": "function", "function": ...}}', where
            )
        function = item.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequest(f"{where}.function: expected an object with a name", where)
        name = function["name"]
        if not name or len(name) > 64 or not all(c.isalnum() or c in "_-" for c in name):
            raise InvalidRequest(
                f"{where}.function.name: letters, digits, _ and -, up to 64", f"{where}.function"
            )
        description = function.get("description", "")
        if not isinstance(description, str):
            raise InvalidRequest(f"{where}.function.description: expected a string", where)
        if not isinstance(function.get("strict", False), bool | None):
            raise InvalidRequest(f"{where}.function.strict: expected true or false", where)
        parameters = function.get("parameters")
        schema = _schema(
            {"type": "object", "properties": {}} if parameters is None else parameters,
            f"{where}.function.parameters",
        )
        tools.append(Tool(name, description, schema))
    return tuple(tools)


def _tool_choice(value: Any, tools: tuple[Tool, ...]) -> ToolChoice:
    if isinstance(value, str):
        if value not in ("auto", "none", "required"):
            raise InvalidRequest(
                f"tool_choice: expected auto, none, required or a function, got {value!r}",
                "tool_choice",
            )
        if value == "required" and not tools:
            raise InvalidRequest("tool_choice: required needs tools", "tool_choice")
        return ToolChoice(value if tools else "none")
    function = value.get("function") if isinstance(value, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or value.get("type") != "function":
        raise InvalidRequest(
            'tool_choice: expected auto, none, required or {"type": "function", '
            '"function": {"name": ...}}',
            "tool_choice",
        )
    if name not in {t.name for t in tools}:
        raise InvalidRequest(f"tool_choice: no function named {name!r} in tools", "tool_choice")
    return ToolChoice("function", name)


def _response_format(value: Any) -> ResponseFormat | None:
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("text", "json_object"):
        return ResponseFormat(kind)
    if kind != "json_schema":
        raise InvalidRequest(
            "response_format: expected {type: text | json_object | json_schema}",
            "response_format",
        )
    spec = value.get("json_schema")
    if not isinstance(spec, dict):
        raise InvalidRequest(
            "response_format.json_schema: expected an object with name and schema",
            "response_format.json_schema",
        )
    name = spec.get("name", "response")
    strict = spec.get("strict", False)
    strict = False if strict is None else strict
    description = spec.get("description", "")
    if not (isinstance(name, str) and isinstance(strict, bool) and isinstance(description, str)):
        raise InvalidRequest(
            "response_format.json_schema: name and description are strings, strict true or false",
            "response_format.json_schema",
        )
    schema = _schema(spec.get("schema", {}), "response_format.json_schema.schema")
    return ResponseFormat("json_schema", schema, name, strict)


def _schema(value: Any, where: str) -> str:
    """A JSON schema as canonical text, refused here when the grammar engine cannot take it."""
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where}: expected a JSON schema (an object)", where)
    text = canonical_json(value)
    try:
        import llguidance
    except ImportError:  # the engine extra is not here: the worker's compile will say
        return text
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(text)
        errors = llguidance.LLMatcher.validate_grammar(grammar)
    except (ValueError, TypeError, RuntimeError) as exc:
        errors = str(exc)
    if errors:
        raise InvalidRequest(f"{where}: cannot be enforced: {errors}", where)
    return text


def _one_of(body: Mapping[str, Any], first: str, second: str) -> Any:
    if first in body and second in body and body[first] != body[second]:
        raise InvalidRequest(f"give one of {first} or {second}, not both", second)
    return body.get(second, body.get(first))


def _prompts(prompt: Any) -> list[str]:
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        return list(prompt)
    if isinstance(prompt, list) and prompt and all(isinstance(p, int | list) for p in prompt):
        raise UnsupportedParameter("prompt", "token-id prompts are not implemented; send text")
    raise InvalidRequest("prompt: expected a string or a non-empty list of strings", "prompt")


def _messages(value: Any) -> tuple[Message, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidRequest("messages: expected a non-empty list of {role, content}", "messages")
    return tuple(_message(item, f"messages[{i}]") for i, item in enumerate(value))


def _message(item: Any, where: str) -> Message:
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where}: expected an object with role and content", where)
    item = {k: v for k, v in item.items() if v is not None and v != []}
    role = item.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        if role == "function":
            raise UnsupportedParameter(f"{where}.role", "'function' messages; use tool")
        raise InvalidRequest(
            f"{where}.role: expected system, developer, user, assistant or tool, got {role!r}",
            f"{where}.role",
        )
    allowed = {"role", "content"}
    if role == "assistant":
        allowed |= _ASSISTANT_EXTRAS | {"tool_calls"}
    if role == "tool":
        allowed |= {"tool_call_id", "name"}
    for key in item:
        if key not in allowed or (key in _ASSISTANT_EXTRAS and item[key] not in ("", {})):
            raise UnsupportedParameter(f"{where}.{key}")
    calls = _tool_calls(item.get("tool_calls", []), f"{where}.tool_calls")
    content = "" if calls and "content" not in item else item.get("content")
    call_id = item.get("tool_call_id")
    if role == "tool" and not isinstance(call_id, str):
        raise InvalidRequest(f"{where}.tool_call_id: required, a string", f"{where}.tool_call_id")
    name = item.get("name") if role == "tool" else None
    if name is not None and not isinstance(name, str):
        raise InvalidRequest(f"{where}.name: expected a string", f"{where}.name")
    return Message(_ROLES[role], _content(content, f"{where}.content"), calls, call_id, name)


def _tool_calls(value: Any, where: str) -> tuple[ToolCall, ...]:
    if not isinstance(value, list):
        raise InvalidRequest(f"{where}: expected a list of tool calls", where)
    calls = []
    for i, item in enumerate(value):
        function = item.get("function") if isinstance(item, dict) else None
        if not (
            isinstance(function, dict)
            and item.get("type") == "function"
            and isinstance(item.get("id"), str)
            and isinstance(function.get("name"), str)
            and isinstance(function.get("arguments"), str)
        ):
            raise InvalidRequest(
                f"{where}[{i}]: expected {{id, type: function, function: {{name, arguments}}}}",
                f"{where}[{i}]",
            )
        calls.append(ToolCall(item["id"], function["name"], function["arguments"]))
    return tuple(calls)


def _content(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise UnsupportedParameter(f"{where}[{i}]", f"{kind!r} parts; only text")
            if not isinstance(part.get("text"), str):
                raise InvalidRequest(f"{where}[{i}].text: expected a string", f"{where}[{i}].text")
            for key in part.keys() - {"type", "text"}:
                raise UnsupportedParameter(f"{where}[{i}].{key}")
            texts.append(part["text"])
        return "\n".join(texts)
    raise InvalidRequest(f"{where}: expected a string or a list of text parts", where)


def _model(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: required, the name of a configured model", "model")
    return model


def _present(data: Mapping[str, Any]) -> dict[str, Any]:
    """The keys whose value is not null (null means "not given")."""
    return {key: value for key, value in data.items() if value is not None}


def _reject_unknown(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
    for key in body:
        if key not in allowed:
            raise UnsupportedParameter(key)
