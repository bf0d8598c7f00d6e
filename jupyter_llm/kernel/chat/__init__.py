"""The chat widget: ``ChatWidget`` (an anywidget whose view ships in this folder)."""

from __future__ import annotations

from .conversation import ChatFileError
from .widget import ChatWidget

__all__ = ["ChatFileError", "ChatWidget"]
