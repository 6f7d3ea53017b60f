"""Selective accuracy: how right the drafts are when only the most confident share is accepted.

For a field, drafts are ordered by their confidence; at each threshold t the curve has a point
(share of drafts with confidence >= t, accuracy of those drafts against the references). It is
what a lead reads before choosing how much to auto-accept: a curve that stays high as the share
grows means confidence orders drafts well. Bands are article-bootstrap percentiles at the same
thresholds (the resamples of `bootstrap.resample_counts`). Blind and assisted references give
separate curves: agreement with assisted reviews is inflated by anchoring.

Pure: aligned pairs in, plain numbers out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy import sparse

from annotator.evaluate.align import Pair
from annotator.evaluate.bootstrap import ci95, resample_counts
from annotator.evaluate.model import Curve, CurvePoint
from annotator.taxonomy import Field

MAX_POINTS = 20  # thresholds shown per curve: enough to read the shape, few enough to tabulate


def curve_thresholds(confidences: np.ndarray, max_points: int = MAX_POINTS) -> list[float]:
    """Distinct confidences, thinned to about `max_points` spread evenly over the share accepted."""
    values = np.unique(confidences)[::-1]  # high to low
    if len(values) <= max_points:
        return [float(v) for v in values]
    ascending = np.sort(confidences)
    shares = (len(ascending) - np.searchsorted(ascending, values, side="left")) / len(ascending)
    wanted = np.linspace(shares[0], 1.0, max_points)
    picks = sorted({int(np.argmin(np.abs(shares - w))) for w in wanted})
    return [float(values[i]) for i in picks]


class _Spec(NamedTuple):
    """One curve to compute: its thresholds and, per pair on it, the article and the threshold bin."""

    field: str
    slice: str
    thresholds: list[float]
    articles: np.ndarray
    bins: np.ndarray  # index of the highest threshold <= the pair's confidence
    right: np.ndarray
    without_confidence: int


def _spec(pairs: Sequence[tuple[int, Pair]], f: Field, name: str) -> _Spec | None:
    field = f.name
    rows = [(a, float(c), f.same(p.reference.labels.get(field), p.candidate.labels.get(field)))
            for a, p in pairs
            if p.candidate.error is None and field in p.reference.labels
            and (c := p.candidate.confidence.get(field)) is not None]
    if not rows:
        return None
    scored = sum(1 for _, p in pairs if field in p.reference.labels)
    conf = np.array([c for _, c, _ in rows])
    thresholds = curve_thresholds(conf)
    if thresholds[-1] > conf.min():
        thresholds.append(float(conf.min()))
    # thresholds descend: the bin of c is the first threshold it reaches
    bins = np.searchsorted(-np.array(thresholds), -conf, side="left")
    return _Spec(field, name, thresholds, np.array([a for a, _, _ in rows]), bins,
                 np.array([r for _, _, r in rows], dtype=np.float64), scored - len(rows))


def selective_curves(pairs: Sequence[Pair], fields: Sequence[Field], *, gold: bool = False, n_boot: int = 1000,
                     seed: int = 0) -> dict[str, dict[Any, Curve]]:
    """Per field, the curve against blind reviews and, separately, against assisted ones (or against
    the gold file); fields without any confidence are left out.

    One pass over the bootstrap resamples serves every curve: each pair adds to one (article,
    threshold bin) cell of a sparse matrix, a resample's counts per bin are one product, and the
    counts at or above each threshold are their running sum.
    """
    ids: dict[str, int] = {}
    indexed = [(ids.setdefault(p.article_id, len(ids)), p) for p in pairs]
    slices = {"gold": indexed} if gold else {"blind": [x for x in indexed if x[1].blind],
                                             "assisted": [x for x in indexed if not x[1].blind]}
    specs = [s for f in fields for name, ps in slices.items() if (s := _spec(ps, f, name)) is not None]
    if not specs:
        return {}
    offsets = np.cumsum([0, *(len(s.thresholds) for s in specs)])
    rows = np.concatenate([s.articles for s in specs])
    cols = np.concatenate([s.bins + offsets[i] for i, s in enumerate(specs)])
    shape = (len(ids), int(offsets[-1]))
    n_bin = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
    k_bin = sparse.csr_matrix((np.concatenate([s.right for s in specs]), (rows, cols)), shape=shape)
    total_n, total_k = np.asarray(n_bin.sum(0)).ravel(), np.asarray(k_bin.sum(0)).ravel()
    boots: list[np.ndarray] = []
    for counts in resample_counts(len(ids), n_boot, seed) if n_boot > 0 else ():
        nb = np.asarray((n_bin.T @ counts.T).T)
        kb = np.asarray((k_bin.T @ counts.T).T)
        acc = np.empty_like(nb, dtype=np.float64)
        for i in range(len(specs)):
            a, b = offsets[i], offsets[i + 1]
            with np.errstate(invalid="ignore", divide="ignore"):
                acc[:, a:b] = np.cumsum(kb[:, a:b], axis=1) / np.cumsum(nb[:, a:b], axis=1)
        boots.append(acc)
    bands = ci95(np.concatenate(boots)) if boots else None
    out: dict[str, dict[Any, Curve]] = {}
    for i, s in enumerate(specs):
        a, b = offsets[i], offsets[i + 1]
        n, k = np.cumsum(total_n[a:b]), np.cumsum(total_k[a:b])
        points = [
            CurvePoint(
                threshold=round(t, 6), share=round(float(n[j] / n[-1]), 6), n=int(n[j]),
                accuracy=round(float(k[j] / n[j]), 6) if n[j] else None,
                ci95=None if bands is None or np.isnan(bands[:, a + j]).any()
                else (round(float(bands[0, a + j]), 6), round(float(bands[1, a + j]), 6)),
            )
            for j, t in enumerate(s.thresholds)
        ]
        out.setdefault(s.field, {})[s.slice] = Curve(n=int(n[-1]), without_confidence=s.without_confidence, points=points)
    return out
