"""ChatWidget in a real kernel (jupyter_client) against the real test server: what reaches
the frontend are the widget's comm messages, recorded here as JupyterLab would get them."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from ..conftest import Server
from ..support import KernelDriver, Received

# slow: a real jupyter server subprocess and real kernels (tests/kernel/conftest.py)
pytestmark = pytest.mark.slow

SLEEP = 3.0  # seconds a busy cell holds the kernel while an answer streams


def comm_updates(kernel: KernelDriver, comm_id: str, key: str) -> list[Received]:
    """Every state update of the widget that carries ``key``, in the order they came."""
    found = [
        message
        for cell in list(kernel.cells.values())
        for message in cell.messages
        if message.type == "comm_msg"
        and message.content["comm_id"] == comm_id
        and message.content["data"].get("method") == "update"
        and key in message.content["data"]["state"]
    ]
    return sorted(found, key=lambda m: m.sent)


def latest(kernel: KernelDriver, comm_id: str, key: str) -> Any:
    updates = comm_updates(kernel, comm_id, key)
    return updates[-1].content["data"]["state"][key] if updates else None


@pytest.fixture
def chat(kernel: KernelDriver) -> Iterator[str]:
    """A ChatWidget named ``chat`` in the kernel, shown; yields its comm id."""
    kernel.ok("from jupyter_llm import ChatWidget\nchat = ChatWidget('fake', max_tokens=400)\nchat")
    comm_id = kernel.value("chat.model_id")
    yield comm_id
    kernel.ok("chat.stop(); chat.close()")


@pytest.fixture
def click(kernel: KernelDriver, chat: str) -> Iterator[Callable[[dict[str, Any]], None]]:
    """What the view sends on a click: a custom comm message on the shell channel (from a
    second client, kept open until the test ends so that nothing sent is dropped)."""
    client = kernel.manager.blocking_client()
    client.start_channels()

    def send(content: dict[str, Any]) -> None:
        data = {"method": "custom", "content": content}
        client.shell_channel.send(client.session.msg("comm_msg", {"comm_id": chat, "data": data}))

    yield send
    client.stop_channels()


def test_tokens_stream_to_the_frontend_while_a_cell_sleeps(
    kernel: KernelDriver, server: Server, chat: str
) -> None:
    kernel.ok("g = chat.send('one two three')")
    job_id = kernel.value("g.id")
    sleeper = kernel.ok(f"import time; time.sleep({SLEEP})", timeout=SLEEP + 30)
    kernel.wait_for(lambda: latest(kernel, chat, "busy") is False, 30, "the answer's end")

    record = server.job(job_id)
    assert record["status"] == "completed" and record["usage"]["completion_tokens"] == 400
    paints = [u for u in comm_updates(kernel, chat, "live") if u.content["data"]["state"]["live"]]
    assert paints[0].sent.timestamp() < record["timings"]["finished_at"] - 1.0

    start = next(m for m in sleeper.messages if m.type == "execute_input").sent
    assert sleeper.reply is not None
    during = [p for p in paints if start < p.sent < sleeper.reply.sent]
    assert len(during) >= SLEEP / 0.5, "the busy cell paused the stream"
    gaps = [(b.sent - a.sent).total_seconds() for a, b in itertools.pairwise(during)]
    assert max(gaps) < 0.5
    texts = [p.content["data"]["state"]["live"]["html"] for p in paints]
    texts = [text for text in texts if text]  # the first paints may show only "queued"
    assert len(set(texts)) == len(texts) and all(t.startswith("<p>one two") for t in texts)

    final = latest(kernel, chat, "transcript")[-1]
    assert final["status"] == "completed" and final["html"] == f"<p>{record['text']}</p>\n"
    assert "400 tokens" in final["meta"] and latest(kernel, chat, "live") == {}
    assert kernel.value("chat.messages[-1]['content']") == record["text"]


def test_a_click_sends_and_stop_cancels_at_once(
    kernel: KernelDriver, server: Server, chat: str, click: Callable[[dict[str, Any]], None]
) -> None:
    click({"action": "send", "text": "from a click"})
    kernel.wait_for(lambda: bool(latest(kernel, chat, "live")), 10, "the first tokens")
    job_id = latest(kernel, chat, "job_id")
    click({"action": "stop"})
    kernel.wait_for(lambda: latest(kernel, chat, "busy") is False, 5, "the stop")

    record = server.job(job_id)
    assert record["status"] == "cancelled" and record["usage"]["completion_tokens"] < 400
    final = latest(kernel, chat, "transcript")[-1]
    assert final["status"] == "cancelled" and "cancelled" in final["meta"]
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"token {server.token}"}
    ) as client:
        status = client.get("llm/api/status").json()
    assert status["models"]["fake"]["used_units"] == 0, "the job's units did not come back"


def widget_views(cell: Any) -> list[dict[str, Any]]:
    """The widget views a cell showed, as its result or as displays."""
    return [
        m.content["data"]
        for m in cell.of_type("execute_result", "display_data")
        if "application/vnd.jupyter.widget-view+json" in m.content["data"]
    ]


def test_llm_chat_shows_a_widget(kernel: KernelDriver) -> None:
    cell = kernel.ok("%llm chat fake")
    assert len(widget_views(cell)) == 1
    assert cell.of_type("execute_result"), "the widget is the cell's result"
    assert kernel.value("type(_).__name__") == "ChatWidget"
    assert kernel.value("_.model") == "fake"
    error = kernel.run("%llm chat a b").error()
    assert error is not None and "at most one model" in error["evalue"]


def test_an_assigned_llm_chat_shows_its_widget_once(kernel: KernelDriver) -> None:
    """``chat = %llm chat`` has no result to show, so the magic shows the widget itself."""
    assigned = kernel.ok("assigned = %llm chat fake")
    assert len(widget_views(assigned)) == 1
    assert kernel.value("type(assigned).__name__") == "ChatWidget"
    shown_again = kernel.ok("again = %llm chat fake\nagain")
    assert len(widget_views(shown_again)) == 1
