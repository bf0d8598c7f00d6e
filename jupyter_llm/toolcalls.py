"""Reading tool calls back out of a model's text, in the syntax its chat template taught it.

Three families, as vLLM names its parsers:

* ``hermes`` (Qwen2.5, Hermes): ``<tool_call>{"name": …, "arguments": {…}}</tool_call>``
  blocks, anywhere after some text;
* ``llama3`` (Llama 3.1 to 3.3): the whole answer is ``{"name": …, "parameters": {…}}`` (several
  joined by ``;``), after an optional ``<|python_tag|>``;
* ``mistral``: ``[TOOL_CALLS][{"name": …, "arguments": {…}}, …]``. The marker is a special
  token, which the detokenizer drops, so a bare JSON list of calls also counts.

``detect`` picks the family from a chat template; a model's ``tool_parser:`` key overrides it.
``ToolCallReader`` reads a streamed answer: it passes plain text on as it comes and holds
back what may be a tool call until the answer ends, when ``finish`` parses what it held. Text
that turns out not to be a valid call is content after all: nothing the model wrote is lost.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from .structured import ToolCall

__all__ = ["PARSERS", "Parsed", "ToolCallReader", "detect", "new_call_id", "parse"]

PARSERS = ("hermes", "llama3", "mistral")
_HERMES_OPEN = "<tool_call>"
_HERMES_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_MISTRAL_MARK = "[TOOL_CALLS]"
_PYTHON_TAG = "<|python_tag|>"


def detect(template: str | None) -> str:
    """The parser a chat template's tool syntax calls for; ``hermes`` when it has none (we
    then describe the tools in Hermes' words ourselves, engine/prompt.py)."""
    text = template or ""
    if _MISTRAL_MARK in text:
        return "mistral"
    if _PYTHON_TAG in text or ('"parameters"' in text and "ipython" in text):
        return "llama3"
    return "hermes"


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


@dataclass(frozen=True, slots=True)
class Parsed:
    content: str | None  # the text around the calls; None when there is none
    calls: tuple[ToolCall, ...] = ()


def parse(parser: str, text: str) -> Parsed:
    """A finished answer's tool calls and remaining content (no calls: all of it content)."""
    if parser == "hermes":
        calls = []
        for block in _HERMES_BLOCK.findall(text):
            call = _call(block, "arguments")
            if call is None:
                return Parsed(text)
            calls.append(call)
        if not calls:
            return Parsed(text)
        content = text[: text.index(_HERMES_OPEN)].strip()
        return Parsed(content or None, tuple(calls))
    body = text.strip()
    if parser == "llama3":
        body = body.removeprefix(_PYTHON_TAG).strip()
        if not body.startswith("{"):
            return Parsed(text)
        found = [_call(part, "parameters", "arguments") for part in _split_semicolons(body)]
    else:
        body = body.removeprefix(_MISTRAL_MARK).strip()
        try:
            items = json.loads(body) if body.startswith("[") else None
        except ValueError:
            items = None
        if not isinstance(items, list) or not items:
            return Parsed(text)
        found = [_call_from(item, "arguments", "parameters") for item in items]
    if not found or any(call is None for call in found):
        return Parsed(text)
    return Parsed(None, tuple(call for call in found if call is not None))


def _split_semicolons(body: str) -> list[str]:
    try:
        json.loads(body)
        return [body]
    except ValueError:
        return [part for part in body.split(";") if part.strip()]


def _call(text: str, *argument_keys: str) -> ToolCall | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return _call_from(data, *argument_keys)


def _call_from(data: Any, *argument_keys: str) -> ToolCall | None:
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments: Any = {}
    for key in argument_keys:
        if key in data:
            arguments = data[key]
            break
    if isinstance(arguments, str):  # some models write the arguments as JSON text
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return ToolCall(new_call_id(), data["name"], json.dumps(arguments, ensure_ascii=False))


@dataclass(slots=True)
class ToolCallReader:
    """Splits a streamed answer into text to show now and a held-back tail to parse at the end."""

    parser: str
    _held: str = ""
    _holding: bool = False  # a call has (or may have) begun: hold everything from here
    _started: bool = False  # the answer has had non-blank text
    _shown: list[str] = field(default_factory=list)

    def feed(self, text: str) -> str:
        """The part of ``text`` that is plain content for sure."""
        if self._holding:
            self._held += text
            return ""
        pending = self._held + text
        self._held = ""
        if self.parser == "hermes":
            at = pending.find(_HERMES_OPEN)
            if at >= 0:
                self._holding, self._held = True, pending[at:]
                return self._show(pending[:at])
            keep = _prefix_overlap(pending, _HERMES_OPEN)
            self._held = pending[len(pending) - keep :] if keep else ""
            return self._show(pending[: len(pending) - keep])
        if not self._started:  # llama3 and mistral: a call is the whole answer
            stripped = pending.lstrip()
            if not stripped:
                self._held = pending
                return ""
            self._started = True
            if stripped[0] in "{[" or _starts_marker(stripped):
                self._holding, self._held = True, pending
                return ""
        return self._show(pending)

    def finish(self) -> Parsed:
        """The calls in what was held, and the held text that is content after all."""
        held, self._held = self._held, ""
        parsed = parse(self.parser, "".join(self._shown) + held) if held else Parsed(None)
        if not parsed.calls:
            return Parsed(held or None)
        # The content before the calls was already shown: only the calls are new.
        return Parsed(None, parsed.calls)

    def _show(self, text: str) -> str:
        if text.strip():
            self._started = True
        self._shown.append(text)
        return text


def _starts_marker(text: str) -> bool:
    return any(
        text.startswith(mark) or mark.startswith(text) for mark in (_PYTHON_TAG, _MISTRAL_MARK)
    )


def _prefix_overlap(text: str, marker: str) -> int:
    """How many of ``text``'s last characters could begin ``marker``."""
    for size in range(min(len(text), len(marker) - 1), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0
