"""Domain errors of jupyter_llm.

No HTTP status codes here: ``server/`` owns the one translator from these classes to
HTTP and OpenAI error bodies. Every message is written for the person who will read it.

The tree::

    LLMError
    ├── ConfigError              models.yaml is unreadable or does not match the schema
    ├── InvalidRequest           a request or parameter is wrong (carries the parameter name)
    │   └── JobTooLarge          the job's units could never fit the model's cache
    ├── UnknownModel             no model of that name is configured
    ├── UnknownJob               no job of that id is live or in the mailbox
    ├── QueueFull                the model's queue is at max_queue_depth (carries retry_after)
    ├── ModelNotReady            the model failed to load, or the pool is stopping
    └── JobFailed                a job ended without a result
        ├── WorkerLost           the worker process running it died
        ├── JobExpired           it waited in the queue past timeout_secs
        └── JobCancelled         it was cancelled before it finished
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "InvalidRequest",
    "JobCancelled",
    "JobExpired",
    "JobFailed",
    "JobTooLarge",
    "LLMError",
    "ModelNotReady",
    "QueueFull",
    "UnknownJob",
    "UnknownModel",
    "WorkerLost",
]


class LLMError(Exception):
    """The root of every error jupyter_llm raises on purpose."""


class ConfigError(LLMError):
    """A configuration file is unreadable or wrong.

    The message names the file, the key path (``models[0].params.block_size``) and what was
    expected, so the reader can fix it without opening the source.
    """

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}")


class InvalidRequest(LLMError):
    """A request or one of its parameters is wrong; ``param`` names it when one is to blame."""

    def __init__(self, message: str, param: str | None = None) -> None:
        self.param = param
        super().__init__(message)


class JobTooLarge(InvalidRequest):
    """The job costs more units than one worker of its model can ever hold."""

    def __init__(self, cost: int, capacity: int, model: str) -> None:
        self.cost = cost
        self.capacity = capacity
        super().__init__(
            f"this job needs {cost} KV-cache units but a worker of model {model!r} holds at most "
            f"{capacity}; shorten the prompt or lower max_tokens",
            param="max_tokens",
        )


class UnknownModel(LLMError):
    """No model of that name is configured."""

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = list(available)
        names = ", ".join(available) if available else "none"
        super().__init__(f"unknown model {name!r}; available models: {names}")


class UnknownJob(LLMError):
    """No job of that id is live or kept in the mailbox."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job with id {job_id!r} (it may have passed its retention time)")


class QueueFull(LLMError):
    """The model's queue holds max_queue_depth jobs already; try again after ``retry_after``."""

    def __init__(self, model: str, depth: int, retry_after: float) -> None:
        self.model = model
        self.depth = depth
        self.retry_after = retry_after
        super().__init__(
            f"the queue of model {model!r} is full ({depth} jobs waiting); "
            f"retry in {retry_after:.0f} s"
        )


class ModelNotReady(LLMError):
    """The model cannot take jobs: it failed to load, or the pool is stopping."""

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        self.reason = reason
        super().__init__(f"model {model!r} is not available: {reason}")


class JobFailed(LLMError):
    """A job ended without a result; the message says why."""

    def __init__(self, job_id: str, reason: str) -> None:
        self.job_id = job_id
        self.reason = reason
        super().__init__(f"job {job_id} failed: {reason}")


class WorkerLost(JobFailed):
    """The worker process that ran the job died."""


class JobExpired(JobFailed):
    """The job waited in the queue longer than timeout_secs."""


class JobCancelled(JobFailed):
    """The job was cancelled before it finished."""
