"""The notebook side of jupyter_llm: ``%%llm``, ``%llm``, ``Client``, ``Generation`` and
``ChatWidget`` (imported when first asked for: it brings ipywidgets).

``%load_ext jupyter_llm`` registers the magics. Nothing here imports torch: the kernel
talks to a jupyter_llm server over HTTP, or runs an embedded pool whose model workers are
separate processes (``discovery.py`` says which).
"""

from typing import Any as _Any  # private: the namespace holds the public API only

from ..errors import ServerRefused, ServerUnreachable
from .client import Client
from .generation import Generation

__all__ = [
    "ChatWidget",
    "Client",
    "Generation",
    "ServerRefused",
    "ServerUnreachable",
    "load_ipython_extension",
    "unload_ipython_extension",
]


_LAZY = ("ChatWidget",)  # served by __getattr__ on first use (it imports ipywidgets)


def __getattr__(name: str) -> _Any:
    if name == "ChatWidget":
        from .chat import ChatWidget

        return ChatWidget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ipython: _Any) -> None:
    from .magics import LLMMagic

    ipython.register_magic_function(LLMMagic(ipython), magic_kind="line_cell", magic_name="llm")


def unload_ipython_extension(ipython: _Any) -> None:
    """Leaves the client running: jobs in flight keep streaming into their cells."""
