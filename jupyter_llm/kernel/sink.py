"""Where a view's paints go: the cell that ran ``%%llm``, and no other.

In a kernel, ``KernelSink`` captures the cell's parent header when it is made (in the cell)
and sends every later display message with that header, from whatever thread paints. An
output sent from a background thread otherwise follows the kernel's idea of the current
cell (ipykernel 6: a global; ipykernel 7: the latest cell when the thread carries no
context), and tokens would stream into whichever cell ran last.

Outside a kernel (a terminal IPython, tests) ``IPythonSink`` uses IPython's display calls.
Each ``show`` returns the bytes it sent (data and metadata; the header is not counted).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

__all__ = ["IPythonSink", "KernelSink", "Sink", "show", "sink_for"]


class Sink(Protocol):
    def show(
        self,
        display_id: str,
        data: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        *,
        update: bool,
    ) -> int: ...


class KernelSink:
    """Display messages on the kernel's IOPub socket, with the parent header of the cell
    that made this sink."""

    def __init__(self, display_pub: Any) -> None:
        self._pub = display_pub
        self.parent = dict(display_pub.parent_header)  # the cell running now

    def show(
        self,
        display_id: str,
        data: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        *,
        update: bool,
    ) -> int:
        content = {
            "data": data,
            "metadata": metadata or {},
            "transient": {"display_id": display_id},
        }
        # The session and the socket are the display publisher's own: the socket hands the
        # message to ipykernel's IOPub thread, so any thread may send.
        self._pub.session.send(
            self._pub.pub_socket,
            "update_display_data" if update else "display_data",
            content,
            parent=self.parent,
            ident=self._pub.topic,
        )
        return _size(content)


class IPythonSink:
    def show(
        self,
        display_id: str,
        data: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        *,
        update: bool,
    ) -> int:
        from IPython.display import display, update_display

        if update:
            update_display(  # type: ignore[no-untyped-call]
                data, raw=True, display_id=display_id, metadata=metadata
            )
        else:
            display(  # type: ignore[no-untyped-call]
                data, raw=True, display_id=display_id, metadata=metadata
            )
        return _size({"data": data, "metadata": metadata or {}})


def sink_for(shell: Any) -> Sink:
    """The sink for the cell ``shell`` is running now."""
    publisher = getattr(shell, "display_pub", None)
    if (
        getattr(publisher, "session", None) is not None
        and getattr(publisher, "pub_socket", None) is not None
        and hasattr(publisher, "parent_header")
    ):
        return KernelSink(publisher)
    return IPythonSink()


def show(data: dict[str, Any]) -> None:
    """Display a mime bundle in the running cell (from the cell's own thread)."""
    from IPython.display import display

    display(data, raw=True)  # type: ignore[no-untyped-call]


def _size(content: dict[str, Any]) -> int:
    return len(json.dumps(content, default=str).encode())
