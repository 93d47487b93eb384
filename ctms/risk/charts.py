"""The KRI trend as an inline SVG line chart rendered on the server (no JavaScript).

One line per site; days without a value break the line. Each line's end carries the site
number, so the chart does not depend on colour alone; the page puts the same figures in a
table beside it.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from markupsafe import Markup, escape

from ctms.risk.trend import Trend

W, H, LEFT, RIGHT, TOP, BOTTOM = 640, 240, 44, 56, 14, 28
COLOURS = ("#2f6f9f", "#b5452d", "#3c8a3c", "#8a5cb5", "#b58a1f", "#4b4b4b", "#1f8a8a",
           "#b52d7a")


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else str(value)


def trend_chart(t: Trend) -> Markup:
    """Lines of each site's value per day; the y axis starts at 0."""
    title = f"{t.label} per site, {t.days[0].isoformat()} to {t.days[-1].isoformat()}"
    tid = "trend-" + hashlib.sha1(title.encode()).hexdigest()[:8]
    top = max([v for s in t.series for v in s.values if v is not None], default=Decimal(0))
    top = max(top, Decimal(1))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    step = plot_w / max(1, len(t.days) - 1)

    def x(n: int) -> float:
        return round(LEFT + n * step, 1)

    def y(v: Decimal) -> float:
        return round(TOP + plot_h - float(v / top) * plot_h, 1)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" '
             f'class="chart" aria-labelledby="{tid}" width="100%" style="max-width:{W}px" '
             f'data-testid="kri-trend">'
             f'<title id="{tid}">{escape(title)}</title>'
             f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
             'stroke="#888"/>'
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#888"/>'
             f'<text x="{LEFT - 6}" y="{TOP + 4}" font-size="11" text-anchor="end">'
             f'{escape(_fmt(top))}</text>'
             f'<text x="{LEFT - 6}" y="{TOP + plot_h}" font-size="11" text-anchor="end">0</text>'
             f'<text x="{LEFT}" y="{H - 8}" font-size="11">{t.days[0].isoformat()}</text>'
             f'<text x="{LEFT + plot_w}" y="{H - 8}" font-size="11" text-anchor="end">'
             f'{t.days[-1].isoformat()}</text>']
    for i, s in enumerate(t.series):
        colour = COLOURS[i % len(COLOURS)]
        runs: list[list[tuple[float, float]]] = [[]]
        for n, v in enumerate(s.values):
            if v is None:
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append((x(n), y(v)))
        label = escape(s.site.number)
        parts.append(f'<g data-site="{label}"><title>Site {label}</title>')
        for run in runs:
            if len(run) == 1:
                parts.append(f'<circle cx="{run[0][0]}" cy="{run[0][1]}" r="2.5" '
                             f'fill="{colour}"/>')
            elif run:
                points = " ".join(f"{px},{py}" for px, py in run)
                parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                             'stroke-width="2"/>')
        last = next(((n, v) for n, v in reversed(list(enumerate(s.values))) if v is not None),
                    None)
        if last is not None:
            parts.append(f'<text x="{x(last[0]) + 4}" y="{y(last[1]) + 4}" font-size="11" '
                         f'fill="{colour}">{label}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))
