"""Model execution, behind one seam (``base.py``: specs, engines, outputs).

* this package: the seam, the fake engine that tests and benchmarks drive, and the torch-free
  batching core (``scheduler.py``, ``sequence.py``, ``detok.py``, ``prompt.py``);
* ``local/``: the worker-side model code; the only code that imports torch or transformers,
  and only inside ``EngineSpec.build`` (in a worker process), never at import time;
* ``remote/``: the proxy to another OpenAI-compatible server.

``spec_for`` imports the engine a model needs when it is asked for one, so importing this
package brings neither torch nor the remote engine's HTTP client.
"""

from __future__ import annotations

from ..config import ModelConfig
from ..errors import ModelNotReady
from .base import AnySpec, Engine, EngineSpec, TokenCounter
from .fake import FakeSpec
from .placement import worker_devices

__all__ = [
    "AnySpec",
    "Engine",
    "EngineSpec",
    "TokenCounter",
    "spec_for",
    "worker_devices",
]

# The fake engine's nominal KV bytes per token, so that kvcache_mem_cpu means something.
_FAKE_KV_BYTES_PER_TOKEN = 64 * 1024


def spec_for(model: ModelConfig) -> AnySpec:
    """The engine spec for a configured model; raises ModelNotReady when its backend can't run."""
    params = model.params
    if model.backend == "fake":
        tokens = params.kvcache_mem_cpu * 1024 * 1024 // _FAKE_KV_BYTES_PER_TOKEN
        return FakeSpec(
            model=model.name,
            units=max(1, tokens // params.block_size),
            block_size=params.block_size,
            max_num_seqs=params.max_num_seqs,
            max_model_len=params.max_model_len or 32768,
            step_delay=0.01,
        )
    if model.backend == "transformers":
        from .local.spec import TransformersSpec

        return TransformersSpec.for_model(model)
    if model.backend == "openai":
        from .remote.engine import RemoteSpec

        return RemoteSpec.for_model(model)
    raise ModelNotReady(
        model.name, f"the {model.backend!r} backend is not available in this version of jupyter_llm"
    )
