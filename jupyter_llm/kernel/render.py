"""What a generation looks like in a cell: mime bundles for each format, and a status line.

Pure functions of the generation's state: the view decides when to paint, this decides what.
While a job streams, each format sends one mime type (the least bytes per repaint); the
final paint adds ``text/plain`` holding exactly the job's text, for every frontend and for
the saved notebook.

Model output is untrusted: it never runs in the browser. ``-f html`` goes through nh3 (the
Ammonia sanitizer: no scripts, event handlers or ``javascript:`` links), and raw HTML inside
a markdown answer is escaped so that it shows as the text the model wrote.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import nh3

from ..types import JobStatus
from .errors import explain
from .generation import Generation

__all__ = [
    "FORMATS",
    "answer_bundle",
    "escape_markdown_html",
    "extract_code",
    "status_bundle",
    "status_text",
]

FORMATS = ("markdown", "text", "html", "json", "code")

_FENCE = re.compile(r"^\s*(```|~~~)", re.MULTILINE)
# Code the markdown renderer shows verbatim (HTML in it is already text): fenced blocks (an
# unclosed one runs to the end) and inline code spans.
_CODE = re.compile(
    r"^[ \t]*(?P<fence>```|~~~)[^\n]*\n.*?(?:^[ \t]*(?P=fence)[ \t]*$|\Z)"
    r"|(?P<ticks>`+).+?(?<!`)(?P=ticks)(?!`)",
    re.MULTILINE | re.DOTALL,
)
_BLOCK = re.compile(r"^\s*(?:```|~~~)[^\n]*\n(.*?)^\s*(?:```|~~~)\s*$", re.MULTILINE | re.DOTALL)


def answer_bundle(text: str, fmt: str, *, final: bool) -> tuple[dict[str, Any], str | None]:
    """The answer's mime bundle, and a note when the final form could not be made."""
    if fmt == "markdown":
        markdown = escape_markdown_html(text)
        if not final:
            return {"text/markdown": _close_fences(markdown)}, None
        return {"text/markdown": markdown, "text/plain": text}, None
    if fmt == "html":
        clean = nh3.clean(text)
        return ({"text/html": clean, "text/plain": text} if final else {"text/html": clean}), None
    if fmt == "code":
        block = text if _FENCE.search(text) else f"```python\n{text}\n```"
        block = escape_markdown_html(block)
        if not final:
            return {"text/markdown": _close_fences(block)}, None
        return {"text/markdown": block, "text/plain": text}, None
    if fmt == "json" and final:
        try:
            value = json.loads(_unfenced(text))
        except ValueError as exc:
            return {"text/plain": text}, f"the answer is not valid JSON ({exc})"
        return {"application/json": value, "text/plain": text}, None
    return {"text/plain": text}, None  # text, and json while it streams


def escape_markdown_html(text: str) -> str:
    """``text`` with raw HTML outside code escaped, so that markdown shows it as text."""
    parts: list[str] = []
    start = 0
    for code in _CODE.finditer(text):
        parts.append(_escape(text[start : code.start()]))
        parts.append(code.group())
        start = code.end()
    parts.append(_escape(text[start:]))
    return "".join(parts)


def _escape(prose: str) -> str:
    return prose.replace("&", "&amp;").replace("<", "&lt;")


def extract_code(text: str) -> str:
    """The code of an answer: its fenced blocks joined, or all of it when it has none."""
    blocks = [block.rstrip() for block in _BLOCK.findall(text)]
    return "\n\n".join(blocks) if blocks else text.strip()


def status_text(generation: Generation, note: str | None = None, now: float | None = None) -> str:
    parts = ["llm", generation.model, _state(generation)]
    if generation.tokens:
        parts.append(f"{generation.tokens} tokens")
    rate = generation.tokens_per_second(now)
    if rate is not None:
        parts.append(f"{rate:.0f} tok/s")
    if generation.done and generation.finished_at is not None:
        parts.append(f"{generation.finished_at - generation.submitted_at:.1f} s")
    if note:
        parts.append(note)
    return " · ".join(parts)


def status_bundle(generation: Generation, note: str | None = None) -> dict[str, Any]:
    text = status_text(generation, note)
    failed = generation.done and generation.status is not JobStatus.COMPLETED
    color = "color: var(--jp-error-color1, #d32f2f);" if failed else ""
    style = f"font-size: 85%; opacity: 0.8; {color}"
    return {
        "text/plain": text,
        "text/html": f'<div class="jupyter-llm-status" style="{style}">{html.escape(text)}</div>',
    }


def _state(generation: Generation) -> str:
    status = generation.status
    if not generation.done:
        if status is JobStatus.QUEUED and generation.note:
            return generation.note  # "queued: waiting for ...", "loading: converting GGUF, 12 s"
        return status.value
    if generation.failure is None:
        return status.value
    return explain(generation.failure)


def _close_fences(text: str) -> str:
    """Close a code block the model has opened but not finished yet, so it renders as code."""
    if len(_FENCE.findall(text)) % 2:
        return text + "\n```"
    return text


def _unfenced(text: str) -> str:
    blocks = _BLOCK.findall(text)
    return blocks[0] if blocks else text
