"""jupyter_llm: local LLM inference in Jupyter that never blocks.

The public API is what ``__all__`` lists; everything else may change between releases.
"""

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
    WorkerLost,
)
from .pool import Pool, PoolStats
from .types import (
    GenerationRequest,
    JobRecord,
    JobStatus,
    Message,
    Priority,
    SamplingParams,
    TokenEvent,
)

__version__ = "0.1.0"

__all__ = [
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
    "WorkerLost",
    "__version__",
    "load_config",
    "resolve_config_path",
]
