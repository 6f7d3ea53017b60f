"""The alternative annotator test: small panels worked by hand, and the behaviour the paper describes."""

from __future__ import annotations

import math
import random

import pytest
from scipy import stats

from annotator.evaluate.alt_test import alt_test, alt_tests
from annotator.records import Draft, GoldRecord
from annotator.simulate import SimulatedReviewer, simulate_reviews
from annotator.taxonomy import load_taxonomy

# --------------------------------------------------------------------------- worked by hand

#   article  A  B  C  model
#   1        x  x  x  x
#   2        x  y  x  y
#   3        y  y  y  x
#   4        x  x  y  x
TIE_PANEL = {
    "A": {1: "x", 2: "x", 3: "y", 4: "x"},
    "B": {1: "x", 2: "y", 3: "y", 4: "x"},
    "C": {1: "x", 2: "x", 3: "y", 4: "y"},
}
TIE_MODEL = {1: "x", 2: "y", 3: "x", 4: "x"}


def test_small_panel_by_hand_ties_count_for_both() -> None:
    # Leave A out: rest = B, C.
    #   1: rest x,x   A 1.0  model 1.0  tie            d = reviewer win − model win = 1 − 1 = 0
    #   2: rest y,x   A 0.5  model 0.5  tie            d = 0
    #   3: rest y,y   A 1.0  model 0.0  A wins         d = 1
    #   4: rest x,y   A 0.5  model 0.5  tie            d = 0
    #   d = [0,0,1,0]: mean 0.25, sd 0.5, se 0.25, t = (0.25 − 0.2)/0.25 = 0.2 (df 3); model wins 3/4.
    # Leave B out: rest = A, C: 1 tie, 2 (B y 0, model y 0) tie, 3 B wins, 4 (rest x,y) tie: same d as A.
    # Leave C out: rest = A, B: 1 tie, 2 (rest x,y: 0.5 each) tie, 3 C wins, 4 (rest x,x: C 0, model 1) model wins
    #   d = [0,0,1,−1]: mean 0, sd √(2/3), se √(2/3)/2, t = −0.2/0.40825 = −0.4899 (df 3); model wins 3/4.
    # No p is small: nobody rejected, winning rate 0, advantage probability (0.75·3)/3 = 0.75.
    result = alt_test(TIE_MODEL, TIE_PANEL, epsilon=0.2, min_articles=4)
    per = result.per_annotator
    assert per["A"].model_win_rate == per["C"].model_win_rate == 0.75
    assert per["A"].reviewer_win_rate == 1.0 and per["C"].reviewer_win_rate == 0.75
    assert per["A"].p_value == pytest.approx(stats.t.cdf(0.2, 3))
    assert per["B"].p_value == pytest.approx(stats.t.cdf(0.2, 3))
    assert per["C"].p_value == pytest.approx(stats.t.cdf(-0.2 / (math.sqrt(2 / 3) / 2), 3))
    assert result.annotators == 3
    assert result.winning_rate == 0.0
    assert result.advantage_probability == pytest.approx(0.75)
    assert result.passed is False


def test_small_panel_by_hand_model_beats_every_reviewer() -> None:
    # 12 articles, truth x everywhere, the model always says x. A errs (y) on 1–4, B on 5–8, C on 9–12.
    # Leave A out: on 1–4 the rest say x,x: A 0, model 1, model wins, d = −1; on 5–12 one of the rest
    # says y: A 0.5, model 0.5, tie, d = 0. d = [−1]*4 + [0]*8: mean −1/3, sd √(8/33) = 0.49237,
    # se = 0.49237/√12 = 0.14213, t = (−1/3 − 0.2)/0.14213 = −3.7528 (df 11), p = 0.00160. Same for B, C.
    # Benjamini–Yekutieli, m = 3, H₃ = 11/6: thresholds (i/3)·0.05/H₃ = 0.00909, 0.01818, 0.02727;
    # all three p = 0.0016 are below the largest → all rejected: winning rate 1, passed.
    # The model is at least as good on every article: advantage probability 1.
    panel = {name: {i: "x" for i in range(1, 13)} for name in "ABC"}
    for name, wrong in zip("ABC", (range(1, 5), range(5, 9), range(9, 13)), strict=True):
        for i in wrong:
            panel[name][i] = "y"
    result = alt_test({i: "x" for i in range(1, 13)}, panel, epsilon=0.2, min_articles=12)
    t = (-1 / 3 - 0.2) / (math.sqrt(8 / 33) / math.sqrt(12))
    for name in "ABC":
        assert result.per_annotator[name].p_value == pytest.approx(stats.t.cdf(t, 11))
        assert result.per_annotator[name].model_wins is True
    assert stats.t.cdf(t, 11) == pytest.approx(0.00160, abs=5e-5)
    assert result.winning_rate == 1.0
    assert result.advantage_probability == 1.0
    assert result.passed is True


def test_benjamini_yekutieli_is_stricter_than_each_test_alone() -> None:
    # 12 articles, truth and model x; A errs on 0–2, B on 3–5, C on 6–8, ε = 0.
    # Leave A out: on 0–2 A 0, model 1 → d = −1; elsewhere a tie → d = 0. d = [−1]*3 + [0]*9: mean −0.25,
    # sd √(27/132) = 0.45227, se 0.13056, t = −0.25/0.13056 = −1.9149 (df 11), p = 0.0409. Same for B and C.
    # Each p < 0.05 alone, but BY with m = 3 needs p ≤ 0.02727 for the largest: nobody rejected, rate 0.
    panel = {name: {i: "x" for i in range(12)} for name in "ABC"}
    for name, wrong in zip("ABC", (range(0, 3), range(3, 6), range(6, 9)), strict=True):
        for i in wrong:
            panel[name][i] = "y"
    result = alt_test({i: "x" for i in range(12)}, panel, epsilon=0.0, min_articles=12)
    t = -0.25 / (math.sqrt(27 / 132) / math.sqrt(12))
    for name in "ABC":
        assert result.per_annotator[name].p_value == pytest.approx(stats.t.cdf(t, 11))
        assert result.per_annotator[name].p_value < 0.05
        assert result.per_annotator[name].model_wins is False
    assert stats.t.cdf(t, 11) == pytest.approx(0.0409, abs=5e-4)
    assert result.winning_rate == 0.0 and result.passed is False
    # With the default ε = 0.2 the same panel is a clear win: t = (−0.25 − 0.2)/0.13056 = −3.4467, p = 0.0027.
    assert alt_test({i: "x" for i in range(12)}, panel, min_articles=12).winning_rate == 1.0


def test_no_spread_takes_the_t_statistics_limit() -> None:
    # Every article a tie (reviewers and model all say x): d = 0 everywhere, sd 0. Against ε = 0.2 the mean 0
    # is below ε with certainty (t → −∞, p = 0); against ε = 0 it is not below (p = 1).
    panel = {name: {i: "x" for i in range(30)} for name in "AB"}
    model = {i: "x" for i in range(30)}
    assert alt_test(model, panel).per_annotator["A"].p_value == 0.0
    assert alt_test(model, panel, epsilon=0.0).per_annotator["A"].p_value == 1.0


def test_reviewers_with_fewer_than_30_articles_are_not_tested() -> None:
    panel = {name: {i: "x" for i in range(29)} for name in "AB"}
    result = alt_test({i: "x" for i in range(29)}, panel)
    assert result.annotators == 0
    assert result.winning_rate is None and result.passed is None
    assert "30" in result.missing and "1 more" in result.missing
    assert result.per_annotator["A"].model_dump(exclude_none=True) == {"articles": 29, "tested": False}


def test_too_few_reviewers_says_what_is_missing() -> None:
    assert "no blind reviews" in alt_test({1: "x"}, {}).missing
    assert "single reviewer" in alt_test({i: "x" for i in range(40)}, {"A": {i: "x" for i in range(40)}}).missing
    # two reviewers but never on the same article
    panel = {"A": {i: "x" for i in range(40)}, "B": {i: "x" for i in range(40, 80)}}
    assert "two or more reviewers" in alt_test({i: "x" for i in range(80)}, panel).missing


# --------------------------------------------------------------------------- the paper's behaviour


TAX = load_taxonomy("oecd_aim")
PRIMARY = TAX.field(TAX.primary)


def _truth(n: int, seed: int) -> list[GoldRecord]:
    rng = random.Random(seed)
    return [GoldRecord(article_id=f"a{i}", labels={PRIMARY.name: rng.choice(PRIMARY.value_ids)}, rationale="r") for i in range(n)]


def _blind_panel(truth: list[GoldRecord], drafts: list[Draft], noise: float, seed: int) -> dict:
    reviewers = [SimulatedReviewer(name=f"r{i}", noise=noise) for i in range(5)]
    reviews = simulate_reviews(TAX, truth, drafts, reviewers, blind={g.article_id for g in truth}, blind_reviewers=3, seed=seed)
    return alt_tests(TAX, {d.article_id: d for d in drafts}, reviews, epsilon=0.2)[PRIMARY.name]


@pytest.mark.parametrize("seed", range(5))
def test_a_model_no_better_than_chance_fails(seed: int) -> None:
    truth = _truth(150, seed)
    rng = random.Random(1000 + seed)
    drafts = [Draft(article_id=g.article_id, labels={PRIMARY.name: rng.choice(PRIMARY.value_ids)}) for g in truth]
    result = _blind_panel(truth, drafts, noise=0.15, seed=seed)
    assert result.annotators == 5
    assert result.passed is False
    assert result.winning_rate == 0.0
    assert result.advantage_probability < 0.5


@pytest.mark.parametrize("seed", range(5))
def test_a_model_that_matches_the_truth_passes_against_noisy_reviewers(seed: int) -> None:
    truth = _truth(150, seed)
    drafts = [Draft(article_id=g.article_id, labels=dict(g.labels)) for g in truth]
    result = _blind_panel(truth, drafts, noise=0.3, seed=seed)
    assert result.annotators == 5
    assert result.passed is True
    assert result.winning_rate >= 0.8
    assert result.advantage_probability > 0.8


def test_assisted_reviews_are_not_used() -> None:
    # The same perfect model, but every review assisted: nothing blind, so nothing to test.
    truth = _truth(150, 0)
    drafts = [Draft(article_id=g.article_id, labels=dict(g.labels)) for g in truth]
    reviewers = [SimulatedReviewer(name=f"r{i}", noise=0.3, anchoring=0.9) for i in range(5)]
    reviews = simulate_reviews(TAX, truth, drafts, reviewers, assisted_reviewers=3, seed=0)
    result = alt_tests(TAX, {d.article_id: d for d in drafts}, reviews)[PRIMARY.name]
    assert result.winning_rate is None
    assert "no blind reviews" in result.missing
