"""Driving real kernels from the tests: run cells, and record what the frontend would see.

``KernelDriver`` reads every message a kernel sends (IOPub and shell replies) with its
arrival time and the kernel's own send time (``header.date``), filed by the cell (the
``parent_header.msg_id``) it belongs to. Two transports feed it: jupyter_client's ZMQ
channels (a kernel we started) and a Jupyter server's websocket (a kernel the server
started, as JupyterLab talks to it).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Message = dict[str, Any]


@dataclass
class Received:
    channel: str
    msg: Message
    arrived: float  # time.monotonic() when read

    @property
    def type(self) -> str:
        return str(self.msg["header"]["msg_type"])

    @property
    def sent(self) -> datetime:
        date = self.msg["header"]["date"]
        return date if isinstance(date, datetime) else datetime.fromisoformat(date)

    @property
    def content(self) -> dict[str, Any]:
        return dict(self.msg["content"])


@dataclass
class Cell:
    msg_id: str
    messages: list[Received] = field(default_factory=list)

    @property
    def reply(self) -> Received | None:
        return next((m for m in self.messages if m.channel == "shell"), None)

    @property
    def idle(self) -> bool:
        return any(
            m.type == "status" and m.content["execution_state"] == "idle" for m in self.messages
        )

    def of_type(self, *types: str) -> list[Received]:
        return [m for m in self.messages if m.type in types]

    @property
    def displays(self) -> list[Received]:
        return self.of_type("display_data", "update_display_data")

    def display_ids(self) -> list[str]:
        ids: list[str] = []
        for m in self.displays:
            display_id = m.content.get("transient", {}).get("display_id")
            if display_id and display_id not in ids:
                ids.append(display_id)
        return ids

    def answer_id(self) -> str:
        """The display id of the answer (the status line's ends with -status)."""
        return next(i for i in self.display_ids() if not i.endswith("-status"))

    def updates(self, display_id: str) -> list[Received]:
        return [
            m
            for m in self.displays
            if m.content.get("transient", {}).get("display_id") == display_id
        ]

    def final(self, display_id: str | None = None) -> Received | None:
        """The answer's final paint (it carries metadata jupyter_llm.final)."""
        display_id = display_id or self.answer_id()
        for m in self.updates(display_id):
            if m.content.get("metadata", {}).get("jupyter_llm", {}).get("final"):
                return m
        return None

    def text(self, name: str = "stdout") -> str:
        return "".join(
            m.content["text"] for m in self.of_type("stream") if m.content["name"] == name
        )

    def result(self) -> str | None:
        results = self.of_type("execute_result")
        return results[-1].content["data"]["text/plain"] if results else None

    def error(self) -> dict[str, Any] | None:
        """The failure as the execute reply reports it (ename, evalue, traceback), if any.

        The reply, not an IOPub ``error`` message: IPython prints a UsageError on stderr."""
        reply = self.reply
        if reply is None or reply.content["status"] == "ok":
            return None
        return reply.content


class KernelDriver:
    """Runs cells on one kernel through ``send`` (an execute_request) and ``receive``."""

    def __init__(
        self,
        send: Callable[[str], str],
        receive: Callable[[float], tuple[str, Message] | None],
    ) -> None:
        self._send = send
        self._receive = receive
        self.manager: Any = None  # jupyter_client's KernelManager, when we started the kernel
        self.cells: dict[str, Cell] = defaultdict(lambda: Cell(""))

    def execute(self, code: str) -> str:
        msg_id = self._send(code)
        self.cells[msg_id] = Cell(msg_id)
        return msg_id

    def pump(self, timeout: float = 0.05) -> int:
        """Read what has arrived (waiting up to ``timeout`` for the first message)."""
        count = 0
        wait = timeout
        while (item := self._receive(wait)) is not None:
            channel, msg = item
            parent = (msg.get("parent_header") or {}).get("msg_id")
            if parent:
                cell = self.cells[parent]
                cell.msg_id = parent
                cell.messages.append(Received(channel, msg, time.monotonic()))
            count += 1
            wait = 0.0
        return count

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
            self.pump(0.02)

    def run(self, code: str, timeout: float = 30.0) -> Cell:
        """Execute ``code`` and wait for its reply and its idle status."""
        msg_id = self.execute(code)
        cell = self.cells[msg_id]
        self.wait_for(lambda: cell.reply is not None and cell.idle, timeout, f"cell {code!r}")
        return cell

    def ok(self, code: str, timeout: float = 30.0) -> Cell:
        """``run`` and fail the test with the kernel's error if the cell failed."""
        cell = self.run(code, timeout)
        assert cell.reply is not None
        if cell.reply.content["status"] != "ok":
            raise AssertionError(f"cell {code!r} failed: {cell.error() or cell.reply.content}")
        return cell

    def value(self, expression: str, timeout: float = 30.0) -> Any:
        """The value of a Python expression in the kernel (through JSON)."""
        cell = self.ok(f"import json as _json; print(_json.dumps({expression}))", timeout)
        return json.loads(cell.text())


def zmq_driver(client: Any) -> KernelDriver:
    """A driver over jupyter_client's blocking client (channels started)."""

    def receive(timeout: float) -> tuple[str, Message] | None:
        for channel, source in (("iopub", client.iopub_channel), ("shell", client.shell_channel)):
            try:
                return channel, source.get_msg(timeout=0)
            except queue.Empty:
                continue
        if timeout <= 0:
            return None
        try:
            return "iopub", client.iopub_channel.get_msg(timeout=timeout)
        except queue.Empty:
            return None

    return KernelDriver(lambda code: client.execute(code, store_history=True), receive)


def websocket_driver(url: str, token: str) -> tuple[KernelDriver, Callable[[], None]]:
    """A driver over a Jupyter server's kernel websocket (``.../api/kernels/<id>/channels``)."""
    import websocket

    session = uuid.uuid4().hex
    ws = websocket.create_connection(
        f"{url}?session_id={session}", header=[f"Authorization: token {token}"], timeout=30
    )
    inbox: queue.Queue[tuple[str, Message]] = queue.Queue()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                raw = ws.recv()
            except Exception:
                return
            if raw:
                msg = json.loads(raw)
                inbox.put((msg.get("channel", "iopub"), msg))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def send(code: str) -> str:
        msg_id = uuid.uuid4().hex
        ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": "test",
                        "session": session,
                        "date": datetime.now().isoformat(),
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": True,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        return msg_id

    def receive(timeout: float) -> tuple[str, Message] | None:
        try:
            return inbox.get(timeout=timeout) if timeout > 0 else inbox.get_nowait()
        except queue.Empty:
            return None

    def close() -> None:
        stop.set()
        ws.close()
        reader.join(5)

    return KernelDriver(send, receive), close
