"""Inline SVG of enrollment: actual (steps) vs target (line), forecast with its band."""

from __future__ import annotations

import hashlib
from datetime import date

from markupsafe import Markup, escape

from ctms.enrollment.forecast import Forecast, cumulative

W, H, PAD = 560, 220, 36


def enrollment_svg(*, title: str, enrolled_dates: list[date], target: int | None,
                   start: date, end: date | None, today: date,
                   fc: Forecast | None = None) -> Markup:
    last = max([today, end or today] + ([fc.late] if fc and fc.late else []))
    span = max((last - start).days, 1)
    top = max([target or 0, len(enrolled_dates), 1])

    def x(d: date) -> float:
        return round(PAD + (W - 2 * PAD) * (d - start).days / span, 1)

    def y(n: float) -> float:
        return round(H - PAD - (H - 2 * PAD) * n / top, 1)

    tid = "chart-" + hashlib.sha1(title.encode()).hexdigest()[:8]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" '
             f'class="chart" aria-labelledby="{tid}">'
             f'<title id="{tid}">{escape(title)}</title>',
             f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="#555"/>',
             f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="#555"/>',
             f'<text x="{PAD}" y="{H - 8}" font-size="11">{start.isoformat()}</text>',
             f'<text x="{W - PAD}" y="{H - 8}" font-size="11" text-anchor="end">'
             f'{last.isoformat()}</text>',
             f'<text x="4" y="{PAD}" font-size="11">{top}</text>']
    if fc and fc.early and fc.late and not fc.reached:
        parts.append(f'<rect x="{x(fc.early)}" y="{PAD}" width="{max(x(fc.late) - x(fc.early), 1)}"'
                     f' height="{H - 2 * PAD}" fill="#f0c36d" opacity="0.35">'
                     f'<title>Forecast band {fc.early.isoformat()} – {fc.late.isoformat()}</title>'
                     '</rect>')
    if target:
        parts.append(f'<line x1="{x(start)}" y1="{y(0)}" x2="{x(end or last)}" y2="{y(target)}" '
                     'stroke="#888" stroke-dasharray="6 4"><title>Target</title></line>')
    points = [(start, 0)] + cumulative(enrolled_dates)
    path, prev = [f"M{x(start)},{y(0)}"], 0
    for d, n in points[1:]:
        path.append(f"L{x(d)},{y(prev)} L{x(d)},{y(n)}")
        prev = n
    path.append(f"L{x(today)},{y(prev)}")
    parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="#1f5fa8" stroke-width="2">'
                 f'<title>Enrolled: {len(enrolled_dates)}</title></path>')
    if fc and fc.expected and not fc.reached:
        parts.append(f'<line x1="{x(today)}" y1="{y(prev)}" x2="{x(fc.expected)}" '
                     f'y2="{y(fc.target)}" stroke="#c0392b" stroke-dasharray="3 3">'
                     f'<title>Forecast: target reached about {fc.expected.isoformat()}</title>'
                     '</line>')
    parts.append("</svg>")
    return Markup("".join(parts))
