"""Anchoring difference and time saved: do the intervals cover effects we know, because we simulated them?"""

from __future__ import annotations

import random
import statistics

import pytest

from annotator.evaluate.anchoring import anchoring, blind_coverage, lead_time, time_saved_sentence
from annotator.records import Draft, GoldRecord, Review
from annotator.simulate import SimulatedReviewer, noisy_labels, simulate_reviews
from annotator.taxonomy import load_taxonomy

TAX = load_taxonomy("oecd_aim")
PRIMARY = TAX.field(TAX.primary)
MULTI = TAX.multi_fields[0]
M = len(PRIMARY.values)  # answers a reviewer can give on the (required) primary field
DRAFT_ACCURACY = 0.7
NOISES = (0.05, 0.1, 0.15, 0.2, 0.25)


def _world(n: int, seed: int, anchoring_strength: float, blind_share: float = 0.25) -> tuple[dict[str, Draft], list[Review]]:
    rng = random.Random(seed)
    truth = [
        GoldRecord(
            article_id=f"a{i}",
            labels={PRIMARY.name: rng.choice(PRIMARY.value_ids), MULTI.name: rng.sample(MULTI.value_ids, rng.randint(0, 2))},
            rationale="why",
        )
        for i in range(n)
    ]
    drafts = [Draft(article_id=g.article_id, labels=noisy_labels(TAX, g.labels, 1 - DRAFT_ACCURACY, rng), rationale="draft") for g in truth]
    blind = {g.article_id for g in truth if rng.random() < blind_share}
    reviewers = [SimulatedReviewer(name=f"r{i}", noise=nu, anchoring=anchoring_strength) for i, nu in enumerate(NOISES)]
    reviews = simulate_reviews(TAX, truth, drafts, reviewers, blind=blind, blind_reviewers=3, seed=seed)
    return {d.article_id: d for d in drafts}, reviews


def true_effect(a: float) -> float:
    """Expected assisted − blind accuracy on the primary field, from the simulation's parameters.

    A reviewer with noise ν answers the draft's value d on their own with probability
    p = P(d right)·(1 − ν) + P(d wrong)·ν/(M − 1) (a wrong own answer is uniform over the M − 1 others).
    Blind, agreement is p. Assisted, they take d where they would have differed with probability a:
    p + (1 − p)·a. Every review's reviewer is uniform over the panel in both slices, so the effect is
    the panel mean of a·(1 − p).
    """
    ps = [DRAFT_ACCURACY * (1 - nu) + (1 - DRAFT_ACCURACY) * nu / (M - 1) for nu in NOISES]
    return statistics.fmean(a * (1 - p) for p in ps)


def _covers(ci: list[float], x: float) -> bool:
    return ci[0] <= x <= ci[1]


@pytest.mark.slow
def test_interval_covers_the_true_anchoring_effect_and_zero_without_anchoring() -> None:
    replicates, strength = 40, 0.4
    expected = true_effect(strength)
    assert expected == pytest.approx(0.4 * (1 - (0.7 * 0.85 + 0.3 * 0.15 / 3)))  # 0.154 with these parameters
    covered = covered_zero = covered_zero_multi = excluded_zero = 0
    for rep in range(replicates):
        drafts, reviews = _world(600, rep, strength)
        entry = anchoring(TAX, drafts, reviews, n_boot=400, seed=rep)[PRIMARY.name]
        assert entry.metric == "accuracy"
        assert entry.difference == pytest.approx(entry.assisted - entry.blind)
        covered += _covers(entry.ci95, expected)
        excluded_zero += entry.ci95[0] > 0 and entry.p_value < 0.05

        drafts, reviews = _world(600, 1000 + rep, 0.0)
        none = anchoring(TAX, drafts, reviews, n_boot=400, seed=rep)
        covered_zero += _covers(none[PRIMARY.name].ci95, 0.0)
        assert none[MULTI.name].metric == "micro_f1"
        covered_zero_multi += _covers(none[MULTI.name].ci95, 0.0)
    # A 95% interval should cover ~38 of 40; fewer than 34 would happen by chance < 1% of the time.
    assert covered >= 34, f"true effect {expected:.3f} covered in {covered}/{replicates}"
    assert covered_zero >= 34, f"0 covered in {covered_zero}/{replicates} without anchoring"
    assert covered_zero_multi >= 34, f"0 covered in {covered_zero_multi}/{replicates} (multi field) without anchoring"
    # and the interval is tight enough to see an effect of 0.15 with ~450 blind reviews
    assert excluded_zero >= 36, f"anchoring detected in only {excluded_zero}/{replicates}"


def test_multi_field_anchoring_shows_as_higher_micro_f1() -> None:
    drafts, reviews = _world(800, 7, 0.6)
    entry = anchoring(TAX, drafts, reviews, n_boot=300, seed=1)[MULTI.name]
    assert entry.metric == "micro_f1"
    assert entry.ci95[0] > 0 < entry.difference


@pytest.mark.slow
def test_lead_time_ratio_interval_covers_the_simulated_ratio() -> None:
    # Lead times are log-normal with medians 60 s (assisted) and 120 s (blind) times each reviewer's
    # speed; reviewers are drawn alike in both slices, so the true ratio of medians is 0.5.
    covered = 0
    for rep in range(30):
        rng = random.Random(rep)
        truth = [GoldRecord(article_id=f"a{i}", labels={PRIMARY.name: rng.choice(PRIMARY.value_ids)}) for i in range(400)]
        drafts = [Draft(article_id=g.article_id, labels=dict(g.labels)) for g in truth]
        panel = [SimulatedReviewer(name=f"r{i}", speed=s) for i, s in enumerate((0.6, 0.8, 1.0, 1.3, 1.8))]
        blind = {g.article_id for g in truth[:100]}
        reviews = simulate_reviews(TAX, truth, drafts, panel, blind=blind, blind_time_s=120, assisted_time_s=60, seed=rep)
        lt = lead_time(reviews, n_boot=400, seed=rep)
        b = [r.lead_time_s for r in reviews if r.blind]
        a = [r.lead_time_s for r in reviews if not r.blind]
        assert lt.blind_median_s == statistics.median(b) and lt.assisted_median_s == statistics.median(a)
        assert lt.ratio == pytest.approx(statistics.median(a) / statistics.median(b))
        covered += _covers(lt.ci95, 0.5)
    assert covered >= 25, f"ratio 0.5 covered in {covered}/30"


def test_lead_time_uses_completed_reviews_and_says_the_time_saved() -> None:
    reviews = [Review(article_id=f"b{i}", annotator="x", blind=True, lead_time_s=100.0 + i) for i in range(31)]
    reviews += [Review(article_id=f"s{i}", annotator="x", blind=False, lead_time_s=60.0) for i in range(10)]
    reviews += [Review(article_id=f"s{i}", annotator="y", blind=False, skipped=True, lead_time_s=5000.0) for i in range(10)]
    lt = lead_time(reviews, n_boot=200)
    assert lt.blind_median_s == 115.0 and lt.assisted_median_s == 60.0 and lt.n_assisted == 10
    assert lt.ratio == pytest.approx(60 / 115)
    lo, hi = lt.ci95
    assert lo <= 60 / 115 <= hi
    sentence = time_saved_sentence(lt)
    assert sentence.startswith("drafts cut review time by 48%") and "95% CI" in sentence


def test_without_a_blind_slice_the_report_says_what_is_missing() -> None:
    drafts = {"a": Draft(article_id="a", labels={PRIMARY.name: PRIMARY.value_ids[0]})}
    reviews = [Review(article_id="a", annotator="x", labels={PRIMARY.name: PRIMARY.value_ids[0]}, lead_time_s=30.0)]
    entry = anchoring(TAX, drafts, reviews, n_boot=50)[PRIMARY.name]
    assert entry.blind is None and entry.difference is None and entry.ci95 is None and entry.n_assisted == 1
    assert "no blind reviews" in entry.note
    lt = lead_time(reviews)
    assert lt.ratio is None and "blind" in lt.missing
    assert "not measured" in time_saved_sentence(lt)


def test_a_small_blind_slice_is_too_few_to_conclude() -> None:
    drafts, reviews = _world(20, 3, 0.3)
    n_blind = sum(r.blind for r in reviews)
    assert 0 < n_blind < 30
    assert "too few to conclude" in anchoring(TAX, drafts, reviews, n_boot=50)[PRIMARY.name].note
    coverage = blind_coverage(TAX, reviews)
    assert coverage.n_reviews == n_blind
    assert set(coverage.reviews_per_class) == set(PRIMARY.value_ids)
    assert coverage.too_few == list(PRIMARY.value_ids)


def test_error_drafts_count_as_disagreement_in_both_slices() -> None:
    value = PRIMARY.value_ids[0]
    drafts = {"a": Draft(article_id="a", labels={PRIMARY.name: value}, error="timeout"), "b": Draft(article_id="b", labels={PRIMARY.name: value})}
    reviews = [
        Review(article_id="a", annotator="x", labels={PRIMARY.name: value}),
        Review(article_id="b", annotator="x", labels={PRIMARY.name: value}),
        Review(article_id="a", annotator="y", labels={PRIMARY.name: value}, blind=True),
    ]
    entry = anchoring(TAX, drafts, reviews, n_boot=50)[PRIMARY.name]
    assert entry.assisted == 0.5 and entry.blind == 0.0
