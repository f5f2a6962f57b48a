"""Charts drawn on the server as SVG: no JavaScript, no CDN, no style attributes (strict CSP).

Colours are presentation attributes (fill=) or classes styled in static/css/portal.css.
Every value is escaped; each chart has a <title> and <desc> for screen readers.
"""

from __future__ import annotations

from datetime import datetime
from itertools import count

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from audit.selectors import TimeSeries

PALETTE = ("#13628f", "#a0231b", "#1e6b3a", "#b8860b")
WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 28, 36
_ids = count(1)


def _nice_max(value: int) -> int:
    if value <= 5:
        return 5
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def _label(moment: datetime, bucket: str) -> str:
    return moment.strftime("%H:%M" if bucket == "hour" else "%d %b")


def time_chart(data: TimeSeries, *, title: str) -> SafeString:
    """Grouped bars per hour (or day), one colour per series, with a legend."""
    chart_id = f"chart-{next(_ids)}"
    n = max(1, len(data.labels))
    k = max(1, len(data.series))
    peak = _nice_max(max((max(values) if values else 0) for _, values in data.series) if data.series else 0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n
    bar = max(1.0, slot * 0.8 / k)
    totals = ", ".join(f"{name}: {sum(values)}" for name, values in data.series)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">Per {data.bucket}. Totals: {escape(totals)}.</desc>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#8a93a3"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#8a93a3"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end" font-size="11" fill="#5b6474">{peak}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end" font-size="11" fill="#5b6474">0</text>',
    ]
    for s, (name, values) in enumerate(data.series):
        colour = PALETTE[s % len(PALETTE)]
        for i, value in enumerate(values):
            if not value:
                continue
            h = plot_h * value / peak
            x = LEFT + i * slot + slot * 0.1 + s * bar
            y = TOP + plot_h - h
            when = _label(data.labels[i], data.bucket)
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(name)} {escape(when)}: {value}</title></rect>"
            )
        lx = LEFT + s * 170
        parts.append(f'<rect x="{lx}" y="6" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 14}" y="15" font-size="12" fill="#1d2433">{escape(name)} ({sum(values)})</text>')
    every = max(1, n // 12)
    for i in range(0, n, every):
        x = LEFT + i * slot + slot / 2
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="10" fill="#5b6474">'
            f"{escape(_label(data.labels[i], data.bucket))}</text>"
        )
    if data.total == 0:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" font-size="13" fill="#5b6474">'
            "No events in this range</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every value above is escaped or numeric)  # nosec B308 B703


def bar_chart(rows: list[tuple[str, int]], *, title: str) -> SafeString:
    """Horizontal bars, e.g. logins by country."""
    chart_id = f"chart-{next(_ids)}"
    row_h = 22
    height = TOP + max(1, len(rows)) * row_h + 10
    peak = max((n for _, n in rows), default=0) or 1
    plot_w = WIDTH - 120 - 60
    desc = ", ".join(f"{label}: {n}" for label, n in rows) or "none"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>',
    ]
    for i, (label, n) in enumerate(rows):
        y = TOP + i * row_h
        w = plot_w * n / peak
        parts.append(
            f'<text x="110" y="{y + 15}" text-anchor="end" font-size="12" fill="#1d2433">{escape(label)}</text>'
        )
        parts.append(f'<rect x="120" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{PALETTE[0]}"/>')
        parts.append(f'<text x="{120 + w + 6:.1f}" y="{y + 15}" font-size="12" fill="#1d2433">{n}</text>')
    if not rows:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{TOP + 14}" text-anchor="middle" font-size="13" fill="#5b6474">'
            "No logins in this range</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every value above is escaped or numeric)  # nosec B308 B703
