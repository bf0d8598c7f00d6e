"""The notebook side of jupyter_llm: ``%%llm``, ``%llm``, ``Client`` and ``Generation``.

``%load_ext jupyter_llm`` registers the magics. Nothing here imports torch: the kernel
talks to a jupyter_llm server over HTTP, or runs an embedded pool whose model workers are
separate processes (``discovery.py`` says which).
"""

from typing import Any as _Any  # private: the namespace holds the public API only

from ..errors import ServerRefused, ServerUnreachable
from .client import Client
from .generation import Generation

__all__ = [
    "Client",
    "Generation",
    "ServerRefused",
    "ServerUnreachable",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: _Any) -> None:
    from .magics import LLMMagic

    ipython.register_magic_function(LLMMagic(ipython), magic_kind="line_cell", magic_name="llm")


def unload_ipython_extension(ipython: _Any) -> None:
    """Leaves the client running: jobs in flight keep streaming into their cells."""
