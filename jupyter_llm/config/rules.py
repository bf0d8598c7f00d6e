"""What each key of models.yaml accepts: one ``Rule`` per key, in a table per section.

A rule is a test, the words for the error ("expected an integer of at least 1") and a
conversion. ``Invalid`` names one bad key deep in the checks; ``parse_config`` adds the
file. Unknown keys are errors, never ignored: a typo must not silently fall back to a default.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..validate import SAMPLING, Range, is_int, show

__all__ = [
    "LIMITS",
    "MAILBOX",
    "MODEL",
    "MODEL_SECTIONS",
    "PARAMS",
    "POOL",
    "QUEUE",
    "SECTIONS",
    "SHARED_SECTIONS",
    "SOURCES",
    "Invalid",
    "Rule",
    "as_mapping",
    "check_keys",
    "checked",
    "checked_section",
    "join",
]


class Invalid(Exception):
    """One bad key, raised deep in the checks; ``parse_config`` adds the file name."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(key, problem)
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Rule:
    """What one key accepts: a test, a phrase for the error, and a conversion."""

    expect: str
    accepts: Callable[[Any], bool]
    convert: Callable[[Any], Any] = lambda value: value
    echo: bool = True  # False: never repeat the value in an error (it may be a secret)

    def apply(self, value: object, key: str) -> Any:
        if not self.accepts(value):
            got = f", got {show(value)}" if self.echo else ""
            raise Invalid(key, f"expected {self.expect}{got}")
        return self.convert(value)


def _range(accepted: Range) -> Rule:
    convert: Callable[[Any], Any] = (lambda v: v) if accepted.integer else float
    return Rule(accepted.expect, accepted.accepts, convert)


def _integer(minimum: int) -> Rule:
    return _range(Range(minimum, integer=True))


def _positive_number() -> Rule:
    return _range(Range(0, low_open=True))


def _choice(*options: str) -> Rule:
    return Rule(f"one of {', '.join(options)}", lambda v: isinstance(v, str) and v in options)


def _text(expect: str = "a non-empty string") -> Rule:
    return Rule(expect, lambda v: isinstance(v, str) and v.strip() != "")


def _pattern(expect: str, regex: str, echo: bool = True) -> Rule:
    compiled = re.compile(regex)
    return Rule(expect, lambda v: isinstance(v, str) and bool(compiled.fullmatch(v)), echo=echo)


def _or_null(rule: Rule, meaning: str) -> Rule:
    return Rule(f"{rule.expect}, or null ({meaning})", lambda v: v is None or rule.accepts(v))


_DEVICE = re.compile(r"cpu|cuda(:\d+)?")


def _is_device(value: object) -> bool:
    if isinstance(value, str):
        return value == "auto" or bool(_DEVICE.fullmatch(value))
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(d, str) and _DEVICE.fullmatch(d) for d in value)
    )


POOL: Mapping[str, Rule] = {
    "worker_threads": _integer(1),
    "max_blocking_threads": _integer(1),
    "thread_stack_size": Rule(
        "0 (the platform default) or an integer of at least 32768 (bytes)",
        lambda v: is_int(v) and (v == 0 or v >= 32768),
    ),
}
LIMITS: Mapping[str, Rule] = {
    "max_units": _or_null(_integer(1), "derived from the model's cache"),
    "max_queue_depth": _integer(1),
    "timeout_secs": _positive_number(),
}
QUEUE: Mapping[str, Rule] = {
    "backend": _choice("memory", "sqlite"),
    "persistence": Rule("true or false", lambda v: isinstance(v, bool)),
}
MAILBOX: Mapping[str, Rule] = {
    "backend": _choice("memory", "sqlite"),
    "retention_secs": _positive_number(),
    "path": _or_null(_text("a file path"), "under the Jupyter data dir"),
}
PARAMS: Mapping[str, Rule] = {
    "device": Rule(
        "auto, cpu, cuda, cuda:N, or a non-empty list of cpu/cuda/cuda:N",
        _is_device,
        lambda v: tuple(v) if isinstance(v, list) else v,
    ),
    "dtype": _choice("auto", "float32", "bfloat16", "float16"),
    "quantization": _choice("auto", "none", "int8", "int4"),
    "kvcache_mem_gpu": _integer(1),
    "kvcache_mem_cpu": _integer(1),
    "max_num_seqs": _integer(1),
    "block_size": _integer(1),
    "max_model_len": _or_null(_integer(1), "from the model config"),
    # A model's defaults for requests: the ranges a request's own values must be in.
    "temperature": _range(SAMPLING["temperature"]),
    "max_tokens": _range(SAMPLING["max_tokens"]),
    "prefix_caching": Rule("true or false", lambda v: isinstance(v, bool)),
}
MODEL: Mapping[str, Rule] = {
    "name": _pattern("a non-empty name of letters, digits and . _ - / :", r"[A-Za-z0-9._\-/:]+"),
    "backend": _choice("transformers", "openai", "fake"),
    "hf_id": _pattern(
        "a Hugging Face model id (owner/name, as on the model's page)", r"[\w.-]+(/[\w.-]+)?"
    ),
    "revision": _pattern("a branch, tag or commit of the hub repo", r"[\w./-]+"),
    "download": Rule("true or false", lambda v: isinstance(v, bool)),
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
    "remote_model": _text("the model's name on the upstream server"),
    "request_timeout_secs": _positive_number(),
}
REMOTE_KEYS = ("base_url", "api_key_env", "remote_model", "request_timeout_secs")
MODEL_SECTIONS = ("params", "parking_lot")
SOURCES = ("hf_id", "local_path", "gguf")
SECTIONS = ("pool", "limits", "queue", "mailbox")
SHARED_SECTIONS = ("queue", "mailbox")


def join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def as_mapping(data: object, path: str, what: str = "a mapping of settings") -> dict[Any, Any]:
    if data is None:  # "section:" with every key commented out means "all defaults"
        return {}
    if not isinstance(data, dict):
        raise Invalid(path, f"expected {what}, got {show(data)}")
    return data


def check_keys(data: Mapping[Any, Any], path: str, allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    for key in data:
        if key not in allowed:
            problem = f"unknown key {str(key)!r}; expected one of: {', '.join(allowed)}"
            close = difflib.get_close_matches(str(key), allowed, n=1)
            if close:
                problem += f"; did you mean {close[0]!r}?"
            raise Invalid(join(path, key), problem)


def checked(data: Mapping[Any, Any], path: str, rules: Mapping[str, Rule]) -> dict[str, Any]:
    """The keys present in ``data``, checked and converted; absent keys stay absent."""
    return {k: rule.apply(data[k], join(path, k)) for k, rule in rules.items() if k in data}


def checked_section(data: object, path: str, rules: Mapping[str, Rule]) -> dict[str, Any]:
    mapping = as_mapping(data, path)
    check_keys(mapping, path, rules)
    return checked(mapping, path, rules)
