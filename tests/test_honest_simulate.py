"""Simulated reviewers: what the demo and the honest-agreement tests rely on."""

from __future__ import annotations

import random
import statistics

import pytest

from annotator.records import Draft, GoldRecord
from annotator.simulate import SimulatedReviewer, noisy_labels, simulate_reviews
from annotator.taxonomy import load_taxonomy, validate_labels

TAX = load_taxonomy("oecd_aim")


def _data(n: int = 200, seed: int = 0) -> tuple[list[GoldRecord], list[Draft]]:
    rng = random.Random(seed)
    truth = []
    for i in range(n):
        labels = {f.name: rng.choice(f.value_ids) if f.kind == "single" else rng.sample(f.value_ids, rng.randint(0, 3)) for f in TAX.label_fields}
        truth.append(GoldRecord(article_id=f"a{i}", labels=labels, rationale=f"true rationale {i}"))
    drafts = [
        Draft(article_id=g.article_id, labels=noisy_labels(TAX, g.labels, 0.3, rng), rationale=f"draft rationale {g.article_id}", model_version="v1@m")
        for g in truth
    ]
    return truth, drafts


def _same(a: dict, b: dict) -> bool:
    return all((set(a[f.name]) == set(b[f.name])) if f.kind == "multi" else a[f.name] == b[f.name] for f in TAX.label_fields)


PANEL = [SimulatedReviewer(name=n, noise=0.1, anchoring=0.5) for n in ("ana", "ben", "cleo", "dev")]


def test_deterministic_by_seed_and_per_article() -> None:
    truth, drafts = _data()
    blind = {g.article_id for g in truth[::5]}
    one = simulate_reviews(TAX, truth, drafts, PANEL, blind=blind, seed=3)
    assert one == simulate_reviews(TAX, truth, drafts, PANEL, blind=blind, seed=3)
    assert one != simulate_reviews(TAX, truth, drafts, PANEL, blind=blind, seed=4)
    # more articles do not change the reviews of the others
    fewer = simulate_reviews(TAX, truth[:50], drafts, PANEL, blind=blind, seed=3)
    assert fewer == [r for r in one if int(r.article_id[1:]) < 50]


def test_slices_reviewer_counts_and_what_a_blind_reviewer_sees() -> None:
    truth, drafts = _data()
    blind = {g.article_id for g in truth[:40]}
    reviews = simulate_reviews(TAX, truth, drafts, PANEL, blind=blind, blind_reviewers=3, seed=1)
    per_article: dict[str, list[str]] = {}
    for r in reviews:
        per_article.setdefault(r.article_id, []).append(r.annotator)
        assert r.blind == (r.article_id in blind)
        assert not validate_labels(TAX, r.labels)
        if r.blind:
            assert r.model_version is None and r.accepted_as_is is None
        else:
            assert r.model_version == "v1@m" and isinstance(r.accepted_as_is, bool)
    assert all(len(set(names)) == 3 for a, names in per_article.items() if a in blind)
    assert all(len(names) == 1 for a, names in per_article.items() if a not in blind)


def test_anchoring_acts_only_on_assisted_reviews() -> None:
    truth, drafts = _data()
    blind = {g.article_id for g in truth[:100]}
    free = simulate_reviews(TAX, truth, drafts, [p.model_copy(update={"anchoring": 0.0}) for p in PANEL], blind=blind, seed=2)
    pulled = simulate_reviews(TAX, truth, drafts, [p.model_copy(update={"anchoring": 1.0}) for p in PANEL], blind=blind, seed=2)
    by_id = {d.article_id: d for d in drafts}
    for a, b in zip(free, pulled, strict=True):
        if a.blind:
            assert a.labels == b.labels  # nothing to be anchored to
        else:
            # anchoring 1: every answer becomes the draft's
            assert _same(b.labels, by_id[b.article_id].labels)
            assert b.accepted_as_is is True and b.rationale == by_id[b.article_id].rationale


def test_accepted_as_is_means_the_draft_was_kept() -> None:
    truth, drafts = _data()
    by_id = {d.article_id: d for d in drafts}
    reviews = simulate_reviews(TAX, truth, drafts, PANEL, seed=5)
    kept = [r for r in reviews if r.accepted_as_is]
    changed = [r for r in reviews if r.accepted_as_is is False]
    assert kept and changed
    for r in kept:
        d = by_id[r.article_id]
        assert r.rationale == d.rationale
        assert _same(r.labels, d.labels)
    for r in changed:
        assert r.rationale != by_id[r.article_id].rationale
        assert not _same(r.labels, by_id[r.article_id].labels)


def test_noise_sets_the_error_rate_and_blind_reviews_are_slower() -> None:
    truth, drafts = _data(400)
    primary = TAX.primary
    sloppy = [SimulatedReviewer(name="s", noise=0.4)]
    reviews = simulate_reviews(TAX, truth, drafts, sloppy, blind={g.article_id for g in truth}, blind_reviewers=1, seed=0)
    truth_of = {g.article_id: g.labels[primary] for g in truth}
    wrong = statistics.fmean(r.labels[primary] != truth_of[r.article_id] for r in reviews)
    assert wrong == pytest.approx(0.4, abs=0.06)
    mixed = simulate_reviews(TAX, truth, drafts, PANEL, blind={g.article_id for g in truth[:200]}, seed=0)
    blind_t = statistics.median(r.lead_time_s for r in mixed if r.blind)
    assisted_t = statistics.median(r.lead_time_s for r in mixed if not r.blind)
    assert assisted_t / blind_t == pytest.approx(0.5, abs=0.1)


def test_skipped_reviews_carry_no_labels() -> None:
    truth, drafts = _data()
    reviews = simulate_reviews(TAX, truth, drafts, PANEL, skip_rate=0.2, seed=0)
    skipped = [r for r in reviews if r.skipped]
    assert 0.1 < len(skipped) / len(reviews) < 0.3
    assert all(not r.labels and r.accepted_as_is is None for r in skipped)
