"""What each key of models.yaml accepts: one ``Rule`` per key, in a table per section.

A rule is a test, the words for the error ("expected an integer of at least 1"), a
conversion and what the key is for (``doc``: docs/configuration.md is generated from these
tables by ``python -m jupyter_llm.config.docs``). ``Invalid`` names one bad key deep in the
checks; ``parse_config`` adds the file. Unknown keys are errors, never ignored: a typo must
not silently fall back to a default.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..completion.fim import AUTO, NONE, PRESETS, FimTokens
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
    doc: str = ""  # what the key is for, in a sentence: the configuration page's words

    def described(self, doc: str) -> Rule:
        return replace(self, doc=doc)

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
    "worker_threads": _integer(1).described(
        "Engine workers per model, each a process holding one replica; the cores are shared "
        "among them (one worker uses them all)."
    ),
    "max_blocking_threads": _integer(1).described(
        "Helper threads in the server for blocking chores (tokenizing, file I/O)."
    ),
    "thread_stack_size": Rule(
        "0 (the platform default) or an integer of at least 32768 (bytes)",
        lambda v: is_int(v) and (v == 0 or v >= 32768),
    ).described("Stack size of those helper threads, in bytes; 0: the platform default."),
    "worker_nice": Rule("an integer from 0 to 19", lambda v: is_int(v) and 0 <= v <= 19).described(
        "Niceness added to each worker process (0-19): 10 lets the server's loop win the cores "
        "when they are short; 0 keeps the model's share beside other busy programs."
    ),
}
LIMITS: Mapping[str, Rule] = {
    "max_units": _or_null(_integer(1), "derived from the model's cache").described(
        "KV-cache units (blocks of block_size tokens) admitted at once; a job costs "
        "ceil((prompt_tokens + max_tokens) / block_size) units and waits while they are not free."
    ),
    "max_queue_depth": _integer(1).described(
        "Jobs that may wait per model; the next one is refused at once (HTTP 429, Retry-After)."
    ),
    "timeout_secs": _positive_number().described(
        "The longest a job waits in the queue, in seconds, before it expires (HTTP 504)."
    ),
    "max_running_per_user": _or_null(_integer(1), "no limit").described(
        "Jobs one user may have running per model; their further jobs wait in the queue "
        "without holding other users back."
    ),
    "max_queued_per_user": _or_null(_integer(1), "no limit but max_queue_depth").described(
        "Jobs one user may have waiting per model; the next one is refused (HTTP 429 naming "
        "this limit)."
    ),
}
QUEUE: Mapping[str, Rule] = {
    "backend": _choice("memory", "sqlite").described("Where waiting jobs are kept."),
    "persistence": Rule("true or false", lambda v: isinstance(v, bool)).described(
        "Whether queued jobs survive a restart of the server (needs backend: sqlite)."
    ),
}
MAILBOX: Mapping[str, Rule] = {
    "backend": _choice("memory", "sqlite").described(
        "Where every job's record (text, status, usage, timings, error) is kept."
    ),
    "retention_secs": _positive_number().described(
        "How long a finished job's record is kept, in seconds."
    ),
    "path": _or_null(_text("a file path"), "under the Jupyter data dir").described(
        "The sqlite file of the mailbox; a relative path is read from models.yaml's folder."
    ),
}
PARAMS: Mapping[str, Rule] = {
    "device": Rule(
        "auto, cpu, cuda, cuda:N, or a non-empty list of cpu/cuda/cuda:N",
        _is_device,
        lambda v: tuple(v) if isinstance(v, list) else v,
    ).described(
        "Where the workers run: auto is CUDA when torch sees a GPU, else the CPU; a list "
        "starts one worker per listed device (worker_threads then does not apply)."
    ),
    "dtype": _choice("auto", "float32", "bfloat16", "float16").described(
        "The weights' precision: auto is bfloat16 where the CPU (avx512_bf16, amx_bf16) or "
        "GPU computes it natively, else float32."
    ),
    "kvcache_mem_gpu": _integer(1).described("MB for the KV cache of a worker on a GPU."),
    "kvcache_mem_cpu": _integer(1).described("MB for the KV cache of a worker on the CPU."),
    "max_num_seqs": _integer(1).described(
        "Sequences decoded together in one step; for backend: openai, the requests open "
        "upstream at once (more wait in the queue here)."
    ),
    "block_size": _integer(1).described("Tokens per KV-cache block: the pool's unit."),
    "max_model_len": _or_null(_integer(1), "from the model config").described(
        "The longest context (prompt and answer) in tokens; longer jobs are refused. Without "
        "it, a Llama-family model gives each of max_num_seqs sequences an equal share of the "
        "KV cache, but at least 2,048 tokens."
    ),
    "quantization": _choice("auto", "none", "int8", "int4").described(
        "How the Llama fast path holds its matmul weights on a CPU: none (float), int8, int4, "
        "or auto (a GGUF file's quantized weights as int8, others float)."
    ),
    # A model's defaults for requests: the ranges a request's own values must be in.
    "temperature": _range(SAMPLING["temperature"]).described(
        "The sampling temperature of requests that do not give one."
    ),
    "max_tokens": _range(SAMPLING["max_tokens"]).described(
        "The most tokens an answer gets when its request does not say."
    ),
    "prefix_caching": Rule("true or false", lambda v: isinstance(v, bool)).described(
        "Keep finished sequences' keys and values (up to a quarter more KV memory) so that a "
        "prompt that begins the same way (a chat's earlier turns) prefills only the rest."
    ),
}
_FIM_PARTS = ("prefix", "suffix", "middle")


def _is_fim(value: object) -> bool:
    if isinstance(value, str):
        return value in (AUTO, NONE, *PRESETS)
    return (
        isinstance(value, dict)
        and sorted(value) == sorted(_FIM_PARTS)
        and all(isinstance(value[k], str) and value[k].strip() for k in _FIM_PARTS)
    )


def _fim(value: Any) -> str | FimTokens:
    return value if isinstance(value, str) else FimTokens(**{k: value[k] for k in _FIM_PARTS})


MODEL: Mapping[str, Rule] = {
    "name": _pattern(
        "a non-empty name of letters, digits and . _ - / :", r"[A-Za-z0-9._\-/:]+"
    ).described('Required: the id clients use ("model" in OpenAI requests, %%llm -m).'),
    "backend": _choice("transformers", "openai", "fake").described(
        "transformers (the default) runs the model here; openai forwards to a remote "
        "OpenAI-compatible server; fake is the scripted test engine."
    ),
    "hf_id": _pattern(
        "a Hugging Face model id (owner/name, as on the model's page)", r"[\w.-]+(/[\w.-]+)?"
    ).described(
        "A source: a model on the Hugging Face Hub, downloaded on first use into its cache "
        "(HF_TOKEN for gated models). A transformers model has exactly one source."
    ),
    "revision": _pattern("a branch, tag or commit of the hub repo", r"[\w./-]+").described(
        "Hub sources only: the branch, tag or commit to use; null: main."
    ),
    "download": Rule("true or false", lambda v: isinstance(v, bool)).described(
        "Hub sources only: false uses cached files only (as HF_HUB_OFFLINE=1 does)."
    ),
    "local_path": _text("a folder path").described(
        "A source: a folder with config.json, weights and tokenizer."
    ),
    "gguf": _text(
        "a .gguf file path, package:resource, or owner/repo:file.gguf on the hub"
    ).described(
        "A source: a GGUF file, converted once into safetensors under ~/.cache/jupyter_llm "
        "(JUPYTER_LLM_CACHE moves it); package:resource names a file inside an installed "
        "Python package."
    ),
    "base_url": _pattern("a URL starting with http:// or https://", r"https?://\S+").described(
        "backend: openai only, required: the upstream's OpenAI root (ending in /v1)."
    ),
    # The error never repeats this value: people paste the key itself here.
    "api_key_env": _pattern(
        "the name of an environment variable that holds the key (letters, digits, _), "
        "not the key itself",
        r"[A-Za-z_][A-Za-z0-9_]*",
        echo=False,
    ).described("backend: openai only: the environment variable that holds the upstream's key."),
    "remote_model": _text("the model's name on the upstream server").described(
        "backend: openai only: the model's name upstream; null: name."
    ),
    "request_timeout_secs": _positive_number().described(
        "backend: openai only: the longest the upstream may stay silent in a request, in seconds."
    ),
    "tool_parser": _choice("hermes", "llama3", "mistral").described(
        "How the model's tool calls are read back (default: from its chat template's family)."
    ),
    # Inline completions: which fill-in-the-middle tokens the model was trained on.
    "fim": Rule(
        f"{AUTO} (from the tokenizer's special tokens), {NONE} (an instruction prompt), "
        f"a preset ({', '.join(PRESETS)}), or a mapping of prefix, suffix and middle tokens",
        _is_fim,
        _fim,
    ).described("Inline completions: the fill-in-the-middle tokens the model was trained on."),
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
