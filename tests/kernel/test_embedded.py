"""No server anywhere: the kernel runs an embedded pool from the same models.yaml, and the
kernel stays free while its model workers (separate processes) load and generate."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from .conftest import Kernels, clean_env

# slow: a real kernel whose embedded pool spawns its workers
pytestmark = pytest.mark.slow

LONG = 1500


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_an_embedded_pool_streams_while_the_kernel_stays_free(
    kernels: Kernels, models_yaml: Path, tmp_path: Path
) -> None:
    runtime = tmp_path / "runtime"  # no jpserver files: no server hosts this kernel
    runtime.mkdir()
    kernel = kernels.start(clean_env(runtime, JUPYTER_LLM_CONFIG=str(models_yaml)))
    kernel.ok("%load_ext jupyter_llm\nfrom jupyter_llm.kernel import Client")

    cell = kernel.ok(f"%%llm -o g -n {LONG} -p ignore_eos=true\nTell me a long story.")
    assert cell.final() is None
    other = kernel.ok("1 + 1")
    assert other.result() == "2" and not other.displays
    kernel.wait_for(lambda: cell.final() is not None, 90, "the final paint")

    status_id = cell.answer_id() + "-status"
    lines = [m.content["data"]["text/plain"] for m in cell.updates(status_id)]
    loading = re.compile(r"llm · tiny · loading: (starting|importing torch|loading weights), \d+ s")
    assert any(loading.match(line) for line in lines), lines
    assert lines[-1].startswith(f"llm · tiny · completed · {LONG} tokens")

    final = cell.final()
    assert final is not None
    job_id = cell.answer_id().removeprefix("jupyter_llm-")
    kept = kernel.value(f"Client.default().get({job_id!r}).text")  # the embedded mailbox
    assert final.content["data"]["text/plain"] == kept == kernel.value("g.text")

    assert kernel.value("Client.default().is_embedded") is True
    status = kernel.ok("%llm status").displays[0].content["data"]["text/plain"]
    assert status.splitlines()[:2] == [
        f"jupyter_llm: an embedded pool in this kernel (models from {models_yaml})",
        "  chosen because: no JUPYTER_LLM_URL, and no running Jupyter server hosts this kernel",
    ]
    assert kernel.value("'torch' in __import__('sys').modules") is False

    workers = kernel.value(
        "[w['pid'] for m in Client.default().models() for w in m['workers'] if w['pid']]"
    )
    assert workers and all(_alive(pid) for pid in workers)
    kernel.manager.shutdown_kernel(now=False)  # a clean exit stops the pool's workers
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)
