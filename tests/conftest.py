"""Shared fixtures: a pool over the fake engine, built and always stopped; the tiny model."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

# Idle OpenMP threads sleep in the test process too, as in a pool worker (engine/local/spec.py),
# before anything imports torch: the tests that run a model here (reference generate, the
# engine tests) ran 4-5x slower with spinning threads whenever another process wanted the
# cores, and the SmolLM2 equality test passed its timeout.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from jupyter_llm.config import Config
from jupyter_llm.engine import spec_for
from jupyter_llm.engine.fake import FakeSpec
from jupyter_llm.pool.pool import Pool

from .support import make_config, until

PoolFactory = Callable[..., Awaitable[Pool]]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Llama (a real transformers model, built offline in about a second),
    built once for the whole session and shared by the engine, server and kernel tests."""
    from jupyter_llm.engine.local.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
async def make_pool() -> AsyncIterator[PoolFactory]:
    """``await make_pool(config, worker_kind=..., **fake_spec_fields)``; every pool is stopped."""
    pools: list[Pool] = []

    async def build(
        config: Config | None = None,
        *,
        worker_kind: str = "thread",
        skip_limit: int = 16,
        wait_ready: bool = True,
        **spec: Any,
    ) -> Pool:
        config = config or make_config()
        pool = Pool(
            config,
            engines=lambda model: (
                FakeSpec(model=model.name, **spec) if model.backend == "fake" else spec_for(model)
            ),
            worker_kind=worker_kind,  # type: ignore[arg-type]
            skip_limit=skip_limit,
            drain_secs=0.5,
        )
        pools.append(pool)
        await pool.start()
        if wait_ready:
            await until(lambda: all(m.state == "ready" for m in pool.models()))
        return pool

    yield build
    for pool in pools:
        await pool.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip vllm-marked tests without a vLLM venv, gpu-marked ones without CUDA."""
    if not os.environ.get("JUPYTER_LLM_VLLM_VENV"):
        skip_vllm = pytest.mark.skip(reason="set JUPYTER_LLM_VLLM_VENV to a vLLM venv")
        for item in items:
            if "vllm" in item.keywords:
                item.add_marker(skip_vllm)
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in gpu_items:
            item.add_marker(skip)
