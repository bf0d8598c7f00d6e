"""Pins the public API, as httpx's test_exported_members does: ``__all__`` is exactly the
public names in the namespace, and the lists below are what users may import. A change
here is a change users see (and goes in the README's notes)."""

from __future__ import annotations

import subprocess
import sys
import types
from importlib.metadata import version

import pytest

import jupyter_llm
import jupyter_llm.kernel
import jupyter_llm.pool

PUBLIC = {
    jupyter_llm: [
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
    ],
    jupyter_llm.kernel: [
        "ChatWidget",
        "Client",
        "Generation",
        "ServerRefused",
        "ServerUnreachable",
        "load_ipython_extension",
        "unload_ipython_extension",
    ],
    jupyter_llm.pool: [
        "ModelInfo",
        "ModelStats",
        "Pool",
        "PoolObserver",
        "PoolStats",
        "WorkerInfo",
    ],
}


@pytest.mark.parametrize("module", PUBLIC, ids=lambda m: m.__name__)
def test_all_is_the_public_namespace(module: types.ModuleType) -> None:
    # Submodules are reached by their own names; everything else public is in __all__,
    # with the names a module's __getattr__ imports on first use (_LAZY: the chat widget).
    namespace = sorted(
        [
            name
            for name, value in vars(module).items()
            if (not name.startswith("_") or name == "__version__")
            and not isinstance(value, types.ModuleType)
        ]
        + list(getattr(module, "_LAZY", ()))
    )
    assert sorted(module.__all__) == namespace
    assert sorted(module.__all__) == sorted(PUBLIC[module])


def test_one_version() -> None:
    assert jupyter_llm.__version__ == version("jupyter_llm")


def test_importing_the_package_and_the_pool_does_not_import_torch() -> None:
    code = "import sys, jupyter_llm, jupyter_llm.pool; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
