"""The command line's tests: a stand-in hub with a small model-shaped repo (no torch)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..standin_hub import StandInHub, serve_hub

FILES = {
    "config.json": b'{"model_type": "llama"}',
    "tokenizer.json": b"{}",
    "tokenizer_config.json": b"{}",
    "model.safetensors": bytes(range(256)) * 1200,  # 300 kB
    "README.md": b"# not needed\n",
}


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[StandInHub]:
    server = serve_hub(monkeypatch, tmp_path)
    server.add("org/model", FILES)
    yield server
    server.stop()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A folder that looks like a model to everything that does not load it."""
    folder = tmp_path / "weights"
    folder.mkdir()
    for name, data in FILES.items():
        (folder / name).write_bytes(data)
    return folder
