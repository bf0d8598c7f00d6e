"""Where a model's workers go: how many there are, and on which device.

* A list of devices (``device: [cuda:0, cuda:1]``) places one worker on each device: worker
  ``i`` loads on ``device[i]`` (``resolve_device`` in engine/local/device.py reads it by worker
  index), and ``worker_threads`` does not apply.
* Any other device runs ``worker_threads`` workers there (``cuda`` spreads them over the GPUs).
* A remote model (``backend: openai``) has one worker: it only moves bytes between the pool
  and its upstream, and one worker holding all ``max_num_seqs`` requests makes the cap exact.

No torch here: the pool sizes its workers with it in the server process.
"""

from __future__ import annotations

from ..config import ModelConfig

__all__ = ["worker_devices"]


def worker_devices(model: ModelConfig) -> tuple[str, ...]:
    """The device of each worker; its length is the number of workers."""
    if model.backend == "openai":
        return (model.base_url or "remote",)
    device = model.params.device
    if isinstance(device, tuple):
        return device
    return (device,) * model.parking_lot.pool.worker_threads
