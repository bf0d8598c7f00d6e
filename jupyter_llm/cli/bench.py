"""``jupyter llm bench [MODEL]``: the engine benchmark, on a configured model.

The benchmark is ``benchmarks/engine.py`` of a jupyter_llm source checkout (raw
``generate`` against the pool at 1, 8 and 16 streams, and a mixed workload): the wheel
does not carry ``benchmarks/``, so this command finds the script next to an editable
install, or takes ``--script``, and otherwise says where to get it. It runs the script
as it is, with ``--model MODEL --config FILE`` and whatever follows ``--``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..config import load_config, resolve_config_path
from ..errors import LLMError

__all__ = ["bench", "find_script"]

_SCRIPT = Path("benchmarks") / "engine.py"


def find_script(given: str | None) -> Path:
    if given is not None:
        script = Path(given).expanduser()
        if not script.is_file():
            raise LLMError(f"--script {given}: no such file")
        return script
    checkout = Path(__file__).resolve().parents[2]  # jupyter_llm/cli/bench.py -> the repo
    script = checkout / _SCRIPT
    if script.is_file():
        return script
    raise LLMError(
        "the engine benchmark is benchmarks/engine.py in jupyter_llm's source, which the "
        "installed package does not include: run this from an editable install (git clone "
        "the repository, pip install -e '.[engine]'), or pass --script PATH/benchmarks/engine.py"
    )


def bench(model: str | None, config_file: str | None, script: str | None, rest: list[str]) -> int:
    path = resolve_config_path(config_file, root_dir=".")
    config = load_config(path)
    if model is None:
        local = [m.name for m in config.models if m.backend == "transformers"]
        if not local:
            raise LLMError(f"{path} has no transformers model to measure")
        model = local[0]
    chosen = config.model(model)  # an unknown name is an UnknownModel error that lists them
    if chosen.backend != "transformers":
        raise LLMError(
            f"{model} is a {chosen.backend} model: the engine benchmark measures local models"
        )
    found = find_script(script)
    command = [sys.executable, str(found), "--model", model, "--config", str(path), *rest]
    print("running", " ".join(command), flush=True)
    return subprocess.call(command, cwd=found.parent)
