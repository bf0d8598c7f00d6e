from __future__ import annotations

import io

from jupyter_llm.cli.progress import ProgressBar
from jupyter_llm.sources.transfer import Transfer


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_is_redrawn_in_place():
    out = Terminal()
    bar = ProgressBar("org/model", out)
    bar(Transfer(0, 2_000_000, 0.0))
    bar(Transfer(1_000_000, 2_000_000, 500_000.0))
    bar.close()
    frames = out.getvalue().split("\r")[1:]
    assert frames[0].startswith("org/model   0%  0 B of 2.0 MB [....")
    assert frames[1].startswith("org/model  50%  1.0 MB of 2.0 MB, 500.0 kB/s [####")
    assert out.getvalue().endswith("\n")


def test_elsewhere_it_writes_a_line_now_and_then():
    out = io.StringIO()
    bar = ProgressBar("m", out)
    for done in range(0, 101, 10):
        bar(Transfer(done, 100, 10.0))
    bar.close()
    assert out.getvalue().splitlines() == [
        "m   0%  0 B of 100 B, 10 B/s",
        "m 100%  100 B of 100 B, 10 B/s",
    ]
