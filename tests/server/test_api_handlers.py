"""The REST job API, through a real server: what a client sees (status, headers, body)."""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpclient import HTTPClientError

from ..support import until
from .client import LLMServer
from .conftest import MODEL


async def test_models_lists_each_model_with_its_state(llm: LLMServer) -> None:
    # The remote model's upstream (port 9) refuses: its first health check says so.
    await until(lambda: {m.name: m.state for m in llm.pool.models()}["remote"] == "error")
    response = await llm.fetch("llm", "api", "models")  # pytest-jupyter's own client
    assert response.code == 200
    models = {m["name"]: m for m in json.loads(response.body)["models"]}
    assert models[MODEL]["state"] == "ready"
    assert models[MODEL]["device"] == "fake"
    assert [w["state"] for w in models[MODEL]["workers"]] == ["ready"]
    assert models["remote"]["state"] == "error"
    assert models["remote"]["error"].startswith("unreachable: http://127.0.0.1:9/v1: ")
    assert models["remote"]["backend"] == "openai"


async def test_status_reports_the_pool_stats(llm: LLMServer) -> None:
    status = await llm.status()
    for key in ("workers", "running", "queued", "used_units", "total_units", "completed"):
        assert key in status
    for key in ("failed", "cancelled", "expired", "rejected"):
        assert status[key] == 0
    assert status["models"][MODEL]["workers"] == 1
    assert status["total_units"] > 0


async def test_a_posted_job_is_accepted_with_202_and_completes(llm: LLMServer) -> None:
    response = await llm.request(
        "POST", "llm/api/jobs", json={"model": MODEL, "prompt": "one two three", "max_tokens": 4}
    )
    assert response.status_code == 202
    job = response.json()
    assert job["status"] in ("queued", "running")
    assert response.headers["Location"].endswith(f"llm/api/jobs/{job['id']}")
    await until(lambda: llm.pool.stats().total.completed == 1)
    record = await llm.job(job["id"])
    assert record["status"] == "completed"
    assert record["text"] == "one two three one"
    assert record["finish_reason"] == "length"
    assert record["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert record["timings"]["time_to_first_token_secs"] > 0


async def test_a_job_takes_params_nested_or_at_the_top_and_chat_messages(llm: LLMServer) -> None:
    nested = await llm.submit(model=MODEL, prompt="a b c", params={"max_tokens": 5, "stop": ["c"]})
    chat = await llm.submit(
        model=MODEL, messages=[{"role": "user", "content": "x y"}], max_tokens=2, priority="high"
    )
    await until(lambda: llm.pool.stats().total.completed == 2)
    assert (await llm.job(nested["id"]))["text"] == "a b "
    assert (await llm.job(nested["id"]))["finish_reason"] == "stop"
    record = await llm.job(chat["id"])
    assert (record["text"], record["priority"]) == ("x y", "high")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "hi"}, "model"),
        ({"model": MODEL}, "prompt"),
        ({"model": MODEL, "prompt": "hi", "max_tokens": 0}, "max_tokens"),
        ({"model": MODEL, "prompt": "hi", "temperature": 9}, "temperature"),
        ({"model": MODEL, "prompt": "hi", "tools": []}, "tools"),
        (
            {"model": MODEL, "prompt": "hi", "params": {"max_tokens": 2}, "max_tokens": 2},
            "max_tokens",
        ),
        ({"model": MODEL, "prompt": "hi", "priority": "urgent"}, "priority"),
        (
            {"model": MODEL, "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        ({"model": MODEL, "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ],
)
async def test_a_bad_job_is_a_400_that_names_the_parameter(
    llm: LLMServer, body: dict[str, object], param: str
) -> None:
    response = await llm.request("POST", "llm/api/jobs", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert llm.pool.stats().total.completed == 0


async def test_a_body_that_is_not_json_is_a_400(llm: LLMServer) -> None:
    response = await llm.request("POST", "llm/api/jobs", content=b"{nope")
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


async def test_an_unknown_model_is_a_404(llm: LLMServer) -> None:
    response = await llm.request("POST", "llm/api/jobs", json={"model": "nope", "prompt": "x"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


async def test_a_full_queue_is_a_429_with_retry_after(llm: LLMServer) -> None:
    await llm.submit(model="tight", prompt="long " * 5, max_tokens=200)  # runs
    await llm.submit(model="tight", prompt="wait", max_tokens=1)  # waits: the queue is full
    response = await llm.request("POST", "llm/api/jobs", json={"model": "tight", "prompt": "x"})
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["error"]["code"] == "queue_full"
    assert (await llm.status())["models"]["tight"]["rejected"] == 1


async def test_jobs_lists_recent_records_newest_first(llm: LLMServer) -> None:
    ids = [(await llm.submit(model=MODEL, prompt=f"p{i}", max_tokens=1))["id"] for i in range(3)]
    await until(lambda: llm.pool.stats().total.completed == 3)
    response = await llm.request("GET", "llm/api/jobs", params={"limit": 2})
    assert response.status_code == 200
    assert [j["id"] for j in response.json()["jobs"]] == ids[::-1][:2]
    filtered = await llm.request("GET", "llm/api/jobs", params={"status": "completed"})
    assert {j["id"] for j in filtered.json()["jobs"]} == set(ids)
    for bad in ({"limit": "0"}, {"limit": "x"}, {"status": "done"}):
        response = await llm.request("GET", "llm/api/jobs", params=bad)
        assert response.status_code == 400
        assert response.json()["error"]["param"] == next(iter(bad))


async def test_an_unknown_job_is_a_404(llm: LLMServer) -> None:
    for method, path in [
        ("GET", "llm/api/jobs/nope"),
        ("DELETE", "llm/api/jobs/nope"),
        ("GET", "llm/api/jobs/nope/events"),
    ]:
        response = await llm.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "job_not_found"
    with pytest.raises(HTTPClientError) as caught:
        await llm.fetch("llm", "api", "jobs", "nope")
    assert caught.value.code == 404


async def test_delete_cancels_a_running_job_and_keeps_its_record(llm: LLMServer) -> None:
    job = await llm.submit(model=MODEL, prompt="go", max_tokens=500)
    await until(lambda: llm.pool.stats().total.running == 1)
    response = await llm.request("DELETE", f"llm/api/jobs/{job['id']}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    record = await llm.job(job["id"])
    assert record["status"] == "cancelled"
    assert record["usage"]["completion_tokens"] < 500
    await until(lambda: llm.pool.stats().total.used_units == 0)


async def test_delete_cancels_a_queued_job(llm: LLMServer) -> None:
    await llm.submit(model="tight", prompt="busy", max_tokens=200)
    queued = await llm.submit(model="tight", prompt="later", max_tokens=2)
    response = await llm.request("DELETE", f"llm/api/jobs/{queued['id']}")
    assert response.json()["status"] == "cancelled"
    assert (await llm.job(queued["id"]))["finish_reason"] == "cancelled"


@pytest.mark.llm_config(fake={"params": {"max_num_seqs": 1}})
async def test_events_stream_each_event_with_its_id(llm: LLMServer) -> None:
    # The job waits behind another until its stream is open, so it is read live: a job that
    # finished first would replay its tokens merged (see the next tests), however loaded
    # the machine is.
    busy = await llm.submit(model=MODEL, prompt="busy", max_tokens=300)  # the only seat, 3 s
    job = await llm.submit(model=MODEL, prompt="a b c", max_tokens=3)
    async with llm.stream("GET", f"llm/api/jobs/{job['id']}/events") as (response, stream):
        assert response.status_code == 200  # sent with a keep-alive while the job waits
        await llm.request("DELETE", f"llm/api/jobs/{busy['id']}")
        events = [event async for event in stream]
    assert [e.id for e in events] == ["0", "1", "2", "3", "4"]
    data = [e.json() for e in events]
    assert data[0]["status"] == "running"
    assert "".join(d["text"] for d in data) == "a b c"
    assert data[-1]["status"] == "completed"
    assert data[-1]["finish_reason"] == "length"


async def test_last_event_id_resumes_after_that_event(llm: LLMServer) -> None:
    job = await llm.submit(model=MODEL, prompt="a b c", max_tokens=3)
    path = f"llm/api/jobs/{job['id']}/events"
    events = await llm.events("GET", path, headers={"Last-Event-ID": "2"})
    assert [e.id for e in events] == ["3", "4"]
    assert [e.json()["text"] for e in events] == [" c", ""]
    response = await llm.request("GET", path, headers={"Last-Event-ID": "two"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Last-Event-ID"


async def test_a_finished_job_replays_its_events(llm: LLMServer) -> None:
    job = await llm.submit(model=MODEL, prompt="x y", max_tokens=2)
    await until(lambda: llm.pool.stats().total.completed == 1)
    events = await llm.events("GET", f"llm/api/jobs/{job['id']}/events")
    assert "".join(e.json()["text"] for e in events) == "x y"
    ids = [int(e.id or -1) for e in events]
    assert ids == sorted(set(ids)) and ids[0] >= 0
    assert events[-1].json()["status"] == "completed"
    resumed = await llm.events(
        "GET", f"llm/api/jobs/{job['id']}/events", headers={"Last-Event-ID": events[-2].id}
    )
    assert [e.json()["status"] for e in resumed] == ["completed"]


async def test_leaving_the_event_stream_does_not_cancel_the_job(llm: LLMServer) -> None:
    job = await llm.submit(model=MODEL, prompt="stay", max_tokens=60)
    async with llm.stream("GET", f"llm/api/jobs/{job['id']}/events") as (response, events):
        assert response.status_code == 200
        async for event in events:
            if event.json()["text"]:
                break  # leave after the first token
    await asyncio.sleep(0.1)
    assert (await llm.job(job["id"]))["status"] == "running"
    await until(lambda: llm.pool.stats().total.completed == 1)
    record = await llm.job(job["id"])
    assert (record["status"], record["usage"]["completion_tokens"]) == ("completed", 60)


@pytest.mark.parametrize("path", ["llm/api/jobs", "llm/v1/chat/completions", "llm/v1/completions"])
@pytest.mark.parametrize(
    ("param", "number"),
    [
        ("temperature", "1" + "0" * 400),  # an integer too large for a float
        ("temperature", "1e400"),  # JSON's way to write infinity
        ("top_p", "NaN"),
        ("max_tokens", "1" + "0" * 400),
        ("seed", "1.5"),
    ],
)
async def test_an_out_of_range_number_is_a_400_on_every_route(
    llm: LLMServer, path: str, param: str, number: str
) -> None:
    if path.endswith("chat/completions"):
        head = '"messages": [{"role": "user", "content": "x"}]'
    else:
        head = '"prompt": "x"'
    body = f'{{"model": "{MODEL}", {head}, "{param}": {number}}}'
    response = await llm.request("POST", path, content=body.encode())
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_value", param)
    assert error["message"].startswith(f"{param}: expected ")
    assert len(error["message"]) < 200  # the value is not repeated digit by digit


async def test_single_user_every_client_sees_every_job(llm: LLMServer) -> None:
    """Without private_jobs: a job records who sent it, yet each token-authenticated client
    (a new anonymous user to jupyter-server every time) reads, lists and cancels it."""
    async with llm.client() as first:
        response = await first.post(
            "llm/api/jobs", json={"model": MODEL, "prompt": "a b", "max_tokens": 200}
        )
        job = response.json()
    assert isinstance(job["user"], str) and job["user"]
    async with llm.client() as second:
        assert (await second.get(f"llm/api/jobs/{job['id']}")).json()["user"] == job["user"]
        assert job["id"] in [j["id"] for j in (await second.get("llm/api/jobs")).json()["jobs"]]
        assert (await second.delete(f"llm/api/jobs/{job['id']}")).status_code == 200
