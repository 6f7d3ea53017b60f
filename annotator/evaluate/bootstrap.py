"""Bootstrap intervals with articles resampled, in bounded memory.

A resample is a vector of counts (how often each article was drawn). Sums of per-article
statistics under a resample are then `counts @ stats`, so a chunk of resamples costs one matrix
product and memory is set by the chunk, not by the number of resamples. The draws depend only on
the seed and the number of articles, so two measures given the same seed see the same resamples
(paired comparisons rely on this).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dfield
from typing import Any

import numpy as np
from scipy import sparse

from annotator.taxonomy import Field

CHUNK_ELEMENTS = 2**25  # resample counts held at once (128 MB of float32), whatever the number of resamples
# A chunk is one matrix product over every article's statistics; BLAS repacks those statistics on
# every call, so fewer, taller chunks are several times faster than many thin ones.


@dataclass
class Measure:
    """Per-article sufficient statistics of one field, and how to turn their sums into metrics.

    `dense` is (articles, d); `sets` (articles, distinct sets) counts label sets for MASI alpha.
    `finish(t, q)` maps sums (..., d) and set counts (..., D) to metric arrays (...) or (..., L).
    """

    field: Field
    n: int
    dense: np.ndarray
    finish: Callable[[np.ndarray, np.ndarray | None], dict[str, np.ndarray]]
    sets: sparse.csr_matrix | None = None
    info: dict[str, Any] = dfield(default_factory=dict)

    def point(self) -> dict[str, np.ndarray]:
        t = self.dense.sum(0, dtype=np.float64)[None]
        q = None if self.sets is None else np.asarray(self.sets.sum(0), dtype=np.float64)
        return {k: v[0] for k, v in self.finish(t, q).items()}


def resample_counts(n_articles: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks of (b, n_articles) float32 draw counts. Resample r is
    `bincount(rng.integers(0, n_articles, n_articles))` for the r-th draw of `default_rng(seed)`.

    The chunk is one reused buffer (constant memory): use it before asking for the next.
    """
    rng = np.random.default_rng(seed)
    per_chunk = max(1, min(n_boot, CHUNK_ELEMENTS // max(n_articles, 1)))
    buffer = np.empty((per_chunk, n_articles), dtype=np.float32)
    for start in range(0, n_boot, per_chunk):
        b = min(per_chunk, n_boot - start)
        for row in buffer[:b]:
            row[:] = np.bincount(rng.integers(0, n_articles, n_articles), minlength=n_articles)
        yield buffer[:b]


def bootstrap(measures: Sequence[Measure], n_articles: int, n_boot: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Metric values over `n_boot` resamples of the articles, for every measure (same resamples).

    Returns, per measure, metric name -> array (n_boot, ...). All measures must index the same
    articles (rows of their `dense` and `sets`).
    """
    if not measures or n_boot <= 0 or n_articles == 0:
        return [{} for _ in measures]
    widths = [m.dense.shape[1] for m in measures]
    stacked = np.hstack([m.dense for m in measures]).astype(np.float32, copy=False)
    bounds = np.cumsum([0, *widths])
    parts: list[dict[str, list[np.ndarray]]] = [{} for _ in measures]
    with_sets = [m for m in measures if m.sets is not None]
    set_bounds = dict(zip(map(id, with_sets), np.cumsum([0, *(m.sets.shape[1] for m in with_sets)]).tolist(), strict=False))
    all_sets = sparse.hstack([m.sets for m in with_sets]).T.tocsr() if with_sets else None
    for counts in resample_counts(n_articles, n_boot, seed):
        sums = (counts @ stacked).astype(np.float64)
        set_sums = None if all_sets is None else (all_sets @ counts.T).T.astype(np.float64)
        for i, m in enumerate(measures):
            t = sums[:, bounds[i] : bounds[i + 1]]
            q = None
            if m.sets is not None and set_sums is not None:
                q = set_sums[:, set_bounds[id(m)] : set_bounds[id(m)] + m.sets.shape[1]]
            for name, values in m.finish(t, q).items():
                parts[i].setdefault(name, []).append(values)
    return [{k: np.concatenate(v) for k, v in p.items()} for p in parts]


def ci95(samples: np.ndarray) -> np.ndarray:
    """Percentile interval (2.5 %, 97.5 %) along the first axis, ignoring resamples where the
    metric is undefined; NaN where every resample is."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.shape[0] == 0 or np.isnan(samples).all():
        return np.full((2, *samples.shape[1:]), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        return np.nanpercentile(samples, [2.5, 97.5], axis=0)
