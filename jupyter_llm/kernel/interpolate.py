"""Filling ``{var}``, ``{In[n]}`` and ``{Out[n]}`` in a prompt from the user's namespace.

A name the namespace does not have is left as it is, braces and all, so prompts that
contain code or JSON survive. ``In[n]`` takes negative indexes as a list does (``{In[-2]}``
is the cell before this one); ``Out[n]`` is the output of cell ``n``. Values are inserted as
``str(value)``. ``%%llm --no-interpolate`` turns all of this off.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["interpolate"]

_PLACEHOLDER = re.compile(r"\{(?:(?P<history>In|Out)\[(?P<index>-?\d+)\]|(?P<name>[^\W\d]\w*))\}")


def interpolate(template: str, namespace: Mapping[str, Any]) -> str:
    def fill(match: re.Match[str]) -> str:
        if match.group("name") is not None:
            name = match.group("name")
            return str(namespace[name]) if name in namespace else match.group(0)
        history = namespace.get(match.group("history"))
        index = int(match.group("index"))
        try:
            return str(history[index])  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return match.group(0)

    return _PLACEHOLDER.sub(fill, template)
