"""Inline SVG bar charts rendered on the server (no JavaScript): each bar may be a link."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from markupsafe import Markup, escape

W, BAR, GAP, LABEL = 560, 18, 6, 150


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    text: str  # shown beside the bar, e.g. "40 % (2 of 5)"
    href: str | None = None


def bar_chart(title: str, bars: list[Bar], *, maximum: int = 100) -> Markup:
    """Horizontal bars, one per row; a bar with ``href`` is a keyboard-reachable link."""
    tid = "chart-" + hashlib.sha1(title.encode()).hexdigest()[:8]
    height = max(1, len(bars)) * (BAR + GAP) + GAP
    span = W - LABEL - 130
    top = max(maximum, max((b.value for b in bars), default=0), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" role="img" '
             f'class="chart" aria-labelledby="{tid}" width="100%" style="max-width:{W}px">'
             f'<title id="{tid}">{escape(title)}</title>']
    for i, b in enumerate(bars):
        y = GAP + i * (BAR + GAP)
        width = round(span * b.value / top, 1)
        label = escape(b.label)
        bar = (f'<rect x="{LABEL}" y="{y}" width="{max(width, 1)}" height="{BAR}" '
               f'fill="#2f6f9f"><title>{label}: {escape(b.text)}</title></rect>'
               f'<text x="{LABEL + width + 6}" y="{y + BAR - 5}" font-size="12">'
               f'{escape(b.text)}</text>')
        text = (f'<text x="{LABEL - 6}" y="{y + BAR - 5}" font-size="12" '
                f'text-anchor="end">{label}</text>')
        if b.href:
            parts.append(f'<a href="{escape(b.href)}" data-testid="bar-{label}" '
                         f'aria-label="{label}: {escape(b.text)}">{text}{bar}</a>')
        else:
            parts.append(text + bar)
    parts.append("</svg>")
    return Markup("".join(parts))
