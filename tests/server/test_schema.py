"""Request bodies into domain values: the parsing rules, without a server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jupyter_llm.errors import InvalidRequest, UnsupportedParameter
from jupyter_llm.server.schema import parse_chat, parse_completion, parse_job
from jupyter_llm.structured import ToolCall, ToolChoice
from jupyter_llm.types import Message, Priority

USER = [{"role": "user", "content": "hi"}]


def test_chat_maps_openai_parameters_onto_sampling_params() -> None:
    call = parse_chat(
        {
            "model": "m",
            "messages": USER,
            "max_completion_tokens": 7,
            "temperature": 0,
            "top_p": 0.5,
            "top_k": 4,
            "min_p": 0.1,
            "presence_penalty": 0.2,
            "frequency_penalty": -0.2,
            "repetition_penalty": 1.1,
            "stop": "x",
            "seed": 3,
            "logprobs": True,
            "top_logprobs": 2,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    (request,) = call.requests
    params = request.params
    assert (params.max_tokens, params.temperature, params.top_p, params.top_k) == (7, 0, 0.5, 4)
    assert (params.min_p, params.presence_penalty, params.frequency_penalty) == (0.1, 0.2, -0.2)
    assert (params.repetition_penalty, params.stop, params.seed) == (1.1, ("x",), 3)
    assert (params.logprobs, params.top_logprobs) == (True, 2)
    assert (call.kind, call.model, call.stream, call.include_usage) == ("chat", "m", True, True)
    assert request.messages == (Message("user", "hi"),)


def test_null_means_absent_and_defaults_stay_the_models() -> None:
    call = parse_chat(
        {"model": "m", "messages": USER, "temperature": None, "tools": None, "stop": None}
    )
    params = call.requests[0].params
    assert (params.temperature, params.max_tokens, params.stop) == (None, None, ())
    assert (call.stream, call.include_usage) == (False, False)


def test_n_choices_are_n_requests_with_consecutive_seeds() -> None:
    call = parse_chat({"model": "m", "messages": USER, "n": 3, "seed": 10})
    assert [r.params.seed for r in call.requests] == [10, 11, 12]
    assert call.prompt_of == (0, 0, 0)
    unseeded = parse_chat({"model": "m", "messages": USER, "n": 2})
    assert [r.params.seed for r in unseeded.requests] == [None, None]


def test_completions_take_several_prompts_and_integer_logprobs() -> None:
    call = parse_completion(
        {"model": "m", "prompt": ["a", "b"], "n": 2, "logprobs": 3, "echo": False, "best_of": 2}
    )
    assert [r.prompt for r in call.requests] == ["a", "a", "b", "b"]
    assert call.prompt_of == (0, 0, 1, 1)
    assert all(r.params.logprobs and r.params.top_logprobs == 3 for r in call.requests)


def test_message_content_parts_developer_role_and_echoed_assistant_fields() -> None:
    call = parse_chat(
        {
            "model": "m",
            "messages": [
                {"role": "developer", "content": "rules"},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                },
                {"role": "assistant", "content": "ok", "refusal": None, "tool_calls": []},
            ],
        }
    )
    assert call.requests[0].messages == (
        Message("system", "rules"),
        Message("user", "a\nb"),
        Message("assistant", "ok"),
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"stream": True, "stream_options": {"include_obfuscation": True}},
            "stream_options.include_obfuscation",
        ),
        ({"messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x", "name": "n"}]}, "messages[0].name"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "", "x": 1}]}]},
            "messages[0].content[0].x",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0]",
        ),
    ],
)
def test_unsupported_chat_parameters_are_named(body: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedParameter) as caught:
        parse_chat({"model": "m", "messages": USER, **body})
    assert caught.value.param == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"echo": True}, "echo"),
        ({"suffix": "end"}, "suffix"),
        ({"best_of": 3}, "best_of"),
        ({"prompt": [1, 2, 3]}, "prompt"),
    ],
)
def test_unsupported_completion_parameters_are_named(body: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedParameter) as caught:
        parse_completion({"model": "m", "prompt": "p", **body})
    assert caught.value.param == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": ""}, "model"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"max_tokens": 5, "max_completion_tokens": 6}, "max_completion_tokens"),
        ({"n": True}, "n"),
        ({"n": 33}, "n"),
        ({"stream": "yes"}, "stream"),
        ({"stream": True, "stream_options": {"include_usage": 1}}, "stream_options.include_usage"),
        ({"logprobs": 2}, "logprobs"),
        ({"temperature": "hot"}, "temperature"),
        ({"stop": ["a", ""]}, "stop"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_chat_values_are_named(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat({"model": "m", "messages": USER, **body})
    assert caught.value.param == param


def test_a_rest_job_takes_params_nested_or_at_the_top() -> None:
    nested = parse_job(
        {"model": "m", "prompt": "p", "params": {"max_tokens": 3}, "priority": "high"}
    )
    top = parse_job({"model": "m", "prompt": "p", "max_tokens": 3, "priority": "high"})
    assert nested == top
    assert (top.params.max_tokens, top.priority) == (3, Priority.HIGH)
    chat = parse_job({"model": "m", "messages": USER, "params": None})
    assert chat.messages == (Message("user", "hi"),)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "prompt": "p", "n": 2}, "n"),
        ({"model": "m", "prompt": "p", "params": [1]}, "params"),
        ({"model": "m", "prompt": "p", "params": {"top_x": 1}}, "top_x"),
        ({"model": "m", "prompt": "p", "messages": USER}, "prompt"),
    ],
)
def test_bad_rest_jobs_are_named(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_job(body)
    assert caught.value.param == param


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def test_tools_and_a_named_choice_become_the_request_and_its_schema() -> None:
    call = parse_chat(
        {
            "model": "m",
            "messages": USER,
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": False,
        }
    )
    request = call.requests[0]
    assert [t.name for t in request.tools] == ["get_weather"]
    assert request.tool_choice == ToolChoice("function", "get_weather")
    assert json.loads(request.output_schema or "") == WEATHER["function"]["parameters"]
    assert not call.parallel_tool_calls


def test_tool_choice_defaults_to_auto_with_tools_and_none_without() -> None:
    with_tools = parse_chat({"model": "m", "messages": USER, "tools": [WEATHER]}).requests[0]
    assert with_tools.tool_choice.mode == "auto" and with_tools.output_schema is None
    plain = parse_chat({"model": "m", "messages": USER}).requests[0]
    assert plain.tool_choice.mode == "none"
    required = parse_chat(
        {"model": "m", "messages": USER, "tools": [WEATHER], "tool_choice": "required"}
    ).requests[0]
    schema = json.loads(required.output_schema or "")
    assert schema["properties"]["name"] == {"const": "get_weather"}


def test_a_tool_history_is_read_into_messages() -> None:
    call = parse_chat(
        {
            "model": "m",
            "messages": [
                *USER,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            ],
            "tools": [WEATHER],
        }
    )
    messages = call.requests[0].messages or ()
    assert messages[1].tool_calls == (ToolCall("call_1", "get_weather", '{"city": "Oslo"}'),)
    assert messages[2] == Message("tool", "sunny", tool_call_id="call_1")


def test_response_formats_and_logit_bias() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    call = parse_chat(
        {
            "model": "m",
            "messages": USER,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": schema, "strict": True},
            },
            "logit_bias": {"7": -100, "9": 2.5},
        }
    )
    request = call.requests[0]
    assert json.loads(request.output_schema or "") == schema
    assert request.params.logit_bias == ((7, -100.0), (9, 2.5))
    plain = parse_chat(
        {"model": "m", "messages": USER, "response_format": {"type": "json_object"}}
    ).requests[0]
    assert plain.output_schema == '{"type":"object"}'


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"logit_bias": {"x": 1}}, "logit_bias"),
        ({"logit_bias": {"1": 101}}, "logit_bias"),
        ({"logit_bias": [1]}, "logit_bias"),
        ({"tools": [{"type": "function"}]}, "tools[0]"),
        ({"tools": [WEATHER, WEATHER]}, "tools"),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice",
        ),
        ({"response_format": {"type": "yaml"}}, "response_format"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "nonsense"}},
                }
            },
            "response_format.json_schema.schema",
        ),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        (
            {"messages": [{"role": "assistant", "content": "x", "tool_calls": [{"id": "1"}]}]},
            "messages[0].tool_calls[0]",
        ),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ],
)
def test_bad_tool_and_format_fields_are_400s_that_name_them(
    body: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat({"model": "m", "messages": USER, **body})
    assert caught.value.param == param


def test_a_rest_job_takes_a_response_format() -> None:
    request = parse_job({"model": "m", "prompt": "hi", "response_format": {"type": "json_object"}})
    assert request.output_schema == '{"type":"object"}'
