"""`evaluate`: drafts and references in, an `EvalReport` (metrics.json's model plus examples) out.

Pure: no files are read or written here (the CLI reads, `write_report` writes). The models in
`annotator.evaluate.model` are the contract other tools read; the README's `## Evaluating` draws
their layout.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from annotator.errors import ConfigError
from annotator.evaluate.align import Pair, align
from annotator.evaluate.alt_test import DEFAULT_EPSILON
from annotator.evaluate.audit import audit_checks
from annotator.evaluate.baselines import baselines, lazy_warnings, not_beating
from annotator.evaluate.bootstrap import Measure, bootstrap, ci95
from annotator.evaluate.draft_checks import draft_checks
from annotator.evaluate.gcpause import gc_paused
from annotator.evaluate.honest import honest_figures, kappa_notes
from annotator.evaluate.links import link_scores
from annotator.evaluate.metrics import (
    ERROR,
    N_BINS,
    calibration_measure,
    field_measure,
    metric_names,
    scored_fields,
)
from annotator.evaluate.model import (
    Agreement,
    Bootstrap,
    Calibration,
    CalibrationBin,
    Compare,
    Confusion,
    Counts,
    Difference,
    Disagreement,
    Errors,
    EvalMetrics,
    EvalReport,
    FieldRow,
    FieldScores,
    Gate,
    Interval,
    LabelScores,
    McNemar,
    MultiField,
    SingleField,
    Slice,
    TaxonomyRef,
    TextField,
)
from annotator.evaluate.selective import selective_curves
from annotator.evaluate.thresholds import Thresholds, check_thresholds
from annotator.records import Draft, GoldRecord, Review
from annotator.taxonomy import Field, Taxonomy

DOMINANT_SHARE = 0.9  # a class this common makes kappa and alpha swing on a handful of articles
N_EXAMPLES = 25


def _num(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else round(x, 6)


def _interval(samples: np.ndarray | None) -> Interval:
    if samples is None:
        return None
    lo, hi = ci95(samples)
    return (_num(lo), _num(hi))


def article_index(pairs: Sequence[Pair]) -> tuple[np.ndarray, int]:
    """Each pair's article as an integer: the unit the bootstrap resamples."""
    ids: dict[str, int] = {}
    art = np.array([ids.setdefault(p.article_id, len(ids)) for p in pairs], dtype=np.int64)
    return art, len(ids)


# --------------------------------------------------------------------------- fields


def _label(v: Any) -> Any:
    return v  # None stays null in JSON; the draft-error marker is a string


def _package(m: Measure, point: Mapping[str, np.ndarray], samples: Mapping[str, np.ndarray]) -> FieldScores:
    names = metric_names(m.field)
    figures: dict[str, Any] = {name: _num(point[name]) if m.n else None for name in names}
    ci = {name: _interval(samples.get(name)) if m.n else None for name in names}
    if m.field.kind == "single":
        labels = m.info["labels"]
        conf = m.dense.sum(0, dtype=np.float64).reshape(len(labels), len(labels))
        return SingleField(n=m.n, **figures, ci95=ci, confusion=Confusion(labels=[_label(v) for v in labels], matrix=conf.astype(int).tolist()),
                           warnings=_kappa_warning(m.field.name, labels, conf, figures))
    if m.field.kind == "multi":
        per_label = {
            v: LabelScores(
                **{k: _num(point[k][j]) for k in ("precision", "recall", "f1")},
                support=int(point["support"][j]),
                ci95={k: _interval(samples[k][:, j]) if k in samples else None for k in ("precision", "recall", "f1")},
            )
            for j, v in enumerate(m.info["labels"])
        }
        return MultiField(n=m.n, **figures, ci95=ci, per_label=per_label)
    return TextField(n=m.n, **figures, ci95=ci)


def _kappa_warning(name: str, labels: list[Any], conf: np.ndarray, out: Mapping[str, Any]) -> list[str]:
    n = conf.sum()
    if n == 0:
        return []
    share = (conf.sum(0) + conf.sum(1)) / (2 * n)
    top = int(np.argmax(share))
    if share[top] < DOMINANT_SHARE:
        return []
    kappa = out.get("cohen_kappa")
    kappa_s = "undefined" if kappa is None else f"{kappa:.2f}"
    return [
        f"{name}: kappa misleads here: {labels[top]!r} covers {share[top]:.0%} of the answers, so chance agreement is "
        f"near 1 and kappa ({kappa_s}) swings on a handful of articles while accuracy is {out['accuracy']:.2f}; "
        f"read the confusion matrix and the per-class F1 instead"
    ]


def _calibration(m: Measure, point: Mapping[str, np.ndarray], samples: Mapping[str, np.ndarray]) -> Calibration:
    bins = [
        CalibrationBin(
            lower=i / N_BINS,
            upper=(i + 1) / N_BINS,
            n=int(m.info["count"][i]),
            confidence=_num(m.info["confidence"][i]),
            accuracy=_num(m.info["accuracy"][i]),
        )
        for i in range(N_BINS)
    ]
    return Calibration(n=m.n, ece=_num(point["ece"]), ci95={"ece": _interval(samples.get("ece"))}, bins=bins)


def _score(
    pairs: Sequence[Pair], tax: Taxonomy, n_boot: int, seed: int, calibration: bool = False
) -> tuple[dict[str, FieldScores], dict[str, Calibration], list[Measure]]:
    art, n_articles = article_index(pairs)
    measures = [field_measure(pairs, art, n_articles, f) for f in scored_fields(tax)]
    cal = [c for m in measures if calibration and m.n and m.field.kind != "text" and (c := calibration_measure(pairs, art, n_articles, m))]
    live = [m for m in measures + cal if m.n]
    samples = dict(zip(map(id, live), bootstrap(live, n_articles, n_boot, seed), strict=True))
    fields = {m.field.name: _package(m, m.point() if m.n else {}, samples.get(id(m), {})) for m in measures}
    calib = {c.field.name: _calibration(c, c.point(), samples[id(c)]) for c in cal}
    return fields, calib, measures


def field_metrics(pairs: Sequence[Pair], tax: Taxonomy, *, n_boot: int = 1000, seed: int = 0) -> dict[str, FieldScores]:
    """`fields` for any set of pairs: every scored field -> its metrics, `n` and `ci95`.

    Apply it to any subset (blind reviews, one annotator, one source); the bootstrap resamples
    the articles of that subset.
    """
    return _score(pairs, tax, n_boot, seed)[0]


def agreement_block(pairs: Sequence[Pair], human_pairs: Sequence[Pair], tax: Taxonomy, *, n_boot: int = 1000, seed: int = 0) -> Slice:
    """Model–reviewer `fields` plus reviewer–reviewer `human_agreement`, in the top-level shape."""
    return Slice(
        n_pairs=len(pairs),
        n_articles=len({p.article_id for p in pairs}),
        fields=field_metrics(pairs, tax, n_boot=n_boot, seed=seed),
        human_agreement=human_agreement(human_pairs, tax, n_boot=n_boot, seed=seed),
    )


def human_agreement(human_pairs: Sequence[Pair], tax: Taxonomy, *, n_boot: int = 1000, seed: int = 0) -> Agreement | None:
    """Reviewer–reviewer agreement, every pair of reviewers of an article: the model's ceiling."""
    if not human_pairs:
        return None
    return Agreement(
        n_pairs=len(human_pairs),
        n_articles=len({p.article_id for p in human_pairs}),
        fields=field_metrics(human_pairs, tax, n_boot=n_boot, seed=seed),
    )


# --------------------------------------------------------------------------- compare


def _correct(p: Pair, f: Field) -> bool:
    return not p.candidate.error and f.same(p.candidate.labels.get(f.name), p.reference.labels.get(f.name))


def mcnemar(baseline_right: Sequence[bool], candidate_right: Sequence[bool], field: str) -> McNemar:
    """Exact McNemar test: a binomial test on the pairs where exactly one side was right."""
    b = sum(1 for x, y in zip(baseline_right, candidate_right, strict=True) if x and not y)
    c = sum(1 for x, y in zip(baseline_right, candidate_right, strict=True) if y and not x)
    p = stats.binomtest(min(b, c), b + c, 0.5).pvalue if b + c else 1.0
    return McNemar(field=field, n=len(baseline_right), baseline_only_right=b, candidate_only_right=c, p_value=_num(p))


def compare_drafts(candidate: Sequence[Pair], baseline: Sequence[Pair], tax: Taxonomy, *, n_boot: int = 1000, seed: int = 0) -> Compare:
    """Candidate minus baseline on the reviews both were paired with, on the same resamples."""
    by_key = {(p.article_id, p.reference.who): p for p in baseline}
    both = [(p, by_key[(p.article_id, p.reference.who)]) for p in candidate if (p.article_id, p.reference.who) in by_key]
    cand, base = [p for p, _ in both], [b for _, b in both]
    art, n_articles = article_index(cand)
    fields_ = scored_fields(tax)
    mc = [field_measure(cand, art, n_articles, f) for f in fields_]
    mb = [field_measure(base, art, n_articles, f) for f in fields_]
    live = [m for m in mc + mb if m.n]
    samples = dict(zip(map(id, live), bootstrap(live, n_articles, n_boot, seed), strict=True))
    out: dict[str, dict[str, Difference]] = {}
    for f, c, b in zip(fields_, mc, mb, strict=True):
        if not c.n:
            continue
        pc, pb, sc, sb = c.point(), b.point(), samples[id(c)], samples[id(b)]
        out[f.name] = {
            name: Difference(
                candidate=_num(pc[name]),
                baseline=_num(pb[name]),
                difference=_num(pc[name] - pb[name]),
                ci95=_interval(sc[name] - sb[name]) if name in sc else None,
            )
            for name in metric_names(f)
        }
    primary = tax.field(tax.primary)
    scored = [(c, b) for c, b in both if primary.name in c.reference.labels]
    return Compare(
        n_pairs=len(both),
        n_articles=n_articles,
        difference="candidate (--drafts) minus baseline (--compare)",
        fields=out,
        mcnemar=mcnemar([_correct(b, primary) for _, b in scored], [_correct(c, primary) for c, _ in scored], primary.name),
    )


# --------------------------------------------------------------------------- examples


def _field_rows(p: Pair, tax: Taxonomy) -> list[FieldRow]:
    rows = []
    for f in tax.label_fields:
        if f.name in p.reference.labels:
            ref, cand = p.reference.labels.get(f.name), p.candidate.labels.get(f.name)
            rows.append(FieldRow(field=f.name, draft=cand, review=ref, agree=f.same(ref, cand)))
    return rows


def worst_disagreements(
    pairs: Sequence[Pair], measures: Sequence[Measure], tax: Taxonomy, titles: Mapping[str, str] | None = None, k: int = N_EXAMPLES
) -> list[Disagreement]:
    """The pairs that disagree most (the primary field counts double), for a lead to read why.

    Failed drafts are left out: they are listed on their own.
    """
    score = np.zeros(len(pairs))
    for m in measures:
        if "miss" in m.info and m.n:
            np.add.at(score, m.info["keep"], m.info["miss"] * (2 if m.field.name == tax.primary else 1))
    failed = np.array([bool(p.candidate.error) for p in pairs], dtype=bool)
    score[failed] = 0
    order = sorted(np.flatnonzero(score > 0), key=lambda i: (-score[i], pairs[i].article_id, pairs[i].reference.who))[:k]
    out = []
    for i in order:
        p = pairs[i]
        out.append(Disagreement(
            article_id=p.article_id,
            title=(titles or {}).get(p.article_id, ""),
            reviewer=p.reference.who,
            score=round(float(score[i]), 3),
            fields=_field_rows(p, tax),
            draft_rationale=p.candidate.rationale,
            review_rationale=p.reference.rationale,
        ))
    return out


# --------------------------------------------------------------------------- evaluate


@gc_paused
def evaluate(
    drafts: Iterable[Draft],
    reviews: Iterable[Review | GoldRecord],
    tax: Taxonomy,
    *,
    compare: Iterable[Draft] | None = None,
    thresholds: Thresholds | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    titles: Mapping[str, str] | None = None,
    alt_epsilon: float = DEFAULT_EPSILON,
) -> EvalReport:
    """Score drafts against reviews or gold records; `EvalMetrics` (annotator.evaluate.model) is the layout."""
    references = list(reviews)
    drafts = list(drafts)
    al = align(drafts, references)
    if not al.pairs:
        raise ConfigError(
            f"nothing to score: no draft shares an article with a completed review or gold record "
            f"({al.n_drafts} drafts, {al.n_references} references, {al.skipped} of them skipped)"
        )
    fields, calibration, measures = _score(al.pairs, tax, n_boot, seed, calibration=True)
    art, n_articles = article_index(al.pairs)
    base = baselines(fields, al.pairs, art, n_articles, tax, n_boot, seed)
    lazy = not_beating(base) + lazy_warnings(al.pairs, tax)  # read first: the summary opens with them
    warnings = lazy + [w for f in fields.values() for w in f.warnings]
    if al.references_without_draft:
        warnings.append(f"{len(al.references_without_draft)} reviewed article(s) have no draft and are not scored, e.g. {al.references_without_draft[0]!r}")
    if al.error_articles:
        warnings.append(f"{len(al.error_articles)} draft(s) failed (error) and count as disagreement on every field")
    metrics = EvalMetrics(
        taxonomy=TaxonomyRef(name=tax.name, version=tax.version),
        counts=Counts(
            drafts=al.n_drafts,
            references=al.n_references,
            skipped=al.skipped,
            duplicates_replaced=al.duplicates,
            pairs=len(al.pairs),
            articles=len({p.article_id for p in al.pairs}),
            references_without_draft=len(al.references_without_draft),
            drafts_without_reference=al.drafts_without_reference,
        ),
        bootstrap=Bootstrap(resamples=n_boot, seed=seed),
        errors=Errors(n=len(al.error_articles), value=ERROR, article_ids=al.error_articles[:100]),
        fields=fields,
        baselines=base,
        lazy=lazy,
        draft_checks=draft_checks(tax, drafts, references),
        human_agreement=human_agreement(al.human_pairs, tax, n_boot=n_boot, seed=seed),
        calibration=calibration,
        warnings=warnings,
    )
    if any(p.blind for p in al.pairs):
        metrics.slices = {
            name: agreement_block(
                [p for p in al.pairs if p.blind is want],
                [h for h in al.human_pairs if h.blind is want],
                tax,
                n_boot=n_boot,
                seed=seed,
            )
            for name, want in (("blind", True), ("assisted", False))
        }
    honest = honest_figures(tax, drafts, references, n_boot=n_boot, seed=seed, epsilon=alt_epsilon)
    if honest is not None:
        metrics.anchoring, metrics.lead_time, metrics.alt_test = honest.anchoring, honest.lead_time, honest.alt_test
        if (blind := metrics.blind()) is not None:
            blind.coverage = honest.coverage
    notes = kappa_notes(metrics.fields)
    if (blind := metrics.blind()) is not None:
        notes += kappa_notes(blind.fields, scope="blind reviews")
    metrics.warnings += [n for n in notes if n not in metrics.warnings]
    if compare is not None:
        other = align(compare, references)
        metrics.compare = compare_drafts(al.pairs, other.pairs, tax, n_boot=n_boot, seed=seed)
    if thresholds:
        checks = check_thresholds(fields, thresholds)
        metrics.thresholds = Gate(passed=all(c.passed for c in checks), checks=checks)
    gold = not any(isinstance(r, Review) for r in references)
    metrics.selective = selective_curves(al.pairs, tax.label_fields, gold=gold, n_boot=n_boot, seed=seed)
    metrics.audit = audit_checks(drafts, [r for r in references if isinstance(r, Review)])
    metrics.link = link_scores(tax, drafts, references)
    metrics.warnings += [a.warning for a in metrics.audit if a.warning]
    return EvalReport(metrics=metrics, examples=worst_disagreements(al.pairs, measures, tax, titles))
