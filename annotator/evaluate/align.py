"""Pair drafts with reviews (or gold records), and reviewers with each other.

Alignment is where counting mistakes hide, so it is explicit: every completed (not skipped)
review is paired with the draft of the same article; what cannot be paired is counted, never
silently dropped. Fields a reference lacks are not scored (a gold record may label only some).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, NamedTuple

from annotator.records import Draft, GoldRecord, LabelValue, Review, newer_key

_NO_CONFIDENCE: Mapping[str, float | None] = {}


class Side(NamedTuple):
    """One answer for one article: a model's draft, a reviewer's review or a gold record."""

    labels: Mapping[str, LabelValue]
    rationale: str | None = None
    confidence: Mapping[str, float | None] = _NO_CONFIDENCE
    error: str | None = None
    who: str = ""


class Pair(NamedTuple):
    """Two answers for the same article. `reference` is the truth side (rows of a confusion
    matrix), `candidate` the side being judged (columns)."""

    article_id: str
    reference: Side
    candidate: Side
    blind: bool | None = False  # reviewer pairs: None when one saw the draft and the other did not


@dataclass
class Alignment:
    pairs: list[Pair]
    human_pairs: list[Pair]
    n_drafts: int = 0
    n_references: int = 0
    skipped: int = 0
    duplicates: int = 0
    references_without_draft: list[str] = field(default_factory=list)
    drafts_without_reference: int = 0
    error_articles: list[str] = field(default_factory=list)


def draft_side(d: Draft) -> Side:
    return Side(d.labels, d.rationale, d.confidence, d.error, d.model_version or d.model)


def reference_side(r: Review | GoldRecord) -> Side:
    return Side(r.labels, r.rationale, who=getattr(r, "annotator", "") or "")


def _last_by_key(records: Iterable[Any], key: Any) -> tuple[dict[Any, Any], int]:
    """Keep the last record per key (a re-pull or re-draft supersedes the earlier line)."""
    out: dict[Any, Any] = {}
    dupes = 0
    for r in records:
        k = key(r)
        if k in out:
            dupes += 1
            if newer_key(r) < newer_key(out[k]):
                continue
        out[k] = r
    return out, dupes


def align(drafts: Iterable[Draft], references: Iterable[Review | GoldRecord]) -> Alignment:
    """Pair every completed review with its article's draft; pair reviewers of the same article.

    A second draft or review line for the same article (and annotator) replaces the first: the
    files are append-only, so the later line is the newer answer.
    """
    by_article, draft_dupes = _last_by_key(drafts, lambda d: d.article_id)
    refs = list(references)
    completed = [r for r in refs if not getattr(r, "skipped", False)]
    latest, ref_dupes = _last_by_key(completed, lambda r: (r.article_id, getattr(r, "annotator", "") or ""))
    pairs: list[Pair] = []
    missing: list[str] = []
    errors: list[str] = []
    per_article: dict[str, list[Review | GoldRecord]] = {}
    for (article_id, _), ref in latest.items():
        per_article.setdefault(article_id, []).append(ref)
        draft = by_article.get(article_id)
        if draft is None:
            missing.append(article_id)
            continue
        if draft.error and (not errors or errors[-1] != article_id):
            errors.append(article_id)
        pairs.append(Pair(article_id, reference_side(ref), draft_side(draft), bool(getattr(ref, "blind", False))))
    human: list[Pair] = []
    for article_id, group in per_article.items():
        group.sort(key=lambda r: getattr(r, "annotator", "") or "")
        for a, b in combinations(group, 2):
            blind_a, blind_b = bool(getattr(a, "blind", False)), bool(getattr(b, "blind", False))
            human.append(Pair(article_id, reference_side(a), reference_side(b), blind_a if blind_a == blind_b else None))
    return Alignment(
        pairs=pairs,
        human_pairs=human,
        n_drafts=len(by_article) + draft_dupes,
        n_references=len(refs),
        skipped=len(refs) - len(completed),
        duplicates=draft_dupes + ref_dupes,
        references_without_draft=sorted(set(missing)),
        drafts_without_reference=len(set(by_article) - set(per_article)),
        error_articles=sorted(set(errors)),
    )
