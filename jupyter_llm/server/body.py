"""A request body as the JSON object a route reads: every way it can be wrong is a 400 that
says which.

Python's parser takes more than a route can use, or fails in ways that are no answer:
nesting deeper than the interpreter's recursion limit raises ``RecursionError`` (a 500 if it
got through); nesting a few hundred levels parses, then breaks whatever walks the value
next (``repr`` in an error message); ``\\ud800`` parses into a string that no UTF-8 encoder
(the tokenizer, the mailbox) takes; a key given twice silently keeps its last value; an
integer of more than 4300 digits is refused with advice meant for the server's programmer.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import InvalidRequest

__all__ = ["MAX_DEPTH", "parse_object"]

#: The deepest nesting a body may have (the object itself is level 1). OpenAI's requests
#: nest about 6 levels (messages, content parts), a JSON schema for structured output two
#: more for each level of its own; 64 leaves room and stays far below the interpreter's
#: recursion limit.
MAX_DEPTH = 64

_TOO_DEEP = f"the request body is nested more than {MAX_DEPTH} levels deep"


def parse_object(raw: bytes) -> dict[str, Any]:
    """``raw`` (UTF-8, -16 or -32 JSON) as a JSON object; ``InvalidRequest`` naming the fault."""
    try:
        data = json.loads(raw or b"null", object_pairs_hook=_object)
    except RecursionError:
        raise InvalidRequest(_TOO_DEEP) from None
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start : exc.start + 1].hex()
        raise InvalidRequest(
            f"the request body is not valid JSON: it is not {exc.encoding.upper()} text "
            f"(byte 0x{bad} at position {exc.start})"
        ) from None
    except ValueError as exc:
        if str(exc).startswith("Exceeds the limit"):  # int(): sys.get_int_max_str_digits()
            raise InvalidRequest(
                "the request body is not valid JSON for this server: "
                "it holds an integer of more than 4300 digits"
            ) from None
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    _check_nesting_and_text(data)
    return data


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return found


def _check_nesting_and_text(data: dict[str, Any]) -> None:
    """Walk the containers without recursing: depth, and strings that UTF-8 cannot encode."""
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidRequest(_TOO_DEEP)
        if isinstance(node, dict):
            for key in node:
                _check_text(key)
            values = node.values()
        else:
            values = node  # type: ignore[assignment]
        for value in values:
            if isinstance(value, dict | list):
                stack.append((value, depth + 1))
            elif isinstance(value, str):
                _check_text(value)


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        raise InvalidRequest(
            f"the request body holds a lone surrogate (\\u{code:04x}) in a string: "
            "not a character, and no text can carry it"
        ) from None
