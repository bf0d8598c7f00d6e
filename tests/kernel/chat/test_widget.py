"""ChatWidget's logic in this process, without a frontend: an embedded pool of the fake
engine (it echoes the question's words, 100 tokens a second; its workers are processes)
stands in for the server, and the widget's synced state is what a view would be sent."""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from jupyter_llm import ChatWidget, QueueFull, UnknownModel
from jupyter_llm.errors import InvalidRequest
from jupyter_llm.kernel import Client, ServerUnreachable
from jupyter_llm.kernel.discovery import Target
from jupyter_llm.kernel.loop import BackgroundLoop

MODELS = {
    "parking_lot": {"pool": {"worker_threads": 1}},
    "models": [
        # Context of 100 "tokens" (one a word, two a message): five turns fill it.
        {"name": "fake", "backend": "fake", "params": {"max_tokens": 8, "max_model_len": 100}},
        # One sequence at a time, one waiting: queued answers and a full queue on demand.
        {
            "name": "tight",
            "backend": "fake",
            "params": {"max_tokens": 8, "max_num_seqs": 1},
            "parking_lot": {"limits": {"max_queue_depth": 1}},
        },
    ],
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    path = tmp_path_factory.mktemp("chat") / "models.yaml"
    path.write_text(yaml.safe_dump(MODELS))
    loop = BackgroundLoop("test-chat")
    embedded = Client.for_target(Target("embedded", "test", config_path=path), loop=loop)
    try:
        embedded.generate("warm up", model="fake").wait(60)
        embedded.generate("warm up", model="tight").wait(60)
        yield embedded
    finally:
        loop.close()  # stops the pool and its workers


def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def record_live(chat: ChatWidget) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    chat.observe(lambda change: seen.append(dict(change["new"])), names="live")
    return seen


def roles(chat: ChatWidget) -> list[str]:
    return [block["role"] for block in chat.transcript]


def test_an_answer_streams_into_one_block_then_lands_in_the_transcript(client: Client) -> None:
    chat = ChatWidget("fake", "be brief", client=client, max_tokens=60)
    live = record_live(chat)
    generation = chat.send("tell me <b>a</b> story")
    assert chat.busy and chat.job_id == generation.id
    assert roles(chat) == ["user", "assistant"]
    answer = generation.wait(30)
    # The widget's own follower settles the turn on the background loop, just after the end
    # that wait() saw (CI once read busy still True here).
    until(lambda: not chat.busy)
    assert chat.live == {} and chat.job_id == ""

    streamed = [paint for paint in live if paint]
    assert len(streamed) >= 3, "the answer did not repaint as it streamed"
    assert {paint["id"] for paint in streamed} == {chat.transcript[1]["id"]}
    growing = [paint["html"] for paint in streamed]
    assert len(set(growing)) >= 3 and all("&lt;b&gt;" in h for h in growing if "b&gt;" in h)
    assert all(len(a) <= len(b) for a, b in itertools.pairwise(growing))

    block = chat.transcript[1]
    assert block["status"] == "completed"
    assert block["html"].startswith("<p>tell me &lt;b&gt;a&lt;/b&gt; story")
    assert block["meta"].startswith("fake · queue ")
    for part in ("first token", "60 tokens", "tok/s", "length"):
        assert part in block["meta"]
    assert chat.messages == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "tell me <b>a</b> story"},
        {"role": "assistant", "content": answer},
    ]
    assert generation.request.messages is not None
    assert [m.role for m in generation.request.messages] == ["system", "user"]


def test_stop_cancels_a_queued_answer_at_once(client: Client) -> None:
    blocker = client.generate("x " * 5, model="tight", max_tokens=300)  # 3 s of work
    chat = ChatWidget("tight", client=client)
    try:
        generation = chat.send("never answered")
        time.sleep(0.2)
        assert generation.status.value == "queued"
        started = time.monotonic()
        chat.stop()
        assert time.monotonic() - started < 1.0
        assert client.get(generation.id).status.value == "cancelled"
        assert chat.transcript[-1]["status"] == "cancelled"
        assert "cancelled" in chat.transcript[-1]["meta"]
        assert not chat.busy
    finally:
        blocker.cancel()


def test_stop_mid_answer_keeps_what_was_said(client: Client) -> None:
    chat = ChatWidget("fake", client=client, max_tokens=30)
    generation = chat.send("a b c")
    until(lambda: generation.tokens >= 3)
    chat.stop()
    record = client.get(generation.id)
    assert record.status.value == "cancelled" and 3 <= record.usage.completion_tokens < 30
    assert chat.messages[-1] == {"role": "assistant", "content": record.text}
    until(lambda: client.status()["models"]["fake"]["used_units"] == 0, 2.0)  # units back


def test_regenerate_edit_and_new_chat(client: Client) -> None:
    chat = ChatWidget("fake", client=client)
    chat.send("alpha beta").wait(30)
    first = chat.transcript[-1]["id"]
    chat.regenerate().wait(30)
    assert roles(chat) == ["user", "assistant"] and chat.transcript[-1]["id"] != first
    chat.edit("gamma delta").wait(30)
    assert [m["content"].split()[0] for m in chat.messages] == ["gamma", "gamma"]
    with pytest.raises(ValueError, match="empty"):
        chat.edit("  ")
    chat.clear()
    assert chat.transcript == [] and chat.messages == []
    with pytest.raises(ValueError, match="no message"):
        chat.regenerate()


def test_the_next_message_goes_as_soon_as_wait_returns(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The widget's follower settles an ended answer on the background loop, a moment after
    # wait() returns; here it comes a second late, as on a busy kernel.
    from jupyter_llm.kernel.chat import widget

    class LateFollower(widget.LiveAnswer):
        def _changed(self, generation: Any) -> None:
            if generation.done:
                self._loop.call_later(1.0, super()._changed, generation)
            else:
                super()._changed(generation)

    monkeypatch.setattr(widget, "LiveAnswer", LateFollower)
    chat = ChatWidget("fake", client=client, max_tokens=3)
    first = chat.send("one").wait(30)
    second = chat.send("two")  # no "still streaming"
    assert roles(chat) == ["user", "assistant", "user", "assistant"]
    assert chat.transcript[1]["status"] == "completed"
    assert chat.messages[1] == {"role": "assistant", "content": first}
    second.wait(30)
    until(lambda: not chat.busy, 5.0)
    assert chat.messages[3] == {"role": "assistant", "content": second.text} and chat.live == {}


def test_sending_while_an_answer_streams_is_refused(client: Client) -> None:
    chat = ChatWidget("fake", client=client, max_tokens=80)
    chat.send("one")
    with pytest.raises(RuntimeError, match="still streaming"):
        chat.send("two")
    chat.stop()


def test_a_long_chat_drops_its_oldest_turns_and_says_so(client: Client) -> None:
    chat = ChatWidget("fake", "stay", client=client)
    for _ in range(6):
        chat.send("one two three four five six").wait(30)
    notes = [b["text"] for b in chat.transcript if b["role"] == "note"]
    assert notes and "oldest turn" in notes[0] and "system prompt stays" in notes[0]
    generation = chat.generation or chat.send("seven eight")
    generation.wait(30)
    sent = generation.request.messages
    assert sent is not None
    assert sent[0].content == "stay" and sent[-1].content == "seven eight"
    assert len(sent) < len(chat.messages)  # the transcript keeps everything


def test_refusals_become_one_line_in_the_transcript(client: Client) -> None:
    chat = ChatWidget("nope", client=client)
    with pytest.raises(UnknownModel):
        chat.send("hi")
    assert roles(chat) == ["user", "error"]
    assert "choose another model" in chat.transcript[-1]["text"]

    blocker = client.generate("x", model="tight", max_tokens=300)
    waiting = client.generate("x", model="tight", max_tokens=8)
    full = ChatWidget("tight", client=client)
    try:
        with pytest.raises(QueueFull):
            full.send("hi")
        assert full.transcript[-1]["role"] == "error"
        assert "retry in" in full.transcript[-1]["text"]
    finally:
        waiting.cancel()
        blocker.cancel()
    full.regenerate().wait(30)  # Regenerate tries the same question again
    assert roles(full) == ["user", "assistant"]

    chat.temperature = -1.0
    chat.model = "fake"
    with pytest.raises(InvalidRequest):
        chat.regenerate()
    assert "temperature" in chat.transcript[-1]["text"]


def test_an_unreachable_server_is_said_in_the_transcript() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = BackgroundLoop("test-chat-unreachable")
    try:
        client = Client.for_target(
            Target("env", "test", url=f"http://127.0.0.1:{port}/", token="t"), loop=loop
        )
        chat = ChatWidget("fake", client=client)
        until(lambda: bool(chat.transcript))  # the model list could not be fetched
        with pytest.raises(ServerUnreachable):
            chat.send("hi")
        assert chat.transcript[-1]["role"] == "error"
        assert (
            f"cannot reach the jupyter_llm server at http://127.0.0.1:{port}/"
            in (chat.transcript[-1]["text"])
        )
    finally:
        loop.close()


def test_the_view_drives_it_with_messages(client: Client) -> None:
    chat = ChatWidget(client=client, max_tokens=4)
    until(lambda: chat.model == "fake" and len(chat.models) == 2)
    assert {m["name"]: m["state"] for m in chat.models} == {"fake": "ready", "tight": "ready"}
    chat._on_view_message(chat, {"action": "send", "text": "from the view"}, [])
    until(lambda: not chat.busy)
    assert chat.messages[-1]["content"].startswith("from the view")
    chat._on_view_message(chat, {"action": "send", "text": "   "}, [])
    assert chat.transcript[-1] == {**chat.transcript[-1], "role": "error"}
    assert "empty" in chat.transcript[-1]["text"]
    chat._on_view_message(chat, {"action": "new"}, [])
    assert chat.transcript == []


def test_interpolation_is_behind_a_toggle(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    import jupyter_llm.kernel.chat.widget as widget

    monkeypatch.setattr(widget, "_user_namespace", lambda: {"name": "Ada"})
    chat = ChatWidget("fake", client=client, max_tokens=2)
    chat.send("hello {name}").wait(30)
    chat.interpolate = True
    chat.send("hello {name}").wait(30)
    assert [m["content"] for m in chat.messages if m["role"] == "user"] == [
        "hello {name}",
        "hello Ada",
    ]


def test_save_load_and_markdown(client: Client, tmp_path: Path) -> None:
    chat = ChatWidget("fake", "sys", client=client, max_tokens=3, temperature=0.5, seed=7)
    chat.send("save me").wait(30)
    path = chat.save(tmp_path / "chat.json")
    data = json.loads(path.read_text())
    assert data["settings"] == {
        "model": "fake",
        "temperature": 0.5,
        "max_tokens": 3,
        "interpolate": False,
        "params": {"seed": 7},
    }
    loaded = ChatWidget.load(path, client=client)
    assert loaded.messages == chat.messages
    assert [b["role"] for b in loaded.transcript] == ["user", "assistant"]
    assert loaded.transcript[1]["meta"] == chat.transcript[1]["meta"]
    assert (loaded.model, loaded.system, loaded.params) == ("fake", "sys", {"seed": 7})
    assert chat.to_markdown().startswith("**System:** sys\n\n### You\n\nsave me\n\n### fake")
    loaded.send("and go on").wait(30)
    assert len(loaded.messages) == 5


def test_a_schema_is_kept_with_the_chat(client: Client, tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    chat = ChatWidget("fake", client=client, max_tokens=3, schema=schema)
    chat.send("as json").wait(30)
    path = chat.save(tmp_path / "chat.json")
    assert json.loads(path.read_text())["settings"]["schema"] == schema
    assert ChatWidget.load(path, client=client).schema == schema


def test_bad_parameters_are_refused_when_made() -> None:
    with pytest.raises(InvalidRequest, match="top_p"):
        ChatWidget("fake", client=None, top_p=7)
    with pytest.raises(InvalidRequest, match="bogus"):
        ChatWidget("fake", client=None, bogus=1)


def test_the_package_imports_the_widget_only_when_asked() -> None:
    import subprocess
    import sys

    code = (
        "import sys, jupyter_llm, jupyter_llm.kernel, jupyter_llm.server.app\n"
        "before = 'ipywidgets' in sys.modules\n"
        "from jupyter_llm import ChatWidget\n"
        "from jupyter_llm.kernel import ChatWidget as Same\n"
        "print(before, 'ipywidgets' in sys.modules, ChatWidget is Same)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True"]
