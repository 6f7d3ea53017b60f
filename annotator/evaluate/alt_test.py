"""The alternative annotator test (Calderon, Reichart and Dror, ACL 2025): may the model replace a reviewer?

Agreement figures say how often the model matches people; a lead's question is whether it
represents the reviewers at least as well as one of them does. The test leaves one reviewer out
at a time and asks who agrees better with the rest, the model or the left-out reviewer, with a
cost-benefit margin ε in the model's favour (it is cheaper and faster). Only blind reviews may be
passed in: a reviewer who saw the draft is not independent of it and would flatter the model.

Follows the paper's reference implementation: per article a tie counts as a win for both sides,
a one-sided one-sample t-test per reviewer of (reviewer wins − model wins) < ε, Benjamini–Yekutieli
across the reviewers tested, and the model passes when it wins against at least half of them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

import numpy as np
from scipy import stats

from annotator.evaluate.anchoring import completed
from annotator.evaluate.model import AltTest
from annotator.records import Draft, Review
from annotator.taxonomy import Taxonomy

DEFAULT_EPSILON = 0.2
MIN_ARTICLES = 30  # below this the t-test's normal approximation is not trusted (the paper's rule)
Q_FDR = 0.05

Scorer = Callable[[Any, list[Any]], float]


def accuracy(answer: Any, others: list[Any]) -> float:
    """Share of the remaining reviewers who gave the same answer."""
    return sum(answer == o for o in others) / len(others)


def alt_test(
    model: Mapping[Hashable, Any],
    reviewers: Mapping[str, Mapping[Hashable, Any]],
    *,
    epsilon: float = DEFAULT_EPSILON,
    q: float = Q_FDR,
    min_articles: int = MIN_ARTICLES,
    score: Scorer = accuracy,
) -> AltTest:
    """Run the test. `model` maps article → the model's answer (articles it did not label are absent);
    `reviewers` maps reviewer → article → answer, blind reviews only. A `None` answer is an answer.

    Returns `epsilon`, `annotators` (how many reviewers were tested), `winning_rate` (share of them
    the model beat), `advantage_probability` (mean share of articles where the model did at least as
    well as the left-out reviewer, for comparing models), `passed` (winning rate ≥ 0.5), and
    `per_annotator`: per reviewer `articles`, `tested`, and when tested `model_win_rate`,
    `reviewer_win_rate`, `p_value`, `p_adjusted` (Benjamini–Yekutieli) and `model_wins` (the
    model beat this reviewer). When no reviewer can be tested the figures are None and `missing`
    says what the blind slice lacks.
    """
    by_article: dict[Hashable, list[str]] = {}
    for name, answers in reviewers.items():
        for article in answers:
            by_article.setdefault(article, []).append(name)
    usable = {a for a, names in by_article.items() if len(names) >= 2 and a in model}

    per_annotator: dict[str, dict[str, Any]] = {}
    tested: list[str] = []
    p_values: list[float] = []
    advantage: list[float] = []
    for name, answers in reviewers.items():
        articles = [a for a in answers if a in usable]
        entry: dict[str, Any] = {"articles": len(articles)}
        per_annotator[name] = entry
        if len(articles) < min_articles:
            entry["tested"] = False
            continue
        model_wins = np.empty(len(articles))
        reviewer_wins = np.empty(len(articles))
        for i, article in enumerate(articles):
            rest = [reviewers[other][article] for other in by_article[article] if other != name]
            s_model, s_reviewer = score(model[article], rest), score(answers[article], rest)
            model_wins[i] = s_model >= s_reviewer
            reviewer_wins[i] = s_reviewer >= s_model
        p = _one_sided_p(reviewer_wins - model_wins, epsilon)
        entry.update(
            tested=True,
            model_win_rate=float(model_wins.mean()),
            reviewer_win_rate=float(reviewer_wins.mean()),
            p_value=p,
        )
        tested.append(name)
        p_values.append(p)
        advantage.append(float(model_wins.mean()))

    result: dict[str, Any] = {"epsilon": epsilon, "annotators": len(tested)}
    if not tested:
        return AltTest.model_validate(result | {
            "winning_rate": None,
            "advantage_probability": None,
            "passed": None,
            "missing": _what_is_missing(reviewers, per_annotator, usable, model, min_articles),
            "per_annotator": per_annotator,
        })
    adjusted = stats.false_discovery_control(p_values, method="by")
    for name, p_adj in zip(tested, adjusted, strict=True):
        per_annotator[name]["p_adjusted"] = float(p_adj)
        per_annotator[name]["model_wins"] = bool(p_adj <= q)
    wins = sum(per_annotator[name]["model_wins"] for name in tested)
    winning_rate = wins / len(tested)
    result |= {
        "winning_rate": winning_rate,
        "advantage_probability": float(np.mean(advantage)),
        "passed": winning_rate >= 0.5,
        "per_annotator": per_annotator,
    }
    if len(tested) < 3:
        result["note"] = (
            f"only {len(tested)} reviewer(s) could be tested; the authors recommend at least 3, "
            "with fewer the test checks the model against single people rather than a group"
        )
    return AltTest.model_validate(result)


def _one_sided_p(diff: np.ndarray, epsilon: float) -> float:
    """p of H0 mean(diff) ≥ ε against mean(diff) < ε (scipy's `ttest_1samp(..., alternative="less")`).

    With no spread at all the t statistic is ±infinite; answer its limit instead of a NaN.
    """
    if np.ptp(diff) == 0:
        return 0.0 if diff[0] < epsilon else 1.0
    return float(stats.ttest_1samp(diff, epsilon, alternative="less").pvalue)


def _what_is_missing(
    reviewers: Mapping[str, Mapping[Hashable, Any]],
    per_annotator: Mapping[str, Mapping[str, Any]],
    usable: set[Hashable],
    model: Mapping[Hashable, Any],
    min_articles: int,
) -> str:
    if not reviewers:
        return "no blind reviews: push with --blind-share and --blind-reviewers 2 or more, then pull"
    if len(reviewers) < 2:
        return "blind reviews come from a single reviewer; the test needs at least two reviewers on the same articles"
    if not usable:
        return "no blind article has both a model answer and two or more reviewers (use --blind-reviewers 2 or more)"
    best, most = max(((n, e["articles"]) for n, e in per_annotator.items()), key=lambda x: x[1])
    return (
        f"no reviewer has {min_articles} blind articles that the model and another reviewer also labelled "
        f"(most: {best} with {most}; {len(usable)} usable articles, {len(model)} with a model answer); "
        f"at least {min_articles - most} more blind articles with 2+ reviewers are needed"
    )


def alt_tests(
    tax: Taxonomy,
    drafts: Mapping[str, Draft],
    reviews: Iterable[Review],
    *,
    epsilon: float = DEFAULT_EPSILON,
) -> dict[str, AltTest]:
    """`alt_test.<single field>` from records: blind completed reviews only; a draft with an error
    gave no answer, so its article is not one the model labelled (counted in `model_errors`)."""
    blind = [r for r in completed(reviews) if r.blind]
    errors = sorted({r.article_id for r in blind if r.article_id in drafts and drafts[r.article_id].error is not None})
    out: dict[str, AltTest] = {}
    for f in tax.single_fields:
        model = {a: d.labels.get(f.name) for a, d in drafts.items() if d.error is None and f.name in d.labels}
        panel: dict[str, dict[Hashable, Any]] = {}
        for r in blind:
            if f.name in r.labels:
                panel.setdefault(r.annotator, {})[r.article_id] = r.labels[f.name]
        out[f.name] = alt_test(model, panel, epsilon=epsilon).model_copy(update={"model_errors": len(errors)})
    return out
