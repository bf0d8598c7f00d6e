"""Worker placement: one worker per listed device, worker_threads elsewhere, one for remotes.

No GPU here: the placement is plain data, and the pool is checked to start as many workers
as it says (over the fake engine, which loads on no device).
"""

from __future__ import annotations

from typing import Any

from jupyter_llm.engine import worker_devices
from jupyter_llm.engine.local.spec import SPIN_ROUNDS, TransformersSpec, brief_openmp_spin

from ..support import make_config, until


def model(params: dict[str, Any] | None = None, **entry: Any) -> Any:
    extra = {"name": "m", "backend": "transformers", "hf_id": "org/m", "params": params or {}}
    extra.update(entry)
    if entry.get("backend") == "openai":
        extra.pop("hf_id")
    config = make_config(pool={"worker_threads": 3}, extra_models=[extra])
    return config.model("m")


def test_a_device_list_places_one_worker_on_each_device() -> None:
    assert worker_devices(model({"device": ["cuda:0", "cuda:1"]})) == ("cuda:0", "cuda:1")
    assert worker_devices(model({"device": ["cuda:1"]})) == ("cuda:1",)


def test_one_device_runs_worker_threads_workers() -> None:
    assert worker_devices(model({"device": "cuda:0"})) == ("cuda:0",) * 3
    assert worker_devices(model({"device": "auto"})) == ("auto",) * 3


def test_a_remote_model_has_one_worker() -> None:
    remote = model(backend="openai", base_url="http://127.0.0.1:8000/v1")
    assert worker_devices(remote) == ("http://127.0.0.1:8000/v1",)


def test_torch_threads_are_shared_by_the_workers_placed() -> None:
    one = TransformersSpec.for_model(model({"device": ["cuda:0"]}))
    three = TransformersSpec.for_model(model({"device": "cpu"}))
    assert one.threads >= three.threads >= 1


async def test_the_pool_starts_one_worker_per_listed_device(make_pool) -> None:
    config = make_config(params={"device": ["cuda:0", "cuda:1", "cuda:2"]})
    pool = await make_pool(config)
    (fake,) = pool.models()
    assert [w.index for w in fake.workers] == [0, 1, 2]
    # Counted once each has loaded: the pool may report ready when the first one has.
    await until(lambda: pool.stats().total.workers == 3)


def test_openmp_threads_spin_briefly_unless_the_user_chose() -> None:
    environ: dict[str, str] = {}
    brief_openmp_spin(environ)
    assert environ == {"GOMP_SPINCOUNT": str(SPIN_ROUNDS)}
    for chosen in ({"OMP_WAIT_POLICY": "PASSIVE"}, {"GOMP_SPINCOUNT": "0"}):
        environ = dict(chosen)
        brief_openmp_spin(environ)
        assert environ == chosen
