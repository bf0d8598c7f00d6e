from __future__ import annotations

import asyncio

import pytest

from jupyter_llm.kernel.loop import BackgroundLoop


def test_run_spawn_and_close() -> None:
    background = BackgroundLoop("test-loop")
    closed: list[str] = []

    async def closer() -> None:
        closed.append("closed")

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    background.on_close(closer)
    assert background.run(answer(), timeout=5) == 42
    assert background.spawn(answer()).result(5) == 42

    async def reenter() -> None:
        background.run(answer())

    with pytest.raises(RuntimeError, match="would wait on itself"):
        background.run(reenter(), timeout=5)
    background.close()
    assert closed == ["closed"]
    assert not background.thread.is_alive()
