"""The one translator: each domain error's status, OpenAI body and headers."""

from __future__ import annotations

import pytest
from tornado.web import HTTPError

from jupyter_llm.errors import (
    ConfigError,
    InvalidRequest,
    JobCancelled,
    JobExpired,
    JobFailed,
    JobTooLarge,
    LLMError,
    ModelNotReady,
    QueueFull,
    UnknownJob,
    UnknownModel,
    UnsupportedParameter,
    UserLimitReached,
    WorkerLost,
)
from jupyter_llm.server.http_errors import translate


@pytest.mark.parametrize(
    ("error", "status", "code", "param"),
    [
        (UnsupportedParameter("tools"), 400, "unsupported_parameter", "tools"),
        (InvalidRequest("bad", param="top_p"), 400, "invalid_value", "top_p"),
        (JobTooLarge(10, 5, "m"), 400, "job_too_large", "max_tokens"),
        (UnknownModel("x", ["m"]), 404, "model_not_found", "model"),
        (UnknownJob("j"), 404, "job_not_found", None),
        (QueueFull("m", 3, 2.2), 429, "queue_full", None),
        (
            UserLimitReached("m", "ada", "max_queued_per_user", 4, 2.2),
            429,
            "user_limit_reached",
            None,
        ),
        (ModelNotReady("m", "loading failed"), 503, "model_not_ready", "model"),
        (ConfigError("f.yaml", "models", "bad"), 503, "config_error", None),
        (WorkerLost("j", "died"), 503, "worker_lost", None),
        (JobExpired("j", "waited"), 504, "queue_timeout", None),
        (JobCancelled("j", "stopped"), 503, "job_cancelled", None),
        (JobFailed("j", "oom"), 500, "engine_error", None),
        (LLMError("other"), 500, "internal_error", None),
    ],
)
def test_domain_errors_map_to_status_and_body(
    error: LLMError, status: int, code: str | None, param: str | None
) -> None:
    failure = translate(error)
    assert failure.status == status
    body = failure.body()["error"]
    assert (body["code"], body["param"], body["message"]) == (code, param, str(error))
    assert code == error.code
    # Beside OpenAI's four keys, the fields that rebuild the error; the same error comes back.
    assert set(body) == {"message", "type", "param", "code"} | set(error.fields)
    again = type(error).restore(body["message"], body)
    assert (str(again), again.details()) == (str(error), error.details())


def test_the_body_carries_a_full_queues_depth_and_retry_time() -> None:
    body = translate(QueueFull("m", 3, 2.2)).body()["error"]
    assert (body["model"], body["depth"], body["retry_after"]) == ("m", 3, 2.2)


def test_a_full_queue_says_when_to_retry() -> None:
    assert translate(QueueFull("m", 3, 2.2)).headers == {"Retry-After": "3"}
    assert translate(QueueFull("m", 3, 0.0)).headers == {"Retry-After": "1"}
    limited = translate(UserLimitReached("m", "ada", "max_queued_per_user", 4, 2.2))
    assert (limited.status, limited.type, limited.headers) == (
        429,
        "rate_limit_error",
        {"Retry-After": "3"},
    )
    assert limited.details["limit"] == "max_queued_per_user"


def test_http_errors_and_bugs() -> None:
    assert translate(HTTPError(403)).body()["error"]["type"] == "permission_error"
    assert translate(HTTPError(405)).status == 405
    bug = translate(ZeroDivisionError("secret detail"))
    assert bug.status == 500
    assert "secret" not in bug.message
