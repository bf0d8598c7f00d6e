"""The pool with the real engine in spawned worker processes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from jupyter_llm.config import parse_config
from jupyter_llm.engine.prompt import encode, load_tokenizer
from jupyter_llm.pool import Pool
from jupyter_llm.types import GenerationRequest, JobStatus, Message, SamplingParams

from ..standin_hub import TINY_REPO
from ..support import until
from .test_runner import PROMPTS, reference

# slow: process workers load the tiny model, 15-35 s a test on 2 cores
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def config_for(tmp_path: Path, **source):
    data = {
        "parking_lot": {"pool": {"worker_threads": 2}},
        "models": [{"name": "tiny", **source, "params": {"dtype": "float32", "max_num_seqs": 4}}],
    }
    return parse_config(data, "test.yaml", tmp_path)


async def test_staggered_jobs_through_process_workers_equal_generate(tiny_model_dir, tmp_path):
    pool = Pool(config_for(tmp_path, local_path=str(tiny_model_dir)))
    await pool.start()
    try:
        await until(lambda: pool.models()[0].state == "ready", timeout=60)
        jobs = []
        for prompt in PROMPTS:
            params = SamplingParams(max_tokens=24, temperature=0)
            jobs.append(await pool.submit(GenerationRequest("tiny", prompt=prompt, params=params)))
            await asyncio.sleep(0.01)
        records = [await pool.wait(job.id) for job in jobs]
        tokenizer = load_tokenizer(str(tiny_model_dir))
        for prompt, record in zip(PROMPTS, records, strict=True):
            assert record.status is JobStatus.COMPLETED, record.error
            expected = reference(tiny_model_dir, prompt, 24)
            assert record.text == tokenizer.decode(expected, skip_special_tokens=True).rstrip(
                "\ufffd"
            )
            assert record.usage.completion_tokens == len(expected)
            assert record.usage.prompt_tokens == len(tokenizer(prompt)["input_ids"])
        chat = GenerationRequest(
            "tiny", messages=(Message("user", "Hello"),), params=SamplingParams(max_tokens=3)
        )
        record = await pool.wait((await pool.submit(chat)).id)
        assert record.usage.prompt_tokens == len(encode(tokenizer, chat))
        assert pool.stats().total.used_units == 0
    finally:
        await pool.stop()


async def test_a_model_that_cannot_load_reports_why_and_fails_its_jobs(tmp_path):
    pool = Pool(config_for(tmp_path, local_path=str(tmp_path / "nothing-here")))
    await pool.start()
    try:
        job = await pool.submit(GenerationRequest("tiny", prompt="hi"))
        record = await pool.wait(job.id)
        assert record.status is JobStatus.FAILED
        assert "has no config.json: is it a model folder" in record.error
        info = pool.models()[0]
        assert info.state == "error" and "nothing-here" in info.error
    finally:
        await pool.stop()


async def test_an_hf_id_downloads_on_first_use_once_for_two_workers(standin_hub, tmp_path):
    standin_hub.rate = 2_000_000  # the weights take a quarter of a second: the workers overlap
    pool = Pool(config_for(tmp_path, hf_id=TINY_REPO))
    await pool.start()
    try:
        ready = lambda: [w.state for w in pool.models()[0].workers] == ["ready", "ready"]  # noqa: E731
        await until(lambda: ready() or pool.models()[0].state == "error", timeout=90)
        assert ready(), pool.models()[0].error
        job = await pool.submit(GenerationRequest("tiny", prompt="hi"))
        assert (await pool.wait(job.id)).status is JobStatus.COMPLETED
    finally:
        await pool.stop()
    for filename in ("config.json", "tokenizer.json"):
        assert len(standin_hub.served(filename)) == 1
    assert len([s for s in standin_hub.requests if s.path.startswith("/blobs/")]) == 1


async def test_an_unknown_hf_id_reports_the_hub_error(standin_hub, tmp_path):
    pool = Pool(config_for(tmp_path, hf_id="tiny-org/no-such-model"))
    await pool.start()
    try:
        await until(lambda: pool.models()[0].state != "loading", timeout=90)
        info = pool.models()[0]
        assert info.state == "error"
        assert "no model 'tiny-org/no-such-model' on http://127.0.0.1" in (info.error or "")
    finally:
        await pool.stop()
