"""The configuration: models.yaml read, checked and turned into frozen dataclasses.

The pool never sees YAML. ``load_config`` reads the file; ``parse_config`` checks every key
against the tables below and builds a ``Config``. Anything wrong is one ``ConfigError`` that
names the file, the key path (``models[1].params.block_size``) and what was expected.
Unknown keys are errors, never ignored: a typo must not silently fall back to a default.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, UnknownModel
from .validate import SAMPLING, Range, hub_file, is_int, package_resource, show

__all__ = [
    "DEFAULT_CONFIG",
    "Config",
    "LimitsSettings",
    "MailboxSettings",
    "ModelConfig",
    "ModelParams",
    "ModelSource",
    "ParkingLot",
    "PoolSettings",
    "QueueSettings",
    "load_config",
    "parse_config",
    "gguf_form",
    "resolve_config_path",
]

DEFAULT_CONFIG = Path(__file__).with_name("models.yaml")
CONFIG_ENV = "JUPYTER_LLM_CONFIG"


@dataclass(frozen=True, slots=True)
class PoolSettings:
    worker_threads: int = 2  # engine workers per model
    max_blocking_threads: int = 32
    thread_stack_size: int = 2097152  # bytes; 0: the platform default


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    max_units: int | None = None  # None: derived from the model's KV cache
    max_queue_depth: int = 1000
    timeout_secs: float = 120.0


@dataclass(frozen=True, slots=True)
class QueueSettings:
    backend: str = "memory"  # memory | sqlite
    persistence: bool = False


@dataclass(frozen=True, slots=True)
class MailboxSettings:
    backend: str = "memory"  # memory | sqlite
    retention_secs: float = 3600.0
    path: str | None = None  # absolute; None: under the Jupyter runtime/data dir


@dataclass(frozen=True, slots=True)
class ParkingLot:
    pool: PoolSettings = field(default_factory=PoolSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    mailbox: MailboxSettings = field(default_factory=MailboxSettings)


@dataclass(frozen=True, slots=True)
class ModelSource:
    kind: str  # hf_id | local_path | gguf
    value: str  # paths absolute; a gguf "package:resource" or "owner/repo:file" kept as given
    revision: str | None = None  # hub sources: a branch, tag or commit; None: main
    download: bool = True  # hub sources: fetch on first use when not in the cache

    @property
    def on_hub(self) -> bool:
        """Do the files come from the Hugging Face Hub (``hf_id``, ``gguf: owner/repo:file``)?"""
        return self.kind == "hf_id" or (self.kind == "gguf" and gguf_form(self.value) == "hub")


@dataclass(frozen=True, slots=True)
class ModelParams:
    device: str | tuple[str, ...] = "auto"
    dtype: str = "auto"
    kvcache_mem_gpu: int = 8192  # MB
    kvcache_mem_cpu: int = 2048  # MB
    max_num_seqs: int = 256
    block_size: int = 16
    max_model_len: int | None = None  # None: from the model config
    temperature: float = 0.7  # for requests that omit it
    max_tokens: int = 256  # for requests that omit it
    prefix_caching: bool = True  # finished sequences' KV kept for requests that start the same


@dataclass(frozen=True, slots=True)
class ModelConfig:
    name: str
    backend: str  # transformers | openai | fake
    source: ModelSource | None
    params: ModelParams
    parking_lot: ParkingLot  # effective: the global settings with this model's overrides
    base_url: str | None = None  # openai only
    api_key_env: str | None = None  # openai only


@dataclass(frozen=True, slots=True)
class Config:
    path: str
    parking_lot: ParkingLot
    models: tuple[ModelConfig, ...]

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def model(self, name: str) -> ModelConfig:
        for m in self.models:
            if m.name == name:
                return m
        raise UnknownModel(name, self.names)


# --- finding and reading the file ---------------------------------------------------------


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


# --- checking values ------------------------------------------------------------------------


class _Invalid(Exception):
    """One bad key, raised deep in the checks; ``parse_config`` adds the file name."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(key, problem)
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class _Rule:
    """What one key accepts: a test, a phrase for the error, and a conversion."""

    expect: str
    accepts: Callable[[Any], bool]
    convert: Callable[[Any], Any] = lambda value: value
    echo: bool = True  # False: never repeat the value in an error (it may be a secret)

    def apply(self, value: object, key: str) -> Any:
        if not self.accepts(value):
            got = f", got {show(value)}" if self.echo else ""
            raise _Invalid(key, f"expected {self.expect}{got}")
        return self.convert(value)


def _range(accepted: Range) -> _Rule:
    convert: Callable[[Any], Any] = (lambda v: v) if accepted.integer else float
    return _Rule(accepted.expect, accepted.accepts, convert)


def _integer(minimum: int) -> _Rule:
    return _range(Range(minimum, integer=True))


def _positive_number() -> _Rule:
    return _range(Range(0, low_open=True))


def _choice(*options: str) -> _Rule:
    return _Rule(f"one of {', '.join(options)}", lambda v: isinstance(v, str) and v in options)


def _text(expect: str = "a non-empty string") -> _Rule:
    return _Rule(expect, lambda v: isinstance(v, str) and v.strip() != "")


def _pattern(expect: str, regex: str, echo: bool = True) -> _Rule:
    compiled = re.compile(regex)
    return _Rule(expect, lambda v: isinstance(v, str) and bool(compiled.fullmatch(v)), echo=echo)


def _or_null(rule: _Rule, meaning: str) -> _Rule:
    return _Rule(f"{rule.expect}, or null ({meaning})", lambda v: v is None or rule.accepts(v))


_DEVICE = re.compile(r"cpu|cuda(:\d+)?")


def _is_device(value: object) -> bool:
    if isinstance(value, str):
        return value == "auto" or bool(_DEVICE.fullmatch(value))
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(d, str) and _DEVICE.fullmatch(d) for d in value)
    )


_POOL: Mapping[str, _Rule] = {
    "worker_threads": _integer(1),
    "max_blocking_threads": _integer(1),
    "thread_stack_size": _Rule(
        "0 (the platform default) or an integer of at least 32768 (bytes)",
        lambda v: is_int(v) and (v == 0 or v >= 32768),
    ),
}
_LIMITS: Mapping[str, _Rule] = {
    "max_units": _or_null(_integer(1), "derived from the model's cache"),
    "max_queue_depth": _integer(1),
    "timeout_secs": _positive_number(),
}
_QUEUE: Mapping[str, _Rule] = {
    "backend": _choice("memory", "sqlite"),
    "persistence": _Rule("true or false", lambda v: isinstance(v, bool)),
}
_MAILBOX: Mapping[str, _Rule] = {
    "backend": _choice("memory", "sqlite"),
    "retention_secs": _positive_number(),
    "path": _or_null(_text("a file path"), "under the Jupyter data dir"),
}
_PARAMS: Mapping[str, _Rule] = {
    "device": _Rule(
        "auto, cpu, cuda, cuda:N, or a non-empty list of cpu/cuda/cuda:N",
        _is_device,
        lambda v: tuple(v) if isinstance(v, list) else v,
    ),
    "dtype": _choice("auto", "float32", "bfloat16", "float16"),
    "kvcache_mem_gpu": _integer(1),
    "kvcache_mem_cpu": _integer(1),
    "max_num_seqs": _integer(1),
    "block_size": _integer(1),
    "max_model_len": _or_null(_integer(1), "from the model config"),
    # A model's defaults for requests: the ranges a request's own values must be in.
    "temperature": _range(SAMPLING["temperature"]),
    "max_tokens": _range(SAMPLING["max_tokens"]),
    "prefix_caching": _Rule("true or false", lambda v: isinstance(v, bool)),
}
_MODEL: Mapping[str, _Rule] = {
    "name": _pattern("a non-empty name of letters, digits and . _ - / :", r"[A-Za-z0-9._\-/:]+"),
    "backend": _choice("transformers", "openai", "fake"),
    "hf_id": _pattern(
        "a Hugging Face model id (owner/name, as on the model's page)", r"[\w.-]+(/[\w.-]+)?"
    ),
    "revision": _pattern("a branch, tag or commit of the hub repo", r"[\w./-]+"),
    "download": _Rule("true or false", lambda v: isinstance(v, bool)),
    "local_path": _text("a folder path"),
    "gguf": _text("a .gguf file path, package:resource, or owner/repo:file.gguf on the hub"),
    "base_url": _pattern("a URL starting with http:// or https://", r"https?://\S+"),
    # The error never repeats this value: people paste the key itself here.
    "api_key_env": _pattern(
        "the name of an environment variable that holds the key (letters, digits, _), "
        "not the key itself",
        r"[A-Za-z_][A-Za-z0-9_]*",
        echo=False,
    ),
}
_MODEL_SECTIONS = ("params", "parking_lot")
_SOURCES = ("hf_id", "local_path", "gguf")
_SECTIONS = ("pool", "limits", "queue", "mailbox")
_SHARED_SECTIONS = ("queue", "mailbox")


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _mapping(data: object, path: str, what: str = "a mapping of settings") -> dict[Any, Any]:
    if data is None:  # "section:" with every key commented out means "all defaults"
        return {}
    if not isinstance(data, dict):
        raise _Invalid(path, f"expected {what}, got {show(data)}")
    return data


def _check_keys(data: Mapping[Any, Any], path: str, allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    for key in data:
        if key not in allowed:
            problem = f"unknown key {str(key)!r}; expected one of: {', '.join(allowed)}"
            close = difflib.get_close_matches(str(key), allowed, n=1)
            if close:
                problem += f"; did you mean {close[0]!r}?"
            raise _Invalid(_join(path, key), problem)


def _values(data: Mapping[Any, Any], path: str, rules: Mapping[str, _Rule]) -> dict[str, Any]:
    """The keys present in ``data``, checked and converted; absent keys stay absent."""
    return {k: rule.apply(data[k], _join(path, k)) for k, rule in rules.items() if k in data}


def _section(data: object, path: str, rules: Mapping[str, _Rule]) -> dict[str, Any]:
    mapping = _mapping(data, path)
    _check_keys(mapping, path, rules)
    return _values(mapping, path, rules)


def _local(value: str, base_dir: Path) -> str:
    return os.path.normpath(base_dir / Path(value).expanduser())


def gguf_form(value: str) -> str:
    """Which of the three forms a ``gguf:`` value has: ``package``, ``hub`` or ``path``.

    ``package:resource`` (a file inside an installed Python package) and
    ``owner/repo:file.gguf`` (a file of a Hugging Face Hub repo) as ``validate`` reads them:
    the part before the first colon is a dotted module name, or exactly ``owner/name``.
    Anything else is a path; a relative path that looks like ``owner/name:file`` is written
    ``./owner/name:file``.
    """
    if package_resource(value) is not None:
        return "package"
    return "hub" if hub_file(value) is not None else "path"


# --- building the objects -------------------------------------------------------------------


def parse_config(data: object, file: str, base_dir: Path) -> Config:
    """Check the loaded YAML ``data`` and build the ``Config``; one ``ConfigError`` if wrong."""
    try:
        top = _mapping(data, "", "a mapping with parking_lot and models")
        _check_keys(top, "", ("parking_lot", "models"))
        parking_lot = _parking_lot(top.get("parking_lot"), "parking_lot", base_dir)
        models = _models(top, parking_lot, base_dir)
    except _Invalid as e:
        raise ConfigError(file, e.key, e.problem) from None
    return Config(path=file, parking_lot=parking_lot, models=models)


def _parking_lot(data: object, path: str, base_dir: Path) -> ParkingLot:
    sections = _mapping(data, path)
    _check_keys(sections, path, _SECTIONS)
    queue = QueueSettings(**_section(sections.get("queue"), f"{path}.queue", _QUEUE))
    if queue.persistence and queue.backend != "sqlite":
        raise _Invalid(
            f"{path}.queue.persistence",
            f"true needs backend: sqlite (a memory queue cannot survive a restart), "
            f"got backend: {queue.backend}",
        )
    mailbox = _section(sections.get("mailbox"), f"{path}.mailbox", _MAILBOX)
    if mailbox.get("path") is not None:
        mailbox["path"] = _local(mailbox["path"], base_dir)
    return ParkingLot(
        pool=PoolSettings(**_section(sections.get("pool"), f"{path}.pool", _POOL)),
        limits=LimitsSettings(**_section(sections.get("limits"), f"{path}.limits", _LIMITS)),
        queue=queue,
        mailbox=MailboxSettings(**mailbox),
    )


def _overrides(data: object, path: str, shared: ParkingLot) -> ParkingLot:
    sections = _mapping(data, path)
    for name in _SHARED_SECTIONS:
        if name in sections:
            raise _Invalid(
                f"{path}.{name}",
                f"the {name} is shared by all models; set it under the top-level parking_lot",
            )
    _check_keys(sections, path, ("pool", "limits"))
    pool = _section(sections.get("pool"), f"{path}.pool", _POOL)
    limits = _section(sections.get("limits"), f"{path}.limits", _LIMITS)
    # Key by key: overriding max_units keeps the global max_queue_depth.
    return replace(
        shared, pool=replace(shared.pool, **pool), limits=replace(shared.limits, **limits)
    )


def _models(top: Mapping[str, Any], shared: ParkingLot, base_dir: Path) -> tuple[ModelConfig, ...]:
    if "models" not in top:
        raise _Invalid("models", "missing; expected a list of at least one model")
    entries = top["models"]
    if not isinstance(entries, list) or not entries:
        raise _Invalid("models", f"expected a list of at least one model, got {show(entries)}")
    models: list[ModelConfig] = []
    for i, entry in enumerate(entries):
        model = _model(entry, f"models[{i}]", shared, base_dir)
        for j, other in enumerate(models):
            if other.name == model.name:
                raise _Invalid(
                    f"models[{i}].name",
                    f"duplicate model name {model.name!r}; models[{j}] already uses it",
                )
        models.append(model)
    return tuple(models)


def _model(data: object, path: str, shared: ParkingLot, base_dir: Path) -> ModelConfig:
    if not isinstance(data, dict):
        raise _Invalid(path, f"expected a mapping with name and a source, got {show(data)}")
    entry = data
    _check_keys(entry, path, [*_MODEL, *_MODEL_SECTIONS])
    values = _values(entry, path, _MODEL)
    if "name" not in values:
        raise _Invalid(f"{path}.name", "missing; every model needs a name (the id clients use)")
    backend = values.get("backend", "transformers")
    source = _source(values, path, backend, base_dir)
    base_url = values.get("base_url")
    api_key_env = values.get("api_key_env")
    if backend == "openai" and base_url is None:
        raise _Invalid(
            f"{path}.base_url",
            "missing; an openai model needs the URL of its server (http:// or https://)",
        )
    for key, value in (("base_url", base_url), ("api_key_env", api_key_env)):
        if backend != "openai" and value is not None:
            raise _Invalid(
                f"{path}.{key}", f"only the openai backend takes {key}; this model is {backend}"
            )
    return ModelConfig(
        name=values["name"],
        backend=backend,
        source=source,
        params=ModelParams(**_section(entry.get("params"), f"{path}.params", _PARAMS)),
        parking_lot=_overrides(entry.get("parking_lot"), f"{path}.parking_lot", shared),
        base_url=base_url,
        api_key_env=api_key_env,
    )


def _source(
    values: Mapping[str, Any], path: str, backend: str, base_dir: Path
) -> ModelSource | None:
    given = [k for k in _SOURCES if k in values]
    if backend != "transformers":
        # A remote or scripted model loads nothing; hf_id may say what it serves.
        for key in given:
            if key != "hf_id":
                raise _Invalid(
                    f"{path}.{key}",
                    f"the {backend} backend loads no files; only hf_id (informational) is allowed",
                )
        for key in ("revision", "download"):
            if key in values:
                raise _Invalid(
                    f"{path}.{key}", f"the {backend} backend downloads nothing; remove {key}"
                )
        return ModelSource("hf_id", values["hf_id"]) if given else None
    if not given:
        raise _Invalid(
            path, "a transformers model needs one source: hf_id, local_path or gguf; got none"
        )
    if len(given) > 1:
        raise _Invalid(
            path,
            f"both {given[0]} and {given[1]} are given; "
            "give exactly one source: hf_id, local_path or gguf",
        )
    kind = given[0]
    value: str = values[kind]
    if kind == "local_path" or (kind == "gguf" and gguf_form(value) == "path"):
        value = _local(value, base_dir)
    source = ModelSource(kind, value)
    for key in ("revision", "download"):
        if key in values and not source.on_hub:
            raise _Invalid(
                f"{path}.{key}",
                f"{key} applies to files from the Hugging Face Hub (hf_id, or gguf: "
                f"owner/repo:file.gguf); this model's source is {kind}: {values[kind]}",
            )
    return replace(source, revision=values.get("revision"), download=values.get("download", True))
