from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from jupyter_llm.cli import main
from jupyter_llm.cli.bench import find_script

REPO = Path(__file__).resolve().parents[2]


def test_the_benchmark_of_this_checkout_is_found():
    assert find_script(None) == REPO / "benchmarks" / "engine.py"


def test_bench_runs_the_engine_benchmark_on_a_configured_model(tmp_path, model_dir):
    config = tmp_path / "models.yaml"
    config.write_text(
        f"models:\n  - {{name: f, backend: fake}}\n  - {{name: mine, local_path: {model_dir}}}\n"
    )
    # The benchmark itself takes minutes; its --help shows the command reached it, as given.
    result = subprocess.run(
        [sys.executable, "-m", "jupyter_llm.cli", "bench", "-c", str(config), "--", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        f"running {sys.executable} {REPO / 'benchmarks' / 'engine.py'} --model mine "
        f"--config {config} --help\n"
    )
    assert "a models.yaml: measure its --model (on one worker)" in result.stdout


def test_bench_refuses_a_model_it_cannot_measure(tmp_path, capsys):
    config = tmp_path / "models.yaml"
    config.write_text("models:\n  - {name: f, backend: fake}\n")
    assert main(["bench", "-c", str(config)]) == 1
    assert "has no transformers model to measure" in capsys.readouterr().err
    assert main(["bench", "f", "-c", str(config)]) == 1
    assert (
        "f is a fake model: the engine benchmark measures local models" in capsys.readouterr().err
    )
    assert main(["bench", "nope", "-c", str(config)]) == 1
    assert "unknown model 'nope'; available models: f" in capsys.readouterr().err


def test_without_the_source_checkout_it_says_what_it_needs(tmp_path, capsys, model_dir):
    config = tmp_path / "models.yaml"
    config.write_text(f"models:\n  - {{name: mine, local_path: {model_dir}}}\n")
    assert main(["bench", "-c", str(config), "--script", str(tmp_path / "engine.py")]) == 1
    assert "--script" in capsys.readouterr().err
