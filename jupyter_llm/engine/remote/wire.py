"""The OpenAI wire format as a remote engine speaks it: requests out, stream chunks and errors in.

Pure functions, no I/O, so each mapping is tested on its own:

* ``upstream_call``  our ``GenerationRequest`` → the upstream route and JSON body. Parameters
  left at their defaults are not sent, so a strict OpenAI server only sees vLLM's extensions
  (``top_k``, ``min_p``, ``repetition_penalty``, ``ignore_eos``, ``stop_token_ids``) when a
  request uses them. Usage always comes back: ``stream_options.include_usage``.
* ``parse_chunk``    one ``data:`` payload of the upstream's SSE stream → a ``Chunk``.
* ``upstream_failure`` an upstream HTTP error → the message and ``error_type`` of our failure.
* ``ToolCallText``   the upstream's streamed ``delta.tool_calls`` → text in the form our replies
  read back (server/replies.py): Hermes ``<tool_call>`` blocks for ``tool_choice: auto``, the
  bare arguments for a named function, one ``{"name", "arguments"}`` object for ``required``.
  Tools, ``tool_choice``, ``response_format`` and ``logit_bias`` go upstream as they came.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ...types import GenerationRequest, Logprob, Usage

__all__ = [
    "Chunk",
    "ToolCallText",
    "UpstreamFailure",
    "estimate_tokens",
    "parse_chunk",
    "retry_after",
    "upstream_call",
    "upstream_failure",
]

# Finish reasons we pass on as they are; vLLM's "abort" is a failure, anything else a stop.
_FINISH = {"stop": "stop", "length": "length"}


def upstream_call(request: GenerationRequest, remote_model: str) -> tuple[str, dict[str, Any]]:
    """The route (relative to the upstream's /v1) and body of a streaming request."""
    params = request.params
    body: dict[str, Any] = {
        "model": remote_model,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
    }
    optional: dict[str, tuple[Any, Any]] = {  # name: (value, the default that is not sent)
        "top_p": (params.top_p, 1.0),
        "top_k": (params.top_k, 0),
        "min_p": (params.min_p, 0.0),
        "presence_penalty": (params.presence_penalty, 0.0),
        "frequency_penalty": (params.frequency_penalty, 0.0),
        "repetition_penalty": (params.repetition_penalty, 1.0),
        "stop": (list(params.stop), []),
        "stop_token_ids": (list(params.stop_token_ids), []),
        "seed": (params.seed, None),
        "ignore_eos": (params.ignore_eos, False),
    }
    body.update({key: value for key, (value, default) in optional.items() if value != default})
    if params.logit_bias:
        body["logit_bias"] = {str(token): bias for token, bias in params.logit_bias}
    if request.prompt is not None:
        body["prompt"] = request.prompt
        if params.logprobs:  # completions: an integer, the number of alternatives
            body["logprobs"] = params.top_logprobs
        return "completions", body
    assert request.messages is not None  # GenerationRequest guarantees one of the two
    body["messages"] = [m.to_dict() for m in request.messages]
    if request.tools:
        body["tools"] = [tool.to_openai() for tool in request.tools]
        body["tool_choice"] = request.tool_choice.to_openai()
    if request.response_format is not None:
        body["response_format"] = request.response_format.to_openai()
    if params.logprobs:
        body["logprobs"] = True
        if params.top_logprobs:
            body["top_logprobs"] = params.top_logprobs
    return "chat/completions", body


@dataclass(frozen=True, slots=True)
class Chunk:
    """What one upstream stream chunk said."""

    text: str = ""
    finish_reason: str | None = None  # stop | length | error
    error: str | None = None
    usage: Usage | None = None
    logprobs: tuple[Logprob, ...] | None = None
    # (index, id, name, arguments fragment) of each streamed tool-call delta
    tool_calls: tuple[tuple[int, str, str, str], ...] = ()


class ToolCallText:
    """One job's streamed tool calls, written as the text our replies parse back."""

    def __init__(self, mode: str) -> None:
        self._mode = mode  # the request's tool_choice mode
        self._open: int | None = None  # the index of the call being written

    def feed(self, deltas: tuple[tuple[int, str, str, str], ...]) -> str:
        text = []
        for index, _, name, arguments in deltas:
            if index != self._open:
                text.append(self.close())
                self._open = index
                if self._mode == "required":
                    text.append('{"name": ' + json.dumps(name) + ', "arguments": ')
                elif self._mode != "function":
                    text.append('<tool_call>\n{"name": ' + json.dumps(name) + ', "arguments": ')
            text.append(arguments)
        return "".join(text)

    def close(self) -> str:
        """What ends the call being written (at the next call, and at the end)."""
        if self._open is None:
            return ""
        self._open = None
        if self._mode == "function":
            return ""
        return "}" if self._mode == "required" else "}\n</tool_call>"


def parse_chunk(data: str) -> Chunk | None:
    """One SSE ``data:`` payload; None for ``[DONE]``. Raises ValueError on malformed JSON."""
    if data.strip() == "[DONE]":
        return None
    payload = json.loads(data)
    if not isinstance(payload, dict):
        raise ValueError(f"expected a JSON object, got {data[:80]!r}")
    if "error" in payload:  # vLLM reports a failure inside an open stream this way
        return Chunk(finish_reason="error", error=f"the upstream failed: {_message(payload)}")
    usage = payload.get("usage")
    parsed_usage = (
        Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        if isinstance(usage, dict)
        else None
    )
    choices = payload.get("choices") or []
    if not choices:
        return Chunk(usage=parsed_usage)
    choice = choices[0]
    calls: tuple[tuple[int, str, str, str], ...] = ()
    if "delta" in choice:
        delta = choice.get("delta") or {}
        text = delta.get("content") or ""
        calls = tuple(
            (
                int(call.get("index") or 0),
                call.get("id") or "",
                (call.get("function") or {}).get("name") or "",
                (call.get("function") or {}).get("arguments") or "",
            )
            for call in delta.get("tool_calls") or ()
            if isinstance(call, dict)
        )
    else:
        text = choice.get("text") or ""
    reason = choice.get("finish_reason")
    error = None
    if reason is not None:
        finish = _FINISH.get(reason, "stop")
        if reason == "abort":
            finish, error = "error", "the upstream aborted the request"
    else:
        finish = None
    return Chunk(text, finish, error, parsed_usage, _logprobs(choice.get("logprobs")), calls)


def _logprobs(data: Any) -> tuple[Logprob, ...] | None:
    """Chat (``content: [{token, logprob, top_logprobs}]``) or completions (parallel lists).

    The wire carries no token ids: they are -1 here.
    """
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("content"), list):
        return tuple(
            Logprob(
                item["token"],
                -1,
                float(item["logprob"]),
                tuple(
                    (t["token"], -1, float(t["logprob"])) for t in item.get("top_logprobs") or []
                ),
            )
            for item in data["content"]
        )
    tokens = data.get("tokens") or []
    values = data.get("token_logprobs") or []
    tops = data.get("top_logprobs") or [None] * len(tokens)
    return tuple(
        Logprob(
            token,
            -1,
            float(value if value is not None else -math.inf),
            tuple((t, -1, float(v)) for t, v in (top or {}).items()),
        )
        for token, value, top in zip(tokens, values, tops, strict=False)
    )


@dataclass(frozen=True, slots=True)
class UpstreamFailure:
    """How an upstream HTTP error ends our job."""

    message: str
    error_type: str  # the errors.py class it stands for
    model_error: bool = False  # the model itself is wrong (404): its state should show it


def upstream_failure(status: int, body: str, base_url: str, remote_model: str) -> UpstreamFailure:
    """Map an upstream error status to ours, keeping the upstream's own message."""
    message = _message(body)
    where = f"the upstream {base_url}"
    if status in (400, 413, 422):
        return UpstreamFailure(f"{where} rejected the request: {message}", "InvalidRequest")
    if status == 404:
        return UpstreamFailure(
            f"{where} has no model {remote_model!r} (set remote_model to its name there): "
            f"{message}",
            "ModelNotReady",
            model_error=True,
        )
    if status in (401, 403):
        return UpstreamFailure(
            f"{where} refused our credentials ({status}; check api_key_env): {message}",
            "ModelNotReady",
            model_error=True,
        )
    if status in (429, 503):
        return UpstreamFailure(f"{where} is busy ({status}): {message}", "ModelNotReady")
    return UpstreamFailure(f"{where} failed ({status}): {message}", "JobFailed")


def retry_after(header: str | None, limit: float) -> float | None:
    """Seconds to wait before retrying, from a Retry-After header; None past ``limit``."""
    if header is None:
        return None
    try:
        seconds = float(header)
    except ValueError:
        return None  # an HTTP date: not worth the parsing for an upstream on our network
    return seconds if 0 <= seconds <= limit else None


def estimate_tokens(request: GenerationRequest, limit: int | None = None) -> int:
    """A prompt's tokens, estimated without the upstream's tokenizer (4 bytes a token; cheap
    at any size, so ``limit`` is not needed).

    Admission prices a remote job with it; the record's usage is the upstream's own count.
    """
    if request.prompt is not None:
        return max(1, math.ceil(len(request.prompt.encode()) / 4))
    assert request.messages is not None
    return sum(4 + math.ceil(len(m.content.encode()) / 4) for m in request.messages)


def _message(body: Any) -> str:
    """The human part of an error body: OpenAI's ``error.message``, vLLM's ``message``."""
    data = body
    if isinstance(body, str):
        try:
            data = json.loads(body)
        except ValueError:
            return body.strip()[:500] or "(no message)"
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(data.get("message"), str):
            return str(data["message"])
    return json.dumps(data)[:500]
