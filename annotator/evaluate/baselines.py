"""Baselines a candidate must beat, and warnings that name a lazy model.

An accuracy of 0.75 means nothing alone: if 75% of the reviewed articles are incidents, a model
that answers "AI incident" every time scores exactly that. So every field is reported beside two
baselines that need no model at all:

- majority: always answer the reference's most common value (for a multi field: the set of the
  tags more than half of the references carry);
- label prior: answer at random with the reference's value frequencies (expected score).

and a skill score, (candidate - baseline) / (1 - baseline): 0 is no better than the baseline, 1 is
perfect, below 0 is worse. For single fields these are metrics of the confusion matrix, so they
get bootstrap intervals with every other metric (and thresholds can gate them); for multi fields
they are computed on micro F1 over the same article resamples.

The warnings look at the candidate's answers themselves: one value for (almost) every article, a
constant field, tags listed in the taxonomy's own order (a model copying the label guide).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from annotator.evaluate.align import Pair
from annotator.evaluate.bootstrap import ci95, resample_counts
from annotator.evaluate.chance import nan_div
from annotator.evaluate.model import FieldBaseline
from annotator.taxonomy import Field, Taxonomy

ALMOST_ALL = 0.8  # one value this common among the candidate's answers, and clearly more than among the references
MARGIN = 0.15
ORDER_SHARE = 0.8  # share of tagged answers that are a prefix of the taxonomy's order
MIN_ANSWERS = 5  # fewer answers say nothing about habits


# --------------------------------------------------------------------------- single fields: confusion-matrix metrics
# Confusion matrices (..., K, K), rows = reference, columns = candidate (see metrics.py).


def majority_baseline(conf: np.ndarray, field: Field | None = None) -> np.ndarray:
    """Accuracy of always answering the reference's most common value."""
    rows = conf.sum(-1)
    return nan_div(rows.max(-1), rows.sum(-1))


def prior_baseline(conf: np.ndarray, field: Field | None = None) -> np.ndarray:
    """Expected accuracy of answering at random with the reference's value frequencies."""
    rows = conf.sum(-1)
    p = nan_div(rows, rows.sum(-1, keepdims=True))
    return (p * p).sum(-1)


def _skill(score: np.ndarray, base: np.ndarray) -> np.ndarray:
    return nan_div(score - base, 1 - base)


def skill_vs_majority(conf: np.ndarray, field: Field | None = None) -> np.ndarray:
    diag = np.diagonal(conf, axis1=-2, axis2=-1).sum(-1)
    return _skill(nan_div(diag, conf.sum((-1, -2))), majority_baseline(conf))


def skill_vs_prior(conf: np.ndarray, field: Field | None = None) -> np.ndarray:
    diag = np.diagonal(conf, axis1=-2, axis2=-1).sum(-1)
    return _skill(nan_div(diag, conf.sum((-1, -2))), prior_baseline(conf))


SINGLE_BASELINES = {"majority_baseline": majority_baseline, "prior_baseline": prior_baseline,
                    "skill_vs_majority": skill_vs_majority, "skill_vs_prior": skill_vs_prior}


# --------------------------------------------------------------------------- multi fields: micro F1


def _sets(pairs: Sequence[Pair], name: str) -> tuple[list[int], list[set[str]], list[set[str] | None]]:
    keep = [i for i, p in enumerate(pairs) if name in p.reference.labels]
    ref = [set(pairs[i].reference.labels.get(name) or []) for i in keep]
    cand = [None if pairs[i].candidate.error else set(pairs[i].candidate.labels.get(name) or []) for i in keep]
    return keep, ref, cand


def multi_baselines(pairs: Sequence[Pair], art: np.ndarray, n_articles: int, f: Field, n_boot: int, seed: int) -> dict[str, Any] | None:
    """Micro F1 of the candidate, the majority set and the label prior, with skill scores and intervals."""
    keep, ref, cand = _sets(pairs, f.name)
    if not keep:
        return None
    labels = sorted({v for s in ref for v in s} | {v for s in cand if s for v in s})
    col = {v: j for j, v in enumerate(labels)}
    prevalence = Counter(v for s in ref for v in s)
    majority = {v for v, n in prevalence.items() if n > len(ref) / 2}
    # Per pair: candidate tp, fp, fn; majority tp, fp, fn; then reference counts per label.
    stats = np.zeros((len(keep), 6 + len(labels)), dtype=np.float64)
    for row, (r, c) in enumerate(zip(ref, cand, strict=True)):
        c = c or set()  # a failed draft tags nothing
        stats[row, :6] = [len(r & c), len(c - r), len(r - c), len(r & majority), len(majority - r), len(r - majority)]
        for v in r:
            stats[row, 6 + col[v]] = 1
    per_article = np.zeros((n_articles, stats.shape[1]))
    np.add.at(per_article, art[keep], stats)
    n_pairs = np.zeros(n_articles)
    np.add.at(n_pairs, art[keep], 1)

    def scores(sums: np.ndarray, n: np.ndarray) -> dict[str, np.ndarray]:
        tp, fp, fn, mtp, mfp, mfn = (sums[..., i] for i in range(6))
        counts = sums[..., 6:]
        cand_f1 = nan_div(2 * tp, 2 * tp + fp + fn)
        maj_f1 = nan_div(2 * mtp, 2 * mtp + mfp + mfn)
        prior_f1 = nan_div((counts * counts).sum(-1), n * counts.sum(-1))  # sum n_l^2 / (N sum n_l)
        return {"micro_f1": cand_f1, "majority_baseline": maj_f1, "prior_baseline": prior_f1,
                "skill_vs_majority": nan_div(cand_f1 - maj_f1, 1 - maj_f1), "skill_vs_prior": nan_div(cand_f1 - prior_f1, 1 - prior_f1)}

    point = scores(per_article.sum(0), n_pairs.sum())
    draws: dict[str, list[np.ndarray]] = {k: [] for k in point}
    for counts in resample_counts(n_articles, n_boot, seed):
        got = scores(counts @ per_article, counts @ n_pairs)
        for k, v in got.items():
            draws[k].append(v)
    out: dict[str, Any] = {"n": len(keep), "metric": "micro_f1", "majority_set": sorted(majority)}
    for k, v in point.items():
        out[k] = _num(v)
        samples = np.concatenate(draws[k]) if draws[k] else None
        out.setdefault("ci95", {})[k] = None if samples is None else [_num(x) for x in ci95(samples)]
    return out


def _num(x: Any) -> float | None:
    x = float(x)
    return None if np.isnan(x) or np.isinf(x) else round(x, 6)


# --------------------------------------------------------------------------- the block and the warnings


def baselines(fields: Mapping[str, Any], pairs: Sequence[Pair], art: np.ndarray, n_articles: int, tax: Taxonomy,
              n_boot: int, seed: int) -> dict[str, FieldBaseline]:
    """field -> {metric, candidate, majority_baseline, prior_baseline, skill_vs_majority, skill_vs_prior, ci95}."""
    out: dict[str, FieldBaseline] = {}
    for f in tax.label_fields:
        scored = fields.get(f.name)
        if scored is None or not scored.n:
            continue
        if f.kind == "single":
            ci = {k: scored.interval(k) for k in SINGLE_BASELINES} | {"candidate": scored.interval("accuracy")}
            out[f.name] = FieldBaseline(metric="accuracy", n=scored.n, candidate=scored.metric("accuracy"),
                                        **{k: scored.metric(k) for k in SINGLE_BASELINES}, ci95=ci)
        else:
            multi = multi_baselines(pairs, art, n_articles, f, n_boot, seed)
            if multi:
                multi["candidate"] = multi.pop("micro_f1")
                multi["ci95"]["candidate"] = multi["ci95"].pop("micro_f1")
                out[f.name] = FieldBaseline.model_validate(multi)
    return out


def not_beating(block: Mapping[str, FieldBaseline]) -> list[str]:
    """The summary's first lines: fields where the candidate does not beat the majority baseline."""
    lines = []
    for name, b in block.items():
        skill, ci = b.skill_vs_majority, b.ci95.get("skill_vs_majority")
        if skill is None or b.candidate is None or b.majority_baseline is None:
            continue
        unsure = bool(ci and ci[0] is not None and ci[0] <= 0)
        if skill <= 0 or unsure:
            interval = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci and ci[0] is not None else ""
            verdict = "do not beat" if skill <= 0 else "are not clearly better than"
            lines.append(
                f"{name}: the drafts {verdict} the majority baseline: {b.metric} {b.candidate:.2f} against "
                f"{b.majority_baseline:.2f} for always answering the most common value (skill {skill:.2f}{interval})"
            )
    return lines


def _value_key(v: Any) -> Any:
    return tuple(sorted(v)) if isinstance(v, list) else v


def _prefix(tags: Any, order: Sequence[str]) -> bool:
    """Tags that are the first values of the taxonomy's list, in its order."""
    return bool(tags) and list(tags) == list(order[:len(tags)])


def lazy_warnings(pairs: Sequence[Pair], tax: Taxonomy) -> list[str]:
    """What the candidate's own answers give away: one value for (almost) all, a constant field,
    tags in the taxonomy's order."""
    out: list[str] = []
    answered = [p for p in pairs if not p.candidate.error]
    for f in tax.label_fields:
        both = [(p.candidate.labels.get(f.name), p.reference.labels.get(f.name))
                for p in answered if f.name in p.reference.labels and f.name in p.candidate.labels]
        if len(both) < MIN_ANSWERS:
            continue
        cand = Counter(_value_key(c) for c, _ in both)
        ref = Counter(_value_key(r) for _, r in both)
        top, n_top = cand.most_common(1)[0]
        share, ref_share = n_top / len(both), max(ref.values()) / len(both)
        shown = "nothing" if top in (None, ()) else (", ".join(top) if isinstance(top, tuple) else top)
        if len(cand) == 1 and len(ref) > 1:
            out.append(f"{f.name}: constant: the drafts give {shown!r} for all {len(both)} articles, the references "
                       f"{len(ref)} different answers")
        elif share >= ALMOST_ALL and share >= ref_share + MARGIN:
            out.append(f"{f.name}: one answer for almost every article: {shown!r} in {share:.0%} of the drafts, "
                       f"while the most common reference answer covers {ref_share:.0%}")
        if f.kind == "multi":
            tagged = [(c, r) for c, r in both if c]
            if len(tagged) >= MIN_ANSWERS:
                in_order = sum(_prefix(c, f.value_ids) for c, _ in tagged) / len(tagged)
                ref_order = sum(_prefix(r, f.value_ids) for _, r in tagged) / len(tagged)
                if in_order >= ORDER_SHARE and in_order >= ref_order + MARGIN:
                    out.append(f"{f.name}: tags follow the taxonomy's order: {in_order:.0%} of the tagged drafts list the "
                               f"first tags of the label guide in its order (references: {ref_order:.0%})")
    return out
