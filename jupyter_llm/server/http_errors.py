"""The one translator from errors to HTTP: a status, OpenAI's error body, extra headers.

Domain errors (``jupyter_llm.errors``) carry no HTTP codes; this module decides them, for the
REST routes and the OpenAI routes alike, so both answer with the same body::

    {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}

Beside OpenAI's four keys, the body carries the error's ``fields`` (a full queue's ``depth``
and ``retry_after``, an unknown model's ``available`` names...), so a client rebuilds the
error from them (``LLMError.restore``) instead of parsing the message.
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
    NotAuthenticated,
    QueueFull,
    RequestTooLarge,
    UnknownJob,
    UnknownModel,
    UserLimitReached,
    WorkerLost,
)

__all__ = ["HTTPFailure", "translate"]


@dataclass(frozen=True, slots=True)
class HTTPFailure:
    status: int
    message: str
    type: str
    code: str | None = None
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                **self.details,
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


# Status and OpenAI type by class, most specific first (a subclass not listed gets its
# parent's); the codes come from the classes themselves.
_STATUS: tuple[tuple[type[LLMError], int, str], ...] = (
    (RequestTooLarge, 413, "invalid_request_error"),
    (InvalidRequest, 400, "invalid_request_error"),
    (NotAuthenticated, 401, "invalid_request_error"),  # OpenAI's type for a wrong key
    (UnknownModel, 404, "invalid_request_error"),
    (UnknownJob, 404, "not_found_error"),
    (UserLimitReached, 429, "rate_limit_error"),  # the queue may have room, not for this user
    (QueueFull, 429, "rate_limit_error"),
    (ModelNotReady, 503, "server_error"),
    (ConfigError, 503, "server_error"),
    (WorkerLost, 503, "server_error"),
    (JobExpired, 504, "timeout_error"),
    # Cancelled by someone else (DELETE, the server stopping) while this request waited.
    (JobCancelled, 503, "server_error"),
    (JobFailed, 500, "server_error"),
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
    status, kind = next(
        ((status, kind) for cls, status, kind in _STATUS if isinstance(error, cls)),
        (500, "server_error"),
    )
    details = error.details()
    param = details.pop("param", None)
    if isinstance(error, UnknownModel | ModelNotReady):
        param = "model"
    headers = {}
    if isinstance(error, QueueFull):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if isinstance(error, NotAuthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    return HTTPFailure(status, str(error), kind, error.code, param, headers, details)


def _http_type(status: int) -> str:
    return _HTTP_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
