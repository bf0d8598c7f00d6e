"""``jupyter llm check [FILE]``: validate a models.yaml and print each fault.

Loading a configuration stops at its first fault, so ``check`` reads on: it sets aside
what was wrong (a setting outside ``models`` is dropped, so its default applies; a model
entry with a fault is set aside whole, since one broken key tends to make its others
meaningless) and parses again, until the rest is valid. When the file is valid, each
model's files are checked where they are (a folder, a GGUF file, the hub cache) without
downloading anything and without importing torch. The exit status is 1 if any fault
was found.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from ..config import Config, ModelConfig, load_config, parse_config, resolve_config_path
from ..errors import ConfigError
from .inventory import file_lines

__all__ = ["check", "config_faults"]

_MODEL_KEY = re.compile(r"models\[(\d+)\]")
_MAX_FAULTS = 100
_SET_ASIDE = "jupyter-llm-check.set-aside."


def check(file: str | None) -> int:
    path = resolve_config_path(file, root_dir=".")
    faults, config, set_aside = config_faults(path)
    for fault in faults:
        print(f"fault: {fault}")
    if config is not None:
        models = [m for i, m in enumerate(config.models) if i not in set_aside]
        if not faults:
            print(f"{config.path}: valid, {len(models)} model(s)")
        for model in models:
            problems = model_faults(model)
            for line in problems:
                print(f"fault: {model.name}: {line}")
            if not problems:
                print(f"  {model.name}: " + "; ".join(line.text for line in file_lines(model)))
            faults.extend(problems)
    print(f"{len(faults)} fault(s)" if faults else "no faults")
    return 1 if faults else 0


def config_faults(path: Path) -> tuple[list[str], Config | None, set[int]]:
    """Every fault of the file (none when it is valid); the configuration without the parts
    at fault, when the rest is valid; and the indices of the models set aside (their places
    in that configuration hold stand-ins)."""
    try:
        return [], load_config(path), set()
    except ConfigError as e:
        fault = e
    if not fault.key:  # unreadable, not YAML, empty: nothing further can be read
        return [str(fault)], None, set()
    data: Any = yaml.safe_load(Path(path).read_text("utf-8-sig"))
    base_dir = Path(os.path.abspath(path)).parent
    faults = [str(fault)]
    set_aside: set[int] = set()
    while len(faults) < _MAX_FAULTS and _set_aside(data, fault.key, set_aside):
        try:
            return faults, parse_config(data, str(path), base_dir), set_aside
        except ConfigError as e:
            if str(e) in faults:
                break
            faults.append(str(e))
            fault = e
    return faults, None, set_aside


def _set_aside(data: Any, key: str, set_aside: set[int]) -> bool:
    """Remove what ``key`` names from ``data``; False when nothing sensible can be removed."""
    entry = _MODEL_KEY.match(key)
    models = data.get("models") if isinstance(data, dict) else None
    if entry and isinstance(models, list) and int(entry.group(1)) < len(models):
        index = int(entry.group(1))
        set_aside.add(index)
        name = models[index].get("name") if isinstance(models[index], dict) else None
        if key == f"models[{index}].name" or not isinstance(name, str):
            name = f"{_SET_ASIDE}{index}"
        # A stand-in that parses, at the same index; it keeps a valid name, so that a later
        # model that repeats it is still found out.
        models[index] = {"name": name, "backend": "fake"}
        return True
    parts = key.split(".")
    if parts[0] == "models":
        return False  # models missing or not a list: nothing else can be checked
    node = data
    for part in parts[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(part), dict):
            return False
        node = node[part]
    if isinstance(node, dict) and parts[-1] in node:
        del node[parts[-1]]
        return True
    return False


def model_faults(model: ModelConfig) -> list[str]:
    """What will stop this model from loading, found without loading it."""
    if model.backend == "openai" and model.api_key_env and model.api_key_env not in os.environ:
        return [f"api_key_env names {model.api_key_env}, which is not set here"]
    return [line.text for line in file_lines(model) if line.fault]
