"""Finding models.yaml and reading it: the file, its encoding, its YAML, duplicate keys.

``load_config`` reads the file and hands the data to ``parse_config``. Anything wrong is
one ``ConfigError`` that names the file, the key path and what was expected.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from .parse import parse_config
from .settings import Config

__all__ = ["CONFIG_ENV", "DEFAULT_CONFIG", "load_config", "resolve_config_path"]

DEFAULT_CONFIG = Path(__file__).parent.parent / "models.yaml"
CONFIG_ENV = "JUPYTER_LLM_CONFIG"


def resolve_config_path(explicit: str | None = None, root_dir: str | None = None) -> Path:
    """The file to load: explicit > $JUPYTER_LLM_CONFIG > <root_dir>/models.yaml > default."""
    if explicit:
        return _existing(explicit, "named by the config_file setting")
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return _existing(from_env, f"named by the environment variable {CONFIG_ENV}")
    if root_dir:
        in_root = Path(root_dir).expanduser() / "models.yaml"
        if in_root.is_file():
            return in_root
    return DEFAULT_CONFIG


def _existing(path: str, origin: str) -> Path:
    found = Path(path).expanduser()
    if not found.exists():
        raise ConfigError(path, "", f"no such file ({origin})")
    return found


def load_config(path: str | os.PathLike[str]) -> Config:
    file = os.fspath(path)
    full = Path(file).expanduser()
    try:
        raw = full.read_bytes()
    except FileNotFoundError:
        raise ConfigError(file, "", "no such file") from None
    except IsADirectoryError:
        raise ConfigError(file, "", "is a folder; expected a YAML file") from None
    except OSError as e:
        raise ConfigError(file, "", f"cannot be read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        problem = f"is not UTF-8 text (byte {raw[e.start]:#04x} on line {line})"
        raise ConfigError(file, "", problem) from None
    data = _read_yaml(text, file)
    if data is None:
        raise ConfigError(file, "", "the file is empty; expected parking_lot and models")
    # Relative paths in the file mean "next to this file", wherever the server was started;
    # abspath, not resolve: a symlinked models.yaml refers to its own folder.
    return parse_config(data, file, Path(os.path.abspath(full)).parent)


def _read_yaml(text: str, file: str) -> Any:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _reject_duplicate_keys(node, "", set(), file)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise ConfigError(file, "", f"invalid YAML at {where}: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(file, "", f"invalid YAML: {e}") from None
    finally:
        loader.dispose()


def _reject_duplicate_keys(node: yaml.Node, path: str, seen: set[int], file: str) -> None:
    # safe_load keeps the last of two equal keys; a silently dropped setting is worse than
    # an error, so walk the composed nodes before constructing anything.
    if id(node) in seen:  # aliases (and recursive anchors) point back at walked nodes
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _reject_duplicate_keys(item, f"{path}[{i}]", seen, file)
    elif isinstance(node, yaml.MappingNode):
        first_line: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # "<<" overrides on purpose
                _reject_duplicate_keys(value_node, path, seen, file)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = str(key_node.value)
            key_path = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            earlier = first_line.get((key_node.tag, key))
            if earlier is not None:
                lines = f"line {line}" if earlier == line else f"lines {earlier} and {line}"
                raise ConfigError(file, key_path, f"duplicate key (on {lines}); keep only one")
            first_line[key_node.tag, key] = line
            _reject_duplicate_keys(value_node, key_path, seen, file)
