"""The honest-agreement section of summary.md and report.html: blind figures first, then assisted,
anchoring, time saved, and whether the model could replace a reviewer.

Pure: an `EvalMetrics` in, Markdown/HTML/SVG out (the figures come from `honest.py`); every string
from reviews or taxonomies is escaped before it reaches HTML.
"""

from __future__ import annotations

import math
from html import escape

from annotator.evaluate.alt_test import DEFAULT_EPSILON
from annotator.evaluate.anchoring import time_saved_sentence
from annotator.evaluate.model import EvalMetrics, Interval, SingleField
from annotator.evaluate.tables import fmt, md_table

# --------------------------------------------------------------------------- shared pieces


def _slice_value(metrics: EvalMetrics, slice_name: str, field: str, metric: str, fallback: float | None) -> tuple[float | None, Interval]:
    s = metrics.slices.get(slice_name)  # type: ignore[call-overload]
    f = s.fields.get(field) if s is not None else None
    if not f:
        return fallback, None
    return f.metric(metric), f.interval(metric)


def _p(p: float | None, resamples: int | None) -> str:
    """A bootstrap p cannot go below 2/(resamples + 1): at that floor, say "≤" rather than pretend."""
    if p is not None and resamples and p <= 2 / (resamples + 1) + 1e-12:
        return f"≤ {p:.3f}"
    return fmt(p)


def _slice_rows(metrics: EvalMetrics) -> list[list[str]]:
    rows = []
    blind_slice = metrics.blind()
    for name, a in (metrics.anchoring or {}).items():
        blind, blind_ci = _slice_value(metrics, "blind", name, a.metric, a.blind)
        assisted, assisted_ci = _slice_value(metrics, "assisted", name, a.metric, a.assisted)
        human = blind_slice.human_agreement if blind_slice is not None else None
        ceiling = human.fields.get(name) if human is not None else None
        rows.append([
            name,
            a.metric,
            fmt(blind, blind_ci),
            fmt(ceiling.metric(a.metric), ceiling.interval(a.metric)) if ceiling else fmt(None),
            fmt(assisted, assisted_ci),
            fmt(a.difference, a.ci95),
            _p(a.p_value, metrics.bootstrap.resamples),
        ])
    return rows


SLICE_HEADER = [
    "field",
    "metric",
    "model–reviewer, blind [95% CI]",
    "reviewer–reviewer, blind (the ceiling) [95% CI]",
    "model–reviewer, assisted [95% CI]",
    "anchoring: assisted − blind [95% CI]",
    "p",
]


def _chance_rows(metrics: EvalMetrics) -> list[list[str]]:
    rows = []
    blind = metrics.blind()
    sources = [("blind", blind.fields if blind is not None else {}), ("all reviews", metrics.fields)]
    for label, fields in sources:
        for name, f in fields.items():
            if not isinstance(f, SingleField) or not f.n:
                continue
            rows.append([name, label, str(f.n), *(fmt(f.metric(k), f.interval(k)) for k in ("accuracy", "cohen_kappa", "gwet_ac1", "pabak"))])
    return rows


CHANCE_HEADER = ["field", "reviews", "n", "raw agreement", "Cohen's kappa", "Gwet's AC1", "PABAK"]


def _alt_rows(metrics: EvalMetrics) -> list[list[str]]:
    rows = []
    for name, t in (metrics.alt_test or {}).items():
        if t.winning_rate is None:
            rows.append([name, "0", "–", "–", f"not run: {t.missing}"])
            continue
        verdict = "passed" if t.passed else "failed"
        rows.append([name, str(t.annotators), fmt(t.winning_rate, digits=2), fmt(t.advantage_probability, digits=2), verdict + (f" ({t.note})" if t.note else "")])
    return rows


ALT_HEADER = ["field", "reviewers tested", "winning rate", "advantage probability", "result"]


def _intro(metrics: EvalMetrics) -> str:
    blind = metrics.blind()
    if not blind:
        return (
            "No blind slice: every reviewer saw the draft, so the agreement figures in this report may be inflated by "
            "anchoring. Push with `--blind-share 0.1 --blind-reviewers 3` to measure it."
        )
    text = (
        f"Blind (unassisted) reviews: {blind.n_pairs} reviews of {blind.n_articles} articles whose reviewers saw no draft. "
        "These are the figures to judge the model by; assisted reviews saw the draft and agree with it more."
    )
    cov = blind.coverage
    if cov and cov.too_few:
        counts = ", ".join(f"{v} {cov.reviews_per_class[v]}" for v in cov.too_few)
        text += f" Too few blind reviews to conclude about these `{cov.field}` classes (fewer than {cov.min_reviews}): {counts}."
    return text


def _has_blind(metrics: EvalMetrics) -> bool:
    return metrics.blind() is not None


def _notes(metrics: EvalMetrics) -> list[str]:
    """Anchoring notes, one line per distinct note naming its fields; without a blind slice the intro
    already says it once for all fields.

    On a small blind slice every field has the same "too few to conclude" note: nine copies of one
    line bury the one that differs.
    """
    if not _has_blind(metrics):
        return []
    fields: dict[str, list[str]] = {}
    for name, a in (metrics.anchoring or {}).items():
        if a.note:
            fields.setdefault(a.note, []).append(name)
    return [f"{', '.join(names)}: {note}" for note, names in fields.items()]


# --------------------------------------------------------------------------- markdown


def honest_markdown(metrics: EvalMetrics) -> str:
    """summary.md's leading section; empty for a gold-file eval (no reviews, blind or not)."""
    if metrics.anchoring is None or metrics.lead_time is None:
        return ""
    parts = [
        "## Blind (unassisted) agreement first",
        _intro(metrics),
        md_table(SLICE_HEADER, _slice_rows(metrics)),
        "\n".join(f"- {n}" for n in _notes(metrics)),
        f"**Time:** {time_saved_sentence(metrics.lead_time)}.",
        f"### Could the model replace a reviewer? (alternative annotator test, blind reviews, ε = {_eps(metrics)})",
        md_table(ALT_HEADER, _alt_rows(metrics)),
        "### Chance-robust agreement (single fields)",
        md_table(CHANCE_HEADER, _chance_rows(metrics)),
    ]
    return "\n\n".join(p for p in parts if p)


def _eps(metrics: EvalMetrics) -> str:
    first = next(iter((metrics.alt_test or {}).values()), None)
    return f"{first.epsilon if first is not None else DEFAULT_EPSILON:g}"


# --------------------------------------------------------------------------- html


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_inline(text: str) -> str:
    """Escape, then turn our own `code` spans into <code>."""
    parts = escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def honest_html(metrics: EvalMetrics) -> str:
    """report.html's leading section, with the blind-against-assisted plot."""
    if metrics.anchoring is None or metrics.lead_time is None:
        return ""
    notes = "".join(f'<div class="warn">{escape(n)}</div>' for n in _notes(metrics))
    return (
        "<h2>Blind (unassisted) agreement first</h2>"
        f"<p>{_md_inline(_intro(metrics))}</p>"
        + _html_table(SLICE_HEADER, _slice_rows(metrics))
        + notes
        + (f"<figure>{blind_vs_assisted_svg(metrics)}</figure>" if _has_blind(metrics) else "")
        + f"<p><b>Time:</b> {escape(time_saved_sentence(metrics.lead_time))}.</p>"
        + f"<h3>Could the model replace a reviewer? (alternative annotator test, blind reviews, ε = {_eps(metrics)})</h3>"
        + _html_table(ALT_HEADER, _alt_rows(metrics))
        + "<h3>Chance-robust agreement (single fields)</h3>"
        + _html_table(CHANCE_HEADER, _chance_rows(metrics))
    )


def blind_vs_assisted_svg(metrics: EvalMetrics) -> str:
    """Per field, blind and assisted agreement (accuracy or micro-F1) on a 0–1 axis with 95% intervals."""
    rows = []
    for name, a in (metrics.anchoring or {}).items():
        b, b_ci = _slice_value(metrics, "blind", name, a.metric, a.blind)
        s, s_ci = _slice_value(metrics, "assisted", name, a.metric, a.assisted)
        rows.append((f"{name} ({a.metric})", (b, b_ci), (s, s_ci)))
    left, width, row_h, top = 230, 360, 26, 34
    height = top + row_h * len(rows) + 30
    seen = [v for _, *pts in rows for value, ci in pts for v in (value, *(ci or ())) if v is not None]
    low = max(0.0, math.floor(min(seen, default=0.0) * 10) / 10)  # zoom in: differences of a few points must show
    x = lambda v: left + width * (max(low, min(1.0, v)) - low) / (1 - low)  # noqa: E731
    font = 'font-family="system-ui,sans-serif" font-size="11"'
    body = [
        f'<text x="{left}" y="14" {font} font-weight="bold">model–reviewer agreement, 95% intervals</text>',
        f'<circle cx="{left + 8}" cy="26" r="4" fill="#1f4e9c"/><text x="{left + 16}" y="29" {font}>blind (unassisted)</text>',
        f'<circle cx="{left + 138}" cy="26" r="4" fill="#fff" stroke="#d9822b" stroke-width="2"/><text x="{left + 146}" y="29" {font}>assisted</text>',
    ]
    for tick in (low + (1 - low) * i / 4 for i in range(5)):
        body.append(f'<line x1="{x(tick):.1f}" y1="{top}" x2="{x(tick):.1f}" y2="{height - 24}" stroke="#eee"/>')
        body.append(f'<text x="{x(tick):.1f}" y="{height - 10}" text-anchor="middle" {font}>{tick:.2f}</text>')
    for i, (label, *points) in enumerate(rows):
        y = top + row_h * i + row_h / 2
        body.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" {font}>{escape(label)}</text>')
        for (value, ci), dy, style in zip(points, (-4, 4), ('fill="#1f4e9c"', 'fill="#fff" stroke="#d9822b" stroke-width="2"'), strict=True):
            if value is None:
                continue
            colour = "#1f4e9c" if dy < 0 else "#d9822b"
            if ci and ci[0] is not None and ci[1] is not None:
                body.append(f'<line x1="{x(ci[0]):.1f}" y1="{y + dy:.1f}" x2="{x(ci[1]):.1f}" y2="{y + dy:.1f}" stroke="{colour}" stroke-width="1.5"/>')
            body.append(f'<circle cx="{x(value):.1f}" cy="{y + dy:.1f}" r="4" {style}/>')
    title = "blind against assisted agreement per field"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" height="{height}" role="img" aria-label="{title}">'
        f"<title>{title}</title>" + "".join(body) + "</svg>"
    )
