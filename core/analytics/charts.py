"""Server-side SVG bar charts for the insights page: no script, no library, nothing fetched at run time.

Each chart is a plain ``<svg>`` string with presentation attributes only (no inline
styles, which the desk's Content-Security-Policy forbids) and a ``<title>`` per bar, so a
screen reader and a hover both tell the value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 40
MAX_AXIS_LABELS = 10
COLOURS = ("#1f6feb", "#d97706", "#16a34a", "#b91c1c", "#7c3aed", "#0891b2", "#6b7280")


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float | None]
    colour: str = COLOURS[0]


def _tick(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else f"{int(value)}"


def bar_chart(chart_id: str, title: str, labels: Sequence[str], series: Sequence[Series], *, stacked: bool = False,
              y_max: float | None = None, unit: str = "") -> str:
    """Bars per label: side by side, or ``stacked``; ``y_max`` fixes the scale (1.0 for rates)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    if stacked:
        tops = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    else:
        tops = [max((s.values[i] or 0 for s in series), default=0) for i in range(len(labels))]
    top = y_max if y_max is not None else max([*tops, 0.0]) or 1.0
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" class="chart" role="img" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" aria-label="{escape(title)}">'),
             f"<title>{escape(title)}</title>"]
    for step in range(5):
        value = top * step / 4
        y = TOP + plot_h - plot_h * step / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#4b5563">'
                     f"{escape(_tick(value))}{escape(unit)}</text>")
    slot = plot_w / max(1, len(labels))
    bar_w = slot * 0.7 / (1 if stacked else max(1, len(series)))
    every = max(1, math.ceil(len(labels) / MAX_AXIS_LABELS))  # a label per bar while they fit
    for i, label in enumerate(labels):
        x0 = LEFT + slot * i + slot * 0.15
        base = 0.0
        for j, s in enumerate(series):
            found = s.values[i]
            if found is None:
                continue
            value = float(found)
            h = plot_h * (value / top) if top else 0
            x = x0 if stacked else x0 + bar_w * j
            y = TOP + plot_h - h - (plot_h * base / top if stacked and top else 0)
            parts.append(f'<rect class="bar" data-series="{escape(s.name)}" data-label="{escape(label)}" '
                         f'data-value="{value}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{s.colour}"><title>{escape(label)} · {escape(s.name)}: '
                         f"{escape(_tick(value))}{escape(unit)}</title></rect>")
            if stacked:
                base += value
        if i % every == 0 or i == len(labels) - 1:
            parts.append(f'<text x="{x0 + slot * 0.35:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                         f'font-size="11" fill="#4b5563">{escape(label)}</text>')
    for j, s in enumerate(series):
        x = LEFT + j * 130
        parts.append(f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" fill="{s.colour}"/>'
                     f'<text x="{x + 14}" y="{HEIGHT - 5}" font-size="11" fill="#1c1e21">{escape(s.name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
