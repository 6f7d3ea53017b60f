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
from typing import Any

import numpy as np

from annotator.evaluate.align import Pair
from annotator.evaluate.bootstrap import ci95, resample_counts

MAX_POINTS = 20  # thresholds shown per curve: enough to read the shape, few enough to tabulate


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return set(a or []) == set(b or [])
    return bool(a == b)


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


def selective_curve(pairs: Sequence[Pair], field: str, *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any] | None:
    """The curve of one field over `pairs` (drafts without a confidence for the field are left out
    and counted); None when no pair has one."""
    rows = [(p.article_id, float(c), _same(p.reference.labels.get(field), p.candidate.labels.get(field)))
            for p in pairs
            if p.candidate.error is None and field in p.reference.labels
            and (c := p.candidate.confidence.get(field)) is not None]
    scored = sum(1 for p in pairs if field in p.reference.labels)
    if not rows:
        return None
    ids: dict[str, int] = {}
    art = np.array([ids.setdefault(a, len(ids)) for a, _, _ in rows])
    conf = np.array([c for _, c, _ in rows])
    right = np.array([r for _, _, r in rows], dtype=np.float64)
    thresholds = curve_thresholds(conf)
    above = conf[:, None] >= np.array(thresholds)[None, :]  # (pairs, thresholds)
    n_at = np.zeros((len(ids), len(thresholds)))
    right_at = np.zeros((len(ids), len(thresholds)))
    np.add.at(n_at, art, above)
    np.add.at(right_at, art, above * right[:, None])
    n, k = n_at.sum(0), right_at.sum(0)
    bands: list[np.ndarray] = []
    if n_boot > 0:
        for counts in resample_counts(len(ids), n_boot, seed):
            with np.errstate(invalid="ignore", divide="ignore"):
                bands.append((counts @ right_at) / (counts @ n_at))
    lo_hi = ci95(np.concatenate(bands)) if bands else None
    points = []
    for j, t in enumerate(thresholds):
        points.append({
            "threshold": round(t, 6),
            "share": round(float(n[j] / len(rows)), 6),
            "n": int(n[j]),
            "accuracy": round(float(k[j] / n[j]), 6),
            "ci95": None if lo_hi is None or np.isnan(lo_hi[:, j]).any() else [round(float(lo_hi[0, j]), 6),
                                                                               round(float(lo_hi[1, j]), 6)],
        })
    return {"n": len(rows), "without_confidence": scored - len(rows), "points": points}


def selective_curves(pairs: Sequence[Pair], fields: Sequence[str], *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Per field, the curve against blind references and, separately, against assisted ones."""
    blind = [p for p in pairs if p.blind]
    assisted = [p for p in pairs if not p.blind]
    return {f: {"blind": selective_curve(blind, f, n_boot=n_boot, seed=seed),
                "assisted": selective_curve(assisted, f, n_boot=n_boot, seed=seed)} for f in fields}
