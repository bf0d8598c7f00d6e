"""A line chart of tok/s against concurrency, as an SVG file (no plotting library needed).

    lines = {"jupyter_llm, float32": {1: 21.0, 8: 81.0, 16: 131.0}, "vLLM, float32": {...}}
    write_svg(Path("docs/benchmarks/versus_vllm.svg"), "SmolLM2-135M on AMD EPYC", lines)

The benchmarks that compare engines write one, so docs/benchmarks.md shows the latest run.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

__all__ = ["write_svg"]

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")
_W, _H = 640, 400
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 230, 40, 50  # margins: the legend sits on the right


def write_svg(path: Path, title: str, lines: Mapping[str, Mapping[int, float]]) -> Path:
    """Draw each named series (concurrency -> tok/s) on shared axes and write ``path``."""
    series = {name: dict(sorted(points.items())) for name, points in lines.items() if points}
    xs = sorted({x for points in series.values() for x in points}) or [1]
    top = max((y for points in series.values() for y in points.values()), default=1.0)
    top = _nice_ceiling(top)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def px(x: int) -> float:
        return _LEFT + (xs.index(x) / max(len(xs) - 1, 1)) * plot_w

    def py(y: float) -> float:
        return _TOP + plot_h - (y / top) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
        f'<text x="{_W / 2}" y="20" text-anchor="middle" font-size="14">'
        f"{html.escape(title)}</text>",
    ]
    for i in range(5):  # horizontal grid and the y axis labels
        y = top * i / 4
        parts.append(
            f'<line x1="{_LEFT}" y1="{py(y):.1f}" x2="{_LEFT + plot_w}" y2="{py(y):.1f}" '
            'stroke="#ddd"/>'
        )
        parts.append(f'<text x="{_LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    for x in xs:
        parts.append(
            f'<text x="{px(x):.1f}" y="{_TOP + plot_h + 18}" text-anchor="middle">{x}</text>'
        )
    parts.append(
        f'<text x="{_LEFT + plot_w / 2}" y="{_H - 10}" text-anchor="middle">'
        "concurrent streams</text>"
    )
    parts.append(
        f'<text x="16" y="{_TOP + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {_TOP + plot_h / 2})">tok/s</text>'
    )
    for n, (name, points) in enumerate(series.items()):
        colour = _COLOURS[n % len(_COLOURS)]
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points.items())
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        parts.extend(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>'
            for x, y in points.items()
        )
        legend_y = _TOP + 10 + n * 18
        parts.append(
            f'<line x1="{_W - _RIGHT + 15}" y1="{legend_y}" x2="{_W - _RIGHT + 35}" '
            f'y2="{legend_y}" stroke="{colour}" stroke-width="2"/>'
        )
        parts.append(f'<text x="{_W - _RIGHT + 40}" y="{legend_y + 4}">{html.escape(name)}</text>')
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")
    return path


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above ``value``."""
    power = 1.0
    while power * 10 < value:
        power *= 10
    while power > value and power > 1e-9:
        power /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return value
