"""Trimming a completion's reply to what belongs at the cursor, whole and as it streams."""

from __future__ import annotations

import pytest

from jupyter_llm.completion import Trimmer, trim
from jupyter_llm.types import CompletionInput


def at(prefix: str, suffix: str = "", stop_at: str = "block") -> CompletionInput:
    return CompletionInput(prefix=prefix, suffix=suffix, language="python", stop_at=stop_at)


def streamed(completion: CompletionInput, reply: str, size: int = 1) -> str:
    trimmer = Trimmer(completion)
    shown = "".join(trimmer.feed(reply[i : i + size]) for i in range(0, len(reply), size))
    return shown + trimmer.finish()


CASES = [
    # (prefix, suffix, reply, expected)
    ("x = ", "", "41 + 1", "41 + 1"),
    ("def f(x):\n    ", "", "return x + 1\n\nprint(f(1))", "return x + 1"),
    ("def f(x):\n    ", "", "y = x\n    return y\nprint(f(1))", "y = x\n    return y"),
    ("for i in range(3):", "", "\n    print(i)\nprint('done')", "\n    print(i)"),
    ("x = 1", "", "\ny = 2\nz = 3\n\nw", "\ny = 2\nz = 3"),
    ("print(", ")", '"hi")', '"hi"'),
    ("print(", ")", '"hi")\nmore()', '"hi"'),
    ("print(", ")\nnext()", '"hi"', '"hi"'),
    ("x = ", "", "```python\nx = 3\n```\nExplanation", "3"),
    ("x = ", "", "```\n5\n```", "5"),
    ("def f(x):\n    ", "\n    return y", "y = 2 * x\n    return y\n", "y = 2 * x"),
    ("import num", "", "import numpy as np", "py as np"),
    ("def add(a, b):", "", "def add(a, b):\n    return a + b", "\n    return a + b"),
    ("def f():\n    ", "", "    return 1\n    \n", "return 1"),
    ("def f():\n    ", "", "```python\n    return 1\n```", "return 1"),
    ("", "", "  x = 1", "  x = 1"),
    ("x = ", "", "", ""),
    ("x = ", "", "1\n", "1"),
]


@pytest.mark.parametrize(("prefix", "suffix", "reply", "expected"), CASES)
def test_a_whole_reply_is_cut_to_the_block(prefix, suffix, reply, expected):
    assert trim(at(prefix, suffix), reply) == expected


@pytest.mark.parametrize("size", [1, 2, 3, 7])
@pytest.mark.parametrize(("prefix", "suffix", "reply", "expected"), CASES)
def test_streaming_shows_the_same_text_in_any_chunks(prefix, suffix, reply, expected, size):
    assert streamed(at(prefix, suffix), reply, size) == expected


def test_text_is_shown_before_the_line_ends():
    trimmer = Trimmer(at("total = "))
    assert trimmer.feed("sum") == "sum"
    assert trimmer.feed("(xs)") == "(xs)"
    assert not trimmer.done


def test_a_line_break_waits_for_the_line_after_it():
    trimmer = Trimmer(at("x = 1"))
    assert trimmer.feed("\n") == ""
    assert trimmer.feed("    ") == ""  # its indentation decides nothing yet
    assert trimmer.feed("\n") == ""
    assert trimmer.done  # a blank line ends the block
    assert trimmer.finish() == ""


def test_a_dedent_ends_the_block_at_its_first_character():
    trimmer = Trimmer(at("def f():\n    "))
    assert trimmer.feed("return 1\n") == "return 1"
    assert trimmer.feed("p") == ""
    assert trimmer.done


def test_stop_at_line_ends_with_the_first_line():
    assert trim(at("x = ", stop_at="line"), "1\ny = 2") == "1"


def test_stop_at_none_keeps_blank_lines_and_dedents():
    reply = "return 1\n\nprint(f())"
    assert trim(at("def f():\n    ", stop_at="none"), reply) == reply


def test_a_line_that_may_repeat_the_suffix_is_held_until_it_differs():
    trimmer = Trimmer(at("a = 1", "\nb = 2"))
    assert trimmer.feed("\nb = ") == ""
    assert trimmer.feed("3") == "\nb = 3"
