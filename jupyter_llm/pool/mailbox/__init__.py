"""The mailbox: a JobRecord per job, from acceptance until its retention ends.

Two backends sit behind one interface (``base.Mailbox``): ``MemoryMailbox`` (a dict) and
``SqliteMailbox`` (survives a restart; ``sqlite.py``). ``open_mailbox`` picks the one
``parking_lot.mailbox`` asks for.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

from .base import Mailbox
from .memory import MemoryMailbox

__all__ = ["Mailbox", "MemoryMailbox", "default_mailbox_path", "open_mailbox"]


def default_mailbox_path() -> Path:
    """Where the sqlite mailbox lives unless configured: under the Jupyter data dir.

    Nothing is created here; ``SqliteMailbox`` creates the folders when it opens the file.
    """
    try:
        from jupyter_core.paths import jupyter_data_dir
    except ImportError:
        return Path.home() / ".local" / "share" / "jupyter" / "jupyter_llm" / "mailbox.sqlite"
    return Path(jupyter_data_dir()) / "jupyter_llm" / "mailbox.sqlite"


def open_mailbox(
    backend: str,
    path: str | None,
    *,
    executor: concurrent.futures.Executor | None = None,
) -> Mailbox:
    """The mailbox ``parking_lot.mailbox`` asks for; ``executor`` runs sqlite's reads."""
    if backend == "memory":
        return MemoryMailbox()
    if backend == "sqlite":
        # Imported here: a memory mailbox should not pay for sqlite3 and the writer thread.
        from .sqlite import SqliteMailbox

        return SqliteMailbox(path or default_mailbox_path(), executor=executor)
    raise ValueError(f"unknown mailbox backend {backend!r}; expected 'memory' or 'sqlite'")
