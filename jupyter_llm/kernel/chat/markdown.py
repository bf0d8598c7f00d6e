"""An answer's text as HTML the chat can show: markdown, highlighted code, nothing that runs.

markdown-it-py (CommonMark, tables, strikethrough) with raw HTML turned off, so an answer's
``<script>`` or ``<img onerror=...>`` arrives as text; its link check refuses
``javascript:``, ``vbscript:``, ``file:`` and most ``data:`` URLs. Two changes to the
defaults, both for what a model's answer may carry:

* no images: ``![alt](url)`` becomes a link, so an answer cannot make the browser fetch a
  URL of its choosing just by being shown (a known way to leak a chat's contents);
* links open in a new tab, without an opener, instead of navigating JupyterLab away.

The HTML then goes through nh3 (a whitelist of the tags markdown makes, ``class`` for the
highlighting, ``href`` with http(s)/mailto only): should a markdown-it-py release ever let
something through, it still cannot run.

Code blocks are highlighted by Pygments with CSS classes (``pygments_css`` styles them,
light and dark). While an answer streams, the code block it is still writing shows as
plain code (closed, so it renders as code at once) and is highlighted when it is complete:
highlighting a long block takes tens of milliseconds, too long to repeat at every repaint;
finished blocks are highlighted once (cached).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

__all__ = ["pygments_css", "render_markdown"]

_FORMATTER = HtmlFormatter(nowrap=True)
_TAGS = {"a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6"}
_TAGS |= {"hr", "li", "ol", "p", "pre", "s", "span", "strong", "ul"}
_TAGS |= {"table", "thead", "tbody", "tr", "th", "td"}
_ATTRIBUTES = {"*": {"class"}, "a": {"href", "title", "target"}, "ol": {"start"}}
_ATTRIBUTES |= {"th": {"style"}, "td": {"style"}}  # column alignment
_FENCE = re.compile(r"^[ \t]*(?:```|~~~)", re.MULTILINE)


def render_markdown(text: str, *, final: bool = True) -> str:
    """Safe HTML for ``text``; a streaming (not ``final``) text gets its open fence closed."""
    fences = list(_FENCE.finditer(text))
    if final or len(fences) % 2 == 0:
        html = _parser(True).render(text)
    else:  # a code block is still being written
        start = fences[-1].start()
        html = _parser(True).render(text[:start]) + _parser(False).render(text[start:] + "\n```")
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        filter_style_properties={"text-align"},
    )


@functools.cache
def _parser(highlighting: bool) -> MarkdownIt:
    options = {"html": False, "highlight": _highlight if highlighting else None}
    md = MarkdownIt("commonmark", options)
    md.enable(["table", "strikethrough"]).disable("image")
    md.add_render_rule("link_open", _link_open)
    return md


def _highlight(code: str, language: str, _attrs: str) -> str:
    return _highlighted(code, language)


@functools.lru_cache(maxsize=256)
def _highlighted(code: str, language: str) -> str:
    """Highlighted code (HTML-escaped by Pygments), or "" for markdown-it's own escaping."""
    if not language:
        return ""
    try:
        lexer = get_lexer_by_name(language.split()[0])
    except ClassNotFound:
        return ""
    return str(highlight(code, lexer, _FORMATTER))


def _link_open(
    self: RendererHTML, tokens: list[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    tokens[idx].attrSet("target", "_blank")  # nh3 adds rel="noopener noreferrer nofollow"
    return self.renderToken(tokens, idx, options, env)


@functools.cache
def pygments_css(scope: str) -> str:
    """Styles for highlighted code under ``scope``: a light theme, and a dark one where
    JupyterLab's theme is dark (``body[data-jp-theme-light="false"]``)."""
    light = HtmlFormatter(style="default").get_style_defs(  # type: ignore[no-untyped-call]
        f"{scope} pre code"
    )
    dark = HtmlFormatter(style="monokai").get_style_defs(  # type: ignore[no-untyped-call]
        f'body[data-jp-theme-light="false"] {scope} pre code'
    )
    return f"{_without_backgrounds(light)}\n{_without_backgrounds(dark)}\n"


def _without_backgrounds(css: Any) -> str:
    """Token colours only: the block's background follows the notebook's theme."""
    return "\n".join(
        line for line in str(css).splitlines() if "background" not in line or " .hll " in line
    )
