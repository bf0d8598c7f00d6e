from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_llm.cli import main

from .conftest import FILES


def test_pull_a_hub_id_with_a_progress_bar(hub, tmp_path):
    hub.rate = 300_000  # one second for the weights
    result = subprocess.run(
        [sys.executable, "-m", "jupyter", "llm", "pull", "org/model"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()  # not a terminal: a line per 5 s, and the last
    assert lines[0].startswith("org/model ") and " of 307.2 kB" in lines[0], lines
    assert lines[-1].startswith("org/model 100%  307.2 kB of 307.2 kB, ") and "/s" in lines[-1]
    folder = Path(result.stdout.split(": ", 1)[1].rsplit(" (", 1)[0])
    assert result.stdout.strip().endswith("(307.2 kB)")
    assert sorted(p.name for p in folder.iterdir()) == sorted(set(FILES) - {"README.md"})
    assert not hub.served("README.md")


def test_pull_a_configured_model_even_with_download_false(hub, tmp_path, capsys):
    config = tmp_path / "models.yaml"
    config.write_text("models:\n  - {name: m, hf_id: org/model, download: false}\n")
    assert main(["pull", "m", "--config", str(config)]) == 0
    assert capsys.readouterr().out.startswith("org/model: ")
    asked = len(hub.requests)
    assert main(["pull", "m", "--config", str(config)]) == 0  # asks the hub, fetches nothing
    assert [s.path for s in hub.requests[asked:]] == ["/api/models/org/model"]


def test_pull_what_is_neither_configured_nor_a_hub_id(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["pull", "nonsense"]) == 1
    err = capsys.readouterr().err
    assert "'nonsense' is neither a model of" in err and "(smollm2) nor a hub id" in err


def test_pull_offline_says_so(hub, capsys):
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = True  # monkeypatched by the hub fixture: restored after
    assert main(["pull", "org/model"]) == 1
    assert "HF_HUB_OFFLINE is set: unset it" in capsys.readouterr().err


def test_pull_a_missing_repo(hub, capsys):
    assert main(["pull", "org/missing"]) == 1
    assert "no model 'org/missing' on http://127.0.0.1" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["fake"])
def test_pull_a_model_with_nothing_to_pull(tmp_path, capsys, model_dir, backend):
    config = tmp_path / "models.yaml"
    config.write_text(
        f"models:\n  - {{name: f, backend: {backend}}}\n  - {{name: l, local_path: {model_dir}}}\n"
    )
    assert main(["pull", "f", "-c", str(config)]) == 0
    assert main(["pull", "l", "-c", str(config)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "f: nothing to pull (the fake backend loads no files)",
        f"l: nothing to pull, its files are local ({model_dir})",
    ]
