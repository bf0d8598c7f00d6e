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
import re
from typing import Any

from ..errors import InvalidRequest

__all__ = ["MAX_DEPTH", "parse_object"]

#: The deepest nesting a body may have (the object itself is level 1). OpenAI's requests
#: nest about 6 levels (messages, content parts), a JSON schema for structured output two
#: more for each level of its own; 64 leaves room and stays far below the interpreter's
#: recursion limit.
MAX_DEPTH = 64

_TOO_DEEP = f"the request body is nested more than {MAX_DEPTH} levels deep"
# Where a lone surrogate can come from in a UTF-8 body: a \\uD800-\\uDFFF escape, or one
# encoded in UTF-8 (json decodes with surrogatepass). A body without either holds none.
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string, escapes and all
_NOT_BRACKET = bytes(set(range(256)) - set(b"[]{}"))
# In valid JSON the kinds of bracket nest properly, so one kind tells the depth; with two, a
# round of deletions would take ``[]`` and then the ``{}`` that this uncovers.
_ONE_KIND = bytes.maketrans(b"{}", b"[]")


def parse_object(raw: bytes) -> dict[str, Any]:
    """``raw`` (UTF-8, -16 or -32 JSON) as a JSON object; ``InvalidRequest`` naming the fault.

    Each check runs at C speed over the bytes (a regular expression, ``bytes.translate`` and
    ``replace``), never a Python step per value: a 4 MiB body of a million small objects is
    judged about as fast as it parses.
    """
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
    utf8 = raw if json.detect_encoding(raw) == "utf-8" else _as_utf8(raw)
    if _too_deep(utf8):
        raise InvalidRequest(_TOO_DEEP)
    if _SURROGATE.search(utf8) is not None:
        _refuse_lone_surrogates(data)
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


def _as_utf8(raw: bytes) -> bytes:
    """A UTF-16 or -32 body (json.loads read it already) in UTF-8, surrogates kept."""
    return raw.decode(json.detect_encoding(raw), "surrogatepass").encode("utf-8", "surrogatepass")


def _too_deep(utf8: bytes) -> bool:
    """Whether valid JSON nests more than ``MAX_DEPTH`` levels (strings left out).

    With only the brackets left, each round of deleting adjacent pairs ``[]`` takes away
    the innermost level everywhere at once: whatever is left after ``MAX_DEPTH`` rounds was
    nested deeper.
    """
    if utf8.count(b"[") + utf8.count(b"{") <= MAX_DEPTH:
        return False  # too few to matter (most bodies)
    brackets = _STRING.sub(b"", utf8).translate(_ONE_KIND, delete=_NOT_BRACKET)
    for _ in range(MAX_DEPTH):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)


def _refuse_lone_surrogates(data: dict[str, Any]) -> None:
    """A string or key holding half a surrogate pair (``\\ud800``): no text can carry it."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(exc.object[exc.start])
        raise InvalidRequest(
            f"the request body holds a lone surrogate (\\u{code:04x}) in a string: "
            "not a character, and no text can carry it"
        ) from None
