"""Write an `EvalReport`: metrics.json (for tools), summary.md (for a pull request), report.html
(one self-contained file for a lead, plots inline).

Renderers take the report models (`annotator.evaluate.model`) and nothing else. Article titles,
labels and rationales are untrusted: everything that reaches HTML is escaped. The HTML and
Markdown are lists of section functions, so a new analysis adds a section without touching the
others.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from html import escape
from pathlib import Path
from typing import Any

from annotator.evaluate import svg
from annotator.evaluate.links import link_lines
from annotator.evaluate.metrics import MULTI_METRICS, SINGLE_METRICS, TEXT_METRICS
from annotator.evaluate.model import (
    Agreement,
    Compare,
    EvalMetrics,
    EvalReport,
    FieldScores,
    MultiField,
    SingleField,
    metrics_json,
)
from annotator.evaluate.render_honest import honest_html, honest_markdown
from annotator.evaluate.render_selective import selective_html, selective_markdown
from annotator.evaluate.tables import fmt, md_table
from annotator.locks import hold
from annotator.records import write_text_atomic

HEADLINE = {"single": "accuracy", "multi": "micro_f1", "text": "edit_similarity"}
COLUMNS = {"single": tuple(SINGLE_METRICS), "multi": MULTI_METRICS, "text": TEXT_METRICS}


def _label(v: Any) -> str:
    return "(none)" if v is None else str(v)


def _show(v: Any) -> str:
    if isinstance(v, list):
        return ", ".join(v) if v else "(empty)"
    return _label(v)


# --------------------------------------------------------------------------- tables (shared)


def _gate_rows(m: EvalMetrics) -> list[list[str]]:
    """One row per field: the gated metrics (or the headline one), value with CI, minimum, result."""
    checks: dict[str, list[tuple[str, float | None, bool | None]]] = {}
    for c in m.thresholds.checks if m.thresholds else []:
        checks.setdefault(c.field, []).append((c.metric, c.minimum, c.passed))
    rows = []
    for name, f in m.fields.items():
        gated = checks.get(name) or [(HEADLINE[f.kind], None, None)]
        rows.append([
            name,
            str(f.n),
            "<br>".join(metric for metric, _, _ in gated),
            "<br>".join(fmt(f.metric(metric), f.interval(metric)) for metric, _, _ in gated),
            "<br>".join("–" if minimum is None else f"≥ {minimum:g}" for _, minimum, _ in gated),
            "<br>".join("–" if passed is None else ("pass" if passed else "**FAIL**") for _, _, passed in gated),
        ])
    return rows


def _kind_tables(fields: Mapping[str, FieldScores]) -> list[tuple[str, list[str], list[list[str]]]]:
    out = []
    for kind, title in (("single", "Single-valued fields"), ("multi", "Multi-valued fields"), ("text", "Free text")):
        names = [n for n, f in fields.items() if f.kind == kind]
        if not names:
            continue
        cols = COLUMNS[kind]
        rows = [[n, str(fields[n].n), *(fmt(fields[n].metric(c), fields[n].interval(c)) for c in cols)] for n in names]
        out.append((title, ["field", "n", *cols], rows))
    return out


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    """Cells are escaped here; the only markup allowed through is our own <br> and **FAIL**."""

    def cell(s: str) -> str:
        s = escape(s).replace("&lt;br&gt;", "<br>")
        return s.replace("**FAIL**", '<b class="fail">FAIL</b>')

    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --------------------------------------------------------------------------- markdown


def _md_head(r: EvalReport) -> str:
    m = r.metrics
    c = m.counts
    verdict = "" if m.thresholds is None else ("**All thresholds met.**" if r.passed else "**Thresholds missed.**")
    lazy = "".join(f"- **{w}**\n" for w in m.lazy)
    return (
        f"## Eval: {m.taxonomy.name} v{m.taxonomy.version}\n\n"
        + (f"**Read first:**\n\n{lazy}\n" if lazy else "")
        + f"{c.pairs} draft–review pairs on {c.articles} articles; {m.errors.n} failed drafts (scored as disagreement); "
        f"{c.skipped} skipped reviews; 95% intervals from {m.bootstrap.resamples} bootstrap resamples of articles "
        f"(seed {m.bootstrap.seed}). {verdict}"
        + "".join(f"\n\n> {w}" for w in m.warnings if w not in m.lazy)  # read before any figure, as in report.html
    )


def _md_pooled(r: EvalReport) -> str:
    """The headline figures over every pair, after the blind section: pooled, they lean on the assisted reviews."""
    title = "## All reviews (blind and assisted pooled)\n\n" if r.metrics.anchoring is not None else ""
    return title + md_table(["field", "n", "metric", "value [95% CI]", "threshold", "result"], _gate_rows(r.metrics))


BASELINE_HEAD = ["field", "n", "metric", "drafts [95% CI]", "majority baseline", "label-prior baseline",
                 "skill vs majority [95% CI]", "skill vs prior [95% CI]", "chance-corrected (beside the baselines)"]


def _baseline_rows(m: EvalMetrics) -> list[list[str]]:
    rows = []
    for name, b in m.baselines.items():
        f = m.fields[name]
        chance = (f"kappa {fmt(f.metric('cohen_kappa'))} · AC1 {fmt(f.metric('gwet_ac1'))}" if f.kind == "single"
                  else f"alpha (MASI) {fmt(f.metric('krippendorff_alpha_masi'))}")
        rows.append([name, str(b.n), b.metric, fmt(b.candidate, b.ci95.get("candidate")), fmt(b.majority_baseline),
                     fmt(b.prior_baseline), fmt(b.skill_vs_majority, b.ci95.get("skill_vs_majority")),
                     fmt(b.skill_vs_prior, b.ci95.get("skill_vs_prior")), chance])
    return rows


def _md_baselines(r: EvalReport) -> str:
    rows = _baseline_rows(r.metrics)
    if not rows:
        return ""
    return ("## Against baselines that need no model\n\nSkill = (drafts − baseline) / (1 − baseline): 0 is no better than "
            "always answering the most common value (majority) or answering at random with the reviewers' frequencies "
            "(label prior).\n\n" + md_table(BASELINE_HEAD, rows))


def _check_lines(m: EvalMetrics) -> list[str]:
    c = m.draft_checks
    if c is None:
        return []
    lines = [f"- `{k}`: {v.n} of {c.flags.drafts} drafts ({v.share:.0%})" for k, v in c.flags.flags.items()]
    if c.rules.rules:
        lines.append(f"- rules between fields broken by {c.rules.drafts.breaking} of {c.rules.drafts.n} drafts and "
                     f"{c.rules.references.breaking} of {c.rules.references.n} references"
                     + "".join(f"; {e}" for e in c.rules.references.examples[:2]))
    ev = c.evidence
    if ev:
        kinds = ", ".join(f"{k} {fmt(v.f1)}" for k, v in ev.kinds.items())
        lines.append(f"- evidence highlights, draft against review ({ev.unit} on {ev.n_pairs} reviews): precision "
                     f"{fmt(ev.precision)}, recall {fmt(ev.recall)}, F1 {fmt(ev.f1)} ({kinds})")
    return lines


def _md_list(title: str, items: list[str]) -> str:
    """A section of Markdown list items ("- ..."), or nothing when there are none."""
    return f"## {title}\n\n" + "\n".join(items) if items else ""


_CODE = re.compile(r"`([^`]*)`")


def _h_list(title: str, items: list[str]) -> str:
    """The same Markdown list items as an HTML section, `code` spans as <code>."""
    if not items:
        return ""
    lis = "".join("<li>" + _CODE.sub(r"<code>\1</code>", escape(x.removeprefix("- "))) + "</li>" for x in items)
    return f"<h2>{escape(title)}</h2><ul>{lis}</ul>"


def _md_link(r: EvalReport) -> str:
    return _md_list("Link to a recorded incident", link_lines(r.metrics.link))


def _h_link(r: EvalReport) -> str:
    return _h_list("Link to a recorded incident", link_lines(r.metrics.link))


def _md_checks(r: EvalReport) -> str:
    return _md_list("Draft checks (share of drafts per flag)", _check_lines(r.metrics))


def _md_all(r: EvalReport) -> str:
    parts = [f"### {t}\n\n{md_table(h, rows)}" for t, h, rows in _kind_tables(r.metrics.fields)]
    return "\n\n".join(parts)


def _md_human(r: EvalReport) -> str:
    h: Agreement | None = r.metrics.human_agreement
    if not h:
        return ""
    parts = [f"### {t}\n\n{md_table(hd, rows)}" for t, hd, rows in _kind_tables(h.fields)]
    return f"## Reviewer–reviewer agreement (the ceiling)\n\n{h.n_pairs} reviewer pairs on {h.n_articles} articles.\n\n" + "\n\n".join(parts)


def _compare_rows(cmp: Compare) -> list[list[str]]:
    rows = []
    for name, metrics in cmp.fields.items():
        for metric, d in metrics.items():
            rows.append([name, metric, fmt(d.baseline), fmt(d.candidate), fmt(d.difference, d.ci95)])
    return rows


def _md_compare(r: EvalReport) -> str:
    cmp = r.metrics.compare
    if not cmp:
        return ""
    mc = cmp.mcnemar
    return (
        f"## Compared with the baseline drafts\n\n{cmp.difference}, on {cmp.n_pairs} pairs. McNemar on `{mc.field}`: "
        f"baseline alone right {mc.baseline_only_right}, candidate alone right {mc.candidate_only_right}, p = {fmt(mc.p_value)}.\n\n"
        + md_table(["field", "metric", "baseline", "candidate", "difference [95% CI]"], _compare_rows(cmp))
    )


def _md_notes(r: EvalReport) -> str:
    m = r.metrics
    lines = [f"- calibration `{n}`: ECE {fmt(c.ece, c.ci95.get('ece'))} over {c.n} drafts with a confidence" for n, c in m.calibration.items()]
    return "## Notes\n\n" + "\n".join(lines) if lines else ""


def _md_honest(r: EvalReport) -> str:
    return honest_markdown(r.metrics)  # blind (unassisted) figures lead: the assisted ones are inflated by anchoring


def _md_selective(r: EvalReport) -> str:
    return selective_markdown(r.metrics, next(iter(r.metrics.fields), ""))


MD_SECTIONS: list[Callable[[EvalReport], str]] = [_md_head, _md_baselines, _md_checks, _md_link, _md_honest, _md_pooled, _md_all,
                                                  _md_human, _md_compare, _md_selective, _md_notes]


def summary_markdown(report: EvalReport) -> str:
    return "\n\n".join(s for f in MD_SECTIONS if (s := f(report))) + "\n"


# --------------------------------------------------------------------------- html

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}.fail{color:#b00}.pass{color:#070}.plots{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.warn{background:#fff6dd;border-left:4px solid #e0a800;padding:6px 10px;margin:4px 0}.disagree{background:#fdecea}
td.text{max-width:420px;white-space:pre-wrap;font-size:90%}"""


def _h_head(r: EvalReport) -> str:
    m = r.metrics
    c = m.counts
    verdict = ""
    if m.thresholds is not None:
        verdict = '<p class="pass"><b>All thresholds met.</b></p>' if r.passed else '<p class="fail"><b>Thresholds missed.</b></p>'
    lazy = "".join(f'<div class="warn"><b>{escape(w)}</b></div>' for w in m.lazy)
    return (
        f"<h1>Eval: {escape(m.taxonomy.name)} v{escape(m.taxonomy.version)}</h1>{lazy}{verdict}"
        f"<p>{c.pairs} draft–review pairs on {c.articles} articles · {m.errors.n} failed drafts (scored as disagreement) · "
        f"{c.skipped} skipped reviews · {c.references_without_draft} reviewed articles without a draft · "
        f"95% intervals: {m.bootstrap.resamples} bootstrap resamples of articles, seed {m.bootstrap.seed}.</p>"
        + "".join(f'<div class="warn">{escape(w)}</div>' for w in m.warnings if w not in m.lazy)
    )


def _h_pooled(r: EvalReport) -> str:
    title = "<h2>All reviews (blind and assisted pooled)</h2>" if r.metrics.anchoring is not None else ""
    return title + _html_table(["field", "n", "metric", "value [95% CI]", "threshold", "result"], _gate_rows(r.metrics))


def _h_baselines(r: EvalReport) -> str:
    rows = _baseline_rows(r.metrics)
    return "<h2>Against baselines that need no model</h2>" + _html_table(BASELINE_HEAD, rows) if rows else ""


def _h_checks(r: EvalReport) -> str:
    return _h_list("Draft checks", _check_lines(r.metrics))


def _h_fields(r: EvalReport) -> str:
    return "<h2>All metrics</h2>" + "".join(f"<h3>{escape(t)}</h3>{_html_table(h, rows)}" for t, h, rows in _kind_tables(r.metrics.fields))


def _h_plots(r: EvalReport) -> str:
    plots = []
    for name, f in r.metrics.fields.items():
        if isinstance(f, SingleField) and f.n:
            plots.append(svg.heatmap([_label(v) for v in f.confusion.labels], f.confusion.matrix, f"{name}: confusion matrix"))
        elif isinstance(f, MultiField) and f.n:
            rows = [(f"{v} ({d.support})", d.f1, *(d.ci95.get("f1") or (None, None))) for v, d in f.per_label.items()]
            plots.append(svg.hbars(rows, f"{name}: F1 per value (reviews with it), 95% intervals"))
    for name, c in r.metrics.calibration.items():
        plots.append(svg.reliability(c.bins, f"{name}: reliability (ECE {fmt(c.ece)})"))
    titled = "".join(f"<figure>{p}</figure>" for p in plots)
    return f'<h2>Where the model goes wrong</h2><div class="plots">{titled}</div>' if plots else ""


def _h_human(r: EvalReport) -> str:
    h = r.metrics.human_agreement
    if not h:
        return ""
    tables = "".join(f"<h3>{escape(t)}</h3>{_html_table(hd, rows)}" for t, hd, rows in _kind_tables(h.fields))
    return f"<h2>Reviewer–reviewer agreement (the ceiling)</h2><p>{h.n_pairs} reviewer pairs on {h.n_articles} articles.</p>{tables}"


def _h_compare(r: EvalReport) -> str:
    cmp = r.metrics.compare
    if not cmp:
        return ""
    mc = cmp.mcnemar
    return (
        f"<h2>Compared with the baseline drafts</h2><p>{escape(cmp.difference)}, on {cmp.n_pairs} pairs. "
        f"McNemar on <code>{escape(mc.field)}</code>: baseline alone right {mc.baseline_only_right}, "
        f"candidate alone right {mc.candidate_only_right}, p = {fmt(mc.p_value)}.</p>"
        + _html_table(["field", "metric", "baseline", "candidate", "difference [95% CI]"], _compare_rows(cmp))
    )


def _h_examples(r: EvalReport) -> str:
    if not r.examples:
        return ""
    blocks = []
    for ex in r.examples:
        rows = "".join(
            f'<tr class="{"" if f.agree else "disagree"}"><td>{escape(f.field)}</td><td>{escape(_show(f.draft))}</td><td>{escape(_show(f.review))}</td></tr>'
            for f in ex.fields
        )
        rows += f'<tr><td>rationale</td><td class="text">{escape(ex.draft_rationale or "")}</td><td class="text">{escape(ex.review_rationale or "")}</td></tr>'
        title = escape(ex.title or "(no title: pass --articles)")
        blocks.append(
            f"<h3>{title}</h3><p>article <code>{escape(ex.article_id)}</code> · reviewer {escape(ex.reviewer or '–')} · "
            f"disagreement {ex.score:g}</p><table><thead><tr><th>field</th><th>draft</th><th>review</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    return f"<h2>Worst disagreements</h2><p>Draft and review side by side; disagreeing fields are shaded.</p>{''.join(blocks)}"


def _h_errors(r: EvalReport) -> str:
    e = r.metrics.errors
    if not e.n:
        return ""
    ids = ", ".join(escape(a) for a in e.article_ids[:30])
    return f"<h2>Failed drafts</h2><p>{e.n} drafts carry an error; they count as disagreement on every field. First ones: {ids}</p>"


def _h_honest(r: EvalReport) -> str:
    return honest_html(r.metrics)


def _h_selective(r: EvalReport) -> str:
    return selective_html(r.metrics, next(iter(r.metrics.fields), ""))


HTML_SECTIONS: list[Callable[[EvalReport], str]] = [_h_head, _h_baselines, _h_checks, _h_link, _h_honest, _h_pooled, _h_fields,
                                                    _h_plots, _h_selective, _h_human, _h_compare, _h_examples, _h_errors]


def report_html(report: EvalReport) -> str:
    body = "".join(f(report) for f in HTML_SECTIONS)
    return f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Eval report</title><style>{CSS}</style></head><body>{body}</body></html>\n'


def write_report(report: EvalReport, outdir: str | Path, on_wait: Callable[[str], None] | None = None) -> list[str]:
    """Write metrics.json, summary.md and report.html into `outdir`; returns their paths.

    Each file is replaced whole, and the three under the folder's lock (`annotator.locks`), so two
    evals into one folder at once leave the three files of one run, never a mix of both;
    `on_wait` (default: stderr) hears when the other run holds the folder.
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "metrics.json": metrics_json(report.metrics),
        "summary.md": summary_markdown(report),
        "report.html": report_html(report),
    }
    with hold([out], "eval", on_wait or (lambda line: print(line, file=sys.stderr))):
        for name, text in files.items():
            write_text_atomic(out / name, text)
    return [str(out / n) for n in files]
