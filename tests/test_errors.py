"""The error tree: one stable code per class, fields that rebuild an error, job failures."""

from __future__ import annotations

import pytest

from jupyter_llm import errors
from jupyter_llm.types import JobStatus, TokenEvent


def _classes() -> list[type[errors.LLMError]]:
    found = [errors.LLMError]
    for cls in found:
        found.extend(cls.__subclasses__())
    return found


def test_every_error_has_its_own_code_and_is_found_by_it() -> None:
    classes = _classes()
    codes = [cls.code for cls in classes]
    assert len(set(codes)) == len(codes), codes
    for cls in classes:
        assert errors.error_class(cls.code) is cls
        assert errors.error_class(cls.__name__) is cls  # records' error_type names the class
        assert cls.__name__ in errors.__all__
    assert errors.error_class("no_such_code") is None
    assert errors.error_class(None) is None


def test_restore_keeps_the_message_and_fields() -> None:
    error = errors.QueueFull.restore("full, as the server said", {"model": "m", "depth": 4})
    assert str(error) == "full, as the server said"
    assert (error.model, error.depth, error.retry_after) == ("m", 4, None)
    unknown = errors.UnknownModel("x", ["a", "b"])
    again = errors.UnknownModel.restore(str(unknown), unknown.details())
    assert (again.name, again.available) == ("x", ["a", "b"])


@pytest.mark.parametrize(
    ("status", "error_type", "kind"),
    [
        (JobStatus.EXPIRED, "JobExpired", errors.JobExpired),
        (JobStatus.EXPIRED, None, errors.JobExpired),
        (JobStatus.CANCELLED, "JobCancelled", errors.JobCancelled),
        (JobStatus.CANCELLED, None, errors.JobCancelled),
        (JobStatus.FAILED, "WorkerLost", errors.WorkerLost),
        (JobStatus.FAILED, "ModelNotReady", errors.ModelNotReady),
        (JobStatus.FAILED, "JobFailed", errors.JobFailed),
        (JobStatus.FAILED, None, errors.JobFailed),
        (JobStatus.FAILED, "SomethingNewer", errors.JobFailed),
    ],
)
def test_a_jobs_ending_stands_for_its_error(
    status: JobStatus, error_type: str | None, kind: type[errors.LLMError]
) -> None:
    failure = errors.job_failure("j", "m", status, "why", error_type)
    assert type(failure) is kind
    assert "why" in str(failure)
    event = TokenEvent("j", 3, status, error="why", error_type=error_type)
    assert type(event.failure("m")) is kind


@pytest.mark.parametrize("status", [JobStatus.COMPLETED, JobStatus.RUNNING, JobStatus.QUEUED])
def test_no_failure_without_one(status: JobStatus) -> None:
    assert errors.job_failure("j", "m", status, None, None) is None
    assert errors.failure_type(status) is None


def test_the_default_error_type_follows_the_status() -> None:
    assert errors.failure_type(JobStatus.FAILED) == "JobFailed"
    assert errors.failure_type(JobStatus.EXPIRED) == "JobExpired"
    assert errors.failure_type(JobStatus.CANCELLED) == "JobCancelled"
