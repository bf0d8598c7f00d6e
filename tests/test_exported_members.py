"""Pins the public API: a change here is a change users see (and goes in the README's notes)."""

from __future__ import annotations

import subprocess
import sys

import jupyter_llm
import jupyter_llm.pool


def test_top_level_exports():
    assert sorted(jupyter_llm.__all__) == sorted(
        [
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
    )
    for name in jupyter_llm.__all__:
        assert hasattr(jupyter_llm, name), name


def test_pool_exports():
    for name in jupyter_llm.pool.__all__:
        assert hasattr(jupyter_llm.pool, name), name


def test_importing_the_package_and_the_pool_does_not_import_torch():
    code = "import sys, jupyter_llm, jupyter_llm.pool; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
