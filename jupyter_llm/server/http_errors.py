"""The one translator from errors to HTTP: a status, OpenAI's error body, extra headers.

Domain errors (``jupyter_llm.errors``) carry no HTTP codes; this module decides them, for the
REST routes and the OpenAI routes alike, so both answer with the same body::

    {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}

A job that ended without a result is turned back into its domain error by ``failure_of``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from http.client import responses
from typing import Any

from tornado.web import HTTPError

from ..errors import (
    ConfigError,
    InvalidRequest,
    JobCancelled,
    JobExpired,
    JobFailed,
    LLMError,
    ModelNotReady,
    QueueFull,
    UnknownJob,
    UnknownModel,
    WorkerLost,
)
from ..types import JobStatus, job_failure

__all__ = ["HTTPFailure", "UnsupportedParameter", "failure_of", "translate"]


class UnsupportedParameter(InvalidRequest):
    """A parameter that jupyter_llm does not implement (400, never silently ignored)."""

    def __init__(self, param: str, why: str = "") -> None:
        detail = f": {why}" if why else ""
        super().__init__(f"unsupported parameter {param!r}{detail}", param=param)


@dataclass(frozen=True, slots=True)
class HTTPFailure:
    status: int
    message: str
    type: str
    code: str | None = None
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


# Most specific first: JobTooLarge is an InvalidRequest, WorkerLost a JobFailed, and so on.
_DOMAIN: tuple[tuple[type[LLMError], int, str, str | None], ...] = (
    (UnsupportedParameter, 400, "invalid_request_error", "unsupported_parameter"),
    (InvalidRequest, 400, "invalid_request_error", "invalid_value"),
    (UnknownModel, 404, "invalid_request_error", "model_not_found"),
    (UnknownJob, 404, "not_found_error", "job_not_found"),
    (QueueFull, 429, "rate_limit_error", "queue_full"),
    (ModelNotReady, 503, "server_error", "model_not_ready"),
    (ConfigError, 503, "server_error", "config_error"),
    (WorkerLost, 503, "server_error", "worker_lost"),
    (JobExpired, 504, "timeout_error", "queue_timeout"),
    # Cancelled by someone else (DELETE, the server stopping) while this request waited.
    (JobCancelled, 503, "server_error", "job_cancelled"),
    (JobFailed, 500, "server_error", "engine_error"),
)

_HTTP_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
}


def translate(error: BaseException | None, status: int = 500) -> HTTPFailure:
    """The HTTP answer for ``error`` (``status`` when there is no exception to go by)."""
    if isinstance(error, LLMError):
        return _from_domain(error)
    if isinstance(error, HTTPError):
        status = error.status_code
        message = error.reason or responses.get(status, "error")
        if error.log_message:
            message = error.log_message % error.args if error.args else error.log_message
        return HTTPFailure(status, message, _http_type(status))
    if error is not None:  # a bug: say where to look, leak nothing
        return HTTPFailure(500, "internal server error; see the Jupyter server log", "server_error")
    return HTTPFailure(status, responses.get(status, "error"), _http_type(status))


def _from_domain(error: LLMError) -> HTTPFailure:
    status, kind, code = next(
        ((status, kind, code) for cls, status, kind, code in _DOMAIN if isinstance(error, cls)),
        (500, "server_error", None),
    )
    param = error.param if isinstance(error, InvalidRequest) else None
    if isinstance(error, UnknownModel | ModelNotReady):
        param = "model"
    headers = {}
    if isinstance(error, QueueFull):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    return HTTPFailure(status, str(error), kind, code, param, headers)


def _http_type(status: int) -> str:
    return _HTTP_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def failure_of(
    model: str, job_id: str, status: JobStatus, error: str | None, error_type: str | None
) -> LLMError:
    """The domain error that a job which ended as ``status`` (not completed) stands for."""
    failure = job_failure(job_id, model, status, error, error_type)
    return failure if failure is not None else JobFailed(job_id, error or status.value)
