"""Filling ``{var}``, ``{In[n]}`` and ``{Out[n]}`` in a prompt from the user's namespace.

A name the namespace does not have is an error (``MissingName``) for ``%%llm``, which says
how to send braces as written (``--no-interpolate``); with ``strict=False`` it is left as
it is, braces and all. Braces around anything that is not a name (``{}``, ``{"a": 1}``,
``{a b}``) are never placeholders, so most code and JSON survive either way.

``In[n]`` takes negative indexes as a list does (``{In[-2]}``
is the cell before this one); ``Out[n]`` is the output of cell ``n``. Values are inserted as
``str(value)``. ``%%llm --no-interpolate`` turns all of this off.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MissingName", "interpolate"]

_PLACEHOLDER = re.compile(r"\{(?:(?P<history>In|Out)\[(?P<index>-?\d+)\]|(?P<name>[^\W\d]\w*))\}")


class MissingName(LookupError):
    """A placeholder that names nothing in the namespace."""

    def __init__(self, placeholder: str) -> None:
        self.placeholder = placeholder
        super().__init__(placeholder)


def interpolate(template: str, namespace: Mapping[str, Any], *, strict: bool = False) -> str:
    def missing(match: re.Match[str]) -> str:
        if strict:
            raise MissingName(match.group(0))
        return match.group(0)

    def fill(match: re.Match[str]) -> str:
        if match.group("name") is not None:
            name = match.group("name")
            return str(namespace[name]) if name in namespace else missing(match)
        history = namespace.get(match.group("history"))
        index = int(match.group("index"))
        try:
            return str(history[index])  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return missing(match)

    return _PLACEHOLDER.sub(fill, template)
