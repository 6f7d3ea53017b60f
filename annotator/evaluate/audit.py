"""The audit slice: auto-accept's promise re-checked on accepted drafts that still went to blind review.

`annotator accept --audit-share` keeps a random share of the accepted drafts for blind review and
`pull --accepted` marks those reviews with the policy (`audit`); here their realised error is
measured the way `annotator.calibrate` defined it (against the plurality of blind answers), with
an exact interval, and a warning when it is above the promised risk.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from scipy import stats

from annotator.calibrate import blind_truth, draft_loss, latest_drafts
from annotator.evaluate.model import Audit
from annotator.records import Draft, Review


def clopper_pearson(errors: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for an error rate."""
    a = (1 - level) / 2
    lo = 0.0 if errors == 0 else float(stats.beta.ppf(a, errors, n - errors + 1))
    hi = 1.0 if errors == n else float(stats.beta.ppf(1 - a, errors + 1, n - errors))
    return lo, hi


def audit_checks(drafts: Iterable[Draft], reviews: Iterable[Review]) -> list[Audit]:
    """Per policy found in the reviews (`audit` marks from `pull --accepted`), the realised error of its
    audited drafts against their blind reviews, with a 95% interval and a warning when above the risk."""
    by_policy: dict[tuple[Any, ...], list[Review]] = defaultdict(list)
    for r in reviews:
        mark = (r.model_extra or {}).get("audit")
        if r.blind and isinstance(mark, dict):
            by_policy[(tuple(mark["fields"]), mark["threshold"], mark["risk"], mark["delta"])].append(r)
    latest = latest_drafts(drafts)
    out = []
    for (fields, threshold, risk, delta), rs in sorted(by_policy.items()):
        truth = blind_truth(rs, fields)
        losses = [draft_loss(latest[a], t, fields) for a, t in truth.items() if a in latest]
        n, errors = len(losses), sum(losses)
        rate = errors / n if n else None
        ci = clopper_pearson(errors, n) if n else None
        exceeded = rate is not None and rate > risk
        warning = None
        if exceeded and ci is not None:
            sure = "the whole interval is above it: the promise no longer holds" if ci[0] > risk else \
                "within chance of the promise so far; watch it and re-calibrate if it stays above"
            warning = (f"audit of auto-accepted {' and '.join(fields)} (threshold {threshold:g}): {errors} of {n} wrong, "
                       f"{rate:.1%} (95% CI {ci[0]:.1%}-{ci[1]:.1%}), above the promised {risk:.1%}; {sure}")
        out.append(Audit(fields=list(fields), threshold=threshold, risk=risk, delta=delta, n=n, errors=errors,
                              error_rate=rate, ci95=ci, exceeded=exceeded, warning=warning))
    return out
