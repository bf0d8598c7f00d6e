"""The checks that models.yaml, requests and the HTTP routes share.

* ``is_int`` / ``is_number``: what counts as an integer and as a number (never a bool;
  a float must be finite; an int of any size is compared exactly, never converted, so a
  400-digit integer is refused for its size instead of overflowing into a 500).
* ``Range``: which numbers a parameter accepts, and how to say so in an error.
  ``SAMPLING`` holds the range of every numeric sampling parameter; ``SamplingParams``
  checks against it, and ``models.yaml`` checks a model's defaults against the same entries.
  To tighten a parameter (an engine limit, say), change or add its entry here.
* ``show``: a value as an error message repeats it (short, never 400 digits).
* ``package_resource``: the one reading of ``package:resource`` (a file inside an installed
  package, as the default model's ``gguf`` source names it), and ``hub_file`` the one
  reading of ``owner/repo:file`` (a file on the Hugging Face Hub); neither takes the other.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import InvalidRequest

__all__ = [
    "SAMPLING",
    "Range",
    "check_range",
    "hub_file",
    "is_int",
    "is_number",
    "package_resource",
    "show",
]


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    # Ints skip isfinite: converting a huge int to float would raise OverflowError.
    return is_int(value) or (isinstance(value, float) and math.isfinite(value))


@dataclass(frozen=True, slots=True)
class Range:
    """The numbers (or integers) from ``low`` to ``high``; ``None`` leaves a side open."""

    low: float | None = None
    high: float | None = None
    integer: bool = False
    low_open: bool = False  # ``low`` itself is refused
    note: str = ""  # said after the range: "(0 turns it off)"

    def accepts(self, value: object) -> bool:
        if not (is_int(value) if self.integer else is_number(value)):
            return False
        assert isinstance(value, int | float)  # for the type checker: is_number said so
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    @property
    def expect(self) -> str:
        """What to write after "expected": ``an integer from 0 to 20``."""
        noun = "an integer" if self.integer else "a number"
        low, high = _number_text(self.low), _number_text(self.high)
        if self.low is not None and self.high is not None:
            text = f"{noun} in ({low}, {high}]" if self.low_open else f"{noun} from {low} to {high}"
        elif self.low is not None:
            text = f"{noun} above {low}" if self.low_open else f"{noun} of at least {low}"
        elif self.high is not None:
            text = f"{noun} of at most {high}"
        else:
            text = noun
        return f"{text} {self.note}" if self.note else text


def check_range(value: object, accepted: Range, param: str) -> None:
    """Raise ``InvalidRequest`` naming ``param`` unless ``accepted`` takes ``value``."""
    if not accepted.accepts(value):
        raise InvalidRequest(f"{param}: expected {accepted.expect}, got {show(value)}", param)


#: The numeric sampling parameters and what each accepts.
SAMPLING: Mapping[str, Range] = {
    # No model has a context of 2**31 tokens; the bound keeps a 400-digit integer out of
    # the arithmetic and the messages that follow.
    "max_tokens": Range(1, 2**31 - 1, integer=True),
    "temperature": Range(0, 2),
    "top_p": Range(0, 1, low_open=True),
    "top_k": Range(0, integer=True, note="(0 turns it off)"),
    "min_p": Range(0, 1),
    "presence_penalty": Range(-2, 2),
    "frequency_penalty": Range(-2, 2),
    "repetition_penalty": Range(0, low_open=True),
    "seed": Range(-(2**63), 2**63 - 1, integer=True),  # what torch's generators take
    "top_logprobs": Range(0, 20, integer=True),
}


def show(value: object) -> str:
    """``value`` as an error message quotes it: YAML's words for null and booleans, at most
    80 characters."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list) and not value:
        return "an empty list"
    if isinstance(value, int) and abs(value) >= 10**30:  # its repr: unreadable, or refused
        return f"an integer of about {int(abs(value).bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def package_resource(value: str) -> tuple[str, str] | None:
    """``(package, resource)`` when ``value`` reads ``package:resource``; None for a path.

    The package is a dotted module name of more than one character (``C:\\models\\x.gguf``
    is a Windows path, not package ``C``).
    """
    package, colon, resource = value.partition(":")
    if not colon or not resource or len(package) < 2:
        return None
    if not all(part.isidentifier() for part in package.split(".")):
        return None
    return package, resource


_HUB_REPO = re.compile(r"[A-Za-z0-9][\w-]*(\.[\w-]+)*/[A-Za-z0-9][\w.-]*")


def hub_file(value: str) -> tuple[str, str] | None:
    """``(repo_id, filename)`` when ``value`` reads ``owner/repo:file`` (a file on the
    Hugging Face Hub); None otherwise.

    The part before the first colon must be exactly ``owner/name``: one slash, starting
    with a letter or digit (so ``./a/b:c``, ``/a/b:c`` and ``a/b/c:d`` are paths), and the
    filename must not be empty. ``package_resource`` never accepts these (no slash there).
    """
    repo_id, colon, filename = value.partition(":")
    if not colon or not filename or not _HUB_REPO.fullmatch(repo_id):
        return None
    return repo_id, filename


def _number_text(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)
