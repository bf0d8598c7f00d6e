"""A terminal progress bar for downloads: redrawn in place on a terminal, lines otherwise."""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

from ..sources.transfer import Transfer

__all__ = ["ProgressBar"]

_LOG_EVERY = 5.0  # seconds between lines when the output is not a terminal


class ProgressBar:
    """Call it with each ``Transfer``; ``close()`` ends the line."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._drawn = False
        self._last_line = 0.0
        self.last: Transfer | None = None

    def __call__(self, transfer: Transfer) -> None:
        self.last = transfer
        if self.live:
            self.stream.write("\r" + self.line(transfer, shutil.get_terminal_size().columns))
            self._drawn = True
        elif time.monotonic() - self._last_line >= _LOG_EVERY or transfer.done >= transfer.total:
            self._last_line = time.monotonic()
            self.stream.write(self.line(transfer, 0) + "\n")
        self.stream.flush()

    def line(self, transfer: Transfer, columns: int) -> str:
        share = transfer.done / transfer.total if transfer.total else 1.0
        text = f"{self.label} {share:4.0%}  {transfer.describe()}"
        room = columns - len(text) - 3
        if room < 10:
            return text
        width = min(room, 40)
        filled = round(width * share)
        return f"{text} [{'#' * filled}{'.' * (width - filled)}]".ljust(columns - 1)

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
