"""Honest agreement: the figures that tell how far the assisted ones are inflated by anchoring.

Agreement measured on tasks that showed the draft is inflated by anchoring, so a lead reads the
blind (unassisted) figures first. Pure: records in, report models out (`render_honest` draws them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel

from annotator.evaluate.alt_test import DEFAULT_EPSILON, alt_tests
from annotator.evaluate.anchoring import anchoring, blind_coverage, lead_time
from annotator.evaluate.model import AltTest, Anchoring, Coverage, FieldScores, LeadTime, SingleField
from annotator.records import Draft, GoldRecord, Review
from annotator.taxonomy import Taxonomy

RAW_HIGH = 0.8  # raw agreement this high ...
KAPPA_GAP = 0.3  # ... with kappa this far below it is the prevalence paradox, said in words


class HonestFigures(BaseModel):
    """What reviews (not a gold file) add to the report: anchoring, lead time, the alt-test, blind coverage."""

    anchoring: dict[str, Anchoring]
    lead_time: LeadTime
    alt_test: dict[str, AltTest]
    coverage: Coverage


def honest_figures(
    tax: Taxonomy,
    drafts: Iterable[Draft],
    references: Sequence[Review | GoldRecord],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    epsilon: float = DEFAULT_EPSILON,
) -> HonestFigures | None:
    """`anchoring`, `lead_time`, `alt_test` and the blind slice's `coverage`; None for a gold file,
    which has no reviews, blind or assisted."""
    reviews = [r for r in references if isinstance(r, Review)]
    if not reviews:
        return None
    by_id = {d.article_id: d for d in drafts}
    return HonestFigures(
        anchoring=anchoring(tax, by_id, reviews, n_boot=n_boot, seed=seed),
        lead_time=lead_time(reviews, n_boot=n_boot, seed=seed),
        alt_test=alt_tests(tax, by_id, reviews, epsilon=epsilon),
        coverage=blind_coverage(tax, reviews),
    )


def kappa_notes(fields: Mapping[str, FieldScores], scope: str = "") -> list[str]:
    """Where kappa is low while raw agreement is high, say why in words, with the chance-robust figures."""
    out = []
    for name, f in fields.items():
        if not isinstance(f, SingleField):
            continue
        acc, kappa = f.accuracy, f.cohen_kappa
        if acc is None or acc < RAW_HIGH or (kappa is not None and kappa > acc - KAPPA_GAP):
            continue
        where = f" ({scope})" if scope else ""
        kappa_s = "undefined" if kappa is None else f"{kappa:.2f}"
        robust = ", ".join(f"{label} {value:.2f}" for value, label in ((f.gwet_ac1, "Gwet's AC1"), (f.pabak, "PABAK")) if value is not None)
        out.append(
            f"{name}{where}: kappa is low ({kappa_s}) while raw agreement is high ({acc:.2f}): one answer dominates, so "
            f"kappa expects most of that agreement by chance and understates it"
            + (f"; the chance-robust figures ({robust}) are the better reading" if robust else "")
        )
    return out



