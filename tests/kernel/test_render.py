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
    assert answer_bundle("<b>x</b>", "html", final=False) == ({"text/html": "<b>x</b>"}, None)
    assert answer_bundle("<b>x</b>", "html", final=True)[0] == {
        "text/html": "<b>x</b>",
        "text/plain": "<b>x</b>",
    }


HOSTILE = (
    '<img src="x" onerror="alert(1)"><script>alert(2)</script>'
    '<a href="javascript:alert(3)">link</a><iframe src="https://evil"></iframe>'
    '<p onclick="alert(4)" style="background:url(x)">kept</p><svg onload="alert(5)"></svg>'
)


@pytest.mark.parametrize("final", [False, True])
def test_html_answers_are_sanitized_while_streaming_and_at_the_end(final: bool) -> None:
    data, _ = answer_bundle(HOSTILE, "html", final=final)
    html = data["text/html"].lower()
    for danger in ("<script", "onerror", "onclick", "onload", "javascript:", "<iframe", "<svg"):
        assert danger not in html, danger
    assert "<p>kept</p>" in html and "link</a>" in html
    if final:
        assert data["text/plain"] == HOSTILE  # the record of what the model said is exact


def test_raw_html_in_markdown_renders_as_text() -> None:
    text = "Hi <script>alert(1)</script> & <img src=x onerror=alert(2)> **bold**"
    data, _ = answer_bundle(text, "markdown", final=True)
    assert data["text/markdown"] == (
        "Hi &lt;script>alert(1)&lt;/script> &amp; &lt;img src=x onerror=alert(2)> **bold**"
    )
    assert data["text/plain"] == text
    streaming, _ = answer_bundle(text, "markdown", final=False)
    assert "<script" not in streaming["text/markdown"]


def test_html_inside_code_stays_verbatim_in_markdown() -> None:
    text = "Use `<div>` like this:\n```html\n<div class='a'>&amp;</div>\n```\nnot <div>."
    data, _ = answer_bundle(text, "markdown", final=True)
    assert data["text/markdown"] == (
        "Use `<div>` like this:\n```html\n<div class='a'>&amp;</div>\n```\nnot &lt;div>."
    )
    open_block = "See:\n```html\n<b>"  # still streaming: the open block is code too
    data, _ = answer_bundle(open_block, "markdown", final=False)
    assert data["text/markdown"] == open_block + "\n```"
    data, _ = answer_bundle("<b>x</b>", "code", final=True)
    assert data["text/markdown"] == "```python\n<b>x</b>\n```"
    data, _ = answer_bundle("Note <b>x</b>\n```python\nx = 1 < 2\n```", "code", final=True)
    assert data["text/markdown"] == "Note &lt;b>x&lt;/b>\n```python\nx = 1 < 2\n```"
