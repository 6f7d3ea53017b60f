"""Chance-robust agreement for single fields: Gwet's AC1 and PABAK.

Kappa divides by the agreement expected from each side's marginals, so when one class covers
nearly every article (most news is "Unrelated") kappa drops towards zero even though model and
reviewer agree almost always. AC1 and PABAK answer the same question with a chance term that does
not collapse in that case; reported beside kappa they show whether a low kappa is the prevalence
paradox or real disagreement.

`gwet_ac1` and `pabak` take (model, reviewer) pairs of opaque hashables, where `None` means "no
rating" (a missing cell in irrCAC); callers that treat a null answer as an answer map it to a
category first. `ac1_of_confusion` and `pabak_of_confusion` compute the same from confusion
matrices with any leading batch shape (every cell a rated pair, null a category like any other), so
that the eval harness reports them with bootstrap intervals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable

import numpy as np

from annotator.taxonomy import Field

Pair = tuple[Hashable | None, Hashable | None]


def gwet_ac1(pairs: Iterable[Pair]) -> float | None:
    """Gwet's AC1 for two raters over the categories either side used, as irrCAC's `gwet()`.

    Observed agreement is taken over units both raters rated; the category prevalences over every
    unit rated at least once, each unit weighing 1 however many ratings it has (irrCAC's
    treatment of missing ratings). With a single category in use AC1 is 1, as irrCAC returns.
    None when no unit has two ratings.
    """
    both = agree = units = 0
    prevalence: Counter[Hashable] = Counter()
    for a, b in pairs:
        rated = [x for x in (a, b) if x is not None]
        if not rated:
            continue
        units += 1
        for x in rated:
            prevalence[x] += 1 / len(rated)
        if len(rated) == 2:
            both += 1
            agree += a == b
    if both == 0:
        return None
    q = len(prevalence)
    pa = agree / both
    if q < 2:
        return 1.0
    pe = sum((n / units) * (1 - n / units) for n in prevalence.values()) / (q - 1)
    return (pa - pe) / (1 - pe)


def pabak(pairs: Iterable[Pair], k: int) -> float | None:
    """Prevalence- and bias-adjusted kappa, (k·pₒ − 1)/(k − 1), over units both sides rated.

    `k` is the number of answers the taxonomy allows (not how many occur), which is what makes it
    blind to prevalence; see `allowed_answers`. None without a rated pair or with k < 2.
    """
    n = agree = 0
    for a, b in pairs:
        if a is None or b is None:
            continue
        n += 1
        agree += a == b
    if n == 0 or k < 2:
        return None
    return (k * agree / n - 1) / (k - 1)


def allowed_answers(field: Field) -> int:
    """How many answers a single field allows: its values, plus "no value" when it is optional."""
    return len(field.values) + (0 if field.required else 1)


def nan_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b elementwise, NaN where b is 0: an empty matrix or slice has no rate, not a zero one."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    out = np.full(a.shape, np.nan)
    np.divide(a, b, out=out, where=b != 0)
    return out


def ac1_of_confusion(conf: np.ndarray, field: Field | None = None) -> np.ndarray:
    """AC1 of confusion matrices (..., K, K) (rows one rater, columns the other), as `gwet_ac1`;
    NaN where a matrix is empty."""
    conf = np.asarray(conf, dtype=np.float64)
    n = conf.sum((-1, -2))
    pa = nan_div(np.diagonal(conf, axis1=-2, axis2=-1).sum(-1), n)
    pi = nan_div(conf.sum(-1) + conf.sum(-2), 2 * n[..., None])
    q = (pi > 0).sum(-1)
    pe = nan_div((pi * (1 - pi)).sum(-1), q - 1)
    ac1 = nan_div(pa - pe, 1 - pe)
    return np.where(n == 0, np.nan, np.where(q < 2, 1.0, ac1))


def pabak_of_confusion(conf: np.ndarray, field: Field) -> np.ndarray:
    """PABAK of confusion matrices (..., K, K), with k = `allowed_answers(field)`."""
    conf = np.asarray(conf, dtype=np.float64)
    po = nan_div(np.diagonal(conf, axis1=-2, axis2=-1).sum(-1), conf.sum((-1, -2)))
    k = allowed_answers(field)
    return (k * po - 1) / (k - 1) if k >= 2 else np.full(po.shape, np.nan)
