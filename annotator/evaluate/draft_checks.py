"""What the draft checks found, summed up for the lead: flag shares, broken rules, span agreement.

Drafts carry their flags (annotator/checks.py sets them when drafting); this counts the share of
drafts with each, so "0 of 20 rationales explained anything" is a figure in the report and not a
surprise in the browser. Rules between fields are counted on both sides (a reviewer can break
them too). Span agreement compares the evidence a draft highlighted with what the reviewer left
highlighted, character by character, per kind of evidence (overlap precision, recall, F1).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from annotator.evaluate.model import DraftChecks, FlagShare, FlagShares, RuleCounts, RuleSide, SpanAgreement, SpanScores
from annotator.records import Draft, GoldRecord, Review
from annotator.taxonomy import Taxonomy, rule_violations


def flag_shares(drafts: Sequence[Draft]) -> FlagShares:
    """flag -> {n, share} over the drafts that did not fail (a draft counts once per flag)."""
    answered = [d for d in drafts if not d.error]
    counts = Counter(flag for d in answered for flag in set(d.flags))
    return FlagShares(drafts=len(answered), flags={k: FlagShare(n=n, share=round(n / len(answered), 4))
                                                   for k, n in sorted(counts.items())})


def rule_counts(tax: Taxonomy, drafts: Sequence[Draft], references: Sequence[Review | GoldRecord]) -> RuleCounts:
    """How many drafts and references break the taxonomy's rules between fields, with examples."""
    sides = {}
    for side, records in (("drafts", [d for d in drafts if not d.error]), ("references", references)):
        broken = [(r.article_id, v) for r in records if (v := rule_violations(tax, r.labels))]
        sides[side] = RuleSide(n=len(records), breaking=len(broken),
                               examples=[f"article {aid}: {'; '.join(v)}" for aid, v in broken[:5]])
    return RuleCounts(rules=len(tax.rules), **sides)


def _chars(spans: Iterable[Mapping[str, Any]], kind: str) -> set[int]:
    out: set[int] = set()
    for s in spans:
        if s.get("kind") == kind:
            out.update(range(int(s["start"]), int(s["end"])))
    return out


def span_agreement(tax: Taxonomy, drafts: Sequence[Draft], references: Sequence[Review | GoldRecord]) -> SpanAgreement | None:
    """Character-overlap precision, recall and F1 of draft evidence against reviewed evidence.

    Scored on the reviews that carry evidence (pulled from Label Studio) of articles whose draft
    has any; None when there are none (a gold file without spans, a taxonomy without evidence).
    """
    if not tax.evidence:
        return None
    by_article = {d.article_id: d for d in drafts if not d.error}
    pairs = [(by_article[r.article_id], r) for r in references
             if isinstance(r, Review) and not r.skipped and not r.blind and r.article_id in by_article
             and "evidence" in r.model_fields_set and by_article[r.article_id].evidence]
    if not pairs:
        return None
    kinds: dict[str, SpanScores] = {}
    total = [0, 0, 0]
    for k in tax.evidence:
        tp = fp = fn = 0
        for d, r in pairs:
            dc, rc = _chars(d.evidence, k.name), _chars(r.evidence, k.name)
            tp, fp, fn = tp + len(dc & rc), fp + len(dc - rc), fn + len(rc - dc)
        kinds[k.name] = SpanScores(**_prf(tp, fp, fn))
        total = [total[0] + tp, total[1] + fp, total[2] + fn]
    return SpanAgreement(n_pairs=len(pairs), unit="character overlap", kinds=kinds, **_prf(*total))


def _prf(tp: int, fp: int, fn: int) -> dict[str, float | None]:
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    f = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return {"precision": None if p is None else round(p, 4), "recall": None if r is None else round(r, 4),
            "f1": None if f is None else round(f, 4)}


def draft_checks(tax: Taxonomy, drafts: Sequence[Draft], references: Sequence[Review | GoldRecord]) -> DraftChecks:
    """metrics.json's `draft_checks`: flag shares, rules broken, span agreement."""
    latest = list({d.article_id: d for d in drafts}.values())
    return DraftChecks(flags=flag_shares(latest), rules=rule_counts(tax, latest, references),
                       evidence=span_agreement(tax, latest, references))
