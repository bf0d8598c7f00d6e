from __future__ import annotations

import subprocess
import sys


def test_jupyter_llm_is_a_jupyter_subcommand():
    result = subprocess.run(
        [sys.executable, "-m", "jupyter", "llm", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: jupyter llm [-h] COMMAND ...")
    for command in ("pull", "models", "check", "bench"):
        assert f"\n    {command} " in result.stdout


def test_check_does_not_import_torch(tmp_path):
    code = (
        "import sys; from jupyter_llm.cli import main; main(['check']); "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.stdout.splitlines()[-1] == "False False", result.stderr


def test_a_usage_error_names_the_commands():
    result = subprocess.run(
        [sys.executable, "-m", "jupyter_llm.cli", "frobnicate"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert (
        "invalid choice: 'frobnicate' (choose from 'pull', 'models', 'check', 'bench')"
        in result.stderr
    )
