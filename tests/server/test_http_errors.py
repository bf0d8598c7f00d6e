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
    WorkerLost,
)
from jupyter_llm.server.http_errors import UnsupportedParameter, failure_of, translate
from jupyter_llm.types import JobStatus


@pytest.mark.parametrize(
    ("error", "status", "code", "param"),
    [
        (UnsupportedParameter("tools"), 400, "unsupported_parameter", "tools"),
        (InvalidRequest("bad", param="top_p"), 400, "invalid_value", "top_p"),
        (JobTooLarge(10, 5, "m"), 400, "invalid_value", "max_tokens"),
        (UnknownModel("x", ["m"]), 404, "model_not_found", "model"),
        (UnknownJob("j"), 404, "job_not_found", None),
        (QueueFull("m", 3, 2.2), 429, "queue_full", None),
        (ModelNotReady("m", "loading failed"), 503, "model_not_ready", "model"),
        (ConfigError("f.yaml", "models", "bad"), 503, "config_error", None),
        (WorkerLost("j", "died"), 503, "worker_lost", None),
        (JobExpired("j", "waited"), 504, "queue_timeout", None),
        (JobCancelled("j", "stopped"), 503, "job_cancelled", None),
        (JobFailed("j", "oom"), 500, "engine_error", None),
        (LLMError("other"), 500, None, None),
    ],
)
def test_domain_errors_map_to_status_and_body(
    error: LLMError, status: int, code: str | None, param: str | None
) -> None:
    failure = translate(error)
    assert failure.status == status
    body = failure.body()["error"]
    assert (body["code"], body["param"], body["message"]) == (code, param, str(error))
    assert set(body) == {"message", "type", "param", "code"}


def test_a_full_queue_says_when_to_retry() -> None:
    assert translate(QueueFull("m", 3, 2.2)).headers == {"Retry-After": "3"}
    assert translate(QueueFull("m", 3, 0.0)).headers == {"Retry-After": "1"}


def test_http_errors_and_bugs() -> None:
    assert translate(HTTPError(403)).body()["error"]["type"] == "permission_error"
    assert translate(HTTPError(405)).status == 405
    bug = translate(ZeroDivisionError("secret detail"))
    assert bug.status == 500
    assert "secret" not in bug.message


@pytest.mark.parametrize(
    ("status", "error_type", "kind"),
    [
        (JobStatus.EXPIRED, "JobExpired", JobExpired),
        (JobStatus.EXPIRED, None, JobExpired),
        (JobStatus.CANCELLED, "JobCancelled", JobCancelled),
        (JobStatus.CANCELLED, None, JobCancelled),
        (JobStatus.FAILED, "WorkerLost", WorkerLost),
        (JobStatus.FAILED, "ModelNotReady", ModelNotReady),
        (JobStatus.FAILED, "JobFailed", JobFailed),
        (JobStatus.FAILED, None, JobFailed),
    ],
)
def test_failure_of_a_job(status: JobStatus, error_type: str | None, kind: type[LLMError]) -> None:
    failure = failure_of("m", "j", status, "why", error_type)
    assert type(failure) is kind
    assert "why" in str(failure)
