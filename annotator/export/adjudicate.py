"""Adjudication: one article's completed reviews become one decision, or a conflict for a lead.

Pure functions over `Review` records; each annotator counts once (their latest review).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from annotator.errors import ConfigError
from annotator.records import Review, newer_key
from annotator.taxonomy import Taxonomy

POLICIES = ("latest", "majority", "lead")

class Decision(BaseModel):
    """The labels an article gets, and the reviews they were decided from."""

    article_id: str
    labels: dict[str, Any]
    rationale: str | None
    reviews: list[Review]


class Conflict(BaseModel):
    """Reviews the policy cannot decide between: a lead has to."""

    article_id: str
    policy: str
    reason: str
    fields: list[str] = Field(default_factory=list)
    reviews: list[dict[str, Any]] = Field(default_factory=list)


def is_completed(review: Review) -> bool:
    """Skipped and cancelled annotations are not answers."""
    extra = review.model_extra or {}
    return not review.skipped and not extra.get("was_cancelled") and not extra.get("cancelled")


def _canon(tax: Taxonomy, labels: Mapping[str, Any]) -> dict[str, Any]:
    """Labels in a comparable form: multi fields as a tuple in taxonomy order."""
    return {f.name: f.canonical(labels.get(f.name)) for f in tax.label_fields}


def _plain(tax: Taxonomy, canon: Mapping[str, Any]) -> dict[str, Any]:
    return {f.name: list(canon[f.name]) if f.kind == "multi" else canon[f.name] for f in tax.label_fields}


def latest_per_annotator(reviews: Sequence[Review]) -> list[Review]:
    """One review per annotator (their latest); a re-pulled or edited annotation is one vote, not two."""
    by_person: dict[str, Review] = {}
    for i, r in enumerate(reviews):
        key = r.annotator or f"#{i}"
        if key not in by_person or newer_key(r) >= newer_key(by_person[key]):
            by_person[key] = r
    return sorted(by_person.values(), key=newer_key)


def _conflict(tax: Taxonomy, reviews: Sequence[Review], policy: str, reason: str, fields: Iterable[str]) -> Conflict:
    return Conflict(
        article_id=reviews[0].article_id,
        policy=policy,
        reason=reason,
        fields=list(fields),
        reviews=[
            {"annotator": r.annotator, "labels": _plain(tax, _canon(tax, r.labels)), "rationale": r.rationale,
             "updated_at": r.updated_at, "task_id": r.task_id}
            for r in reviews
        ],
    )


def _differing(tax: Taxonomy, reviews: Sequence[Review]) -> list[str]:
    canons = [_canon(tax, r.labels) for r in reviews]
    return [f.name for f in tax.label_fields if len({c[f.name] for c in canons}) > 1]


def _decide(reviews: Sequence[Review], labels: Mapping[str, Any], source: Review) -> Decision:
    return Decision(article_id=source.article_id, labels=dict(labels), rationale=source.rationale, reviews=list(reviews))


def _unanimous(tax: Taxonomy, reviews: Sequence[Review], all_reviews: Sequence[Review], policy: str, reason: str) -> Decision | Conflict:
    differing = _differing(tax, reviews)
    if differing:
        return _conflict(tax, all_reviews, policy, reason, differing)
    latest = reviews[-1]
    return _decide(all_reviews, _plain(tax, _canon(tax, latest.labels)), latest)


def _majority(tax: Taxonomy, reviews: Sequence[Review]) -> Decision | Conflict:
    n = len(reviews)
    canons = [_canon(tax, r.labels) for r in reviews]
    result: dict[str, Any] = {}
    undecided: list[str] = []
    for f in tax.label_fields:
        if f.kind == "single":
            votes = Counter(c[f.name] for c in canons)
            value, top = votes.most_common(1)[0]
            if top * 2 > n:
                result[f.name] = value
            else:
                undecided.append(f.name)
            continue
        votes = Counter(v for c in canons for v in c[f.name])
        if any(count * 2 == n for count in votes.values()):
            undecided.append(f.name)
        result[f.name] = tuple(v for v in f.value_ids if votes[v] * 2 > n)
    if undecided:
        return _conflict(tax, reviews, "majority", "no strict majority (more than half of the reviewers)", undecided)
    # The rationale comes from the latest reviewer whose labels are the decided ones, if any.
    agreeing = [r for r, c in zip(reviews, canons, strict=True) if c == result]
    primary = [r for r, c in zip(reviews, canons, strict=True) if c[tax.primary] == result[tax.primary]]
    source = (agreeing or primary or list(reviews))[-1]
    return _decide(reviews, _plain(tax, result), source)


def adjudicate(tax: Taxonomy, reviews: Sequence[Review], policy: str, leads: Iterable[str] = ()) -> Decision | Conflict:
    """Decide one article's labels from its completed reviews, or say why they cannot be decided.

    - `latest`: the most recent review (by `updated_at`); disagreeing reviews with no or equal
      timestamps at the top are a conflict.
    - `majority`: per single field the value more than half of the reviewers gave; per value of a
      multi field, in if more than half gave it, out if fewer than half did; a tie is a conflict.
    - `lead`: reviews by `leads` win; leads who disagree, or disagreeing reviews without a lead,
      are a conflict.
    Each annotator counts once, with their latest review.
    """
    if policy not in POLICIES:
        raise ConfigError(f"unknown policy {policy!r} (use one of {', '.join(POLICIES)})")
    reviews = latest_per_annotator(reviews)
    if not reviews:
        raise ValueError("adjudicate needs at least one completed review")
    if policy == "majority":
        return _majority(tax, reviews)
    if policy == "lead":
        lead_set = set(leads)
        by_leads = [r for r in reviews if r.annotator in lead_set]
        if by_leads:
            return _unanimous(tax, by_leads, reviews, "lead", "the leads' reviews disagree")
        return _unanimous(tax, reviews, reviews, "lead", "reviewers disagree and no lead has reviewed")
    top = newer_key(reviews[-1])
    tied = [r for r in reviews if newer_key(r) == top] if top[0] else list(reviews)
    return _unanimous(tax, tied, reviews, "latest", "disagreeing reviews with no distinct latest updated_at")
