"""A chat's transcript, as plain data: what was said, what is sent, what is saved.

``Conversation`` knows nothing of widgets or jobs. Its entries are the blocks a reader
sees: the user's messages, the answers (with their small line of numbers), and lines that
are neither (an error, a note that old turns were left out). Only user messages and
answers go to the model: ``messages()`` is the whole chat in OpenAI's format, system
prompt first; ``request(dropped)`` is what one job is sent, without its ``dropped``
oldest turns when the chat has outgrown the model's context (the system prompt and the
last question always stay).

A saved chat is a JSON file (``FORMAT``, version 1); loading checks every field and says
which one is wrong.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FORMAT", "ROLES", "ChatFileError", "Conversation", "Entry"]

FORMAT = "jupyter_llm.chat"
ROLES = ("user", "assistant", "error", "note")

_ids = itertools.count(1)


class ChatFileError(ValueError):
    """A saved chat that cannot be read: the message names the file and the field."""


@dataclass
class Entry:
    """One block of the transcript. ``version`` grows with every change (views redraw by it)."""

    role: str
    text: str
    meta: str = ""  # under an answer: model, queue wait, first token, tokens, tok/s, finish
    status: str = ""  # an answer's job status (queued, running, completed, cancelled...)
    model: str | None = None
    job_id: str | None = None
    id: int = field(default_factory=lambda: next(_ids))
    version: int = 0

    def touch(self) -> None:
        self.version += 1

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "text": self.text}
        for key in ("meta", "status", "model", "job_id"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data


class Conversation:
    def __init__(self, system: str | None = None) -> None:
        self.system = system or None
        self.entries: list[Entry] = []

    # -- reading ---------------------------------------------------------------------------

    def messages(self) -> list[dict[str, str]]:
        """The chat in OpenAI's format: the system prompt first, then questions and answers
        (an answer stopped early counts with what it had said)."""
        chat = [{"role": "system", "content": self.system}] if self.system else []
        chat += [{"role": e.role, "content": e.text} for e in self.entries if self._counts(e)]
        return chat

    def turns(self) -> list[list[Entry]]:
        """The said entries grouped by question: each turn starts with a user message."""
        turns: list[list[Entry]] = []
        for entry in self.entries:
            if not self._counts(entry):
                continue
            if entry.role == "user" or not turns:
                turns.append([])
            turns[-1].append(entry)
        return turns

    def request(self, dropped: int = 0) -> list[dict[str, str]]:
        """What a job for the last question is sent: the system prompt and every turn but
        the ``dropped`` oldest. The last turn (the question itself) is never dropped."""
        turns = self.turns()
        if not turns or turns[-1][-1].role != "user":
            raise ValueError("there is no question to answer: the chat does not end with one")
        kept = turns[min(dropped, len(turns) - 1) :]
        chat = [{"role": "system", "content": self.system}] if self.system else []
        return chat + [{"role": e.role, "content": e.text} for turn in kept for e in turn]

    def last(self, role: str) -> Entry | None:
        return next((e for e in reversed(self.entries) if e.role == role), None)

    @staticmethod
    def _counts(entry: Entry) -> bool:
        return entry.role == "user" or (entry.role == "assistant" and bool(entry.text))

    # -- changing --------------------------------------------------------------------------

    def add(self, role: str, text: str, **fields: Any) -> Entry:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
        entry = Entry(role, text, **fields)
        self.entries.append(entry)
        return entry

    def remove_after_last_question(self) -> Entry:
        """Drop what follows the last question (its answer, errors, notes); return it."""
        question = self.last("user")
        if question is None:
            raise ValueError("there is no message to answer again yet")
        del self.entries[self.entries.index(question) + 1 :]
        return question

    def clear(self) -> None:
        self.entries.clear()

    # -- exporting -------------------------------------------------------------------------

    def to_markdown(self) -> str:
        parts = [f"**System:** {self.system}"] if self.system else []
        for entry in self.entries:
            if entry.role == "user":
                parts.append(f"### You\n\n{entry.text}")
            elif entry.role == "assistant":
                title = f"### {entry.model}" if entry.model else "### Assistant"
                meta = f"\n\n*{entry.meta}*" if entry.meta else ""
                parts.append(f"{title}\n\n{entry.text}{meta}")
            else:
                parts.append(f"> {entry.role}: {entry.text}")
        return "\n\n".join(parts) + "\n"

    def to_dict(self, settings: dict[str, Any]) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": 1,
            "system": self.system,
            "settings": settings,
            "entries": [entry.to_dict() for entry in self.entries],
        }

    @classmethod
    def from_file(cls, path: str | Path) -> tuple[Conversation, dict[str, Any]]:
        """The conversation and the settings saved in ``path``."""
        where = str(path)
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ChatFileError(f"cannot read the chat file {where}: {exc.strerror}") from None
        except ValueError as exc:
            raise ChatFileError(f"{where} is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ChatFileError(f'{where} is not a saved chat (no "format": "{FORMAT}")')
        if data.get("version") != 1:
            raise ChatFileError(f"{where}: version {data.get('version')!r} is not supported (1)")
        system = data.get("system")
        settings = data.get("settings") or {}
        if system is not None and not isinstance(system, str):
            raise ChatFileError(f"{where}: system must be text or null")
        if not isinstance(settings, dict):
            raise ChatFileError(f"{where}: settings must be an object")
        entries = data.get("entries")
        if not isinstance(entries, list):
            raise ChatFileError(f"{where}: entries must be a list")
        conversation = cls(system)
        for index, item in enumerate(entries):
            conversation.entries.append(_entry(item, f"{where}: entries[{index}]"))
        return conversation, settings


def _entry(item: Any, where: str) -> Entry:
    if not isinstance(item, dict):
        raise ChatFileError(f"{where} must be an object")
    if item.get("role") not in ROLES:
        raise ChatFileError(f"{where}.role must be one of {', '.join(ROLES)}")
    fields: dict[str, Any] = {}
    for key in ("text", "meta", "status", "model", "job_id"):
        value = item.get(key, "" if key == "text" else None)
        if value is not None and not isinstance(value, str):
            raise ChatFileError(f"{where}.{key} must be text")
        if value is not None:
            fields[key] = value
    unknown = set(item) - {"role", *fields, "text", "meta", "status", "model", "job_id"}
    if unknown:
        raise ChatFileError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    return Entry(item["role"], **fields)
