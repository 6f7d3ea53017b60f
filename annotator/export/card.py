"""The data card (`gold/README.md`): where the labels come from, counts per split, agreement, known limits.

Pure: it takes the manifest the job writes and, optionally, the eval report (`EvalMetrics`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from annotator.evaluate.model import EvalMetrics, FieldScores
from annotator.export.splits import SPLITS
from annotator.taxonomy import Taxonomy

MIN_EXAMPLES = 10  # fewer examples of a label in a split than this, and a per-label score there means little


def _field_table(fields: Mapping[str, FieldScores], tax: Taxonomy) -> list[str]:
    """A Markdown table of the figures per field: `n` and every metric the report has a number for."""
    known = [f.name for f in tax.fields]
    names = [n for n in known if n in fields] + [n for n in fields if n not in known]
    rows = [(n, {k: v for k, v in fields[n].model_dump().items() if isinstance(v, int | float) and not isinstance(v, bool)})
            for n in names]
    keys = list(dict.fromkeys(k for _, figures in rows for k in figures))
    if not keys:
        return []
    return ["| field | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|",
            *[f"| {n} | " + " | ".join(_fmt(figures.get(k, "")) for k in keys) + " |" for n, figures in rows]]


def metrics_lines(metrics: EvalMetrics, tax: Taxonomy) -> list[str]:
    """The card's agreement section from an eval report (`annotator eval`'s metrics.json)."""
    blocks = [
        ("Reviewer against reviewer, on articles reviewed more than once (how reliable the labels are)",
         metrics.human_agreement.fields if metrics.human_agreement else {}),
        ("Model draft against reviewed label (how much reviewers changed)", metrics.fields),
    ]
    lines: list[str] = []
    for title, fields in blocks:
        table = _field_table(fields, tax)
        if table:
            lines += [f"{title}:", "", *table, ""]
    return lines[:-1] if lines else ["The eval report given holds no figures this card can read."]


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def data_card(manifest: Mapping[str, Any], tax: Taxonomy, metrics_lines: list[str] | None) -> str:
    splits = manifest["counts"]
    primary_values = [v for v in tax.field(tax.primary).value_ids]
    table = [f"| {tax.primary} | " + " | ".join(SPLITS) + " |", "|---" * (len(SPLITS) + 1) + "|"]
    for v in primary_values:
        table.append(f"| {v} | " + " | ".join(str(splits[s]["labels"][tax.primary].get(v, 0)) for s in SPLITS) + " |")
    table.append("| **articles** | " + " | ".join(str(splits[s]["articles"]) for s in SPLITS) + " |")
    table.append("| near-duplicate groups | " + " | ".join(str(splits[s]["groups"]) for s in SPLITS) + " |")
    src = manifest["sources"]
    totals = manifest["totals"]
    prompt = manifest.get("prompt")
    sim = manifest["similarity"]
    lines = [
        f"# Gold data: {tax.title or tax.name}",
        "",
        "## Where the labels come from",
        "",
        f"An LLM drafted labels for each news article{f' (prompt `{prompt}`)' if prompt else ''}; people reviewed "
        "and corrected them in Label Studio. These files hold the reviewed labels, not the drafts.",
        f"- Reviews: `{src['reviews']['path']}` (sha256 {src['reviews']['sha256'][:16]}), "
        f"{totals['reviews_completed']} completed of {totals['reviews_read']} read (skipped and cancelled ones do not count).",
        f"- Articles: `{src['articles']['path']}` (sha256 {src['articles']['sha256'][:16]}).",
        f"- Policy for articles with several reviews: `{manifest['policy']}`"
        + (f" (leads: {', '.join(manifest['leads'])})" if manifest["leads"] else "") + "; each annotator counts once.",
        f"- {totals['conflicts']} articles where reviewers disagree and the policy cannot decide are left out "
        "and listed in `conflicts.jsonl` for a lead.",
        f"- Taxonomy `{tax.name}` version {tax.version} (hash {tax.hash})."
        + (f" Chat examples use prompt `{prompt}`." if prompt else ""),
        f"- Model versions whose drafts reviewers saw: {', '.join(manifest['model_versions']) or 'none recorded'}.",
        "",
        "## Counts",
        "",
        f"Split {'/'.join(str(round(manifest['split'][s] * 100)) for s in SPLITS)} (train/validation/test), seed "
        f"{manifest['seed']}, stratified by `{tax.primary}`; near-duplicates (same URL, same text, or the same story "
        f"with content-word Jaccard >= {sim['threshold']}, or >= {sim['near_date_threshold']} when published within "
        f"{sim['near_date_days']} days of each other, or at least {sim['names_min_shared']} shared names and figures with cosine "
        f">= {sim['names_cosine']} and word Jaccard >= {sim['names_word_floor']}) stay in one split.",
        "",
        *table,
        "",
        f"Per-label counts for every field are in `manifest.json`. Labels with fewer than {MIN_EXAMPLES} examples "
        "in a split are listed there under `warnings`.",
        "",
        "## Agreement",
        "",
        *(metrics_lines or ["No eval report was given (`annotator export --eval report/metrics.json` adds it here)."]),
        "",
        "## Files",
        "",
        *[f"- `{name}`" for name in manifest["files"]],
        "",
        "## Known limits",
        "",
        "- Near-duplicates are found by word and name overlap: a translation without shared names or figures, "
        "or a retelling in other words and names, of a story already in another split is not caught. Articles are "
        "compared in full only within a few days of each other (and among undated ones); across longer gaps only "
        "close copies are found (MinHash LSH), and a group far larger than a story can be is cut at its weakest "
        "links (`capped_groups` and `largest_groups` in `manifest.json`).",
        "- Splits stay stable across exports only when exporting into the same folder (its `manifest.json` "
        "holds the assignments); a new seed or split ratio splits afresh.",
        "- Reviewers saw the model's draft unless a task was blind, so labels lean towards the drafts "
        f"({totals['blind_articles']} of {totals['articles_exported']} articles were reviewed blind only).",
        "- Article texts are untrusted web content; the CSV is for data tools, not spreadsheets "
        "(cells are not escaped against formulas).",
    ]
    if manifest["warnings"]:
        lines += ["", f"{len(manifest['warnings'])} warnings: see `manifest.json`."]
    return "\n".join(lines) + "\n"
