from __future__ import annotations

import pickle

import pytest

from jupyter_llm.errors import (
    InvalidRequest,
    JobCancelled,
    JobExpired,
    JobFailed,
    ModelNotReady,
    WorkerLost,
)
from jupyter_llm.structured import ResponseFormat, Tool, ToolCall, ToolChoice
from jupyter_llm.types import (
    CompletionInput,
    GenerationRequest,
    JobRecord,
    JobStatus,
    Message,
    Priority,
    SamplingParams,
    Timings,
    Usage,
)


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        ({"max_tokens": 0}, "max_tokens", "expected an integer from 1 to 2147483647, got 0"),
        ({"max_tokens": True}, "max_tokens", "got true"),
        ({"temperature": 2.5}, "temperature", "expected a number from 0 to 2, got 2.5"),
        ({"temperature": float("nan")}, "temperature", "got nan"),
        ({"top_p": 0}, "top_p", "expected a number in (0, 1]"),
        ({"top_k": -1}, "top_k", "0 turns it off"),
        ({"min_p": 1.5}, "min_p", "from 0 to 1"),
        ({"presence_penalty": 3}, "presence_penalty", "from -2 to 2"),
        ({"repetition_penalty": 0}, "repetition_penalty", "above 0"),
        ({"stop": ("",)}, "stop", "non-empty strings"),
        ({"stop_token_ids": (-1,)}, "stop_token_ids", "integers of at least 0"),
        ({"seed": 1.5}, "seed", "expected an integer"),
        ({"top_logprobs": 21}, "top_logprobs", "from 0 to 20"),
    ],
)
def test_bad_sampling_parameters_name_themselves(params, param, message):
    with pytest.raises(InvalidRequest) as error:
        SamplingParams(**params)
    assert error.value.param == param
    assert message in str(error.value)


def test_from_dict_rejects_what_we_do_not_support():
    with pytest.raises(InvalidRequest, match="unsupported parameter 'best_of'") as error:
        SamplingParams.from_dict({"best_of": 2})
    assert error.value.param == "best_of"
    assert SamplingParams.from_dict({"stop": "END"}).stop == ("END",)


def test_a_request_needs_exactly_one_of_prompt_or_messages():
    with pytest.raises(InvalidRequest, match="exactly one of prompt or messages"):
        GenerationRequest("m")
    with pytest.raises(InvalidRequest, match="exactly one of prompt or messages"):
        GenerationRequest("m", prompt="x", messages=(Message("user", "y"),))
    with pytest.raises(InvalidRequest, match="role must be system, user, assistant or tool"):
        Message("robot", "x")
    with pytest.raises(InvalidRequest, match="priority must be one of low, normal, high"):
        Priority.parse("urgent")


def test_requests_and_records_round_trip_through_dicts_and_pickle():
    request = GenerationRequest(
        "m",
        messages=(Message("system", "s"), Message("user", "u")),
        params=SamplingParams(max_tokens=4, stop=("x",), seed=3, logprobs=True, top_logprobs=2),
        priority=Priority.HIGH,
    )
    assert GenerationRequest.from_dict(request.to_dict()) == request
    assert pickle.loads(pickle.dumps(request)) == request
    completion = GenerationRequest(
        "m",
        completion=CompletionInput("x = ", "\n", "python", ("import os",), "cell-1", "line"),
    )
    assert completion.kind == "completion" and request.kind == "generate"
    assert GenerationRequest.from_dict(completion.to_dict()) == completion
    assert pickle.loads(pickle.dumps(completion)) == completion
    record = JobRecord(
        "id",
        "m",
        JobStatus.COMPLETED,
        Timings(1.0, 2.0, 2.5, 4.0),
        Priority.LOW,
        "hi",
        "stop",
        Usage(3, 2),
    )
    data = record.to_dict()
    assert data["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert data["timings"]["queue_secs"] == 1.0 and data["timings"]["run_secs"] == 2.0
    assert JobRecord.from_dict(data) == record
    assert data["kind"] == "generate"
    assert JobRecord.from_dict(record.to_dict() | {"kind": "completion"}).kind == "completion"


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (JobStatus.FAILED, "WorkerLost", WorkerLost),
        (JobStatus.FAILED, "ModelNotReady", ModelNotReady),
        (JobStatus.FAILED, "JobFailed", JobFailed),
        (JobStatus.FAILED, None, JobFailed),
        (JobStatus.EXPIRED, "JobExpired", JobExpired),
        (JobStatus.EXPIRED, None, JobExpired),
        (JobStatus.CANCELLED, None, JobCancelled),
    ],
)
def test_a_records_failure_is_its_domain_error(status, error_type, expected):
    record = JobRecord("j", "m", status, Timings(1.0), error="why", error_type=error_type)
    failure = record.failure()
    assert type(failure) is expected and "why" in str(failure)


def test_completed_and_running_jobs_have_no_failure():
    for status in (JobStatus.COMPLETED, JobStatus.RUNNING, JobStatus.QUEUED):
        assert JobRecord("j", "m", status, Timings(1.0)).failure() is None


def test_a_request_with_tools_and_a_format_survives_its_dict() -> None:
    request = GenerationRequest(
        "m",
        messages=(
            Message("user", "weather?"),
            Message("assistant", "", (ToolCall("c1", "weather", '{"city": "Oslo"}'),)),
            Message("tool", "sunny", tool_call_id="c1", name="weather"),
        ),
        params=SamplingParams(logit_bias=((3, -100.0),)),
        tools=(Tool("weather", "the weather", '{"type":"object"}'),),
        tool_choice=ToolChoice("function", "weather"),
        response_format=ResponseFormat("json_schema", '{"type":"object"}', "x", True),
    )
    assert GenerationRequest.from_dict(request.to_dict()) == request


def test_logit_bias_is_bounded() -> None:
    with pytest.raises(InvalidRequest) as error:
        SamplingParams(logit_bias=((1, 101.0),))
    assert error.value.param == "logit_bias"
