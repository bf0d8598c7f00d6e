"""Cutting a completion's reply, as it streams, to what belongs at the cursor.

A model goes on past the block it was asked to finish, wraps code in markdown fences, and
writes again the line that already follows the cursor. ``Trimmer`` sees the reply chunk by
chunk and passes on only what is safe to show as ghost text now; it holds back the little
it cannot judge yet (a line's indentation before its first character, a possible fence, a
line that may turn out to repeat the suffix) and says ``done`` when the rest is to be cut:

* a blank line, or a line indented less than the block (``stop_at: block``, the default);
* the end of the first line (``stop_at: line``, and always when text follows the cursor
  on its line: the completion then only fills that line);
* a closing fence; a line equal to the next line of the suffix; the text that follows the
  cursor on its line, at the end of the reply's first line (dropped, then done).

An opening fence line is dropped, and so is the cursor line's own text if the reply starts
by repeating it, or its indentation when the cursor stands after blanks (instruction models
write whole lines). No line break is passed on until the line
after it is: a suggestion never ends with one.
"""

from __future__ import annotations

from ..types import CompletionInput

__all__ = ["Trimmer", "trim"]

_FENCE = "```"


class Trimmer:
    def __init__(self, completion: CompletionInput) -> None:
        cursor_line = completion.prefix.rsplit("\n", 1)[-1]
        self._cursor_text = cursor_line.lstrip()  # trailing blanks count: "x = " + "x = 3"
        self._cursor_blank = cursor_line != "" and not cursor_line.strip()
        self._floor = _indent(cursor_line) if self._cursor_text.strip() else len(cursor_line)
        following = completion.suffix.split("\n")
        self._tail = following[0].strip()  # what follows the cursor on its line
        self._next = next((line.strip() for line in following[1:] if line.strip()), "")
        self._stop_at = completion.stop_at
        self._line = ""  # the reply's current line so far
        self._sent = 0  # how much of it was passed on
        self._row = 0  # 0: the cursor's own line
        self._skip: int | None = None  # row 0: the length of a repeated cursor text, once known
        self._floor_set = False
        self._owed_newline = False
        self.done = False

    def feed(self, text: str) -> str:
        """Take the next chunk of the reply; return what may be shown now."""
        out: list[str] = []
        for char in text:
            if self.done:
                break
            if char == "\n":
                out.append(self._end_line(final=False))
            else:
                self._line += char
        if not self.done:
            out.append(self._partial())
        return "".join(out)

    def finish(self) -> str:
        """The reply ended: what is left to show of its last line."""
        if self.done:
            return ""
        text = self._end_line(final=True)
        self.done = True
        return text

    # -- the cursor's own line -------------------------------------------------------------

    def _first_body(self) -> str | None:
        """Row 0 without a repeated cursor text; None while that is not known yet."""
        if self._skip is None:
            stripped = self._line.lstrip()
            typed = self._cursor_text.strip() != ""
            if not stripped or (typed and self._cursor_text.startswith(stripped)):
                return None  # blanks so far, or it may yet turn out to repeat the cursor line
            lead = len(self._line) - len(stripped)
            if typed and stripped.startswith(self._cursor_text):
                self._skip = lead + len(self._cursor_text)
            else:  # the cursor already stands at its indentation: the reply's own goes
                self._skip = lead if self._cursor_blank else 0
        return self._line[self._skip :]

    def _first_partial(self) -> str:
        stripped = self._line.lstrip()
        if _FENCE.startswith(stripped) or stripped.startswith(_FENCE):
            return ""  # an opening fence, maybe: the whole line goes if it is one
        body = self._first_body()
        if body is None:
            return ""
        held = 0
        if self._tail:  # what could yet be the text after the cursor, repeated
            kept = body.rstrip()
            held = len(body) - len(kept) + _held_for(kept, self._tail)
        return self._send(body, len(body) - held)

    def _first_end(self, final: bool) -> str:
        stripped = self._line.strip()
        if stripped.startswith(_FENCE):
            self._line, self._sent, self._skip = "", 0, None  # drop the fence, stay on row 0
            self.done = final
            return ""
        body = self._first_body() or ""
        if self._tail and body.rstrip().endswith(self._tail):
            body = body.rstrip()[: -len(self._tail)]
            self.done = True
        out = self._send(body, len(body))
        if self._tail or self._stop_at == "line":
            self.done = True
        self._next_row()
        return out

    # -- the lines after it ----------------------------------------------------------------

    def _later_partial(self) -> str:
        stripped = self._line.strip()
        if not stripped or self._cut(stripped):
            return ""
        if stripped.startswith(_FENCE):
            self.done = True  # a closing fence
            return ""
        if _FENCE.startswith(stripped) or (self._next and self._next.startswith(stripped)):
            return ""  # a fence or a repeat of the suffix, maybe: wait for more
        return self._send(self._line, len(self._line))

    def _later_end(self, final: bool) -> str:
        stripped = self._line.strip()
        if not stripped:
            if final:
                return ""
            if self._stop_at == "block":
                self.done = True
                return ""
            out = "\n" if self._owed_newline else ""
            self._owed_newline = True
            self._line, self._sent = "", 0
            return out
        if self._cut(stripped) or stripped == self._next or stripped.startswith(_FENCE):
            self.done = True
            return ""
        out = self._send(self._line, len(self._line))
        self._next_row()
        return out

    def _cut(self, stripped: str) -> bool:
        """Whether a later line (known to have text) ends the block; sets the block's
        indentation from its first line."""
        if self._stop_at != "block":
            return False
        indent = _indent(self._line)
        if indent < self._floor:
            self.done = True
            return True
        if not self._floor_set:
            self._floor, self._floor_set = indent, True
        return False

    # -- shared ----------------------------------------------------------------------------

    def _partial(self) -> str:
        return self._first_partial() if self._row == 0 else self._later_partial()

    def _end_line(self, final: bool) -> str:
        return self._first_end(final) if self._row == 0 else self._later_end(final)

    def _send(self, text: str, upto: int) -> str:
        """Pass on ``text[sent:upto]``, after the line break owed to the line before."""
        if upto <= self._sent:
            return ""
        out = ("\n" if self._owed_newline else "") + text[self._sent : upto]
        self._owed_newline = False
        self._sent = upto
        return out

    def _next_row(self) -> None:
        self._owed_newline = True
        self._row += 1
        self._line, self._sent = "", 0


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _held_for(body: str, tail: str) -> int:
    """How many characters at the end of ``body`` could be the start of ``tail``."""
    for size in range(min(len(body), len(tail)), 0, -1):
        if tail.startswith(body[-size:]):
            return size
    return 0


def trim(completion: CompletionInput, reply: str) -> str:
    """A whole reply, trimmed as it would have been while streaming."""
    trimmer = Trimmer(completion)
    return trimmer.feed(reply) + trimmer.finish()
