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
from ..types import CompletionInput, GenerationRequest, Message, Priority, SamplingParams
from ..validate import SAMPLING, Range, check_range

__all__ = ["CompletionCall", "parse_chat", "parse_completion", "parse_job"]

MAX_CHOICES = 32  # n: each choice is a job with its own units

_SAMPLING = frozenset(SamplingParams.__dataclass_fields__)
_COMPLETION_KEYS = frozenset(CompletionInput.__dataclass_fields__)
_JOB_KEYS = (
    frozenset({"model", "prompt", "messages", "params", "priority", "kind"})
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
_COMMON = frozenset({"model", "stream", "stream_options", "n", "logprobs"}) | _OPENAI_SAMPLING
_CHAT_KEYS = _COMMON | {"messages", "max_completion_tokens", "top_logprobs"}
_TEXT_KEYS = _COMMON | {"prompt", "echo", "best_of", "suffix"}
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
# What the openai client echoes back on an assistant message it received: harmless when empty.
_ASSISTANT_EXTRAS = frozenset({"refusal", "tool_calls", "function_call", "audio", "annotations"})


@dataclass(frozen=True, slots=True)
class CompletionCall:
    """An OpenAI request as jobs: ``requests[i]`` answers choice ``i``."""

    kind: Literal["chat", "text"]
    model: str
    requests: tuple[GenerationRequest, ...]
    prompt_of: tuple[int, ...]  # the prompt choice i answers (usage counts each prompt once)
    stream: bool = False
    include_usage: bool = False


# -- REST ------------------------------------------------------------------------------------


def parse_job(body: Mapping[str, Any]) -> GenerationRequest:
    """``{model, prompt or messages, params: {...}, priority}``; sampling keys may also sit at
    the top level (``{"model": "m", "prompt": "hi", "max_tokens": 8}``).

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
    return _call("chat", model, body, [GenerationRequest(model, messages=messages)], sampling)


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
    best_of = body.get("best_of", len(call.requests) // len(prompts))
    if best_of != len(call.requests) // len(prompts):
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
    return {key: body[key] for key in _OPENAI_SAMPLING & body.keys()}


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
        if role in ("tool", "function"):
            raise UnsupportedParameter(f"{where}.role", f"{role!r} messages (no tool calling)")
        raise InvalidRequest(
            f"{where}.role: expected system, developer, user or assistant, got {role!r}",
            f"{where}.role",
        )
    allowed = {"role", "content"} | (_ASSISTANT_EXTRAS if role == "assistant" else set())
    for key in item:
        if key not in allowed or (key in _ASSISTANT_EXTRAS and item[key] not in ("", {})):
            raise UnsupportedParameter(f"{where}.{key}")
    return Message(_ROLES[role], _content(item.get("content"), f"{where}.content"))


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
