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


# --------------------------------------------------------------------------- a model whose confidence we know


class SimulatedModel(BaseModel):
    """A drafting model whose confidence means what the simulation says it means.

    Per field, each draft's confidence is one of `levels` (drawn with the `shares` given), and the
    draft is right with probability `accuracy[i]` at `levels[i]`. Accuracy equal to the level is a
    calibrated model; accuracy below it, an over-confident one. Discrete levels are what agreement
    across k samples gives; the true error rate above any threshold is known exactly (`true_risk`).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    levels: tuple[float, ...]
    shares: tuple[float, ...]
    accuracy: tuple[float, ...]

    def true_risk(self, threshold: float | None) -> float | None:
        """The population error rate of drafts with confidence >= threshold (None: none accepted)."""
        if threshold is None:
            return None
        mass = [(s, 1 - a) for c, s, a in zip(self.levels, self.shares, self.accuracy, strict=True) if c >= threshold - 1e-12]
        total = sum(s for s, _ in mass)
        return sum(s * e for s, e in mass) / total if total else None

    def coverage(self, threshold: float | None) -> float:
        """The population share of drafts with confidence >= threshold."""
        if threshold is None:
            return 0.0
        return sum(s for c, s in zip(self.levels, self.shares, strict=True) if c >= threshold - 1e-12) / sum(self.shares)


LEVELS = (1.0, 0.95, 0.9, 0.8, 0.6)
SHARES = (0.45, 0.15, 0.15, 0.15, 0.10)
CALIBRATED = SimulatedModel(name="calibrated", levels=LEVELS, shares=SHARES, accuracy=(0.99, 0.95, 0.9, 0.8, 0.6))
OVERCONFIDENT = SimulatedModel(name="over-confident", levels=LEVELS, shares=SHARES, accuracy=(0.97, 0.85, 0.75, 0.6, 0.4))


def _wrong(f: Field, truth: LabelValue, rng: random.Random) -> LabelValue:
    if f.kind == "single":
        return rng.choice([v for v in _answers(f) if v != truth])
    have = set(truth or [])
    flip = rng.choice(f.value_ids)
    return [v for v in f.value_ids if (v in have) != (v == flip)]


def simulate_drafts(tax: Taxonomy, truth: Iterable[GoldRecord], model: SimulatedModel, *, seed: int = 0,
                    model_version: str | None = None) -> list[Draft]:
    """One draft per truth record from `model`: per field a confidence level, right or wrong as the
    model's accuracy at that level says. Each article draws from its own stream (see module doc)."""
    version = model_version or f"sim@{model.name}"
    out = []
    for gold in truth:
        rng = random.Random(f"draft:{seed}:{model.name}:{gold.article_id}")
        labels: dict[str, LabelValue] = {}
        confidence: dict[str, float | None] = {}
        for f in tax.label_fields:
            if f.name not in gold.labels:
                continue
            i = rng.choices(range(len(model.levels)), weights=model.shares)[0]
            right = rng.random() < model.accuracy[i]
            labels[f.name] = gold.labels[f.name] if right else _wrong(f, gold.labels[f.name], rng)
            confidence[f.name] = model.levels[i]
        out.append(Draft(article_id=gold.article_id, labels=labels, rationale=gold.rationale, confidence=confidence,
                         model=model.name, model_version=version))
    return out


def random_truth(tax: Taxonomy, n: int, *, seed: int = 0, prefix: str = "a",
                 fields: Collection[str] | None = None) -> list[GoldRecord]:
    """`n` synthetic truth records with every label field (or only `fields`) filled at random."""
    rng = random.Random(f"truth:{seed}")
    out = []
    for i in range(n):
        labels: dict[str, LabelValue] = {}
        for f in tax.label_fields:
            if fields is not None and f.name not in fields:
                continue
            labels[f.name] = rng.choice(f.value_ids) if f.kind == "single" else sorted(
                rng.sample(f.value_ids, rng.randint(0, min(3, len(f.value_ids)))), key=f.value_ids.index)
        out.append(GoldRecord(article_id=f"{prefix}{i}", labels=labels, rationale=f"rationale {i}"))
    return out


class Trial(BaseModel):
    """One simulated calibration: the threshold chosen and what it really delivers."""

    threshold: float | None
    true_risk: float | None  # population error rate above the threshold (None: nothing accepted)
    coverage: float  # population share of drafts accepted
    realised_error: float | None = None  # on fresh test articles, when asked for
    violated: bool


def calibration_trials(tax: Taxonomy, model: SimulatedModel, *, runs: int, n_calibration: int, risk: float,
                       delta: float, field: str = "classification", n_test: int = 0, seed: int = 0) -> list[Trial]:
    """Calibrate `runs` times on fresh blind-reviewed articles and check each promise against the truth.

    Reviewers make no mistakes here, so "wrong" means wrong against the truth and the model's true
    risk above a threshold is known exactly; a run violates the promise when that risk exceeds `risk`.
    With `n_test`, the realised error of accepted drafts on that many fresh articles is reported too.
    """
    from annotator.calibrate import calibrate, draft_confidence

    panel = [SimulatedReviewer(name="blind", noise=0.0)]
    out = []
    for run in range(runs):
        truth = random_truth(tax, n_calibration, seed=seed * 100_003 + run, fields=[field])
        drafts = simulate_drafts(tax, truth, model, seed=seed * 100_003 + run)
        reviews = simulate_reviews(tax, truth, drafts, panel, blind={g.article_id for g in truth}, blind_reviewers=1,
                                   seed=run)
        cal = calibrate(tax, drafts, reviews, [field], risk=risk, delta=delta)
        realised = None
        if n_test and cal.threshold is not None:
            test_truth = random_truth(tax, n_test, seed=seed * 100_003 + run, prefix="t", fields=[field])
            accepted = [(d, g) for d, g in zip(simulate_drafts(tax, test_truth, model, seed=-run - 1), test_truth, strict=True)
                        if (c := draft_confidence(d, [field])) is not None and c >= cal.threshold - 1e-12]
            if accepted:
                realised = sum(d.labels[field] != g.labels[field] for d, g in accepted) / len(accepted)
        true = model.true_risk(cal.threshold)
        out.append(Trial(threshold=cal.threshold, true_risk=true, coverage=model.coverage(cal.threshold),
                         realised_error=realised, violated=true is not None and true > risk))
    return out
