"""Confidence thresholds with a finite-sample risk guarantee, and auto-accept by them.

A lead wants to say: "drafts whose confidence is at least t are accepted without review, and among
them at most `risk` are wrong, with probability at least 1 - `delta`". This module finds the lowest
such t by Learn-then-Test (Angelopoulos, Bates, Candès, Jordan, Lei 2021, "Learn then Test:
Calibrating predictive algorithms to achieve risk control", arXiv:2110.01052):

- For each threshold t of a grid fixed in advance, the null hypothesis H_t says "the error rate of
  drafts with confidence >= t is above `risk`". Given how many calibration drafts have confidence
  >= t (n), their errors are Binomial(n, error rate) when articles are exchangeable, so the exact
  binomial tail P(Binomial(n, risk) <= errors) is a valid p-value (or the Hoeffding-Bentkus bound of
  Bates, Angelopoulos, Lei, Malik, Jordan 2021, for any loss in [0, 1]).
- Fixed-sequence testing: the thresholds are tested from high to low, each at level delta, and the
  walk stops at the first one not rejected. Every threshold passed is certified; the family-wise
  error is at most delta, so the lowest passed threshold keeps its promise with probability
  >= 1 - delta.

Only blind reviews calibrate: a reviewer who saw the draft is anchored to it, so agreement with
assisted reviews overstates how often the draft is right. An article's truth is the plurality of its
blind reviews; a tie counts as an error (conservative). Several fields are calibrated together: a
draft is wrong when any of them is, and its confidence is the lowest of theirs.

Everything here is pure (records in, a `Calibration` out); files are read and written by the CLI.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field
from scipy import stats

from annotator.errors import ConfigError
from annotator.records import Draft, LabelValue, Review, newer_key
from annotator.taxonomy import Taxonomy

Method = Literal["binomial", "hoeffding-bentkus"]
AUTO_ACCEPTED = "auto_accepted"

# Tested from the top down; fixed in advance (a grid chosen from the calibration data would void the
# guarantee). The finer steps at the top matter for log-probability confidences, which crowd near 1.
GRID: tuple[float, ...] = (1.0, 0.9999, 0.999, 0.995, *(round(1 - i / 100, 2) for i in range(1, 101)))


# --------------------------------------------------------------------------- p-values


def binomial_pvalue(errors: int, n: int, risk: float) -> float:
    """P(Binomial(n, risk) <= errors): small when n drafts with this few errors are unlikely under
    an error rate of `risk` or more. Exact for 0/1 losses. 1 when there is nothing to test."""
    if n <= 0:
        return 1.0
    return float(stats.binom.cdf(errors, n, risk))


def hoeffding_bentkus_pvalue(errors: float, n: int, risk: float) -> float:
    """The Hoeffding-Bentkus p-value for a mean loss `errors / n` in [0, 1] (valid for any bounded
    loss, looser than the binomial for 0/1 losses)."""
    if n <= 0:
        return 1.0
    mean = min(errors / n, risk)

    def h1(a: float, b: float) -> float:
        if a <= 0:
            return -math.log(1 - b)
        return a * math.log(a / b) + (1 - a) * math.log((1 - a) / (1 - b))

    hoeffding = math.exp(-n * h1(mean, risk))
    bentkus = math.e * float(stats.binom.cdf(math.ceil(errors - 1e-9), n, risk))
    return min(1.0, hoeffding, bentkus)


def pvalue(method: Method, errors: int, n: int, risk: float) -> float:
    return binomial_pvalue(errors, n, risk) if method == "binomial" else hoeffding_bentkus_pvalue(errors, n, risk)


def min_clean_sample(risk: float, delta: float, method: Method = "binomial") -> int:
    """How many accepted calibration drafts, none of them wrong, certify `risk` at `delta`: the
    least that can certify anything (about log(delta) / log(1 - risk) for the binomial)."""
    n = max(1, math.floor(math.log(delta) / math.log(1 - risk)) - 2)
    while pvalue(method, 0, n, risk) > delta:
        n += 1
    return n


def needed_sample(error_rate: float, risk: float, delta: float, method: Method = "binomial", limit: int = 10**7) -> int | None:
    """The least n at which drafts wrong at `error_rate` certify `risk` at `delta`; None when no
    n does (error rate at or above the risk) or more than `limit` would be needed."""
    if error_rate >= risk:
        return None
    if error_rate == 0:
        return min_clean_sample(risk, delta, method)
    lo, hi = 1, 1
    while pvalue(method, math.floor(hi * error_rate), hi, risk) > delta:
        lo, hi = hi, hi * 2
        if hi > limit:
            return None
    while lo < hi:  # the p-value is nearly monotone in n; bisection finds the first n that passes
        mid = (lo + hi) // 2
        if pvalue(method, math.floor(mid * error_rate), mid, risk) <= delta:
            hi = mid
        else:
            lo = mid + 1
    return hi


# --------------------------------------------------------------------------- calibration data


_TIE = object()  # the plurality of blind answers is tied: no draft matches it


def _norm(v: LabelValue) -> Any:
    return frozenset(v) if isinstance(v, list) else v


def draft_confidence(draft: Draft, fields: Sequence[str]) -> float | None:
    """The lowest confidence of the draft over `fields`; None when any is missing or the draft failed."""
    if draft.error is not None:
        return None
    values = [draft.confidence.get(f) for f in fields]
    if any(v is None for v in values):
        return None
    return min(float(v) for v in values if v is not None)


def blind_truth(reviews: Iterable[Review], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per article, per field, the plurality answer of its blind reviews (None marks a tie, which no
    draft matches). The newest review per (article, annotator) counts; skipped reviews do not."""
    latest: dict[tuple[str, str], Review] = {}
    for r in reviews:
        if not r.blind or r.skipped or (r.model_extra or {}).get("source") == AUTO_ACCEPTED:
            continue
        key = (r.article_id, r.annotator)
        if key not in latest or newer_key(r) >= newer_key(latest[key]):
            latest[key] = r
    by_article: dict[str, list[Review]] = defaultdict(list)
    for (article, _), r in latest.items():
        by_article[article].append(r)
    out: dict[str, dict[str, Any]] = {}
    for article, rs in by_article.items():
        truth: dict[str, Any] = {}
        for f in fields:
            votes = Counter(_norm(r.labels.get(f)) for r in rs if f in r.labels)
            if not votes:
                break
            (top, count), *rest = votes.most_common(2) + [(None, 0)]
            truth[f] = _TIE if rest[0][1] == count else top
        else:
            out[article] = truth
    return out


def draft_loss(draft: Draft, truth: Mapping[str, Any], fields: Sequence[str]) -> int:
    """1 when the draft differs from the truth on any of `fields`."""
    return int(any(_norm(draft.labels.get(f)) != truth[f] or truth[f] is _TIE for f in fields))


def latest_drafts(drafts: Iterable[Draft]) -> dict[str, Draft]:
    """The last draft line per article (drafts files are append-only; a re-draft supersedes)."""
    return {d.article_id: d for d in drafts}


def calibration_points(drafts: Mapping[str, Draft], truth: Mapping[str, Mapping[str, Any]],
                       fields: Sequence[str]) -> list[tuple[float, int]]:
    """(confidence, loss) for every blind-reviewed article whose draft has a confidence."""
    points = []
    for article, t in truth.items():
        d = drafts.get(article)
        c = None if d is None else draft_confidence(d, fields)
        if d is not None and c is not None:
            points.append((c, draft_loss(d, t, fields)))
    return points


# --------------------------------------------------------------------------- Learn then Test


class ThresholdTest(BaseModel):
    """One threshold of the fixed sequence: the calibration drafts at or above it and the test."""

    threshold: float
    n: int  # blind-reviewed drafts with confidence >= threshold
    errors: int
    error_rate: float | None
    p_value: float
    certified: bool


def fixed_sequence(points: Sequence[tuple[float, int]], risk: float, delta: float, method: Method = "binomial",
                   grid: Sequence[float] = GRID) -> tuple[float | None, list[ThresholdTest]]:
    """Test `grid` from high to low at level delta; stop at the first threshold not certified.

    Returns the lowest certified threshold (None when the first fails) and every threshold tested
    (the last one is the one that stopped the walk, when one did).
    """
    order = sorted(points, key=lambda p: -p[0])
    tested: list[ThresholdTest] = []
    chosen = None
    i = errors = 0
    for t in grid:
        while i < len(order) and order[i][0] >= t - 1e-12:
            errors += order[i][1]
            i += 1
        p = pvalue(method, errors, i, risk)
        ok = p <= delta
        tested.append(ThresholdTest(threshold=t, n=i, errors=errors, error_rate=errors / i if i else None,
                                    p_value=round(p, 6), certified=ok))
        if not ok:
            break
        chosen = t
    return chosen, tested


class Calibration(BaseModel):
    """A calibrated auto-accept policy: what `annotator accept` applies and what a lead reads."""

    fields: list[str]
    risk: float
    delta: float
    method: Method
    threshold: float | None  # None: nothing could be certified
    guarantee: str
    model_versions: list[str]
    taxonomy: str
    n_calibration: int  # blind-reviewed articles with a confident draft
    n_blind_without_confidence: int
    calibration_error_at_threshold: float | None
    share_accepted: float | None  # of the drafts given (no error, with confidence), at the threshold
    drafts_accepted: int
    drafts_considered: int
    review_seconds_per_article: float | None
    review_hours_saved: float | None
    needs: str | None  # what to do when too little is certified
    tests: list[ThresholdTest] = Field(default_factory=list)

    def describe(self) -> str:
        lines = [self.guarantee]
        if self.threshold is not None:
            share = f"{self.share_accepted:.1%}" if self.share_accepted is not None else "?"
            lines.append(f"{self.drafts_accepted} of {self.drafts_considered} drafts ({share}) are at or above it")
            if self.review_hours_saved is not None:
                lines.append(f"review time saved: about {self.review_hours_saved:.1f} h "
                             f"({self.review_seconds_per_article:.0f} s median assisted review)")
        if self.needs:
            lines.append(self.needs)
        return "\n".join(lines)


def _guarantee(fields: Sequence[str], threshold: float | None, risk: float, delta: float, n: int) -> str:
    what = " and ".join(fields)
    if threshold is None:
        return (f"no threshold certified for {what}: the blind reviews ({n} articles) cannot show an error "
                f"rate of at most {risk:.1%} with {1 - delta:.0%} certainty at any confidence")
    return (f"drafts whose {what} confidence is >= {threshold:g} are wrong at most {risk:.1%} of the time, "
            f"with probability >= {1 - delta:.0%} (Learn then Test on {n} blind-reviewed articles; valid while new "
            f"articles are exchangeable with them)")


def _needs(tests: Sequence[ThresholdTest], n_cal: int, risk: float, delta: float, method: Method) -> str | None:
    """What would certify more, from the threshold that stopped the walk."""
    if not tests or tests[-1].certified:
        return None
    stop = tests[-1]
    floor = min_clean_sample(risk, delta, method)
    if stop.n == 0:
        return (f"no blind-reviewed draft has confidence >= {stop.threshold:g}; at least {floor} such drafts "
                f"(with no errors) are needed to certify anything at risk {risk:g}, delta {delta:g}")
    rate = stop.errors / stop.n
    need = needed_sample(rate, risk, delta, method)
    if need is None:
        return (f"at confidence >= {stop.threshold:g} the drafts are wrong {rate:.1%} of the time ({stop.errors} of "
                f"{stop.n} blind reviews), not below the risk {risk:.1%}: more reviews will not certify it; "
                "allow a larger risk or improve the model's confidence")
    more = need - stop.n
    articles = math.ceil(more * n_cal / stop.n) if n_cal else more
    return (f"to certify confidence >= {stop.threshold:g} at its current error rate ({stop.errors} of {stop.n}) "
            f"needs about {need} blind-reviewed drafts there, {more} more: about {articles} more blind-reviewed "
            f"articles at the current share ({stop.n} of {n_cal} are that confident)")


def calibrate(tax: Taxonomy, drafts: Iterable[Draft], reviews: Iterable[Review], fields: Sequence[str], *,
              risk: float, delta: float, method: Method = "binomial", grid: Sequence[float] = GRID) -> Calibration:
    """The lowest threshold certified by Learn then Test on blind reviews, and what it would save.

    The share accepted is over every draft given (no error, with a confidence); the hours saved use
    the median lead time of assisted reviews (what accepting without review skips).
    """
    if not fields:
        raise ConfigError("calibrate needs at least one --field")
    for f in fields:
        if f not in {x.name for x in tax.label_fields}:
            raise ConfigError(f"--field {f}: not a label field of taxonomy {tax.name} "
                              f"({', '.join(x.name for x in tax.label_fields)})")
    if not 0 < risk < 1 or not 0 < delta < 1:
        raise ConfigError(f"risk and delta must lie between 0 and 1 (got {risk:g}, {delta:g})")
    by_article = latest_drafts(drafts)
    reviews = list(reviews)
    truth = blind_truth(reviews, fields)
    points = calibration_points(by_article, truth, fields)
    threshold, tests = fixed_sequence(points, risk, delta, method, grid)
    confident = [c for d in by_article.values() if (c := draft_confidence(d, fields)) is not None]
    accepted = sum(c >= threshold - 1e-12 for c in confident) if threshold is not None else 0
    lead = [r.lead_time_s for r in reviews if not r.blind and not r.skipped and r.lead_time_s]
    seconds = statistics.median(lead) if lead else None
    at = next((t for t in tests if t.threshold == threshold), None)
    return Calibration(
        fields=list(fields), risk=risk, delta=delta, method=method, threshold=threshold,
        guarantee=_guarantee(fields, threshold, risk, delta, len(points)),
        model_versions=sorted({d.model_version for d in by_article.values() if d.model_version}),
        taxonomy=tax.name, n_calibration=len(points), n_blind_without_confidence=len(truth) - len(points),
        calibration_error_at_threshold=at.error_rate if at else None,
        share_accepted=accepted / len(confident) if confident else None, drafts_accepted=accepted,
        drafts_considered=len(confident), review_seconds_per_article=seconds,
        review_hours_saved=round(accepted * seconds / 3600, 2) if seconds is not None else None,
        needs=_needs(tests, len(points), risk, delta, method), tests=tests,
    )


# --------------------------------------------------------------------------- accept


class Acceptance(BaseModel):
    """One draft accepted by a policy (or kept for the audit slice: `audit` true, still reviewed blind)."""

    article_id: str
    source: str = AUTO_ACCEPTED
    labels: dict[str, LabelValue]
    rationale: str | None
    model_version: str
    confidence: float
    fields: list[str]
    threshold: float
    risk: float
    delta: float
    guarantee: str
    audit: bool = False


def in_audit(article_id: str, share: float, seed: str) -> bool:
    """Stable random audit selection: the same article, share and seed always give the same answer."""
    digest = hashlib.sha256(f"audit:{seed}:{article_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def accept(policy: Calibration, drafts: Iterable[Draft], *, audit_share: float = 0.05, seed: str = "0") -> tuple[list[Acceptance], Counter[str]]:
    """The drafts the policy accepts, a stable random `audit_share` of them marked for blind audit.

    Drafts of a model version the policy was not calibrated on are not accepted (a new model needs
    its own calibration); counts say how many were left for review and why.
    """
    if not 0 <= audit_share <= 1:
        raise ConfigError(f"--audit-share must lie between 0 and 1 (got {audit_share:g})")
    counts: Counter[str] = Counter()
    out: list[Acceptance] = []
    if policy.threshold is None:
        counts["no threshold certified"] = len(latest_drafts(drafts))
        return out, counts
    versions = set(policy.model_versions)
    for d in latest_drafts(drafts).values():
        c = draft_confidence(d, policy.fields)
        if versions and d.model_version not in versions:
            counts["other model version"] += 1
        elif c is None:
            counts["no confidence"] += 1
        elif c < policy.threshold - 1e-12:
            counts["below threshold"] += 1
        else:
            audit = in_audit(d.article_id, audit_share, seed)
            counts["audit" if audit else "accepted"] += 1
            out.append(Acceptance(article_id=d.article_id, labels=d.labels, rationale=d.rationale,
                                  model_version=d.model_version, confidence=c, fields=policy.fields,
                                  threshold=policy.threshold, risk=policy.risk, delta=policy.delta,
                                  guarantee=policy.guarantee, audit=audit))
    return out, counts


def with_acceptances(reviews: Iterable[Review], accepted: Iterable[Acceptance]) -> list[Review]:
    """Reviews as pulled, plus one `source: auto_accepted` record per accepted draft (with its
    threshold and guarantee), and the blind reviews of audit articles marked with the policy
    they re-check (`audit`), so that eval can report the realised error on them."""
    accepted = list(accepted)
    audit = {a.article_id: {"fields": a.fields, "threshold": a.threshold, "risk": a.risk, "delta": a.delta}
             for a in accepted if a.audit}
    out = [r.model_copy(update={"audit": audit[r.article_id]}) if r.blind and r.article_id in audit else r for r in reviews]
    out += [Review(article_id=a.article_id, annotator=AUTO_ACCEPTED, labels=a.labels, rationale=a.rationale,
                   model_version=a.model_version, accepted_as_is=True, blind=False, source=AUTO_ACCEPTED,
                   threshold=a.threshold, risk=a.risk, delta=a.delta, guarantee=a.guarantee, policy_fields=a.fields)
            for a in accepted if not a.audit]
    return out


def is_auto(record: Any) -> bool:
    """Whether a reviews-file record is an auto-accepted draft rather than a person's review."""
    return (getattr(record, "model_extra", None) or {}).get("source") == AUTO_ACCEPTED
