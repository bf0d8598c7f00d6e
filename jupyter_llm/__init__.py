"""jupyter_llm: local LLM inference in Jupyter that never blocks.

The public API is what ``__all__`` lists; everything else may change between releases.
"""

from typing import Any as _Any  # private: the namespace holds the public API only

from .config import Config, load_config, resolve_config_path
from .errors import (
    ConfigError,
    InvalidRequest,
    JobCancelled,
    JobExpired,
    JobFailed,
    JobTooLarge,
    LLMError,
    ModelNotReady,
    QueueFull,
    UnknownJob,
    UnknownModel,
    UnsupportedParameter,
    UserLimitReached,
    WorkerLost,
)
from .pool import Pool, PoolStats
from .types import (
    CompletionInput,
    GenerationRequest,
    JobRecord,
    JobStatus,
    Message,
    Priority,
    SamplingParams,
    TokenEvent,
)

__version__ = "0.1.0"  # the one version source: pyproject.toml reads it (hatch)


def _jupyter_server_extension_points() -> list[dict[str, _Any]]:
    """The server extension, found by jupyter-server; imported only when a server loads it."""
    from .server.app import LLMExtension

    return [{"module": "jupyter_llm.server.app", "app": LLMExtension}]


# Served by __getattr__ on first use (it imports ipywidgets): never loaded in a server.
_LAZY = ("ChatWidget",)


def __getattr__(name: str) -> _Any:
    if name == "ChatWidget":
        from .kernel.chat import ChatWidget

        return ChatWidget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab extension, for ``jupyter labextension develop``."""
    return [{"src": "labextension", "dest": "jupyter-llm"}]


def load_ipython_extension(ipython: _Any) -> None:
    """``%load_ext jupyter_llm``: the ``%%llm`` and ``%llm`` magics (``jupyter_llm.kernel``)."""
    from .kernel import load_ipython_extension as load

    load(ipython)


__all__ = [
    "ChatWidget",
    "CompletionInput",
    "Config",
    "ConfigError",
    "GenerationRequest",
    "InvalidRequest",
    "JobCancelled",
    "JobExpired",
    "JobFailed",
    "JobRecord",
    "JobStatus",
    "JobTooLarge",
    "LLMError",
    "Message",
    "ModelNotReady",
    "Pool",
    "PoolStats",
    "Priority",
    "QueueFull",
    "SamplingParams",
    "TokenEvent",
    "UnknownJob",
    "UnknownModel",
    "UnsupportedParameter",
    "UserLimitReached",
    "WorkerLost",
    "__version__",
    "load_config",
    "load_ipython_extension",
    "resolve_config_path",
]
