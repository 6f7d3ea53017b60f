"""The eval report leads with blind figures and carries anchoring, time saved, the alt-test and AC1/PABAK."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from annotator.cli import main
from annotator.evaluate import evaluate, write_report
from annotator.evaluate.chance import gwet_ac1, pabak
from annotator.records import Draft, GoldRecord, Review, write_jsonl
from annotator.simulate import SimulatedReviewer, noisy_labels, simulate_reviews
from annotator.taxonomy import load_taxonomy

TAX = load_taxonomy("oecd_aim")
PRIMARY = TAX.field(TAX.primary)


def _simulated(n: int = 600, seed: int = 0, blind_share: float = 0.2) -> tuple[list[Draft], list[Review]]:
    rng = random.Random(seed)
    truth = []
    for i in range(n):
        labels = {
            f.name: (rng.choice(f.value_ids) if f.required else rng.choice([None, *f.value_ids])) if f.kind == "single" else rng.sample(f.value_ids, rng.randint(0, 2))
            for f in TAX.label_fields
        }
        truth.append(GoldRecord(article_id=f"a{i}", labels=labels, rationale=f"why {i}"))
    drafts = [Draft(article_id=g.article_id, labels=noisy_labels(TAX, g.labels, 0.2, rng), rationale="draft", model_version="v1@m") for g in truth]
    blind = {g.article_id for g in truth if rng.random() < blind_share}
    panel = [SimulatedReviewer(name=name, noise=0.1, anchoring=0.5) for name in ("ana", "ben", "cleo", "dev")]
    return drafts, simulate_reviews(TAX, truth, drafts, panel, blind=blind, blind_reviewers=3, seed=seed)


def test_eval_command_reports_blind_figures_first(tmp_path: Path) -> None:
    drafts, reviews = _simulated()
    write_jsonl(tmp_path / "drafts.jsonl", drafts)
    write_jsonl(tmp_path / "reviews.jsonl", reviews)
    out = tmp_path / "report"
    argv = ["eval", "--drafts", str(tmp_path / "drafts.jsonl"), "--reviews", str(tmp_path / "reviews.jsonl"), "-o", str(out)]
    assert main([*argv, "--bootstrap", "200", "--alt-epsilon", "0.15"]) == 0
    m = json.loads((out / "metrics.json").read_text())

    # AC1 and PABAK beside kappa, equal to the pair-wise definitions on the same pairs (null is an answer)
    by_id = {d.article_id: d for d in drafts}
    pairs = [((by_id[r.article_id].labels[PRIMARY.name]), r.labels[PRIMARY.name]) for r in reviews if not r.skipped]
    cls = m["fields"][PRIMARY.name]
    assert cls["gwet_ac1"] == pytest.approx(gwet_ac1(pairs), abs=1e-6)
    assert cls["pabak"] == pytest.approx(pabak(pairs, len(PRIMARY.values)), abs=1e-6)
    assert cls["ci95"]["gwet_ac1"][0] <= cls["gwet_ac1"] <= cls["ci95"]["gwet_ac1"][1]

    # slices, anchoring for every single and multi field, time saved, the alt-test per single field
    assert m["slices"]["blind"]["n_pairs"] == sum(r.blind for r in reviews)
    assert set(m["slices"]["blind"]["fields"]) == set(m["slices"]["assisted"]["fields"]) == set(m["fields"])
    assert m["slices"]["blind"]["coverage"]["field"] == PRIMARY.name
    assert set(m["anchoring"]) == {f.name for f in TAX.label_fields}
    for f in TAX.label_fields:
        a = m["anchoring"][f.name]
        assert a["metric"] == ("accuracy" if f.kind == "single" else "micro_f1")
        metric_blind = m["slices"]["blind"]["fields"][f.name][a["metric"]]
        assert a["blind"] == pytest.approx(metric_blind, abs=1e-5)  # the same figure as the harness's own slice
        assert a["difference"] > 0 and a["ci95"][0] > 0  # anchoring 0.5 is visible on every field
    assert 0.4 < m["lead_time"]["ratio"] < 0.6  # simulated medians 60 s against 120 s
    assert set(m["alt_test"]) == {f.name for f in TAX.single_fields}
    assert all(t["epsilon"] == 0.15 and t["annotators"] == 4 for t in m["alt_test"].values())

    summary = (out / "summary.md").read_text()
    assert summary.index("## Blind (unassisted) agreement first") < summary.index("### Single-valued fields")
    # The pooled headline table comes after the blind section, titled as pooled.
    assert summary.index("## Blind (unassisted) agreement first") < summary.index("## All reviews (blind and assisted pooled)")
    assert "drafts cut review time by" in summary and "alternative annotator test" in summary
    html = (out / "report.html").read_text()
    assert html.index("Blind (unassisted) agreement first") < html.index("All reviews (blind and assisted pooled)") < html.index("All metrics")
    assert 'aria-label="blind against assisted agreement per field"' in html


def test_low_kappa_with_high_raw_agreement_is_said_in_words(tmp_path: Path) -> None:
    # 100 articles, the model always says the first class, reviewers agree on 95: raw agreement 0.95,
    # kappa 0 (chance agreement = 1·0.95), AC1 0.947 (see test_honest_chance).
    top, other = PRIMARY.value_ids[0], PRIMARY.value_ids[1]
    drafts = [Draft(article_id=f"a{i}", labels={PRIMARY.name: top}) for i in range(100)]
    reviews = [Review(article_id=f"a{i}", annotator="ana", labels={PRIMARY.name: top if i >= 5 else other}) for i in range(100)]
    report = evaluate(drafts, reviews, TAX, n_boot=100)
    note = next(w for w in report.metrics.warnings if "kappa is low" in w)
    assert note.startswith(f"{PRIMARY.name}: kappa is low (0.00) while raw agreement is high (0.95)")
    assert "Gwet's AC1 0.95" in note
    write_report(report, tmp_path)
    assert note in (tmp_path / "summary.md").read_text()


def test_without_a_blind_slice_the_report_says_so(tmp_path: Path) -> None:
    drafts, reviews = _simulated(200, blind_share=0.0)
    report = evaluate(drafts, reviews, TAX, n_boot=100)
    assert all("no blind reviews" in (a.note or "") for a in (report.metrics.anchoring or {}).values())
    assert report.metrics.alt_test and all(t.winning_rate is None for t in report.metrics.alt_test.values())
    write_report(report, tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "No blind slice: every reviewer saw the draft" in summary
    assert "time saved by drafts: not measured" in summary
    # said once, not once per field, and no empty blind-against-assisted plot
    assert not [line for line in summary.splitlines() if line.startswith("- ") and "no blind reviews" in line]
    html = (tmp_path / "report.html").read_text()
    assert html.count("No blind slice") == 1 and "model–reviewer agreement, 95% intervals" not in html


def test_a_gold_file_eval_has_no_review_sections(tmp_path: Path) -> None:
    drafts, reviews = _simulated(100)
    gold = [GoldRecord(article_id=r.article_id, labels=r.labels, rationale=r.rationale) for r in reviews]
    report = evaluate(drafts, gold, TAX, n_boot=50)
    assert report.metrics.anchoring is None and report.metrics.alt_test is None and report.metrics.lead_time is None
    assert report.metrics.fields[PRIMARY.name].gwet_ac1 is not None
    write_report(report, tmp_path)
    assert "Blind (unassisted)" not in (tmp_path / "summary.md").read_text()


def test_a_note_every_field_shares_is_one_line(tmp_path: Path) -> None:
    # A small blind slice: too few blind reviews to conclude on any field; one line says so for all.
    drafts, reviews = _simulated(n=60, blind_share=0.1)
    report = evaluate(drafts, reviews, TAX, n_boot=50)
    write_report(report, tmp_path)
    notes = {a.note for a in report.metrics.anchoring.values() if a.note}
    assert len(notes) == 1 and next(iter(notes)).startswith("too few to conclude")
    for text in ((tmp_path / "summary.md").read_text(), (tmp_path / "report.html").read_text()):
        note = next(iter(notes))  # e.g. "too few to conclude: 21 blind reviews (at least 30 needed)"
        assert text.count(note) == 1
        line = next(x for x in text.splitlines() if note in x)
        assert all(f.name in line for f in TAX.label_fields)
