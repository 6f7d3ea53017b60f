"""Small inline-SVG charts for the HTML report: no plotting dependency, crisp at any zoom.

Every string that lands in the SVG goes through `html.escape`: labels come from taxonomies and
reviews, which are untrusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from annotator.evaluate.model import CalibrationBin

FONT = 'font-family="system-ui,sans-serif" font-size="11"'


def _svg(width: float, height: float, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _text(x: float, y: float, s: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {FONT} {extra}>{escape(s)}</text>'


def _short(s: str, n: int = 28) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def heatmap(labels: Sequence[str], matrix: Sequence[Sequence[int]], title: str, row_title: str = "review", col_title: str = "draft") -> str:
    """Confusion matrix: rows shaded by share of the row, counts in the cells."""
    k = len(labels)
    cell, left, top = 46, 200, 140
    body = [
        _text(4, 14, title, "start", 'font-weight="bold"'),
        _text(left + k * cell / 2, 34, col_title, "middle", 'font-weight="bold"'),
        _text(4, top - 8, row_title, "start", 'font-weight="bold"'),
    ]
    for j, lab in enumerate(labels):
        x = left + j * cell + cell / 2
        body.append(f'<text transform="translate({x:.1f},{top - 6}) rotate(-45)" {FONT}>{escape(_short(lab, 22))}</text>')
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        y = top + i * cell
        body.append(_text(left - 6, y + cell / 2 + 4, _short(labels[i], 30), "end"))
        for j, v in enumerate(row):
            share = v / total
            fill = f"rgba(31,119,180,{0.08 + 0.85 * share:.3f})" if v else "#f6f6f6"
            stroke = ' stroke="#333" stroke-width="1.5"' if i == j else ' stroke="#fff"'
            body.append(f'<rect x="{left + j * cell}" y="{y}" width="{cell}" height="{cell}" fill="{fill}"{stroke}/>')
            color = "#fff" if share > 0.55 else "#222"
            body.append(_text(left + j * cell + cell / 2, y + cell / 2 + 4, str(v), "middle", f'fill="{color}"'))
    return _svg(max(left + k * cell + 20, 7 * len(title)), top + k * cell + 10, body, title)


def hbars(rows: Sequence[tuple[str, float | None, float | None, float | None]], title: str, note: str = "") -> str:
    """Horizontal bars on [0, 1] with 95% interval whiskers: (label, value, low, high)."""
    left, width, bar, gap = 290, 300, 14, 6
    height = 30 + len(rows) * (bar + gap) + 20
    body = [_text(4, 16, note or title, "start", 'font-weight="bold"')]
    for t in (0, 0.5, 1):
        x = left + t * width
        body.append(f'<line x1="{x}" y1="24" x2="{x}" y2="{height - 18}" stroke="#ddd"/>')
        body.append(_text(x, height - 4, f"{t:g}", "middle"))
    for i, (label, value, lo, hi) in enumerate(rows):
        y = 28 + i * (bar + gap)
        body.append(_text(left - 6, y + bar - 3, _short(label, 46), "end"))
        if value is None:
            body.append(_text(left + 4, y + bar - 3, "undefined", "start", 'fill="#888"'))
            continue
        body.append(f'<rect x="{left}" y="{y}" width="{max(value, 0) * width:.1f}" height="{bar}" fill="#4c8bc0"/>')
        if lo is not None and hi is not None:
            body.append(f'<line x1="{left + lo * width:.1f}" y1="{y + bar / 2}" x2="{left + hi * width:.1f}" y2="{y + bar / 2}" stroke="#222" stroke-width="1.5"/>')
        body.append(_text(left + width + 6, y + bar - 3, f"{value:.2f}"))
    return _svg(left + width + 50, height, body, title)


def reliability(bins: Sequence[CalibrationBin], title: str) -> str:
    """Reliability diagram: accuracy per confidence bin against the diagonal of perfect calibration."""
    size, pad, top = 260, 40, 30
    body = [
        _text(4, 14, title, "start", 'font-weight="bold"'),
        f'<rect x="{pad}" y="10" width="{size}" height="{size}" fill="none" stroke="#999"/>',
        f'<line x1="{pad}" y1="{10 + size}" x2="{pad + size}" y2="10" stroke="#aaa" stroke-dasharray="4 3"/>',
        _text(pad + size / 2, size + 40, "stated confidence", "middle"),
        f'<text transform="translate(12,{10 + size / 2}) rotate(-90)" text-anchor="middle" {FONT}>observed accuracy</text>',
    ]
    for t in (0, 0.5, 1):
        body.append(_text(pad + t * size, size + 24, f"{t:g}", "middle"))
        body.append(_text(pad - 4, 10 + size - t * size + 4, f"{t:g}", "end"))
    for b in bins:
        if not b.n or b.accuracy is None or b.confidence is None:
            continue
        x = pad + b.lower * size
        w = (b.upper - b.lower) * size
        h = b.accuracy * size
        body.append(f'<rect x="{x + 1:.1f}" y="{10 + size - h:.1f}" width="{w - 2:.1f}" height="{h:.1f}" fill="#4c8bc0" opacity="0.8"><title>n={b.n}</title></rect>')
        cy = 10 + size - b.confidence * size
        body.append(f'<circle cx="{x + w / 2:.1f}" cy="{cy:.1f}" r="3" fill="#d62728"/>')
    inner = "".join(body[1:])
    return _svg(max(pad + size + 20, 7 * len(title)), size + 50 + top, [body[0], f'<g transform="translate(0,{top})">{inner}</g>'], title)


def selective(curves: Sequence[tuple[str, str, Sequence[Any]]], title: str) -> str:
    """Selective accuracy: accuracy of the drafts accepted (y) against the share accepted (x), most
    confident first, one line per (label, colour, points) with its 95% band shaded. Points are
    `CurvePoint`s (threshold, share, n, accuracy, ci95)."""
    w, h, left, top = 300, 200, 44, 30
    shown = [(label, colour, [p for p in points if p.accuracy is not None]) for label, colour, points in curves]
    lows = [p.ci95[0] if p.ci95 and p.ci95[0] is not None else p.accuracy for _, _, ps in shown for p in ps]
    floor = int(max(0.0, min([*lows, 1.0]) - 0.05) * 10) / 10  # a round lower edge

    def xy(share: float, acc: float) -> tuple[float, float]:
        return left + share * w, top + (1 - (acc - floor) / (1 - floor or 1)) * h

    body = [
        _text(4, 14, title, "start", 'font-weight="bold"'),
        f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#999"/>',
        _text(left + w / 2, top + h + 30, "share of drafts accepted (most confident first)", "middle"),
        f'<text transform="translate(12,{top + h / 2}) rotate(-90)" text-anchor="middle" {FONT}>accuracy</text>',
    ]
    for t in (0, 0.5, 1):
        body.append(_text(left + t * w, top + h + 14, f"{t:g}", "middle"))
    for acc in (floor, (floor + 1) / 2, 1.0):
        body.append(_text(left - 4, xy(0, acc)[1] + 4, f"{acc:.2f}", "end"))
    for i, (label, colour, points) in enumerate(shown):
        banded = [p for p in points if p.ci95 and None not in p.ci95]
        if banded:
            upper = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(p.share, p.ci95[1]) for p in banded))
            lower = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(p.share, p.ci95[0]) for p in reversed(banded)))
            body.append(f'<polygon points="{upper} {lower}" fill="{colour}" opacity="0.18"/>')
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(p.share, p.accuracy) for p in points))
        body.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for p in points:
            x, y = xy(p.share, p.accuracy)
            tip = f"confidence >= {p.threshold:g}: {p.share:.0%} accepted, accuracy {p.accuracy:.3f} (n={p.n})"
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"><title>{escape(tip)}</title></circle>')
        body.append(f'<rect x="{left + w + 10}" y="{top + 6 + i * 18}" width="12" height="3" fill="{colour}"/>')
        body.append(_text(left + w + 26, top + 11 + i * 18, label))
    return _svg(left + w + 130, top + h + 40, body, title)
