"""Honest agreement in the eval report: blind figures first, then assisted, anchoring, time saved,
and whether the model could replace a reviewer.

Agreement measured on tasks that showed the draft is inflated by anchoring, so a lead reads the
blind (unassisted) figures first. Pure: metrics dicts in, metrics entries and Markdown/HTML out;
every string from reviews or taxonomies is escaped before it reaches HTML.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from annotator.evaluate.alt_test import DEFAULT_EPSILON, alt_tests
from annotator.evaluate.anchoring import anchoring, blind_coverage, lead_time, time_saved_sentence
from annotator.evaluate.tables import fmt, md_table
from annotator.records import Draft, GoldRecord, Review
from annotator.taxonomy import Taxonomy

RAW_HIGH = 0.8  # raw agreement this high ...
KAPPA_GAP = 0.3  # ... with kappa this far below it is the prevalence paradox, said in words


def add_honest(
    metrics: dict[str, Any],
    tax: Taxonomy,
    drafts: Iterable[Draft],
    references: Sequence[Review | GoldRecord],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    epsilon: float = DEFAULT_EPSILON,
) -> None:
    """Add `anchoring`, `lead_time`, `alt_test` and `slices.blind.coverage` to a metrics dict built by
    `evaluate` (with `fields` and `slices`), and notes where kappa is low while raw agreement is high.

    A gold file has no reviews, blind or assisted: only the kappa notes apply to it.
    """
    reviews = [r for r in references if isinstance(r, Review)]
    if reviews:
        by_id = {d.article_id: d for d in drafts}
        metrics["anchoring"] = anchoring(tax, by_id, reviews, n_boot=n_boot, seed=seed)
        metrics["lead_time"] = lead_time(reviews, n_boot=n_boot, seed=seed)
        metrics["alt_test"] = alt_tests(tax, by_id, reviews, epsilon=epsilon)
        blind = (metrics.get("slices") or {}).get("blind")
        if blind is not None:
            blind["coverage"] = blind_coverage(tax, reviews)
    notes = kappa_notes(metrics.get("fields") or {})
    blind_fields = ((metrics.get("slices") or {}).get("blind") or {}).get("fields") or {}
    notes += kappa_notes(blind_fields, scope="blind reviews")
    warnings = metrics.setdefault("warnings", [])
    warnings += [n for n in notes if n not in warnings]


def kappa_notes(fields: Mapping[str, Any], scope: str = "") -> list[str]:
    """Where kappa is low while raw agreement is high, say why in words, with the chance-robust figures."""
    out = []
    for name, f in fields.items():
        acc, kappa = f.get("accuracy"), f.get("cohen_kappa")
        if f.get("kind") != "single" or acc is None or acc < RAW_HIGH or (kappa is not None and kappa > acc - KAPPA_GAP):
            continue
        where = f" ({scope})" if scope else ""
        kappa_s = "undefined" if kappa is None else f"{kappa:.2f}"
        robust = ", ".join(f"{label} {f[key]:.2f}" for key, label in (("gwet_ac1", "Gwet's AC1"), ("pabak", "PABAK")) if f.get(key) is not None)
        out.append(
            f"{name}{where}: kappa is low ({kappa_s}) while raw agreement is high ({acc:.2f}): one answer dominates, so "
            f"kappa expects most of that agreement by chance and understates it"
            + (f"; the chance-robust figures ({robust}) are the better reading" if robust else "")
        )
    return out


# --------------------------------------------------------------------------- shared pieces


def _slice_value(metrics: Mapping[str, Any], slice_name: str, field: str, metric: str, fallback: float | None) -> tuple[float | None, Any]:
    f = (((metrics.get("slices") or {}).get(slice_name) or {}).get("fields") or {}).get(field)
    if not f:
        return fallback, None
    return f.get(metric), (f.get("ci95") or {}).get(metric)


def _p(p: float | None, resamples: int | None) -> str:
    """A bootstrap p cannot go below 2/(resamples + 1): at that floor, say "≤" rather than pretend."""
    if p is not None and resamples and p <= 2 / (resamples + 1) + 1e-12:
        return f"≤ {p:.3f}"
    return fmt(p)


def _slice_rows(metrics: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for name, a in metrics["anchoring"].items():
        blind, blind_ci = _slice_value(metrics, "blind", name, a["metric"], a["blind"])
        assisted, assisted_ci = _slice_value(metrics, "assisted", name, a["metric"], a["assisted"])
        ceiling = ((((metrics.get("slices") or {}).get("blind") or {}).get("human_agreement") or {}).get("fields") or {}).get(name) or {}
        rows.append([
            name,
            a["metric"],
            fmt(blind, blind_ci),
            fmt(ceiling.get(a["metric"]), (ceiling.get("ci95") or {}).get(a["metric"])),
            fmt(assisted, assisted_ci),
            fmt(a["difference"], a["ci95"]),
            _p(a["p_value"], (metrics.get("bootstrap") or {}).get("resamples")),
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


def _chance_rows(metrics: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    sources = [("blind", (((metrics.get("slices") or {}).get("blind") or {}).get("fields") or {})), ("all reviews", metrics.get("fields") or {})]
    for label, fields in sources:
        for name, f in fields.items():
            if f.get("kind") != "single" or not f.get("n"):
                continue
            ci = f.get("ci95") or {}
            rows.append([name, label, str(f["n"]), *(fmt(f.get(k), ci.get(k)) for k in ("accuracy", "cohen_kappa", "gwet_ac1", "pabak"))])
    return rows


CHANCE_HEADER = ["field", "reviews", "n", "raw agreement", "Cohen's kappa", "Gwet's AC1", "PABAK"]


def _alt_rows(metrics: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for name, t in metrics["alt_test"].items():
        if t["winning_rate"] is None:
            rows.append([name, "0", "–", "–", f"not run: {t['missing']}"])
            continue
        verdict = "passed" if t["passed"] else "failed"
        rows.append([name, str(t["annotators"]), fmt(t["winning_rate"], digits=2), fmt(t["advantage_probability"], digits=2), verdict + (f" ({t['note']})" if t.get("note") else "")])
    return rows


ALT_HEADER = ["field", "reviewers tested", "winning rate", "advantage probability", "result"]


def _intro(metrics: Mapping[str, Any]) -> str:
    blind = (metrics.get("slices") or {}).get("blind")
    if not blind:
        return (
            "No blind slice: every reviewer saw the draft, so the agreement figures in this report may be inflated by "
            "anchoring. Push with `--blind-share 0.1 --blind-reviewers 3` to measure it."
        )
    text = (
        f"Blind (unassisted) reviews: {blind['n_pairs']} reviews of {blind['n_articles']} articles whose reviewers saw no draft. "
        "These are the figures to judge the model by; assisted reviews saw the draft and agree with it more."
    )
    cov = blind.get("coverage")
    if cov and cov["too_few"]:
        counts = ", ".join(f"{v} {cov['reviews_per_class'][v]}" for v in cov["too_few"])
        text += f" Too few blind reviews to conclude about these `{cov['field']}` classes (fewer than {cov['min_reviews']}): {counts}."
    return text


def _has_blind(metrics: Mapping[str, Any]) -> bool:
    return bool((metrics.get("slices") or {}).get("blind"))


def _notes(metrics: Mapping[str, Any]) -> list[str]:
    """Per-field anchoring notes; without a blind slice the intro already says it once for all fields."""
    if not _has_blind(metrics):
        return []
    return [f"{name}: {a['note']}" for name, a in metrics["anchoring"].items() if a.get("note")]


# --------------------------------------------------------------------------- markdown


def honest_markdown(metrics: Mapping[str, Any]) -> str:
    """summary.md's leading section; empty for a gold-file eval (no reviews, blind or not)."""
    if "anchoring" not in metrics:
        return ""
    parts = [
        "## Blind (unassisted) agreement first",
        _intro(metrics),
        md_table(SLICE_HEADER, _slice_rows(metrics)),
        "\n".join(f"- {n}" for n in _notes(metrics)),
        f"**Time:** {time_saved_sentence(metrics['lead_time'])}.",
        f"### Could the model replace a reviewer? (alternative annotator test, blind reviews, ε = {_eps(metrics)})",
        md_table(ALT_HEADER, _alt_rows(metrics)),
        "### Chance-robust agreement (single fields)",
        md_table(CHANCE_HEADER, _chance_rows(metrics)),
    ]
    return "\n\n".join(p for p in parts if p)


def _eps(metrics: Mapping[str, Any]) -> str:
    first = next(iter(metrics["alt_test"].values()), {})
    return f"{first.get('epsilon', DEFAULT_EPSILON):g}"


# --------------------------------------------------------------------------- html


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_inline(text: str) -> str:
    """Escape, then turn our own `code` spans into <code>."""
    parts = escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def honest_html(metrics: Mapping[str, Any]) -> str:
    """report.html's leading section, with the blind-against-assisted plot."""
    if "anchoring" not in metrics:
        return ""
    notes = "".join(f'<div class="warn">{escape(n)}</div>' for n in _notes(metrics))
    return (
        "<h2>Blind (unassisted) agreement first</h2>"
        f"<p>{_md_inline(_intro(metrics))}</p>"
        + _html_table(SLICE_HEADER, _slice_rows(metrics))
        + notes
        + (f"<figure>{blind_vs_assisted_svg(metrics)}</figure>" if _has_blind(metrics) else "")
        + f"<p><b>Time:</b> {escape(time_saved_sentence(metrics['lead_time']))}.</p>"
        + f"<h3>Could the model replace a reviewer? (alternative annotator test, blind reviews, ε = {_eps(metrics)})</h3>"
        + _html_table(ALT_HEADER, _alt_rows(metrics))
        + "<h3>Chance-robust agreement (single fields)</h3>"
        + _html_table(CHANCE_HEADER, _chance_rows(metrics))
    )


def blind_vs_assisted_svg(metrics: Mapping[str, Any]) -> str:
    """Per field, blind and assisted agreement (accuracy or micro-F1) on a 0–1 axis with 95% intervals."""
    rows = []
    for name, a in metrics["anchoring"].items():
        b, b_ci = _slice_value(metrics, "blind", name, a["metric"], a["blind"])
        s, s_ci = _slice_value(metrics, "assisted", name, a["metric"], a["assisted"])
        rows.append((f"{name} ({a['metric']})", (b, b_ci), (s, s_ci)))
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
