"""Risk-controlled thresholds: the p-values, the fixed sequence, blind-only calibration, and the
promise itself checked by simulation against a model whose true error rate is known."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats

from annotator.calibrate import (
    accept,
    binomial_pvalue,
    calibrate,
    fixed_sequence,
    hoeffding_bentkus_pvalue,
    min_clean_sample,
    needed_sample,
)
from annotator.records import Draft, Review, write_jsonl
from annotator.simulate import CALIBRATED, OVERCONFIDENT, calibration_trials
from annotator.taxonomy import load_taxonomy

TAX = load_taxonomy("oecd_aim")


def test_binomial_test_passes_exactly_when_the_clopper_pearson_bound_is_below_the_risk() -> None:
    for n in (10, 45, 200, 1000):
        for k in range(0, n // 5):
            upper = stats.beta.ppf(0.9, k + 1, n - k)  # one-sided 90 % Clopper-Pearson upper bound
            if abs(upper - 0.05) < 1e-9:
                continue
            assert (binomial_pvalue(k, n, 0.05) <= 0.1) == (upper <= 0.05), (k, n)


def test_p_values_are_valid_at_the_boundary_and_hoeffding_bentkus_is_the_looser() -> None:
    rng = random.Random(0)
    n, risk, delta, runs = 300, 0.05, 0.1, 4000
    rejected_b = rejected_hb = 0
    for _ in range(runs):
        errors = sum(rng.random() < risk for _ in range(n))  # true error rate exactly at the risk: H0 holds
        rejected_b += binomial_pvalue(errors, n, risk) <= delta
        rejected_hb += hoeffding_bentkus_pvalue(errors, n, risk) <= delta
        assert hoeffding_bentkus_pvalue(errors, n, risk) >= binomial_pvalue(errors, n, risk) - 1e-12
    bound = delta + 3 * math.sqrt(delta * (1 - delta) / runs)
    assert rejected_b / runs <= bound and rejected_hb / runs <= bound


def test_how_many_clean_reviews_certify_anything() -> None:
    # 0.95 ** 45 < 0.1 < 0.95 ** 44: 45 accepted drafts without an error, not one fewer
    assert min_clean_sample(0.05, 0.1) == 45
    assert binomial_pvalue(0, 45, 0.05) <= 0.1 < binomial_pvalue(0, 44, 0.05)
    n = needed_sample(0.02, 0.05, 0.1)
    assert n is not None and binomial_pvalue(math.floor(n * 0.02), n, 0.05) <= 0.1
    assert binomial_pvalue(math.floor((n - 5) * 0.02), n - 5, 0.05) > 0.1
    assert needed_sample(0.05, 0.05, 0.1) is None and needed_sample(0.2, 0.05, 0.1) is None


def test_fixed_sequence_stops_at_the_first_threshold_it_cannot_certify() -> None:
    # 20 drafts at 1.0 with 2 errors, then 500 clean drafts at 0.9: the set >= 0.9 alone would pass,
    # but the walk from the top stops at 1.0 (testing lower after a failure would void the guarantee).
    points = [(1.0, 1)] * 2 + [(1.0, 0)] * 18 + [(0.9, 0)] * 500
    threshold, tests = fixed_sequence(points, 0.05, 0.1)
    assert threshold is None and len(tests) == 1 and not tests[0].certified
    # clean at the top: the walk goes down to 0.9's set and stops where the noisy 0.5s join
    points = [(1.0, 0)] * 100 + [(0.9, 0)] * 100 + [(0.5, 1)] * 50
    threshold, tests = fixed_sequence(points, 0.05, 0.1)
    assert threshold == 0.51 and tests[-1].threshold == 0.5 and not tests[-1].certified


def _review(article: str, labels: dict, *, blind: bool, who: str = "r1", lead: float = 60.0) -> Review:
    return Review(article_id=article, annotator=who, labels=labels, blind=blind, lead_time_s=lead)


def _draft(article: str, classification: str, conf: float | None) -> Draft:
    return Draft(article_id=article, labels={"classification": classification}, confidence={"classification": conf},
                 model_version="v1@m")


def test_only_blind_reviews_calibrate_and_ties_count_as_errors() -> None:
    drafts = [_draft(f"a{i}", "AI incident", 1.0) for i in range(60)]
    assisted = [_review(f"a{i}", {"classification": "AI incident"}, blind=False) for i in range(60)]
    cal = calibrate(TAX, drafts, assisted, ["classification"], risk=0.05, delta=0.1)
    assert cal.threshold is None and cal.n_calibration == 0  # 60 agreeing assisted reviews certify nothing
    assert "at least 45" in (cal.needs or "")
    blind = [_review(f"a{i}", {"classification": "AI incident"}, blind=True) for i in range(60)]
    cal = calibrate(TAX, drafts, assisted + blind, ["classification"], risk=0.05, delta=0.1)
    assert cal.threshold == 0.0 and cal.n_calibration == 60 and cal.share_accepted == 1.0
    assert cal.review_hours_saved == pytest.approx(60 * 60 / 3600)
    # a 1-1 tie between two blind reviewers counts against the draft
    tie = [_review("a0", {"classification": "AI incident"}, blind=True, who="r1"),
           _review("a0", {"classification": "AI hazard"}, blind=True, who="r2")]
    cal = calibrate(TAX, drafts[:1], tie, ["classification"], risk=0.05, delta=0.1)
    assert cal.tests[0].errors == 1


def test_too_few_blind_reviews_says_how_many_more() -> None:
    drafts = [_draft(f"a{i}", "AI incident", 1.0 if i % 2 else 0.8) for i in range(40)]
    blind = [_review(f"a{i}", {"classification": "AI incident"}, blind=True) for i in range(40)]
    cal = calibrate(TAX, drafts, blind, ["classification"], risk=0.05, delta=0.1)
    assert cal.threshold is None
    assert "25 more" in (cal.needs or "") and "50 more blind-reviewed articles" in (cal.needs or "")
    assert "no threshold certified" in cal.describe()


@pytest.mark.slow
def test_simulated_promise_holds_and_overconfidence_costs_coverage_not_errors() -> None:
    risk, delta, runs = 0.05, 0.1, 200
    calibrated = calibration_trials(TAX, CALIBRATED, runs=runs, n_calibration=200, risk=risk, delta=delta, seed=1)
    over = calibration_trials(TAX, OVERCONFIDENT, runs=runs, n_calibration=200, risk=risk, delta=delta, seed=1)
    slack = 2.33 * math.sqrt(delta * (1 - delta) / runs)  # simulation error of a violation rate at delta
    for trials in (calibrated, over):
        assert sum(t.violated for t in trials) / runs <= delta + slack
    # the calibrated model gets a useful threshold most of the time, the over-confident one a higher one
    assert sum(t.threshold is not None for t in calibrated) >= 0.6 * runs  # about 76 % at 200 articles
    low_cal = sorted(t.threshold or 1.01 for t in calibrated)[runs // 2]
    low_over = sorted(t.threshold or 1.01 for t in over)[runs // 2]
    assert low_over > low_cal
    assert sum(t.coverage for t in over) < sum(t.coverage for t in calibrated)


def test_calibrate_command_writes_the_policy_and_reports_bad_lines(tmp_path: Path) -> None:
    drafts = [_draft(f"a{i}", "AI incident", 1.0) for i in range(60)]
    reviews = [_review(f"a{i}", {"classification": "AI incident"}, blind=True) for i in range(60)]
    write_jsonl(tmp_path / "drafts.jsonl", drafts)
    write_jsonl(tmp_path / "reviews.jsonl", reviews)
    with (tmp_path / "reviews.jsonl").open("a") as fh:
        fh.write('{"article_id": "a1", "labels": {"classification": "not-a-class"}, "blind": true}\nnot json\n')
    out = tmp_path / "calibration.json"
    run = subprocess.run([sys.executable, "-m", "annotator.cli", "calibrate", "--field", "classification", "--risk", "0.05",
                          "--delta", "0.1", "--drafts", str(tmp_path / "drafts.jsonl"), "--reviews",
                          str(tmp_path / "reviews.jsonl"), "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 1, run.stderr  # two lines rejected, the rest calibrated
    assert "reviews.jsonl: article a1: classification" in run.stderr and "reviews.jsonl:62: not valid JSON" in run.stderr
    policy = json.loads(out.read_text())
    assert policy["threshold"] == 0.0 and policy["n_calibration"] == 60 and policy["fields"] == ["classification"]
    assert "wrong at most 5.0%" in run.stdout
    bad = subprocess.run([sys.executable, "-m", "annotator.cli", "calibrate", "--field", "nope", "--drafts",
                          str(tmp_path / "drafts.jsonl"), "--reviews", str(tmp_path / "reviews.jsonl"), "-o", str(out)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--field nope" in bad.stderr


def test_accept_takes_drafts_at_or_above_the_threshold_of_the_calibrated_model_only() -> None:
    drafts = [_draft(f"a{i}", "AI incident", 1.0) for i in range(60)]
    blind = [_review(f"a{i}", {"classification": "AI incident"}, blind=True) for i in range(60)]
    policy = calibrate(TAX, drafts, blind, ["classification"], risk=0.05, delta=0.1)
    todo = [_draft("b1", "AI hazard", 0.99), _draft("b2", "AI hazard", None),
            Draft(article_id="b3", labels={"classification": "AI hazard"}, confidence={"classification": 1.0},
                  model_version="v2@other")]
    todo += [_draft(f"c{i}", "AI hazard", 1.0) for i in range(400)]
    policy = policy.model_copy(update={"threshold": 1.0})
    accepted, counts = accept(policy, todo, audit_share=0.1, seed="s")
    assert counts["other model version"] == 1 and counts["no confidence"] == 1 and counts["below threshold"] == 1
    assert {a.article_id for a in accepted} == {f"c{i}" for i in range(400)}
    audited = {a.article_id for a in accepted if a.audit}
    assert 20 <= len(audited) <= 60  # about 10 %
    again, _ = accept(policy, todo[:200], audit_share=0.1, seed="s")
    assert {a.article_id for a in again if a.audit} == {a for a in audited if int(a[1:]) < 197}  # stable per article
    assert all(a.source == "auto_accepted" and a.threshold == 1.0 and "5.0%" in a.guarantee for a in accepted)
    nothing, counts = accept(policy.model_copy(update={"threshold": None}), todo)
    assert nothing == [] and counts["no threshold certified"] == len(todo)


def test_accept_command_writes_accepted_drafts_with_their_guarantee(tmp_path: Path) -> None:
    drafts = [_draft(f"a{i}", "AI incident", 1.0) for i in range(60)] + [_draft("low", "AI incident", 0.2)]
    reviews = [_review(f"a{i}", {"classification": "AI incident"}, blind=True) for i in range(60)]
    write_jsonl(tmp_path / "drafts.jsonl", drafts)
    write_jsonl(tmp_path / "reviews.jsonl", reviews)
    cli = [sys.executable, "-m", "annotator.cli"]
    subprocess.run([*cli, "calibrate", "--field", "classification", "--drafts", str(tmp_path / "drafts.jsonl"),
                    "--reviews", str(tmp_path / "reviews.jsonl"), "-o", str(tmp_path / "calibration.json")], check=True,
                   capture_output=True)
    run = subprocess.run([*cli, "accept", str(tmp_path / "drafts.jsonl"), "--policy", str(tmp_path / "calibration.json"),
                          "--audit-share", "0.1", "-o", str(tmp_path / "accepted.jsonl")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(x) for x in (tmp_path / "accepted.jsonl").read_text().splitlines()]
    assert {x["article_id"] for x in lines} == {f"a{i}" for i in range(60)} | {"low"}  # threshold 0: all confident
    assert all(x["source"] == "auto_accepted" and x["guarantee"] for x in lines)
    n_audit = sum(x["audit"] for x in lines)
    assert f"{61 - n_audit} drafts accepted without review, {n_audit} kept for the blind audit slice" in run.stdout
    broken = subprocess.run([*cli, "accept", str(tmp_path / "drafts.jsonl"), "--policy", str(tmp_path / "drafts.jsonl")],
                            capture_output=True, text=True)
    assert broken.returncode == 2 and "not a calibration policy" in broken.stderr


def test_auto_accepted_drafts_are_left_out_of_export_and_eval_unless_asked_for(tmp_path: Path, monkeypatch) -> None:
    from annotator.calibrate import Acceptance, with_acceptances
    from annotator.cli import main
    from annotator.records import Article

    monkeypatch.chdir(tmp_path)
    texts = {f"a{i}": f"Story {i}: a different AI system number {i} failed in city {i * 7} today." for i in range(12)}
    write_jsonl("articles.jsonl", [Article(id=k, title=k, text=v) for k, v in texts.items()])
    people = [_review(f"a{i}", {"classification": "AI hazard"}, blind=False, who="ana") for i in range(6)]
    people.append(_review("a6", {"classification": "Unrelated"}, blind=False, who="ana"))  # reviewed, then accepted too
    accepted = [Acceptance(article_id=f"a{i}", labels={"classification": "AI incident"}, rationale="r", model_version="v1@m",
                           confidence=1.0, fields=["classification"], threshold=0.9, risk=0.05, delta=0.1,
                           guarantee="wrong at most 5.0% of the time") for i in range(6, 12)]
    write_jsonl("reviews.jsonl", with_acceptances(people, accepted))
    assert main(["export", "reviews.jsonl", "--articles", "articles.jsonl", "-o", "gold", "--format", "jsonl,csv",
                 "--split", "100/0/0"]) == 0
    gold = [json.loads(x) for x in Path("gold/train.jsonl").read_text().splitlines()]
    assert sorted(g["article_id"] for g in gold) == [f"a{i}" for i in range(7)]
    assert all(g["label_source"] == "review" for g in gold)
    assert next(g for g in gold if g["article_id"] == "a6")["labels"]["classification"] == "Unrelated"  # the person wins
    assert main(["export", "reviews.jsonl", "--articles", "articles.jsonl", "-o", "gold2", "--format", "jsonl,csv",
                 "--split", "100/0/0", "--include-auto"]) == 0
    gold = {g["article_id"]: g for g in map(json.loads, Path("gold2/train.jsonl").read_text().splitlines())}
    assert len(gold) == 12 and gold["a9"]["label_source"] == "auto_accepted" and "5.0%" in gold["a9"]["auto_guarantee"]
    assert gold["a6"]["label_source"] == "review"
    assert "label_source" in Path("gold2/train.csv").read_text().splitlines()[0]
    # eval scores people only: the accepted drafts would agree with themselves
    drafts = [_draft(f"a{i}", "AI incident", 1.0) for i in range(12)]
    write_jsonl("drafts.jsonl", drafts)
    assert main(["eval", "--drafts", "drafts.jsonl", "--reviews", "reviews.jsonl", "-o", "report", "--bootstrap", "20"]) == 0
    metrics = json.loads(Path("report/metrics.json").read_text())
    assert metrics["fields"]["classification"]["n"] == 7 and metrics["fields"]["classification"]["accuracy"] == 0.0


def test_audit_slice_reports_realised_error_and_warns_above_the_risk() -> None:
    from annotator.calibrate import Acceptance, with_acceptances
    from annotator.evaluate.audit import audit_checks, clopper_pearson

    assert clopper_pearson(0, 45)[1] == pytest.approx(1 - 0.025 ** (1 / 45))
    lo, hi = clopper_pearson(10, 100)
    assert stats.binom.sf(9, 100, lo) == pytest.approx(0.025) and stats.binom.cdf(10, 100, hi) == pytest.approx(0.025)

    def run(wrong_every: int) -> list:
        drafts = [_draft(f"a{i}", "AI incident", 1.0) for i in range(200)]
        audit = [Acceptance(article_id=d.article_id, labels=d.labels, rationale=None, model_version="v1@m", confidence=1.0,
                            fields=["classification"], threshold=0.9, risk=0.05, delta=0.1, guarantee="g", audit=True)
                 for d in drafts]
        blind = [_review(f"a{i}", {"classification": "AI hazard" if i % wrong_every == 0 else "AI incident"}, blind=True)
                 for i in range(200)]
        assisted = [_review("a1", {"classification": "AI hazard"}, blind=False, who="x")]  # not part of the audit
        return audit_checks(drafts, with_acceptances(blind + assisted, audit))

    (ok,) = run(100)  # 2 of 200 wrong
    assert ok.n == 200 and ok.errors == 2 and not ok.exceeded and ok.warning is None
    (bad,) = run(5)  # 40 of 200 wrong: far above 5 %
    assert bad.exceeded and bad.ci95[0] > 0.05 and "no longer holds" in bad.warning and "40 of 200 wrong" in bad.warning
