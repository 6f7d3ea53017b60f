"""`annotator eval` end to end: report files, escaping of untrusted text, the threshold gate, bad
input lines, --compare with McNemar, --gold with the shipped gold set and thresholds."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

from annotator.cli import main
from annotator.evaluate import evaluate
from annotator.records import Draft, Review
from annotator.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parent.parent
TAX = load_taxonomy("oecd_aim")
PRIMARY = TAX.primary
CLASSES = TAX.field(PRIMARY).value_ids


def _write(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def _labels(cls: str) -> dict:
    labels = {f.name: ([] if f.kind == "multi" else None) for f in TAX.label_fields}
    labels[PRIMARY] = cls
    return labels


def _files(tmp_path: Path, n: int = 40, wrong_every: int = 4) -> tuple[Path, Path]:
    drafts, reviews = [], []
    for i in range(n):
        truth = CLASSES[i % len(CLASSES)]
        guess = CLASSES[(i + 1) % len(CLASSES)] if i % wrong_every == 0 else truth
        drafts.append({"article_id": f"a{i}", "labels": _labels(guess), "rationale": f"draft says {guess}", "confidence": {PRIMARY: 0.8}})
        reviews.append({"article_id": f"a{i}", "annotator": "ann", "labels": _labels(truth), "rationale": f"review says {truth}"})
    return _write(tmp_path / "drafts.jsonl", drafts), _write(tmp_path / "reviews.jsonl", reviews)


def test_eval_writes_the_three_files_and_escapes_untrusted_text(tmp_path: Path) -> None:
    drafts, reviews = _files(tmp_path)
    rows = [json.loads(x) for x in reviews.read_text().splitlines()]
    rows[0]["rationale"] = "<img src=x onerror=alert(1)> no"
    _write(reviews, rows)
    articles = _write(tmp_path / "articles.jsonl", [{"id": "a0", "title": "<script>alert('x')</script> Robot", "text": "t"}])
    out = tmp_path / "report"
    assert main(["eval", "--drafts", str(drafts), "--reviews", str(reviews), "--articles", str(articles), "-o", str(out), "--bootstrap", "50"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["fields"][PRIMARY]["accuracy"] == pytest.approx(0.75)
    assert set(metrics["fields"]) == {f.name for f in TAX.fields}
    html = (out / "report.html").read_text()
    assert "<script" not in html.lower() and "<img" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; Robot" in html  # the title is shown, as text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "http" not in html.split("<body>")[1].replace("http://www.w3.org/2000/svg", "")  # self-contained
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) >= len(TAX.single_fields) + len(TAX.multi_fields) + 1  # confusion, F1 bars, reliability
    for svg in svgs:
        ElementTree.fromstring(svg)  # well-formed, so browsers draw it
    summary = (out / "summary.md").read_text()
    assert f"| {PRIMARY} | 40 | accuracy | 0.750 [" in summary


def test_thresholds_gate_the_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drafts, reviews = _files(tmp_path)
    strict = _write(tmp_path / "strict.toml", [f"[{PRIMARY}]", "accuracy = 0.9", "[rationale]", "edit_similarity = 0.1"])
    loose = _write(tmp_path / "loose.toml", [f"[{PRIMARY}]", "accuracy = 0.7"])
    args = ["eval", "--drafts", str(drafts), "--reviews", str(reviews), "--bootstrap", "30"]
    assert main([*args, "-o", str(tmp_path / "r1"), "--thresholds", str(strict)]) == 1
    assert f"threshold missed: {PRIMARY}.accuracy = 0.750 < 0.9" in capsys.readouterr().err
    summary = (tmp_path / "r1" / "summary.md").read_text()
    assert "**FAIL**" in summary and "≥ 0.9" in summary and "pass" in summary
    gate = json.loads((tmp_path / "r1" / "metrics.json").read_text())["thresholds"]
    assert gate["passed"] is False and [c["passed"] for c in gate["checks"]] == [False, True]
    assert main([*args, "-o", str(tmp_path / "r2"), "--thresholds", str(loose)]) == 0


def test_a_misspelt_threshold_is_an_error_not_a_silent_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drafts, reviews = _files(tmp_path)
    typo = _write(tmp_path / "typo.toml", [f"[{PRIMARY}]", "acuracy = 0.9"])
    assert main(["eval", "--drafts", str(drafts), "--reviews", str(reviews), "-o", str(tmp_path / "r"), "--thresholds", str(typo)]) == 2
    assert "acuracy: unknown metric" in capsys.readouterr().err


def test_bad_input_lines_are_reported_skipped_and_fail_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drafts, reviews = _files(tmp_path, n=8)
    lines = drafts.read_text().splitlines()
    bad_label = json.loads(lines[2])
    bad_label["labels"][PRIMARY] = "Alien invasion"
    _write(drafts, [lines[0], "{not json", json.dumps(bad_label), *lines[3:]])
    out = tmp_path / "r"
    assert main(["eval", "--drafts", str(drafts), "--reviews", str(reviews), "-o", str(out), "--bootstrap", "20"]) == 1
    err = capsys.readouterr().err
    assert f"{drafts}:2: not valid JSON" in err
    assert f"{drafts}: article a2: {PRIMARY}: 'Alien invasion' is not a value of the taxonomy" in err
    metrics = json.loads((out / "metrics.json").read_text())
    # a2's draft keeps its other fields; its classification counts as missing: scored as a disagreement
    assert metrics["counts"]["pairs"] == 7 and metrics["counts"]["references_without_draft"] == 1
    assert metrics["fields"][PRIMARY]["n"] == 7 and metrics["fields"]["industries"]["exact_match"] == 1.0


def test_compare_reports_the_paired_difference_and_mcnemar(tmp_path: Path) -> None:
    better, reviews = _files(tmp_path, n=60, wrong_every=10)
    (tmp_path / "better.jsonl").write_text(better.read_text())
    worse, _ = _files(tmp_path, n=60, wrong_every=3)
    out = tmp_path / "r"
    assert main(["eval", "--drafts", str(tmp_path / "better.jsonl"), "--compare", str(worse), "--reviews", str(reviews),
                 "-o", str(out), "--bootstrap", "200"]) == 0
    cmp = json.loads((out / "metrics.json").read_text())["compare"]
    acc = cmp["fields"][PRIMARY]["accuracy"]
    assert (acc["candidate"], acc["baseline"]) == (pytest.approx(54 / 60, abs=1e-6), pytest.approx(40 / 60, abs=1e-6))
    assert acc["difference"] == pytest.approx(14 / 60, abs=1e-6) and acc["ci95"][0] > 0
    mc = cmp["mcnemar"]
    # the candidate errs on multiples of 10, the baseline on multiples of 3: the candidate alone is
    # right on 18 articles (3, 6, 9, 12, ...), the baseline alone on 4 (10, 20, 40, 50)
    assert (mc["candidate_only_right"], mc["baseline_only_right"]) == (18, 4)
    exact = 2 * sum(math.comb(22, k) for k in range(5)) / 2**22
    assert mc["p_value"] == pytest.approx(exact, abs=1e-6)
    assert "Compared with the baseline" in (out / "summary.md").read_text()


def test_blind_reviews_get_slices_in_the_shape_of_fields() -> None:
    drafts = [Draft(article_id=str(i), labels=_labels(CLASSES[0])) for i in range(20)]
    reviews = [Review(article_id=str(i), annotator="a", labels=_labels(CLASSES[i % 2]), blind=i < 8) for i in range(20)]
    m = evaluate(drafts, reviews, TAX, n_boot=20).metrics.model_dump(mode="json")
    for name, n in (("blind", 8), ("assisted", 12)):
        block = m["slices"][name]
        assert block["n_pairs"] == n
        assert set(block["fields"]) == set(m["fields"])
        assert set(block["fields"][PRIMARY]) == set(m["fields"][PRIMARY])


def test_gold_set_and_shipped_thresholds(tmp_path: Path) -> None:
    """The shipped gold set scores perfect drafts as perfect, and the shipped thresholds reject a
    model that calls everything by one class."""
    gold = ROOT / "evals" / "gold.jsonl"
    records = [json.loads(x) for x in gold.read_text().splitlines() if x.strip()]
    perfect = _write(tmp_path / "perfect.jsonl", [{"article_id": r["article_id"], "labels": r["labels"], "rationale": r["rationale"]} for r in records])
    lazy = _write(tmp_path / "lazy.jsonl", [{"article_id": r["article_id"], "labels": _labels(CLASSES[-1]), "rationale": "x"} for r in records])
    thresholds = ROOT / "evals" / "thresholds.toml"
    base = ["eval", "--gold", str(gold), "--thresholds", str(thresholds), "--bootstrap", "50"]
    assert main([*base, "--drafts", str(perfect), "-o", str(tmp_path / "p")]) == 0
    fields = json.loads((tmp_path / "p" / "metrics.json").read_text())["fields"]
    assert all(f[m] == 1.0 for f in fields.values() for m in ("accuracy", "micro_f1", "edit_similarity") if f.get(m) is not None)
    assert main([*base, "--drafts", str(lazy), "-o", str(tmp_path / "l")]) == 1
    assert math.isclose(json.loads((tmp_path / "l" / "metrics.json").read_text())["counts"]["pairs"], len(records))


def test_nothing_to_score_is_one_message_and_exit_2(tmp_path: Path, capsys) -> None:
    drafts = _write(tmp_path / "drafts.jsonl", [])
    gold = ROOT / "evals" / "gold.jsonl"
    assert main(["eval", "--drafts", str(drafts), "--gold", str(gold), "-o", str(tmp_path / "r"), "--bootstrap", "20"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing to score" in err[0]
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_gold_checked_against_itself_with_null_model_version(tmp_path: Path) -> None:
    rows = [json.loads(x) | {"model_version": None} for x in (ROOT / "evals" / "gold.jsonl").read_text().splitlines()]
    gold = _write(tmp_path / "gold.jsonl", rows)
    out = tmp_path / "r"
    assert main(["eval", "--drafts", str(gold), "--gold", str(gold), "-o", str(out), "--bootstrap", "20"]) == 0
    assert json.loads((out / "metrics.json").read_text())["fields"][PRIMARY]["accuracy"] == 1.0


def test_one_bad_value_drops_its_field_only_and_aliases_are_read(tmp_path: Path, capsys) -> None:
    drafts, reviews = _files(tmp_path, n=8, wrong_every=100)
    rows = [json.loads(x) for x in reviews.read_text().splitlines()]
    rows[0]["labels"]["industries"] = ["Not an industry"]
    rows[1]["labels"]["industries"] = ["Government & security & defence"]
    _write(reviews, rows)
    d = [json.loads(x) for x in drafts.read_text().splitlines()]
    d[1]["labels"]["industries"] = ["Government, security, and defence"]
    _write(drafts, d)
    out = tmp_path / "r"
    assert main(["eval", "--drafts", str(drafts), "--reviews", str(reviews), "-o", str(out), "--bootstrap", "20"]) == 1
    err = capsys.readouterr().err
    assert "article a0: industries: 'Not an industry' is not a value of the taxonomy" in err
    assert "industries counted as missing for this record; its other fields are kept" in err
    assert "'Government & security & defence' read as 'Government, security, and defence' in 1 record(s)" in err
    fields = json.loads((out / "metrics.json").read_text())["fields"]
    assert fields[PRIMARY]["n"] == 8 and fields["industries"]["n"] == 7
    assert fields["industries"]["exact_match"] == 1.0


def test_span_agreement_and_flag_shares_are_reported(tmp_path: Path) -> None:
    drafts, reviews = _files(tmp_path, n=6, wrong_every=100)
    d = [json.loads(x) for x in drafts.read_text().splitlines()]
    r = [json.loads(x) for x in reviews.read_text().splitlines()]
    for i, row in enumerate(d):
        row["evidence"] = [{"kind": "harm", "start": 0, "end": 10, "text": "x" * 10}]
        row["flags"] = ["rationale: copies the article"] if i < 3 else []
        r[i]["evidence"] = [{"kind": "harm", "start": 5, "end": 15, "text": "x" * 10}]  # moved by half
    _write(drafts, d)
    _write(reviews, r)
    out = tmp_path / "r"
    assert main(["eval", "--drafts", str(drafts), "--reviews", str(reviews), "-o", str(out), "--bootstrap", "20"]) == 0
    checks = json.loads((out / "metrics.json").read_text())["draft_checks"]
    assert checks["evidence"]["kinds"]["harm"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert checks["flags"]["flags"]["rationale: copies the article"] == {"n": 3, "share": 0.5}
    summary = (out / "summary.md").read_text()
    assert "`rationale: copies the article`: 3 of 6 drafts (50%)" in summary and "F1 0.500" in summary
    html = (out / "report.html").read_text()  # the same line, its code span as HTML rather than backticks
    assert "<li><code>rationale: copies the article</code>: 3 of 6 drafts (50%)</li>" in html


def test_reviews_all_blind_leave_an_empty_assisted_slice(tmp_path: Path) -> None:
    """A blind-only reviews file (what calibration reads) is scored; the assisted slice is empty, not a crash."""
    drafts, reviews = _files(tmp_path)
    blind = [{**json.loads(line), "blind": True} for line in reviews.read_text().splitlines()]
    _write(reviews, blind)
    out = tmp_path / "report"
    assert main(["eval", "--drafts", str(drafts), "--reviews", str(reviews), "-o", str(out), "--bootstrap", "20"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["slices"]["assisted"]["n_pairs"] == 0 and metrics["slices"]["blind"]["n_pairs"] == 40
    assert metrics["slices"]["blind"]["fields"][PRIMARY]["accuracy"] == metrics["fields"][PRIMARY]["accuracy"] == 0.75
