"""Selective-accuracy curves: accuracy of the most confident drafts as the share accepted grows."""

from __future__ import annotations

from annotator.evaluate.align import align
from annotator.evaluate.selective import curve_thresholds, selective_curves
from annotator.simulate import CALIBRATED, SimulatedReviewer, random_truth, simulate_drafts, simulate_reviews
from annotator.taxonomy import load_taxonomy

TAX = load_taxonomy("oecd_aim")


def test_blind_curve_follows_the_known_accuracy_and_assisted_is_inflated() -> None:
    truth = random_truth(TAX, 1600, seed=3, fields=["classification"])
    drafts = simulate_drafts(TAX, truth, CALIBRATED, seed=3)
    blind = {g.article_id for g in truth[:800]}
    panel = [SimulatedReviewer(name="exact", noise=0.0, anchoring=0.8)]
    reviews = simulate_reviews(TAX, truth, drafts, panel, blind=blind, blind_reviewers=1, seed=3)
    curves = selective_curves(align(drafts, reviews).pairs, [TAX.field("classification")], n_boot=400, seed=0)["classification"]
    curves = {k: v.model_dump() for k, v in curves.items()}
    points = curves["blind"]["points"]
    assert [p["threshold"] for p in points] == [1.0, 0.95, 0.9, 0.8, 0.6]
    assert points[-1]["share"] == 1.0 and points[-1]["n"] == 800
    covered = 0
    for p in points:
        true_acc = 1 - CALIBRATED.true_risk(p["threshold"])
        assert abs(p["share"] - CALIBRATED.coverage(p["threshold"])) < 0.06
        covered += p["ci95"][0] <= true_acc <= p["ci95"][1]
    assert covered >= 4  # 95 % bands around the model's true accuracy at each share
    accuracies = [p["accuracy"] for p in points]
    assert all(a >= b - 0.01 for a, b in zip(accuracies, accuracies[1:], strict=False))  # confidence orders the drafts
    assert accuracies[0] > accuracies[-1] + 0.05
    # an anchored reviewer takes the draft's answer: the assisted curve flatters the model
    assert curves["assisted"]["points"][-1]["accuracy"] > points[-1]["accuracy"] + 0.05


def test_thresholds_are_thinned_evenly_over_the_share_accepted() -> None:
    import numpy as np

    conf = np.random.default_rng(0).random(5000)
    ts = curve_thresholds(conf, 20)
    assert 15 <= len(ts) <= 20 and ts == sorted(ts, reverse=True)
    shares = [(conf >= t).mean() for t in ts]
    assert max(np.diff(shares)) < 0.1 and shares[-1] == 1.0


def test_eval_report_carries_the_curves_and_the_audit_warning(tmp_path) -> None:
    from annotator.calibrate import Acceptance, with_acceptances
    from annotator.evaluate import evaluate, load_metrics, write_report

    truth = random_truth(TAX, 300, seed=5, fields=["classification"])
    drafts = simulate_drafts(TAX, truth, CALIBRATED, seed=5)
    blind = {g.article_id for g in truth[:150]}
    reviews = simulate_reviews(TAX, truth, drafts, [SimulatedReviewer(name="r", noise=0.0)], blind=blind,
                               blind_reviewers=1, seed=5)
    # every blind article was an audited auto-accept under a promise of at most 1 % wrong: the drafts break it
    audit = [Acceptance(article_id=d.article_id, labels=d.labels, rationale=None, model_version=d.model_version,
                        confidence=0.6, fields=["classification"], threshold=0.6, risk=0.01, delta=0.1, guarantee="g",
                        audit=True) for d in drafts if d.article_id in blind]
    report = evaluate(drafts, with_acceptances(reviews, audit), TAX, n_boot=50)
    write_report(report, tmp_path)
    m = load_metrics(tmp_path / "metrics.json")
    assert set(m.selective["classification"]) == {"blind", "assisted"}
    assert m.selective["classification"]["blind"].points[-1].share == 1.0
    (a,) = m.audit
    assert a.n == 150 and a.exceeded and a.error_rate > 0.01 and any("above the promised 1.0%" in w for w in m.warnings)
    summary = (tmp_path / "summary.md").read_text()
    assert "Review less: selective accuracy of `classification` (blind reviews)" in summary
    assert "Audit of auto-accepted drafts" in summary and "above the promise" in summary
    html = (tmp_path / "report.html").read_text()
    assert "classification: selective accuracy, 95% bands" in html and "<polyline" in html
    # a gold-file eval has one curve, against the gold labels
    gold = evaluate(drafts, truth, TAX, n_boot=0)
    assert set(gold.metrics.selective["classification"]) == {"gold"} and gold.metrics.audit == []
