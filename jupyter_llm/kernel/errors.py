"""How a notebook cell shows an error: ``CellError`` and ``explain``.

The Client raises the domain errors of ``jupyter_llm.errors`` in both modes (``UnknownModel``,
``QueueFull``, ``ModelNotReady``, ``JobFailed``...; the HTTP backend rebuilds them from the
server's error bodies), plus ``ServerUnreachable`` and ``ServerRefused``, which only a
kernel meets. ``explain`` is the one place that words an error for a notebook cell.
"""

from __future__ import annotations

from ..errors import (
    JobCancelled,
    JobExpired,
    JobFailed,
    LLMError,
    ModelNotReady,
    QueueFull,
    UnknownModel,
)

__all__ = ["CellError", "explain"]


class CellError(Exception):
    """A failure of a ``%%llm`` cell, shown as one short line instead of a traceback.

    IPython asks an exception for ``_render_traceback_`` before it formats a traceback; the
    cause stays attached for anyone who wants it (``%tb`` or ``sys.last_value.__cause__``).
    """

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31mjupyter_llm: {self}\x1b[0m"]


def explain(error: BaseException, *, embedded: bool = False) -> str:
    """One or two short sentences a notebook user can act on."""
    if isinstance(error, UnknownModel):
        return f"{error}; choose one with -m NAME (%llm models lists them)"
    if isinstance(error, QueueFull):
        return f"{error} (%llm status shows the load)"
    if isinstance(error, ModelNotReady):
        hint = ""
        if embedded and "torch" in str(error):
            hint = (
                "; the embedded pool runs models in this kernel's environment: install "
                "jupyter_llm[engine] here, or run the kernel from a Jupyter server with the "
                "jupyter_llm extension"
            )
        return f"{error}{hint}"
    if isinstance(error, JobCancelled):
        return f"cancelled: {error.reason}" if error.reason != "cancelled" else "cancelled"
    if isinstance(error, JobExpired):
        return f"expired: {error.reason}"
    if isinstance(error, JobFailed):
        return f"generation failed: {error.reason}"
    if isinstance(error, LLMError):
        return str(error)
    return f"{type(error).__name__}: {error}"
