"""``jupyter llm models``: files and sizes from disk, state from a real running server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_llm.cli import main
from jupyter_llm.testing import JupyterServer

CONFIG = """
parking_lot: {pool: {worker_threads: 1}}
models:
  - {name: fake, backend: fake}
  - {name: hub-model, hf_id: org/model}
  - {name: local, local_path: %s}
  - {name: packaged, gguf: "no_such_package_xyz:m.gguf"}
"""


# Loading a transformers model costs a worker that imports torch: one is enough here.
SERVED = """
parking_lot: {pool: {worker_threads: 1}}
models:
  - {name: fake, backend: fake}
  - {name: hub-model, hf_id: org/model}
"""


def test_files_and_sizes_without_a_server(hub, tmp_path, model_dir, capsys, monkeypatch):
    config = tmp_path / "models.yaml"
    config.write_text(CONFIG % model_dir)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))  # no servers there
    monkeypatch.delenv("JUPYTER_LLM_URL", raising=False)
    assert main(["models", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "hub-model  (transformers, hf_id: org/model)\n  files: not downloaded yet" in out
    assert f"local  (transformers, local_path: {model_dir})\n  files: {model_dir} (307.2 kB)" in out
    assert "gguf: gguf source 'no_such_package_xyz:m.gguf': the package" in out
    assert out.count("state: unknown (no running Jupyter server serves jupyter_llm)") == 4

    assert main(["pull", "hub-model", "-c", str(config)]) == 0
    capsys.readouterr()
    assert main(["models", "-c", str(config)]) == 0
    snapshot = Path(os.environ["HF_HUB_CACHE"]) / "models--org--model" / "snapshots"
    assert f"  files: {snapshot}/" in capsys.readouterr().out


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real jupyter server with the extension, found through its runtime file."""
    config = tmp_path / "models.yaml"
    config.write_text(SERVED)
    with JupyterServer(tmp_path, config=config, drain_secs=0.5, errors_settle=True) as running:
        yield running.url, config


@pytest.mark.timeout(180)
@pytest.mark.slow
def test_states_from_the_running_server_without_importing_torch(server, tmp_path):
    _, config = server
    code = (
        "import sys; from jupyter_llm.cli import main; code = main(['models', '-c', sys.argv[1]]);"
        " print('torch imported' if 'torch' in sys.modules else 'no torch'); sys.exit(code)"
    )
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    env.pop("JUPYTER_LLM_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", code, str(config)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    blocks = {block.split("  (")[0]: block for block in out.split("\n\n")[1:]}
    assert blocks["fake"].endswith("  state: ready, 1 of 1 workers ready, on fake")
    # That server is offline: the hub model cannot load there, and says why.
    assert (
        "  state: error: SourceError: hf_id 'org/model' is not in the Hugging Face cache"
        in (blocks["hub-model"])
    )
    assert "HF_HUB_OFFLINE is set" in blocks["hub-model"]
    assert out.rstrip().endswith("no torch")


def test_a_loading_model_shows_its_phase_and_numbers():
    from jupyter_llm.cli.inventory import describe_state

    model = {
        "state": "loading",
        "workers": [{"state": "starting"}],
        "loading": {
            "phase": "downloading",
            "seconds": 12.4,
            "detail": "model.safetensors",
            "done": 3_100_000,
            "total": 9_000_000,
            "unit": "bytes",
            "rate": 1_250_000.0,
        },
    }
    assert describe_state(model) == (
        "loading: downloading, 12 s; 3.1 MB of 9.0 MB, 1.2 MB/s (model.safetensors)"
    )
    model["loading"] = {"phase": "converting GGUF", "seconds": 3}
    assert describe_state(model) == "loading: converting GGUF, 3 s"
    model["loading"] = {"phase": "loading", "seconds": 1, "done": 2, "total": 5, "unit": "steps"}
    assert describe_state(model) == "loading: loading, 1 s; 2 of 5 steps"
    assert describe_state({"state": "error", "error": "no such repo"}) == "error: no such repo"
