"""A model's workers while they load: the phase each reports, how long, and the log."""

from __future__ import annotations

import asyncio
import logging

import pytest

from jupyter_llm.pool.stats import LoadingInfo

from ..support import until

pytestmark = pytest.mark.timeout(60)


async def test_a_loading_model_shows_its_phase_and_the_log_tells_each_step(
    make_pool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jupyter_llm.pool")
    pool = await make_pool(worker_kind="process", load_delay=1.6, wait_ready=False)
    seen: list[LoadingInfo] = []
    while (model := pool.models()[0]).state == "loading":
        if model.loading is not None:
            seen.append(model.loading)
            (worker,) = model.workers
            if worker.state == "starting":  # the model's phase is its worker's
                assert worker.loading is not None and worker.loading.phase == model.loading.phase
            else:  # ready: the server builds the prompt counter
                assert worker.loading is None and model.loading.phase == "loading the tokenizer"
        await asyncio.sleep(0.02)
    assert model.state == "ready" and model.loading is None

    phases = [info.phase for info in seen]
    assert phases[0] == "starting"  # spawning and importing, before the worker says anything
    assert "loading" in phases  # what the fake engine reports, with its steps
    steps = [info for info in seen if info.phase == "loading"]
    assert {info.detail for info in steps} == {"fake engine"}
    assert {info.unit for info in steps} == {"steps"}
    assert [info.done for info in steps] == sorted(info.done for info in steps)
    assert steps[-1].done == 3 and steps[-1].total == 4
    assert any(info.rate for info in steps)  # steps a second, once a step has passed
    seconds = [info.seconds for info in seen]
    assert seconds == sorted(seconds) and seconds[-1] >= 1.0

    (worker,) = model.workers
    assert worker.loading is None and worker.load_secs is not None and worker.load_secs >= 1.6
    log = [r.getMessage() for r in caplog.records if r.name == "jupyter_llm.pool"]
    assert any(line.startswith(f"model fake: worker 0 started (pid {worker.pid})") for line in log)
    assert any(line.startswith("model fake: worker 0: loading fake engine (") for line in log)
    assert any(line.startswith("model fake: worker 0 ready after ") for line in log), log


async def test_a_worker_that_cannot_load_says_why_and_after_how_long(
    make_pool, caplog: pytest.LogCaptureFixture
) -> None:
    pool = await make_pool(load_error="no weights here", wait_ready=False)
    await until(lambda: pool.models()[0].state == "error")
    model = pool.models()[0]
    assert model.loading is None and model.error == "RuntimeError: no weights here"
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(
        line.startswith("model fake: worker 0 failed to load after ")
        and line.endswith(" s: RuntimeError: no weights here")
        for line in failures
    ), failures
