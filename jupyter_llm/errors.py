"""Domain errors of jupyter_llm, each with a stable ``code``.

No HTTP status codes here: ``server/http_errors.py`` owns the one translator from these
classes to HTTP and OpenAI error bodies. Every message is written for the person who will
read it. Each class names in ``fields`` the attributes that travel in an error body beside
its message, so the other side of a connection rebuilds the same error (``restore``)
without reading the English.

The tree (``code`` in brackets)::

    LLMError [internal_error]
    ├── ConfigError [config_error]              models.yaml is unreadable or wrong
    ├── InvalidRequest [invalid_value]          a request or parameter is wrong (names it)
    │   ├── UnsupportedParameter [unsupported_parameter]   one jupyter_llm does not implement
    │   ├── JobTooLarge [job_too_large]         the job could never fit the model's cache
    │   └── RequestTooLarge [request_too_large] the request body is over the server's cap
    ├── NotAuthenticated [invalid_api_key]      an API client's key is missing or wrong
    ├── UnknownModel [model_not_found]          no model of that name is configured
    ├── UnknownJob [job_not_found]              no job of that id is live or in the mailbox
    ├── QueueFull [queue_full]                  the model's queue is at max_queue_depth
    │   └── UserLimitReached [user_limit_reached]   one user's jobs are at a per-user limit
    ├── ModelNotReady [model_not_ready]         the model failed to load, or the pool stops
    ├── SourceError [source_error]              a model's files cannot be found or fetched
    ├── JobFailed [engine_error]                a job ended without a result
    │   ├── WorkerLost [worker_lost]            the worker process running it died
    │   ├── JobExpired [queue_timeout]          it waited in the queue past timeout_secs
    │   └── JobCancelled [job_cancelled]        it was cancelled before it finished
    ├── ServerUnreachable [server_unreachable]  (kernel) no answer from the server
    └── ServerRefused [server_refused]          (kernel) an answer, but not a jupyter_llm one
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

__all__ = [
    "ConfigError",
    "InvalidRequest",
    "JobCancelled",
    "JobExpired",
    "JobFailed",
    "JobTooLarge",
    "LLMError",
    "ModelNotReady",
    "NotAuthenticated",
    "QueueFull",
    "RequestTooLarge",
    "ServerRefused",
    "ServerUnreachable",
    "SourceError",
    "UnknownJob",
    "UnknownModel",
    "UnsupportedParameter",
    "UserLimitReached",
    "WorkerLost",
    "error_class",
    "failure_type",
    "job_failure",
]

E = TypeVar("E", bound="LLMError")


class LLMError(Exception):
    """The root of every error jupyter_llm raises on purpose."""

    code: ClassVar[str] = "internal_error"
    #: The attributes that travel with the message (JSON values), enough to rebuild it.
    fields: ClassVar[tuple[str, ...]] = ()

    def details(self) -> dict[str, Any]:
        """The ``fields`` of this error and their values."""
        return {name: getattr(self, name, None) for name in self.fields}

    @classmethod
    def restore(cls: type[E], message: str, details: dict[str, Any]) -> E:
        """This error as the other side reported it: in its words (``__init__`` would word
        it again), with the fields it sent (None for those it did not)."""
        error = cls.__new__(cls)
        Exception.__init__(error, message)
        for name in cls.fields:
            setattr(error, name, details.get(name))
        return error


class ConfigError(LLMError):
    """A configuration file is unreadable or wrong.

    The message names the file, the key path (``models[0].params.block_size``) and what was
    expected, so the reader can fix it without opening the source.
    """

    code = "config_error"
    fields = ("file", "key", "problem")

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}")


class InvalidRequest(LLMError):
    """A request or one of its parameters is wrong; ``param`` names it when one is to blame."""

    code = "invalid_value"
    fields: ClassVar[tuple[str, ...]] = ("param",)

    def __init__(self, message: str, param: str | None = None) -> None:
        self.param = param
        super().__init__(message)


class UnsupportedParameter(InvalidRequest):
    """A parameter that jupyter_llm does not implement (refused, never silently ignored)."""

    code = "unsupported_parameter"

    def __init__(self, param: str, why: str = "") -> None:
        detail = f": {why}" if why else ""
        super().__init__(f"unsupported parameter {param!r}{detail}", param=param)


class JobTooLarge(InvalidRequest):
    """The job costs more units than one worker of its model can ever hold."""

    code = "job_too_large"
    fields = ("param", "model", "cost", "capacity")

    def __init__(self, cost: int, capacity: int, model: str) -> None:
        self.cost = cost
        self.capacity = capacity
        self.model = model
        super().__init__(
            f"this job needs {cost} KV-cache units but a worker of model {model!r} holds at most "
            f"{capacity}; shorten the prompt or lower max_tokens",
            param="max_tokens",
        )


class RequestTooLarge(InvalidRequest):
    """The request body is larger than the server reads (its ``max_body_bytes``).

    ``size`` is the body's declared length, or what arrived before the cap was passed.
    """

    code = "request_too_large"
    fields = ("param", "size", "limit")

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"the request body ({size:,} bytes) is larger than this server reads "
            f"({limit:,} bytes, its LLMExtension.max_body_bytes)"
        )


class UnknownModel(LLMError):
    """No model of that name is configured."""

    code = "model_not_found"
    fields = ("model", "available")

    def __init__(self, name: str, available: list[str]) -> None:
        self.model = name
        self.available = list(available)
        names = ", ".join(available) if available else "none"
        super().__init__(f"unknown model {name!r}; available models: {names}")

    @property
    def name(self) -> str:
        """The model asked for (``model``)."""
        return str(self.model)


class NotAuthenticated(LLMError):
    """An API client (no browser cookies) sent no key, or not this server's token."""

    code = "invalid_api_key"

    def __init__(self) -> None:
        super().__init__(
            "missing or incorrect API key: send the Jupyter server's token as the key "
            "(Authorization: Bearer TOKEN)"
        )


class UnknownJob(LLMError):
    """No job of that id is live or kept in the mailbox."""

    code = "job_not_found"
    fields = ("job_id",)

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job with id {job_id!r} (it may have passed its retention time)")


class QueueFull(LLMError):
    """The model's queue holds max_queue_depth jobs already; try again after ``retry_after``."""

    code = "queue_full"
    fields: ClassVar[tuple[str, ...]] = ("model", "depth", "retry_after")

    def __init__(self, model: str, depth: int, retry_after: float) -> None:
        self.model = model
        self.depth = depth
        self.retry_after = retry_after
        super().__init__(
            f"the queue of model {model!r} is full ({depth} jobs waiting); "
            f"retry in {retry_after:.0f} s"
        )


class UserLimitReached(QueueFull):
    """One user's jobs for a model are at a per-user limit of ``parking_lot.limits``.

    ``limit`` names the key (``max_queued_per_user``), ``maximum`` its value; the queue may
    have room for others. Try again after ``retry_after``.
    """

    code = "user_limit_reached"
    fields = ("model", "user", "limit", "maximum", "depth", "retry_after")

    def __init__(
        self, model: str, user: str | None, limit: str, maximum: int, retry_after: float
    ) -> None:
        self.model = model
        self.user = user
        self.limit = limit
        self.maximum = maximum
        self.depth = maximum  # the user's own line is as deep as it may go
        self.retry_after = retry_after
        LLMError.__init__(
            self,
            f"user {user!r} has as many jobs waiting for model {model!r} as "
            f"parking_lot.limits.{limit} allows ({maximum}); retry in {retry_after:.0f} s",
        )


class ModelNotReady(LLMError):
    """The model cannot take jobs: it failed to load, or the pool is stopping."""

    code = "model_not_ready"
    fields = ("model", "reason")

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        self.reason = reason
        super().__init__(f"model {model!r} is not available: {reason}")


class SourceError(LLMError):
    """A model's files cannot be found, downloaded or converted; the message says what to do.

    Raised in a worker while it loads (the model then reports ``error`` with this message),
    and by ``jupyter llm pull``.
    """

    code = "source_error"


class JobFailed(LLMError):
    """A job ended without a result; the message says why."""

    code = "engine_error"
    fields = ("job_id", "reason")
    #: The terminal ``JobStatus`` value a job failing this way ends with.
    status: ClassVar[str] = "failed"

    def __init__(self, job_id: str, reason: str) -> None:
        self.job_id = job_id
        self.reason = reason
        super().__init__(f"job {job_id} failed: {reason}")


class WorkerLost(JobFailed):
    """The worker process that ran the job died."""

    code = "worker_lost"


class JobExpired(JobFailed):
    """The job waited in the queue longer than timeout_secs."""

    code = "queue_timeout"
    status = "expired"


class JobCancelled(JobFailed):
    """The job was cancelled before it finished."""

    code = "job_cancelled"
    status = "cancelled"


class ServerUnreachable(LLMError):
    """The kernel got no answer from the jupyter_llm server (refused, timed out, lost)."""

    code = "server_unreachable"
    fields = ("url", "reason")

    def __init__(self, url: str, reason: str, hint: str = "") -> None:
        self.url = url
        self.reason = reason
        tail = f"; {hint}" if hint else ""
        super().__init__(f"cannot reach the jupyter_llm server at {url}: {reason}{tail}")


class ServerRefused(LLMError):
    """The server answered, but not as jupyter_llm does (a bad token, no extension)."""

    code = "server_refused"
    fields = ("url", "status")

    def __init__(self, url: str, status: int, message: str) -> None:
        self.url = url
        self.status = status
        super().__init__(message)


def _tree(root: type[E]) -> list[type[E]]:
    """``root`` and every class below it, parents before children."""
    classes = [root]
    for child in root.__subclasses__():
        classes.extend(_tree(child))
    return classes


# The one table of codes, read off the classes above (a test checks the codes are unique).
_BY_CODE: dict[str, type[LLMError]] = {cls.code: cls for cls in _tree(LLMError)}
_FAILURE_BY_STATUS: dict[str, type[JobFailed]] = {
    cls.status: cls for cls in _tree(JobFailed) if "status" in vars(cls)
}


def error_class(code: str | None) -> type[LLMError] | None:
    """The class whose ``code`` (or, for records' ``error_type``, whose name) this is."""
    if code is None:
        return None
    found = _BY_CODE.get(code)
    if found is None:
        found = next((cls for cls in _BY_CODE.values() if cls.__name__ == code), None)
    return found


def job_failure(
    job_id: str, model: str, status: str, error: str | None, error_type: str | None
) -> LLMError | None:
    """The domain error a job's ending stands for, from its status and ``error_type``.

    None when the job completed or has not ended (``status`` is a ``JobStatus`` value).
    Records from before ``error_type`` existed fall back on their status.
    """
    default = _FAILURE_BY_STATUS.get(str(status))
    if default is None:
        return None
    reason = error or str(status)
    kind = error_class(error_type)
    if kind is ModelNotReady:
        return ModelNotReady(model, reason)
    if kind is InvalidRequest:  # a remote engine's upstream refused the request (its 400)
        return InvalidRequest(reason)
    if kind is None or not issubclass(kind, JobFailed):
        kind = default
    return kind(job_id, reason)


def failure_type(status: str) -> str | None:
    """The ``error_type`` a job ending as ``status`` gets unless it says otherwise (None for
    a status that is no failure)."""
    kind = _FAILURE_BY_STATUS.get(str(status))
    return None if kind is None else kind.__name__
