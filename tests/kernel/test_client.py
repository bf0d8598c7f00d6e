"""Client and Generation in this process: over an embedded pool of the fake engine (its
workers are real processes), and over HTTP against the real test server."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml

from jupyter_llm.errors import (
    InvalidRequest,
    JobCancelled,
    JobFailed,
    QueueFull,
    UnknownJob,
    UnknownModel,
)
from jupyter_llm.kernel import Client, ServerRefused, ServerUnreachable
from jupyter_llm.kernel.discovery import Target
from jupyter_llm.kernel.loop import BackgroundLoop
from jupyter_llm.kernel.remote import RemoteBackend, token_event
from jupyter_llm.types import JobStatus, Logprob, TokenEvent

from .conftest import Server

FAKE = {
    "parking_lot": {"pool": {"worker_threads": 1}},
    "models": [{"name": "fake", "backend": "fake", "params": {"max_tokens": 8}}],
}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    path = tmp_path_factory.mktemp("embedded") / "models.yaml"
    path.write_text(yaml.safe_dump(FAKE))
    loop = BackgroundLoop("test-embedded")
    client = Client.for_target(Target("embedded", "test", config_path=path), loop=loop)
    try:
        yield client
    finally:
        loop.close()  # stops the pool and its worker


@pytest.fixture
def remote(server: Server) -> Iterator[Client]:
    loop = BackgroundLoop("test-remote")
    yield Client.for_target(Target("env", "test", url=server.url, token=server.token), loop=loop)
    loop.close()


def test_generate_then_wait_iterate_and_read_the_record(embedded: Client) -> None:
    g = embedded.generate("a b c", max_tokens=6)  # the default model: the only one
    assert g.wait(10) == "a b c a b c"
    assert list(g) == ["a", " b", " c", " a", " b", " c"]
    assert (g.status, g.tokens, g.done, g.error) == (JobStatus.COMPLETED, 6, True, None)
    assert g.record is not None and g.record.text == g.text == str(g)
    assert g.record.finish_reason == "length"
    assert embedded.get(g.id).text == g.text
    assert embedded.jobs(5)[0].id == g.id
    assert repr(g) == f"<Generation {g.id[:8]} model='fake' status=completed tokens=6>"


def test_async_iteration_from_another_event_loop(embedded: Client) -> None:
    g = embedded.generate("x y", model="fake", max_tokens=30)

    async def collect() -> list[str]:
        return [piece async for piece in g]

    pieces = asyncio.run(collect())
    assert "".join(pieces) == g.text == " ".join(["x", "y"] * 15)
    assert len(pieces) == 30


def test_cancel_stops_the_job_and_waiting_raises(embedded: Client) -> None:
    g = embedded.generate("slow", model="fake", max_tokens=500)
    with pytest.raises(TimeoutError, match="is still"):
        g.wait(timeout=0.05)
    g.cancel()
    assert g.status is JobStatus.CANCELLED and g.done
    with pytest.raises(JobCancelled):
        g.wait()
    with pytest.raises(JobCancelled):
        list(g)
    assert embedded.get(g.id).status is JobStatus.CANCELLED


def test_a_failed_job_raises_its_reason(embedded: Client) -> None:
    g = embedded.generate("<<fail>>", model="fake")
    with pytest.raises(JobFailed, match="the fake engine failed"):
        g.wait(10)
    assert g.status is JobStatus.FAILED


def test_cancel_all_cancels_only_unfinished_jobs_of_this_client(embedded: Client) -> None:
    done = embedded.generate("quick", model="fake", max_tokens=1)
    done.wait(10)
    running = [embedded.generate("slow", model="fake", max_tokens=500) for _ in range(2)]
    assert {g.id for g in embedded.cancel_all()} == {g.id for g in running}
    assert all(g.status is JobStatus.CANCELLED for g in running)
    assert done.status is JobStatus.COMPLETED
    assert embedded.live == []


@pytest.mark.slow
def test_an_unknown_model_names_the_ones_there_are(embedded: Client, remote: Client) -> None:
    with pytest.raises(UnknownModel, match=r"available models: fake$"):
        embedded.generate("hi", model="nope")
    with pytest.raises(UnknownModel) as caught:
        remote.generate("hi", model="nope")
    assert caught.value.available == ["tiny", "fake", "tight"]
    assert str(caught.value) == "unknown model 'nope'; available models: tiny, fake, tight"


@pytest.mark.slow
def test_remote_generation_matches_the_mailbox(remote: Client, server: Server) -> None:
    g = remote.generate("Hello there", model="tiny", max_tokens=40, temperature=0)
    assert g.wait(30) == server.job(g.id)["text"] == remote.get(g.id).text
    assert g.tokens == g.record.usage.completion_tokens  # type: ignore[union-attr]


@pytest.mark.slow
def test_remote_errors_are_domain_errors(remote: Client, server: Server) -> None:
    with pytest.raises(UnknownJob, match="no job with id 'nope'"):
        remote.get("nope")
    with pytest.raises(InvalidRequest, match="top_p"):
        remote.generate("hi", model="fake", top_p=3)  # refused before it is sent

    async def bad_param() -> None:
        backend = RemoteBackend(server.url, server.token)
        try:
            await backend._call("POST", "jobs", json={"model": "fake", "prompt": "x", "n": 2})
        finally:
            await backend.close()

    with pytest.raises(InvalidRequest, match="unsupported parameter 'n'") as caught:
        asyncio.run(bad_param())
    assert caught.value.param == "n"


@pytest.mark.slow
def test_a_full_queue_comes_back_with_its_depth_and_retry_time(remote: Client) -> None:
    # "tight" runs one job and queues one: the third is refused.
    held = [remote.generate("a b", model="tight", max_tokens=400, ignore_eos=True) for _ in "ab"]
    try:
        with pytest.raises(QueueFull) as caught:
            remote.generate("a b", model="tight")
    finally:
        for g in held:
            g.cancel()
    error = caught.value
    assert (error.model, error.depth) == ("tight", 1)
    assert isinstance(error.retry_after, float) and error.retry_after > 0
    assert str(error).startswith("the queue of model 'tight' is full (1 jobs waiting)")


def test_token_events_keep_logprobs_and_error_type() -> None:
    logprobs = (Logprob("a", 7, -0.5, (("a", 7, -0.5), ("b", 8, -1.25))),)
    tokens = TokenEvent("j", 1, JobStatus.RUNNING, "a", (7,), logprobs=logprobs)
    failed = TokenEvent("j", 2, JobStatus.FAILED, error="died", error_type="WorkerLost")
    for event in (tokens, failed):
        assert token_event(json.loads(json.dumps(event.to_dict()))) == event


@pytest.mark.slow
def test_refusals_and_silence_are_told_apart(server: Server) -> None:
    loop = BackgroundLoop("test-refusals")
    try:
        wrong = Client.for_target(Target("env", "t", url=server.url, token="wrong"), loop=loop)
        with pytest.raises(ServerRefused, match=r"refused the token \(HTTP 403"):
            wrong.models()
        elsewhere = Client.for_target(
            Target("env", "t", url=server.url + "elsewhere/", token=server.token), loop=loop
        )
        with pytest.raises(ServerRefused, match="does not serve jupyter_llm"):
            elsewhere.models()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # nothing listens once it is closed
        silent = Client.for_target(Target("env", "t", url=f"http://127.0.0.1:{port}/"), loop=loop)
        with pytest.raises(ServerUnreachable, match="connection refused"):
            silent.models()
    finally:
        loop.close()


@pytest.mark.slow
def test_an_event_stream_resumes_after_the_last_event_it_saw(
    remote: Client, server: Server
) -> None:
    g = remote.generate("again", model="fake", max_tokens=5)
    assert g.wait(10) == "again again again again again"

    async def events_after(after: int) -> list[tuple[int, str]]:
        backend = RemoteBackend(server.url, server.token)
        try:
            return [(e.index, e.text) async for e in backend.events(g.id, after=after)]
        finally:
            await backend.close()

    # Events 0-2 are "running", "again" and " again": the rest comes after them.
    resumed = asyncio.run(events_after(2))
    assert all(index > 2 for index, _ in resumed)
    assert "".join(text for _, text in resumed) == " again again again"


@pytest.mark.slow
def test_a_client_by_hand(tmp_path: Path, server: Server) -> None:
    client = Client.connect(server.url, server.token)
    assert client.where == f"the jupyter_llm server at {server.url}"
    assert not client.is_embedded
    assert client.default_model() == "tiny"


def test_a_schema_constrains_a_remote_generation(remote: Client) -> None:
    schema = {
        "type": "object",
        "properties": {
            "colour": {"enum": ["red", "green"]},
            "n": {"type": "integer", "maximum": 9},
        },
        "required": ["colour", "n"],
        "additionalProperties": False,
    }
    g = remote.generate("Pick a colour.", model="tiny", schema=schema, max_tokens=60, seed=3)
    g.wait(60)
    assert g.record is not None and g.record.finish_reason == "stop", g.text
    jsonschema.validate(json.loads(g.text), schema)
