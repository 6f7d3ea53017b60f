"""Simulated reviewers, for the demo and for tests of the honest-agreement figures.

A real panel cannot tell us the true anchoring effect; a simulated one can. Each simulated
reviewer starts from the true labels, makes their own mistakes (`noise`), and on an assisted task
takes the draft's answer where they would have chosen another with probability `anchoring`. Blind
tasks show no draft, so there is nothing to be anchored to, and reviewers are slower on them.

Everything is a pure function of its inputs and the seed; each article draws from its own random
stream, so adding articles or reviewers does not change the reviews of the others.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydField

from annotator.records import Draft, GoldRecord, LabelValue, Review
from annotator.taxonomy import Field, Taxonomy


class SimulatedReviewer(BaseModel):
    """One simulated annotator.

    `noise`: per single field, the chance of answering something other than the truth (uniformly
    among the other allowed answers); per multi field, the chance of dropping each true tag, and of
    adding one wrong tag. `anchoring`: on assisted tasks, per single field or per tag, the chance
    of taking the draft's answer where the reviewer's own differs. `speed`: multiplies lead times.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    noise: float = PydField(0.1, ge=0, le=1)
    anchoring: float = PydField(0.0, ge=0, le=1)
    speed: float = PydField(1.0, gt=0)


def _answers(f: Field) -> list[str | None]:
    return [*f.value_ids, *([] if f.required else [None])]


def noisy_labels(tax: Taxonomy, labels: Mapping[str, LabelValue], noise: float, rng: random.Random) -> dict[str, LabelValue]:
    """The truth as someone with error rate `noise` would label it (see `SimulatedReviewer`)."""
    out: dict[str, LabelValue] = {}
    for f in tax.label_fields:
        if f.name not in labels:
            continue
        truth = labels[f.name]
        if f.kind == "single":
            others = [v for v in _answers(f) if v != truth]
            out[f.name] = rng.choice(others) if others and rng.random() < noise else truth
        else:
            ids = f.value_ids
            kept = [v for v in (truth or []) if rng.random() >= noise]
            absent = [v for v in ids if v not in kept and v not in (truth or [])]
            if absent and rng.random() < noise:
                kept.append(rng.choice(absent))
            out[f.name] = sorted(kept, key=ids.index)
    return out


def _anchor(tax: Taxonomy, own: dict[str, LabelValue], draft: Mapping[str, LabelValue], strength: float, rng: random.Random) -> dict[str, LabelValue]:
    out = dict(own)
    for f in tax.label_fields:
        if f.name not in own or f.name not in draft:
            continue
        if f.kind == "single":
            if own[f.name] != draft[f.name] and rng.random() < strength:
                out[f.name] = draft[f.name]
        else:
            ids = f.value_ids
            mine, shown = set(own[f.name] or []), set(draft[f.name] or [])
            for v in ids:
                if (v in mine) != (v in shown) and rng.random() < strength:
                    mine ^= {v}
            out[f.name] = [v for v in ids if v in mine]
    return out


def simulate_reviews(
    tax: Taxonomy,
    truth: Iterable[GoldRecord],
    drafts: Iterable[Draft],
    reviewers: Sequence[SimulatedReviewer],
    *,
    blind: Collection[str] = frozenset(),
    blind_reviewers: int = 3,
    assisted_reviewers: int = 1,
    blind_time_s: float = 120.0,
    assisted_time_s: float = 60.0,
    time_sigma: float = 0.4,
    skip_rate: float = 0.0,
    seed: int = 0,
) -> list[Review]:
    """Reviews of every article that has both a truth record and a draft.

    Articles in `blind` get `blind_reviewers` different reviewers who see no draft; the others get
    `assisted_reviewers`, who see it. Lead times are log-normal around `blind_time_s` or
    `assisted_time_s` (the medians, times the reviewer's `speed`) with spread `time_sigma`, so
    the true time ratio is `assisted_time_s / blind_time_s`. A share `skip_rate` of reviews is
    skipped (no labels). An assisted reviewer who ends with the draft's labels keeps its rationale
    (`accepted_as_is`); otherwise they write the true rationale. Blind reviews have nothing to
    accept: `accepted_as_is` is None.
    """
    if not reviewers:
        raise ValueError("simulate_reviews needs at least one reviewer")
    by_article = {d.article_id: d for d in drafts}
    blind_ids = set(blind)
    out: list[Review] = []
    for gold in truth:
        draft = by_article.get(gold.article_id)
        if draft is None:
            continue
        rng = random.Random(f"{seed}:{gold.article_id}")
        is_blind = gold.article_id in blind_ids
        n = min(len(reviewers), blind_reviewers if is_blind else assisted_reviewers)
        for who in rng.sample(list(reviewers), n):
            out.append(_review(tax, gold, draft, who, is_blind, rng, blind_time_s, assisted_time_s, time_sigma, skip_rate))
    return out


def _review(
    tax: Taxonomy,
    gold: GoldRecord,
    draft: Draft,
    who: SimulatedReviewer,
    is_blind: bool,
    rng: random.Random,
    blind_time_s: float,
    assisted_time_s: float,
    time_sigma: float,
    skip_rate: float,
) -> Review:
    base = blind_time_s if is_blind else assisted_time_s
    lead = base * who.speed * math.exp(rng.gauss(0.0, time_sigma))
    common = {
        "article_id": gold.article_id,
        "annotator": who.name,
        "lead_time_s": round(lead, 3),
        "blind": is_blind,
        "model_version": None if is_blind else draft.model_version,
    }
    if rng.random() < skip_rate:
        return Review(**common, skipped=True, accepted_as_is=None)
    labels = noisy_labels(tax, gold.labels, who.noise, rng)
    if is_blind:
        return Review(**common, labels=labels, rationale=gold.rationale, accepted_as_is=None)
    if draft.error is None:
        labels = _anchor(tax, labels, draft.labels, who.anchoring, rng)
    kept = draft.error is None and all(f.same(labels.get(f.name), draft.labels.get(f.name)) for f in tax.label_fields)
    rationale = draft.rationale if kept else gold.rationale
    return Review(**common, labels=labels, rationale=rationale, accepted_as_is=kept)
