"""Agreement metrics as functions of per-article sufficient statistics.

Every metric here is a function of sums over articles (a confusion matrix, true/false positive
counts per value, sums of per-pair scores, counts of distinct label sets). So the point
estimate is one sum, and a bootstrap resample is a weighted sum (resample counts times the
per-article statistics): one matrix product per chunk of resamples, whatever the number of
resamples. Metric functions take arrays with any leading batch shape, so the same code gives the
point estimate and a thousand resamples.

Undefined values (kappa when both sides used one class, alpha with a single value, F1 with no
positives) are NaN here and null in reports: a number there would be made up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np
from rapidfuzz.distance import Indel
from scipy import sparse

from annotator.evaluate.align import Pair, Side
from annotator.evaluate.baselines import SINGLE_BASELINES
from annotator.evaluate.bootstrap import Measure
from annotator.evaluate.chance import ac1_of_confusion, nan_div, pabak_of_confusion
from annotator.taxonomy import Field, Taxonomy

ERROR = "(draft error)"  # the value an errored draft gets: it disagrees with every answer


# --------------------------------------------------------------------------- single-valued fields
# Each takes confusion matrices (..., K, K), rows = reference, columns = candidate, and the field.

SingleMetric = Callable[[np.ndarray, Field], np.ndarray]


def _margins(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    diag = np.diagonal(conf, axis1=-2, axis2=-1)
    return conf.sum((-1, -2)), diag, conf.sum(-1), conf.sum(-2)


def accuracy(conf: np.ndarray, field: Field | None = None) -> np.ndarray:
    n, diag, _, _ = _margins(conf)
    return nan_div(diag.sum(-1), n)


def cohen_kappa(conf: np.ndarray, field: Field | None = None) -> np.ndarray:
    """As scikit-learn's `cohen_kappa_score`: undefined (NaN) when chance agreement is 1."""
    n, diag, rows, cols = _margins(conf)
    po = nan_div(diag.sum(-1), n)
    pe = nan_div((rows * cols).sum(-1), n * n)
    return nan_div(po - pe, 1 - pe)


def krippendorff_alpha(conf: np.ndarray, field: Field | None = None) -> np.ndarray:
    """Nominal alpha with two coders per unit (the pair), as the `krippendorff` package computes it.

    The coincidence matrix of two-coder units is conf + conf.T, so alpha follows from the
    confusion matrix alone.
    """
    n, diag, rows, cols = _margins(conf)
    total = 2 * n
    nc = rows + cols
    return 1 - nan_div((total - 1) * (total - 2 * diag.sum(-1)), total * total - (nc * nc).sum(-1))


def macro_f1_single(conf: np.ndarray, field: Field | None = None) -> np.ndarray:
    """As scikit-learn's `f1_score(average="macro")`: over the labels either side used."""
    _, diag, rows, cols = _margins(conf)
    present = (rows + cols) > 0
    f1 = np.where(present, nan_div(2 * diag, rows + cols), 0.0)
    return nan_div(f1.sum(-1), present.sum(-1))


# Other modules may add metrics of a confusion matrix here (name -> function); they appear in
# `fields.<field>` with a bootstrap interval, and thresholds can name them.
SINGLE_METRICS: dict[str, SingleMetric] = {
    "accuracy": accuracy,
    "cohen_kappa": cohen_kappa,
    "krippendorff_alpha": krippendorff_alpha,
    "macro_f1": macro_f1_single,
    # chance-robust beside kappa (issue 9): they stay meaningful when one class dominates
    "gwet_ac1": ac1_of_confusion,
    "pabak": pabak_of_confusion,
    # what needs no model (issue 17): beside every figure, so that 0.75 cannot be read alone
    **SINGLE_BASELINES,
}
MULTI_METRICS = ("micro_f1", "macro_f1", "jaccard", "exact_match", "krippendorff_alpha_masi")
TEXT_METRICS = ("accepted_as_is", "edit_similarity")


def metric_names(f: Field) -> tuple[str, ...]:
    """Scalar metrics reported (and gateable) for a field of this kind."""
    return {"single": tuple(SINGLE_METRICS), "multi": MULTI_METRICS, "text": TEXT_METRICS}[f.kind]


# --------------------------------------------------------------------------- multi-valued fields


def masi_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MASI distance between rows of two boolean set matrices (broadcasting).

    As NLTK's `masi_distance`, except that two empty sets are at distance 0 (NLTK divides by zero).
    """
    a = a.astype(np.float32)
    b = b.astype(np.float32)
    inter = a @ b.T
    sa = a.sum(1)[:, None]
    sb = b.sum(1)[None, :]
    union = sa + sb - inter
    m = np.where(inter == np.minimum(sa, sb), 2 / 3, np.where(inter > 0, 1 / 3, 0.0))
    m[(inter == sa) & (inter == sb)] = 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        d = 1 - inter / union * m
    d[union == 0] = 0.0
    return d.astype(np.float64)


def _pair_masi(r: np.ndarray, c: np.ndarray) -> np.ndarray:
    inter = (r & c).sum(1)
    sr, sc = r.sum(1), c.sum(1)
    union = sr + sc - inter
    m = np.where((inter == sr) & (inter == sc), 1.0, np.where(inter == np.minimum(sr, sc), 2 / 3, np.where(inter > 0, 1 / 3, 0.0)))
    return np.where(union == 0, 0.0, 1 - nan_div(inter, union) * m)


EXACT_SETS = 512  # up to this many distinct label sets, resampled expected disagreement is exact


def _expected_disagreement(distinct: np.ndarray, totals: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, float]:
    """Alpha's expected disagreement is a quadratic form in the counts of distinct label sets:
    sum over s, t of n_s n_t d(s, t). Returns (the distance matrix when small enough to keep, its
    product with the observed counts g = D n, and n.g).

    With many distinct sets the bootstrap uses the first-order expansion n'Dn ~ 2 g.n - n0.g0
    around the observed counts: exact at the point estimate, and off in resamples by a term of
    relative size 1/N, far inside the interval's own width (order 1/sqrt(N)). This keeps the
    resamples linear, so memory and time do not grow with the square of the distinct sets.
    """
    if len(distinct) <= EXACT_SETS:
        dist = masi_distances(distinct, distinct)
        g = dist @ totals
        return dist, g, float(totals @ g)
    g = np.zeros(len(distinct))
    for start in range(0, len(distinct), 1024):
        g[start : start + 1024] = masi_distances(distinct[start : start + 1024], distinct) @ totals
    return None, g, float(totals @ g)


# --------------------------------------------------------------------------- measures


def _text(side: Side, name: str) -> Any:
    if name == "rationale":
        return side.rationale
    return side.labels.get(name)


def _columns(pairs: Sequence[Pair], name: str) -> tuple[list[int], list[Any], list[Any]]:
    """(indices of the pairs whose reference has the field, reference values, candidate values).

    A candidate that failed answers ERROR; one that lacks the field answers None.
    """
    keep = [i for i, p in enumerate(pairs) if name in p.reference.labels]
    ref = [pairs[i].reference.labels[name] for i in keep]
    cand = [ERROR if pairs[i].candidate.error else pairs[i].candidate.labels.get(name) for i in keep]
    return keep, ref, cand


def _per_article(art: np.ndarray, rows: np.ndarray, n_articles: int) -> np.ndarray:
    """Sum per-pair rows (P, d) into per-article rows (A, d)."""
    agg = sparse.csr_matrix((np.ones(len(art), dtype=np.float32), (art, np.arange(len(art)))), shape=(n_articles, len(art)))
    return np.asarray(agg @ rows.astype(np.float32), dtype=np.float32)


def _order(f: Field, seen: set[Any]) -> list[Any]:
    """Labels in taxonomy order, then unknown values, then null, then the draft-error marker."""
    known = [v for v in f.value_ids if v in seen]
    extra = sorted(v for v in seen if v not in f.value_ids and v is not None and v != ERROR)
    return known + extra + [v for v in (None, ERROR) if v in seen]


def single_measure(pairs: Sequence[Pair], art: np.ndarray, n_articles: int, f: Field) -> Measure:
    keep, ref, cand = _columns(pairs, f.name)
    labels = _order(f, set(ref) | set(cand))
    k = len(labels)
    code = {v: i for i, v in enumerate(labels)}
    cells = np.array([code[r] * k + code[c] for r, c in zip(ref, cand, strict=True)], dtype=np.int64)
    a = art[np.array(keep, dtype=np.int64)]
    dense = np.bincount(a * k * k + cells, minlength=n_articles * k * k).reshape(n_articles, k * k).astype(np.float32)

    def finish(t: np.ndarray, q: np.ndarray | None) -> dict[str, np.ndarray]:
        conf = t.reshape(*t.shape[:-1], k, k)
        return {name: fn(conf, f) for name, fn in SINGLE_METRICS.items()}

    rc, cc = cells // k, cells % k
    info = {"labels": labels, "keep": np.array(keep, dtype=np.int64), "right": rc == cc, "miss": (rc != cc).astype(np.float64)}
    return Measure(f, len(keep), dense, finish, info=info)


def _set_codes(ref: list[Any], cand: list[Any], code: Mapping[Any, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each side's label set as an index into the distinct sets, and those sets as boolean rows.

    Label sets repeat a lot, so each distinct one is encoded once.
    """
    keys = list(map(tuple, chain(ref, cand)))
    index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    ids = np.fromiter(map(index.__getitem__, keys), dtype=np.int64, count=len(keys))
    ids_r, ids_c = ids[: len(ref)], ids[len(ref) :]
    distinct = np.zeros((len(index), len(code)), dtype=bool)
    for vs, k in index.items():
        distinct[k, [code[v] for v in vs]] = True
    return ids_r, ids_c, distinct


def multi_measure(pairs: Sequence[Pair], art: np.ndarray, n_articles: int, f: Field) -> Measure:
    keep, ref, cand = _columns(pairs, f.name)
    ref = [r or [] for r in ref]
    cand = [[ERROR] if c == ERROR else (c if isinstance(c, list) else []) for c in cand]
    labels = _order(f, set(chain.from_iterable(ref)) | set(chain.from_iterable(cand)))
    n_lab = len(labels)
    code = {v: i for i, v in enumerate(labels)}
    ids_r, ids_c, distinct = _set_codes(ref, cand, code)
    r, c = distinct[ids_r], distinct[ids_c]
    inter, union = (r & c).sum(1), (r | c).sum(1)
    jaccard = np.where(union == 0, 1.0, nan_div(inter, union))
    exact = (r == c).all(1)
    per_pair = np.empty((len(keep), 3 * n_lab + 4), dtype=np.float32)
    per_pair[:, :n_lab] = r & c
    per_pair[:, n_lab : 2 * n_lab] = c & ~r
    per_pair[:, 2 * n_lab : 3 * n_lab] = r & ~c
    per_pair[:, 3 * n_lab :] = np.column_stack([jaccard, exact, np.ones(len(keep)), _pair_masi(r, c)])
    totals = np.bincount(np.concatenate([ids_r, ids_c]), minlength=len(distinct)).astype(np.float64)
    dist, g, expected0 = _expected_disagreement(distinct, totals)
    linear = g[ids_r] + g[ids_c]
    a = art[np.array(keep, dtype=np.int64)]
    dense = _per_article(a, np.column_stack([per_pair, linear]), n_articles)
    # Centred, so float32 resample sums keep their precision: sum_a w_a h_a = sum_a w_a (h_a - mean) + expected0
    # because every resample draws as many articles as there are.
    dense[:, -1] = (dense[:, -1].astype(np.float64) - expected0 / max(n_articles, 1)).astype(np.float32)  # 0 articles: an empty slice
    sets = None
    if dist is not None:
        sets = sparse.csr_matrix(
            (np.ones(2 * len(a), dtype=np.float32), (np.concatenate([a, a]), np.concatenate([ids_r, ids_c]))), shape=(n_articles, len(distinct))
        )

    def finish(t: np.ndarray, q: np.ndarray | None) -> dict[str, np.ndarray]:
        tp, fp, fn = t[..., :n_lab], t[..., n_lab : 2 * n_lab], t[..., 2 * n_lab : 3 * n_lab]
        jac, exact_, count, masi, lin = (t[..., 3 * n_lab + i] for i in range(5))
        seen = (tp + fp + fn) > 0
        f1 = nan_div(2 * tp, 2 * tp + fp + fn)
        total = 2 * count
        pooled = (q @ dist * q).sum(-1) if dist is not None and q is not None else 2 * lin + expected0
        return {
            "micro_f1": nan_div(2 * tp.sum(-1), (2 * tp + fp + fn).sum(-1)),
            "macro_f1": nan_div(np.where(seen, f1, 0.0).sum(-1), seen.sum(-1)),
            "jaccard": nan_div(jac, count),
            "exact_match": nan_div(exact_, count),
            "krippendorff_alpha_masi": 1 - nan_div(nan_div(masi, count), nan_div(pooled, total * (total - 1))),
            "precision": nan_div(tp, tp + fp),
            "recall": nan_div(tp, tp + fn),
            "f1": f1,
            "support": tp + fn,
        }

    info = {"labels": labels, "keep": np.array(keep, dtype=np.int64), "right": exact, "miss": 1 - jaccard}
    return Measure(f, len(keep), dense, finish, sets=sets, info=info)


def edit_similarity(a: str, b: str) -> float:
    """2·LCS / (|a| + |b|) over words, in [0, 1] (difflib's ratio, computed exactly and fast by
    rapidfuzz): rationales are edited word by word, so words are the unit."""
    return float(Indel.normalized_similarity(a.split(), b.split()))


def text_measure(pairs: Sequence[Pair], art: np.ndarray, n_articles: int, f: Field) -> Measure:
    """accepted_as_is: the reviewed text equals the draft's up to whitespace; edit_similarity."""
    keep = [i for i, p in enumerate(pairs) if _text(p.reference, f.name) is not None]
    rows = np.zeros((len(keep), 3), dtype=np.float32)
    rows[:, 2] = 1
    for row, i in zip(rows, keep, strict=True):
        p = pairs[i]
        cand = None if p.candidate.error else _text(p.candidate, f.name)
        if cand is not None:
            a, b = cand.split(), _text(p.reference, f.name).split()
            row[0] = a == b
            row[1] = 1.0 if a == b else Indel.normalized_similarity(a, b)
    dense = _per_article(art[np.array(keep, dtype=np.int64)], rows, n_articles)

    def finish(t: np.ndarray, q: np.ndarray | None) -> dict[str, np.ndarray]:
        return {"accepted_as_is": nan_div(t[..., 0], t[..., 2]), "edit_similarity": nan_div(t[..., 1], t[..., 2])}

    return Measure(f, len(keep), dense, finish)


def field_measure(pairs: Sequence[Pair], art: np.ndarray, n_articles: int, f: Field) -> Measure:
    return {"single": single_measure, "multi": multi_measure, "text": text_measure}[f.kind](pairs, art, n_articles, f)


# --------------------------------------------------------------------------- calibration

N_BINS = 10


def calibration_measure(pairs: Sequence[Pair], art: np.ndarray, n_articles: int, scored: Measure) -> Measure | None:
    """Expected calibration error of the draft's stated confidence that the field is right.

    Right means the same value (single fields) or the same set (multi fields) as the reference,
    as `scored` (the field's measure) found. Pairs without a numeric confidence, and errored
    drafts, are left out.
    """
    name = scored.field.name
    keep, right = scored.info["keep"], scored.info["right"]
    conf = np.array([np.nan if pairs[i].candidate.error else (pairs[i].candidate.confidence.get(name)) for i in keep], dtype=np.float64)
    has = ~np.isnan(conf)
    if not has.any():
        return None
    cv, rv = np.clip(conf[has], 0.0, 1.0), right[has].astype(np.float64)
    bins = np.minimum((cv * N_BINS).astype(np.int64), N_BINS - 1)
    # Resamples need only (right - confidence) per bin and the count: ECE = sum_b |sum(right - conf)| / n.
    gap = np.zeros((len(cv), N_BINS + 1))
    gap[np.arange(len(cv)), bins] = rv - cv
    gap[:, N_BINS] = 1
    dense = _per_article(art[keep[has]], gap, n_articles)
    count = np.bincount(bins, minlength=N_BINS)
    info = {
        "count": count,
        "confidence": nan_div(np.bincount(bins, weights=cv, minlength=N_BINS), count),
        "accuracy": nan_div(np.bincount(bins, weights=rv, minlength=N_BINS), count),
    }

    def finish(t: np.ndarray, q: np.ndarray | None) -> dict[str, np.ndarray]:
        return {"ece": nan_div(np.abs(t[..., :N_BINS]).sum(-1), t[..., N_BINS])}

    return Measure(scored.field, int(has.sum()), dense, finish, info=info)


def scored_fields(tax: Taxonomy) -> tuple[Field, ...]:
    """The fields the harness scores: single, multi, then text fields, in taxonomy order."""
    return tax.single_fields + tax.multi_fields + tax.text_fields
