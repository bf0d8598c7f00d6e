"""scripts/check_commit_message.py, the commit-msg hook's and CI's check of commit messages."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "check_commit_message.py"


@pytest.fixture(scope="module")
def check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_commit_message", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "message",
    [
        "kernel: show the chat widget\n",
        "docs: README to 150 lines\n\nWhy it changed.\nMore of the why.\n",
        "engine/local: move the Llama path\n\nBody.\n# Please enter the commit message\n",
        "Merge branch 'h22'\n",
    ],
)
def test_good_messages_pass(check: ModuleType, message: str) -> None:
    assert check.problems(message) == []


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ("", "empty"),
        ("kernel: " + "x" * 70 + "\n", "at most 72"),
        ("Show the chat widget when assigned\n", "area: imperative summary"),
        ("kernel: show the widget\nBody right under the subject.\n", "second line"),
    ],
)
def test_bad_messages_say_what_is_wrong(check: ModuleType, message: str, problem: str) -> None:
    assert any(problem in found for found in check.problems(message))


def test_the_hook_refuses_a_long_subject(tmp_path: Path) -> None:
    message = tmp_path / "COMMIT_EDITMSG"
    message.write_text("kernel: " + "a very long subject " * 5 + "\n")
    hook = SCRIPT.parent / "hooks" / "commit-msg"
    run = subprocess.run([str(hook), str(message)], capture_output=True, text=True)
    assert run.returncode == 1 and "at most 72" in run.stderr
    message.write_text("kernel: a short subject\n")
    assert subprocess.run([sys.executable, str(SCRIPT), str(message)]).returncode == 0
