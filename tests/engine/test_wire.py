"""The OpenAI wire mapping of the remote engine: requests out, chunks and errors in."""

from __future__ import annotations

import json

import pytest

from jupyter_llm.engine.remote.wire import (
    ToolCallText,
    estimate_tokens,
    parse_chunk,
    retry_after,
    upstream_call,
    upstream_failure,
)
from jupyter_llm.structured import ResponseFormat, Tool, ToolCall, ToolChoice
from jupyter_llm.toolcalls import parse
from jupyter_llm.types import GenerationRequest, Message, SamplingParams, Usage


def request(prompt: str | None = "hi", **params: object) -> GenerationRequest:
    messages = None if prompt is not None else (Message("user", "hello"),)
    return GenerationRequest(
        "ours", prompt=prompt, messages=messages, params=SamplingParams(max_tokens=5, **params)
    )


def test_defaults_send_only_what_every_openai_server_takes() -> None:
    route, body = upstream_call(request(temperature=0.5), "theirs")
    assert route == "completions"
    assert body == {
        "model": "theirs",
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 5,
        "temperature": 0.5,
        "prompt": "hi",
    }


def test_every_sampling_parameter_maps_to_its_openai_or_vllm_field() -> None:
    route, body = upstream_call(
        request(
            None,
            temperature=0.9,
            top_p=0.8,
            top_k=20,
            min_p=0.1,
            presence_penalty=0.5,
            frequency_penalty=-0.5,
            repetition_penalty=1.2,
            stop=("\n", "END"),
            stop_token_ids=(2,),
            seed=42,
            ignore_eos=True,
            logprobs=True,
            top_logprobs=3,
        ),
        "theirs",
    )
    assert route == "chat/completions"
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    expected = {
        "top_p": 0.8,
        "top_k": 20,
        "min_p": 0.1,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "repetition_penalty": 1.2,
        "stop": ["\n", "END"],
        "stop_token_ids": [2],
        "seed": 42,
        "ignore_eos": True,
        "logprobs": True,
        "top_logprobs": 3,
    }
    assert {key: body[key] for key in expected} == expected


def test_completions_logprobs_is_the_number_of_alternatives() -> None:
    _, body = upstream_call(request(logprobs=True, top_logprobs=2), "m")
    assert body["logprobs"] == 2


def test_chunks_of_both_routes_parse() -> None:
    chat = parse_chunk(json.dumps({"choices": [{"delta": {"content": "Hel"}}]}))
    assert chat is not None and chat.text == "Hel" and chat.finish_reason is None
    text = parse_chunk(json.dumps({"choices": [{"text": "lo", "finish_reason": "length"}]}))
    assert text is not None and (text.text, text.finish_reason) == ("lo", "length")
    usage = parse_chunk(
        json.dumps({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}})
    )
    assert usage is not None and usage.usage == Usage(7, 3)
    assert parse_chunk("[DONE]") is None


def test_an_abort_or_an_error_in_the_stream_is_a_failure() -> None:
    aborted = parse_chunk(json.dumps({"choices": [{"text": "", "finish_reason": "abort"}]}))
    assert aborted is not None and aborted.finish_reason == "error"
    failed = parse_chunk(json.dumps({"error": {"message": "out of blocks", "code": 500}}))
    assert failed is not None and failed.finish_reason == "error"
    assert failed.error == "the upstream failed: out of blocks"
    with pytest.raises(ValueError):
        parse_chunk("{not json")


def test_logprobs_of_both_routes_parse() -> None:
    chat = parse_chunk(
        json.dumps(
            {
                "choices": [
                    {
                        "delta": {"content": "a"},
                        "logprobs": {
                            "content": [
                                {
                                    "token": "a",
                                    "logprob": -0.1,
                                    "top_logprobs": [{"token": "a", "logprob": -0.1}],
                                }
                            ]
                        },
                    }
                ]
            }
        )
    )
    assert chat is not None and chat.logprobs is not None
    assert chat.logprobs[0].token == "a" and chat.logprobs[0].top == (("a", -1, -0.1),)
    text = parse_chunk(
        json.dumps(
            {
                "choices": [
                    {
                        "text": "b",
                        "logprobs": {
                            "tokens": ["b"],
                            "token_logprobs": [-0.5],
                            "top_logprobs": [{"b": -0.5, "c": -1.5}],
                        },
                    }
                ]
            }
        )
    )
    assert text is not None and text.logprobs is not None
    assert text.logprobs[0].logprob == -0.5 and len(text.logprobs[0].top) == 2


@pytest.mark.parametrize(
    ("status", "error_type", "model_error"),
    [
        (400, "InvalidRequest", False),
        (404, "ModelNotReady", True),
        (401, "ModelNotReady", True),
        (429, "ModelNotReady", False),
        (503, "ModelNotReady", False),
        (500, "JobFailed", False),
    ],
)
def test_upstream_errors_map_to_ours_with_their_message(
    status: int, error_type: str, model_error: bool
) -> None:
    body = json.dumps({"error": {"message": f"reason {status}", "type": "x"}})
    failure = upstream_failure(status, body, "http://up/v1", "m")
    assert failure.error_type == error_type
    assert failure.model_error is model_error
    assert f"reason {status}" in failure.message
    assert "http://up/v1" in failure.message


def test_a_plain_text_error_body_is_kept() -> None:
    failure = upstream_failure(502, "Bad Gateway\n", "http://up/v1", "m")
    assert failure.message == "the upstream http://up/v1 failed (502): Bad Gateway"


def test_retry_after_is_honoured_only_when_short() -> None:
    assert retry_after("2", 5) == 2.0
    assert retry_after("60", 5) is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 5) is None
    assert retry_after(None, 5) is None


def test_prompt_tokens_are_estimated_at_four_bytes_a_token() -> None:
    assert estimate_tokens(request("x" * 40)) == 10
    assert estimate_tokens(request(None)) == 4 + 2  # "hello": 5 bytes, 2 tokens, + overhead


def test_tools_formats_and_bias_go_upstream_as_they_came() -> None:
    tool = Tool("f", "does f", '{"type":"object"}')
    chat = GenerationRequest(
        "m",
        messages=(
            Message("user", "hi"),
            Message("assistant", "", (ToolCall("c1", "f", "{}"),)),
            Message("tool", "done", tool_call_id="c1"),
        ),
        params=SamplingParams(max_tokens=4, temperature=0, logit_bias=((5, -100.0),)),
        tools=(tool,),
        tool_choice=ToolChoice("required"),
        response_format=ResponseFormat("json_object"),
    )
    _, body = upstream_call(chat, "theirs")
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "f", "parameters": {"type": "object"}, "description": "does f"},
        }
    ]
    assert body["tool_choice"] == "required"
    assert body["response_format"] == {"type": "json_object"}
    assert body["logit_bias"] == {"5": -100.0}
    assert body["messages"][1]["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
    assert body["messages"][2] == {"role": "tool", "content": "done", "tool_call_id": "c1"}


def stream_of_calls() -> list[str]:
    """Two calls as vLLM streams them: id and name first, the arguments in pieces."""
    deltas = [
        {"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": ""}},
        {"index": 0, "function": {"arguments": '{"x": '}},
        {"index": 0, "function": {"arguments": "1}"}},
        {"index": 1, "id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
    ]
    return [json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [d]}}]}) for d in deltas]


@pytest.mark.parametrize("mode", ["auto", "required", "function"])
def test_streamed_tool_calls_become_the_text_our_replies_read(mode: str) -> None:
    calls = ToolCallText(mode)
    text = ""
    for data in stream_of_calls():
        chunk = parse_chunk(data)
        assert chunk is not None
        text += calls.feed(chunk.tool_calls)
    text += calls.close()
    if mode == "auto":
        parsed = parse("hermes", text)
        assert [(c.name, json.loads(c.arguments)) for c in parsed.calls] == [
            ("f", {"x": 1}),
            ("g", {}),
        ]
    elif mode == "required":  # one call is asked for: the first is what a reply reads
        first = text[: text.index("}}") + 2]
        assert json.loads(first) == {"name": "f", "arguments": {"x": 1}}
    else:
        assert text.startswith('{"x": 1}')
