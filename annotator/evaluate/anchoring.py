"""How far drafts sway reviewers, and how much review time they save: blind against assisted reviews.

A reviewer who corrects a pre-filled draft agrees with it more often than they would on their own,
so model–reviewer agreement on assisted tasks overstates the model. The blind slice (tasks shown
without a draft, chosen at random per article) measures the same agreement without that pull; the
difference between the slices is the anchoring effect, and the ratio of their review times is what
drafting saves.

Intervals resample articles within each slice (an article's reviews stay together, since several
reviewers of one article are not independent), with integer resampling weights so that one
matrix product scores every field of a batch of resamples at once (`bootstrap.resample_counts`,
whose chunks bound memory whatever the number of resamples).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from annotator.evaluate.bootstrap import resample_counts
from annotator.evaluate.metrics import ERROR
from annotator.evaluate.model import Anchoring, Coverage, LeadTime
from annotator.records import Draft, Review
from annotator.taxonomy import Taxonomy

MIN_BLIND = 30  # fewer blind reviews than this (of a field, or of a class) is too few to conclude


def completed(reviews: Iterable[Review]) -> list[Review]:
    """Completed reviews, the last line per (article, annotator) winning as in `align` (files are
    append-only, so a re-pulled review supersedes the earlier one)."""
    latest: dict[tuple[str, str], Review] = {}
    for r in reviews:
        if r.skipped:
            continue
        key = (r.article_id, r.annotator)
        if key in latest and (r.updated_at or "") < (latest[key].updated_at or ""):
            continue
        latest[key] = r
    return list(latest.values())


def split_slices(reviews: Iterable[Review]) -> tuple[list[Review], list[Review]]:
    """(blind, assisted) completed reviews."""
    done = completed(reviews)
    return [r for r in done if r.blind], [r for r in done if not r.blind]


# --------------------------------------------------------------------------- anchoring


def _agreement_row(fields: Sequence[tuple[str, bool]], draft: Draft, review: Review) -> list[float]:
    """(numerator, denominator) per field of this review's agreement with the draft, flattened.

    Single fields: (1 if equal, 1). Multi fields: micro-F1's (2·tp, 2·tp + fp + fn), so that a ratio
    of sums over reviews is the pooled micro-F1. A draft with an error agrees on nothing, as in the
    harness: a miss on single fields; on multi fields every reviewer tag missed plus one wrong tag
    (the error marker). Fields the review lacks are not scored (0, 0).
    """
    row: list[float] = []
    failed = draft.error is not None
    for name, multi in fields:
        if name not in review.labels:
            row += (0.0, 0.0)
            continue
        theirs = review.labels[name]
        if not multi:
            row += (float(not failed and draft.labels.get(name) == theirs), 1.0)
            continue
        gold = set(theirs or [])
        pred = {ERROR} if failed else set(draft.labels.get(name) or [])
        tp = len(gold & pred)
        row += (2.0 * tp, float(len(gold) + len(pred)))  # 2·tp + fp + fn = |gold| + |pred|
    return row


def _per_article(tax: Taxonomy, drafts: Mapping[str, Draft], reviews: Sequence[Review]) -> tuple[np.ndarray, int]:
    """Matrix articles × (2 · fields) of summed numerators and denominators, and the review count."""
    fields = [(f.name, f.kind == "multi") for f in tax.label_fields]
    articles: dict[str, int] = {}
    index: list[int] = []
    rows: list[list[float]] = []
    for r in reviews:
        draft = drafts.get(r.article_id)
        if draft is not None:
            index.append(articles.setdefault(r.article_id, len(articles)))
            rows.append(_agreement_row(fields, draft, r))
    matrix = np.zeros((len(articles), 2 * len(fields)))
    if rows:
        np.add.at(matrix, np.array(index), np.array(rows))
    return matrix, len(rows)


def _ratio(sums: np.ndarray) -> np.ndarray:
    num, den = sums[..., 0::2], sums[..., 1::2]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _resample_sums(stats_matrix: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Column sums of `n_boot` resamples of the rows (articles, with replacement): n_boot × columns."""
    if stats_matrix.shape[0] == 0:
        return np.zeros((n_boot, stats_matrix.shape[1]))
    stats32 = stats_matrix.astype(np.float32)  # small integers: float32 sums are exact below 2**24
    chunks = [counts @ stats32 for counts in resample_counts(stats_matrix.shape[0], n_boot, seed)]
    return np.vstack(chunks) if chunks else np.zeros((0, stats_matrix.shape[1]))


def _interval(draws: np.ndarray) -> list[float] | None:
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return None
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return [float(lo), float(hi)]


def _bootstrap_p(draws: np.ndarray) -> float | None:
    """Two-sided p of "no difference" from the bootstrap distribution: the smallest level at which
    the percentile interval would exclude 0 (so p < 0.05 exactly when `ci95` excludes 0)."""
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return None
    below = (1 + np.sum(finite <= 0)) / (1 + finite.size)
    above = (1 + np.sum(finite >= 0)) / (1 + finite.size)
    return float(min(1.0, 2 * min(below, above)))


def anchoring(
    tax: Taxonomy,
    drafts: Mapping[str, Draft],
    reviews: Iterable[Review],
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Anchoring]:
    """`anchoring.<field>` for every single and multi field: model–reviewer agreement on assisted
    and on blind reviews (`accuracy` for single fields, `micro_f1` for multi fields), their
    difference (assisted − blind: how much more reviewers agree with a draft they can see), `ci95`
    and `p_value`. Reviews of articles without a draft are left out.
    """
    blind, assisted = split_slices(reviews)
    if not blind:  # nothing to compare with: the assisted figure is the report's own `fields`
        return {f.name: _without_blind(f.kind, len(assisted)) for f in tax.label_fields}
    stats_b, n_b = _per_article(tax, drafts, blind)
    stats_a, n_a = _per_article(tax, drafts, assisted)
    draws = _ratio(_resample_sums(stats_a, n_boot, seed)) - _ratio(_resample_sums(stats_b, n_boot, seed + 1))
    point_a, point_b = _ratio(stats_a.sum(axis=0)), _ratio(stats_b.sum(axis=0))
    out: dict[str, Anchoring] = {}
    for i, f in enumerate(tax.label_fields):
        a, b = point_a[i], point_b[i]
        note = None
        if n_b < MIN_BLIND:
            note = f"too few to conclude: {n_b} blind reviews (at least {MIN_BLIND} needed)"
        elif not np.isfinite(b):
            note = "no blind review scored this field, or neither side gave it a value"
        elif not np.isfinite(a):
            note = "no assisted review scored this field, or neither side gave it a value"
        out[f.name] = Anchoring(
            metric="accuracy" if f.kind == "single" else "micro_f1",
            assisted=_num(a),
            blind=_num(b),
            difference=_num(a - b),
            ci95=_interval(draws[:, i]) if np.isfinite(a - b) else None,
            p_value=_bootstrap_p(draws[:, i]) if np.isfinite(a - b) else None,
            n_assisted=n_a,
            n_blind=n_b,
            note=note,
        )
    return out


def _without_blind(kind: str, n_assisted: int) -> Anchoring:
    return Anchoring(
        metric="accuracy" if kind == "single" else "micro_f1",
        assisted=None,
        blind=None,
        difference=None,
        ci95=None,
        p_value=None,
        n_assisted=n_assisted,
        n_blind=0,
        note="no blind reviews: push with --blind-share to measure anchoring",
    )


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def blind_coverage(tax: Taxonomy, reviews: Iterable[Review], *, min_reviews: int = MIN_BLIND) -> Coverage:
    """Blind reviews per class of the primary field (as the reviewers labelled it), and the classes
    with too few of them for a conclusion about that class."""
    primary = tax.field(tax.primary)
    blind, _ = split_slices(reviews)
    counts = {v: 0 for v in primary.value_ids}
    for r in blind:
        value = r.labels.get(primary.name)
        if value is not None:
            counts[value] = counts.get(value, 0) + 1
    return Coverage(
        field=primary.name,
        n_reviews=len(blind),
        reviews_per_class=counts,
        too_few=[v for v, n in counts.items() if n < min_reviews],
        min_reviews=min_reviews,
    )


# --------------------------------------------------------------------------- lead time


def _weighted_medians(sorted_values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row of integer `weights`, the median of `sorted_values` repeated that many times
    (as `np.median` of the expanded sample: the mean of the two middle values for an even count).

    The rows' running totals are laid end to end, each shifted past the previous row's, so one
    `searchsorted` finds every row's middle positions."""
    cum = np.cumsum(weights.astype(np.int32), axis=1, dtype=np.int32)  # a chunk's draws stay far below 2**31
    rows, width = cum.shape
    total = cum[:, -1]
    shift = np.concatenate([[0], np.cumsum(total)[:-1]])
    flat = (cum + shift[:, None]).ravel()
    lo = np.searchsorted(flat, shift + (total + 1) // 2) - np.arange(rows) * width
    hi = np.searchsorted(flat, shift + total // 2 + 1) - np.arange(rows) * width
    return (sorted_values[lo] + sorted_values[hi]) / 2


def _median_draws(reviews: Sequence[Review], n_boot: int, seed: int) -> np.ndarray:
    times = np.array([r.lead_time_s for r in reviews], dtype=float)
    order = np.argsort(times, kind="stable")
    articles: dict[str, int] = {}
    article_of = np.array([articles.setdefault(r.article_id, len(articles)) for r in reviews])[order]
    draws = [_weighted_medians(times[order], counts[:, article_of]) for counts in resample_counts(len(articles), n_boot, seed)]
    return np.concatenate(draws) if draws else np.zeros(0)


def lead_time(reviews: Iterable[Review], *, n_boot: int = 1000, seed: int = 0) -> LeadTime:
    """Median review time on blind and on assisted tasks, over completed reviews that recorded one,
    and `ratio` = assisted / blind with a `ci95` from resampling articles within each slice: a ratio
    of 0.6 means drafts cut review time by 40%."""
    blind, assisted = split_slices(reviews)
    blind = [r for r in blind if r.lead_time_s is not None]
    assisted = [r for r in assisted if r.lead_time_s is not None]
    out = LeadTime(
        blind_median_s=float(np.median([r.lead_time_s for r in blind])) if blind else None,
        assisted_median_s=float(np.median([r.lead_time_s for r in assisted])) if assisted else None,
        n_blind=len(blind),
        n_assisted=len(assisted),
        ratio=None,
        ci95=None,
    )
    if not blind or not assisted:
        missing = [name for name, rs in (("blind", blind), ("assisted", assisted)) if not rs]
        out.missing = f"no completed {' or '.join(missing)} reviews with a lead time"
        return out
    if out.blind_median_s is None or out.assisted_median_s is None or out.blind_median_s <= 0:
        out.missing = "the blind median review time is 0 s; no ratio"
        return out
    a, b = _median_draws(assisted, n_boot, seed), _median_draws(blind, n_boot, seed + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = a / b
    out.ratio = out.assisted_median_s / out.blind_median_s
    out.ci95 = _interval(draws)
    if len(blind) < MIN_BLIND:
        out.note = f"too few to conclude: {len(blind)} blind reviews with a lead time (at least {MIN_BLIND} needed)"
    return out


def time_saved_sentence(lt: LeadTime) -> str:
    """The summary's sentence: "drafts cut review time by X% (95% CI a–b%)", or why it cannot be said."""
    if lt.ratio is None or lt.assisted_median_s is None or lt.blind_median_s is None:
        return f"time saved by drafts: not measured ({lt.missing or 'no data'})"
    ratio, ci = lt.ratio, lt.ci95
    verb = "cut" if ratio <= 1 else "lengthened"
    pct = abs(1 - ratio) * 100
    text = f"drafts {verb} review time by {pct:.0f}%"
    if ci:
        lo, hi = sorted(((1 - ci[1]) * 100, (1 - ci[0]) * 100))
        text += f" (95% CI {lo:.0f}% to {hi:.0f}% saved)"
    text += f": median {lt.assisted_median_s:.0f} s assisted against {lt.blind_median_s:.0f} s blind"
    if lt.note:
        text += f"; {lt.note}"
    return text
