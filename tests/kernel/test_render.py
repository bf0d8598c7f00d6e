from __future__ import annotations

import pytest

from jupyter_llm.kernel.render import answer_bundle, extract_code


def test_markdown_streams_markdown_and_ends_with_plain_text_too() -> None:
    assert answer_bundle("**hi**", "markdown", final=False) == ({"text/markdown": "**hi**"}, None)
    assert answer_bundle("**hi**", "markdown", final=True) == (
        {"text/markdown": "**hi**", "text/plain": "**hi**"},
        None,
    )


def test_an_open_code_block_is_closed_while_it_streams() -> None:
    data, _ = answer_bundle("Look:\n```python\nx = 1", "markdown", final=False)
    assert data["text/markdown"] == "Look:\n```python\nx = 1\n```"
    data, _ = answer_bundle("Look:\n```python\nx = 1", "markdown", final=True)
    assert data["text/markdown"] == "Look:\n```python\nx = 1"


@pytest.mark.parametrize(
    ("text", "value"), [("[1, 2]", [1, 2]), ('```json\n{"a": 1}\n```', {"a": 1}), ("3", 3)]
)
def test_json_is_parsed_at_the_end(text: str, value: object) -> None:
    assert answer_bundle(text, "json", final=False) == ({"text/plain": text}, None)
    assert answer_bundle(text, "json", final=True) == (
        {"application/json": value, "text/plain": text},
        None,
    )


def test_invalid_json_stays_text_with_a_note() -> None:
    data, note = answer_bundle("{oops", "json", final=True)
    assert data == {"text/plain": "{oops"}
    assert note is not None and note.startswith("the answer is not valid JSON (")


def test_code_is_shown_as_a_code_block() -> None:
    assert answer_bundle("x = 1", "code", final=True)[0] == {
        "text/markdown": "```python\nx = 1\n```",
        "text/plain": "x = 1",
    }
    fenced = "Here:\n```python\nx = 1\n```"
    assert answer_bundle(fenced, "code", final=True)[0]["text/markdown"] == fenced


def test_extract_code_takes_the_fenced_blocks() -> None:
    answer = "Try this:\n```python\ndef f():\n    return 1\n```\nthen\n~~~\nf()\n~~~\n"
    assert extract_code(answer) == "def f():\n    return 1\n\nf()"
    assert extract_code("  print(1)\n") == "print(1)"


def test_text_and_html() -> None:
    assert answer_bundle("<b>", "text", final=True) == ({"text/plain": "<b>"}, None)
    assert answer_bundle("<b>", "html", final=False) == ({"text/html": "<b>"}, None)
    assert answer_bundle("<b>", "html", final=True)[0] == {"text/html": "<b>", "text/plain": "<b>"}
