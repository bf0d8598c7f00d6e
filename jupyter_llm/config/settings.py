"""The configuration as the pool sees it: plain frozen dataclasses, no YAML.

``files.py`` finds and reads models.yaml, ``parse.py`` checks it against the rules in
``rules.py`` and builds these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..completion.fim import FimTokens
from ..errors import UnknownModel
from ..validate import hub_file, package_resource

__all__ = [
    "Config",
    "LimitsSettings",
    "MailboxSettings",
    "ModelConfig",
    "ModelParams",
    "ModelSource",
    "ParkingLot",
    "PoolSettings",
    "QueueSettings",
    "gguf_form",
]


@dataclass(frozen=True, slots=True)
class PoolSettings:
    worker_threads: int = 1  # engine workers per model; the cores are shared among them
    max_blocking_threads: int = 32
    thread_stack_size: int = 2097152  # bytes; 0: the platform default
    worker_nice: int = 10  # niceness added to worker processes (0: the server's priority)


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    max_units: int | None = None  # None: derived from the model's KV cache
    max_queue_depth: int = 1000
    timeout_secs: float = 120.0
    max_running_per_user: int | None = None  # a user's jobs running at once; None: no limit
    max_queued_per_user: int | None = None  # a user's jobs waiting; None: only max_queue_depth


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
    # Matmul weights held as int8 or int4 (CPU); auto: a GGUF's own quantized type, else none.
    quantization: str = "none"
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
    base_url: str | None = None  # openai only: the upstream's /v1
    api_key_env: str | None = None  # openai only: the variable that holds the upstream's key
    remote_model: str | None = None  # openai only: the upstream's name; None: ``name``
    request_timeout_secs: float = 600.0  # openai only: longest upstream silence in a request
    tool_parser: str | None = None  # hermes | llama3 | mistral; None: from the chat template
    # Inline completions' fill-in-the-middle tokens: "auto" (the tokenizer's), "none", a
    # preset name (completion/fim.py), or the tokens themselves.
    fim: str | FimTokens = "auto"


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
