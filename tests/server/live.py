"""For tests that need a whole `jupyter server` process (fuzzing it, killing it, starting it
again on the same files): models.yaml entries and process checks. The process itself is
``jupyter_llm.testing.JupyterServer``, the launcher every test and benchmark shares.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml


def write_config(folder: Path, config: dict[str, Any]) -> Path:
    path = folder / "models.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def rss_mb(pid: int) -> float:
    """A process's resident memory, in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def record(name: str, **values: Any) -> None:
    """Add a measurement to ``JUPYTER_LLM_RELIABILITY_OUT`` (benchmarks/reliability.py's
    table), when it is set; the tests assert on the same values themselves."""
    out = os.environ.get("JUPYTER_LLM_RELIABILITY_OUT")
    if out:
        with open(out, "a") as file:
            file.write(json.dumps({"name": name, **values}) + "\n")


def scale() -> int:
    """How much larger than the CI version a run is (benchmarks/reliability.py sets it)."""
    return int(os.environ.get("JUPYTER_LLM_RELIABILITY_SCALE", "1"))
