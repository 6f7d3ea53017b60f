"""The link to a recorded incident (`follow_up_of`), scored: how often the drafted link is the
reviewer's or the gold's, and how often the right incident was among those offered at all.

Retrieval and choice fail apart: a link is wrong either because the right incident was not
among the candidates (retrieval; no model can fix it) or because the model chose badly among
them. Both are reported, each with a Wilson 95% interval (a proportion over few articles).
Pure: records in, scores out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from annotator.evaluate.model import Interval, LinkScores
from annotator.incidents import NONE, parse_candidates
from annotator.records import Draft, GoldRecord, Review
from annotator.taxonomy import Taxonomy


def wilson(k: int, n: int, z: float = 1.96) -> Interval:
    """The Wilson score interval of k successes in n (None when n is 0)."""
    if not n:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6))


def link_scores(tax: Taxonomy, drafts: Iterable[Draft], references: Sequence[Review | GoldRecord]) -> LinkScores | None:
    """Drafted links against the references that hold one (a gold `null` reads as none: no recorded
    incident); the draft is each article's last one that offered candidates. None when the taxonomy
    has no link or nothing can be scored."""
    if tax.link is None:
        return None
    name = tax.link.name
    drafted: dict[str, Draft] = {}
    for d in drafts:
        if not d.error and "incident_candidates" in (d.model_extra or {}):
            drafted[d.article_id] = d
    n = right = named = among = 0
    for r in references:
        extra = r.model_extra or {}
        d = drafted.get(r.article_id)
        if name not in extra or d is None or getattr(r, "skipped", False):
            continue
        truth = extra[name] or NONE
        n += 1
        right += (d.model_extra or {}).get(name) == truth
        if truth != NONE:
            named += 1
            among += truth in {c.id for c in parse_candidates(d.model_extra.get("incident_candidates"))}
    if not n:
        return None
    return LinkScores(field=name, n=n, accuracy=round(right / n, 6), ci95=wilson(right, n), naming_an_incident=named,
                      among_candidates=round(among / named, 6) if named else None, among_ci95=wilson(among, named))


def link_lines(s: LinkScores | None) -> list[str]:
    """The link's figures as Markdown list items, for summary.md and report.html."""
    if s is None:
        return []

    def ci(iv: Interval) -> str:
        return f" [{iv[0]:.2f}, {iv[1]:.2f}]" if iv and iv[0] is not None and iv[1] is not None else ""

    among = ("" if s.among_candidates is None else
             f"- the reference's incident was among those offered for {s.among_candidates:.0%}{ci(s.among_ci95)} of the "
             f"{s.naming_an_incident} that name one (a miss there is retrieval's, not the model's)")
    return [f"- `{s.field}`: the drafted link is the reference's on {s.accuracy:.0%}{ci(s.ci95)} of {s.n} articles "
            "(95% Wilson interval)", *([among] if among else [])]
