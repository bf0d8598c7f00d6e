"""The pool's metrics in jupyter-server's own /metrics, per model."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from ..support import until
from .client import LLMServer
from .conftest import MODEL


async def scrape(llm: LLMServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await llm.request("GET", "metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name.startswith("jupyter_llm_")
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_need_the_token(llm: LLMServer) -> None:
    async with llm.client(token=None) as client:
        assert (await client.get("metrics")).status_code == 403


async def test_levels_follow_the_pool(llm: LLMServer) -> None:
    job = await llm.submit(model=MODEL, prompt="long", max_tokens=500)
    await until(lambda: llm.pool.stats().total.running == 1)
    running = await scrape(llm)
    assert value(running, "jupyter_llm_requests_running", model=MODEL) == 1
    assert value(running, "jupyter_llm_units_used", model=MODEL) > 0
    assert value(running, "jupyter_llm_units_total", model=MODEL) > 0
    assert value(running, "jupyter_llm_requests_waiting", model=MODEL) == 0
    await llm.request("DELETE", f"llm/api/jobs/{job['id']}")
    await until(lambda: llm.pool.stats().total.used_units == 0)
    idle = await scrape(llm)
    assert value(idle, "jupyter_llm_requests_running", model=MODEL) == 0
    assert value(idle, "jupyter_llm_units_used", model=MODEL) == 0


async def test_events_are_counted_per_model(llm: LLMServer) -> None:
    before = await scrape(llm)
    response = await llm.request(
        "POST", "llm/v1/completions", json={"model": MODEL, "prompt": "a b c", "max_tokens": 3}
    )
    assert response.status_code == 200
    await llm.submit(model="tight", prompt="busy", max_tokens=100)
    await llm.submit(model="tight", prompt="wait", max_tokens=1)
    refused = await llm.request("POST", "llm/api/jobs", json={"model": "tight", "prompt": "x"})
    assert refused.status_code == 429
    after = await scrape(llm)

    def delta(name: str, **labels: str) -> float:
        labels.setdefault("kind", "generate")
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("jupyter_llm_generated_tokens_total", model=MODEL) == 3
    assert delta("jupyter_llm_time_to_first_token_seconds_count", model=MODEL) == 1
    assert delta("jupyter_llm_time_to_first_token_seconds_sum", model=MODEL) > 0
    assert delta("jupyter_llm_inter_token_latency_seconds_count", model=MODEL) == 2
    assert delta("jupyter_llm_queue_time_seconds_count", model=MODEL) == 1
    assert delta("jupyter_llm_jobs_finished_total", model=MODEL, status="completed") == 1
    assert delta("jupyter_llm_rejections_total", model="tight", reason="QueueFull") == 1
    assert delta("jupyter_llm_rejections_total", model=MODEL, reason="QueueFull") == 0
    assert value(after, "jupyter_llm_requests_waiting", model="tight") == 1
