"""Answers as HTML: markdown and highlighted code, and nothing in an answer that can run."""

from __future__ import annotations

import re

import pytest

from jupyter_llm.kernel.chat.markdown import pygments_css, render_markdown

ATTACKS = [
    "<script>window.pwned = 1</script>",
    "<img src=x onerror=window.pwned=1>",
    '<a href="javascript:window.pwned=1">x</a>',
    "[click](javascript:window.pwned=1)",
    "[click](vbscript:msgbox)",
    "<iframe src='https://example.com'></iframe>",
    "<svg onload=window.pwned=1>",
    "<style>body{display:none}</style>",
    '<div style="background:url(javascript:x)" onclick="x()">',
]
ALLOWED_TAGS = {"p", "a", "code", "pre", "span", "em", "strong", "ul", "ol", "li", "br"}


@pytest.mark.parametrize("attack", ATTACKS)
def test_raw_html_and_script_urls_arrive_as_text(attack: str) -> None:
    for text in (attack, f"before\n\n{attack}\n\nafter", f"- item {attack}"):
        html = render_markdown(text)
        tags = set(re.findall(r"<\s*([a-zA-Z0-9]+)", html))
        assert tags <= ALLOWED_TAGS, html
        assert "javascript:" not in re.sub(r">[^<]*<", "><", html)  # only in text, if at all
        assert not re.search(r"<[^>]*\son\w+\s*=", html), html
        assert "vbscript:" not in "".join(re.findall(r'href="[^"]*"', html))


def test_code_is_highlighted_with_classes_and_escaped() -> None:
    html = render_markdown("```python\nif x < 1:\n    print('<b>')\n```")
    assert html.startswith('<pre><code class="language-python">')
    assert '<span class="k">if</span>' in html
    assert "&lt;" in html and "<b>" not in html


def test_an_unknown_language_is_plain_escaped_code() -> None:
    html = render_markdown("```nosuchlang\n<b>x</b>\n```")
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<span" not in html


def test_images_become_links_that_open_in_a_new_tab() -> None:
    html = render_markdown("![a cat](https://example.com/cat.png) and [docs](https://x.org)")
    assert "<img" not in html
    assert (
        '<a href="https://example.com/cat.png" target="_blank" '
        'rel="noopener noreferrer nofollow">a cat</a>' in html
    )
    assert 'href="https://x.org" target="_blank"' in html


def test_a_streaming_code_block_renders_as_code_before_its_fence_closes() -> None:
    assert render_markdown("```python\nx = 1", final=False).startswith("<pre><code")
    assert render_markdown("**bold** and a table\n\n|a|b|\n|-|-|\n|1|2|").count("<td>") == 2


def test_the_code_styles_cover_light_and_dark_themes() -> None:
    css = pygments_css(".scope")
    assert ".scope pre code .k" in css
    assert 'body[data-jp-theme-light="false"] .scope pre code .k' in css
