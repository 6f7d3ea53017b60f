"""Two people running one command on the same files at the same moment (normal use): `ingest`, `pull`,
`eval`, `calibrate` and `accept` each end with whole, correct output and exit 0, and leave no temporary file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures_labelstudio import make_articles, make_drafts

from annotator.calibrate import Calibration
from annotator.evaluate.model import load_metrics
from annotator.locks import hold
from annotator.records import Article, Draft, GoldRecord, Review, read_jsonl, write_jsonl
from annotator.taxonomy import load_taxonomy

TAX = load_taxonomy("oecd_aim")
CLASSES = TAX.field(TAX.primary).value_ids
CLI = [sys.executable, "-m", "annotator.cli"]

# Writes 40 records slowly through write_jsonl; after its first record it waits until the other
# writer has started too, so the two writes overlap whatever the machine's load.
_WRITER = """
import sys, time
from pathlib import Path
from annotator.records import write_jsonl
path, tag = Path(sys.argv[1]), sys.argv[2]
def records():
    for i in range(40):
        yield {"writer": tag, "n": i}
        if i == 0:
            (path.parent / f"started-{tag}").touch()
            deadline = time.monotonic() + 60
            while len(list(path.parent.glob("started-*"))) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        time.sleep(0.005)
write_jsonl(path, records())
"""


def _at_once(*commands: list[str], env: dict[str, str] | None = None) -> list[subprocess.CompletedProcess[str]]:
    """Start every command, then wait for all of them."""
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for c in commands]
    done = []
    for c, p in zip(commands, procs, strict=True):
        out, err = p.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(c, p.returncode, out, err))
    return done


def _no_temporaries(folder: Path) -> None:
    assert not [p.name for p in folder.rglob("*.tmp")]


def test_two_writers_of_one_jsonl_file_at_once_leave_one_whole_file(tmp_path):
    path = tmp_path / "reviews.jsonl"
    for run in _at_once(*([sys.executable, "-c", _WRITER, str(path), tag] for tag in "ab")):
        assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len({r["writer"] for r in records}) == 1 and [r["n"] for r in records] == list(range(40))
    _no_temporaries(tmp_path)


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "accepted.jsonl"
    write_jsonl(path, [GoldRecord(article_id="kept")])

    def broken():
        yield GoldRecord(article_id="new")
        raise RuntimeError("the source went away")

    with pytest.raises(RuntimeError):
        write_jsonl(path, broken())
    assert [g.article_id for g in read_jsonl(path, GoldRecord)] == ["kept"]
    _no_temporaries(tmp_path)


def _drafts_and_reviews(folder: Path, n: int) -> tuple[Path, Path]:
    """`n` drafts (right three times in four, with confidence 1.0) and a blind review of each."""
    drafts, reviews = [], []
    for i in range(n):
        truth = CLASSES[i % len(CLASSES)]
        guess = truth if i % 4 else CLASSES[(i + 1) % len(CLASSES)]
        drafts.append(Draft(article_id=f"a{i}", labels={TAX.primary: guess}, confidence={TAX.primary: 1.0 if i % 4 else 0.4},
                            rationale=f"draft says {guess}", model_version="p1@m"))
        reviews.append(Review(article_id=f"a{i}", annotator="ann@example.org", labels={TAX.primary: truth},
                              rationale=f"review says {truth}", blind=True, lead_time_s=30.0, model_version="p1@m"))
    write_jsonl(folder / "drafts.jsonl", drafts)
    write_jsonl(folder / "reviews.jsonl", reviews)
    return folder / "drafts.jsonl", folder / "reviews.jsonl"


@pytest.mark.slow
def test_two_evals_calibrations_and_accepts_at_once_each_end_whole_and_correct(tmp_path):
    n = 800
    drafts, reviews = _drafts_and_reviews(tmp_path, n)

    report = tmp_path / "report"
    runs = _at_once(*[[*CLI, "eval", "--drafts", str(drafts), "--reviews", str(reviews), "-o", str(report),
                       "--bootstrap", "100"]] * 2)
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    metrics = load_metrics(report / "metrics.json")
    assert metrics.counts.articles == n and metrics.fields[TAX.primary].accuracy == pytest.approx(0.75)
    assert (report / "summary.md").read_text().startswith("#") and (report / "report.html").read_text().endswith("</html>\n")

    policy = tmp_path / "calibration.json"
    runs = _at_once(*[[*CLI, "calibrate", "--field", TAX.primary, "--drafts", str(drafts), "--reviews", str(reviews),
                       "-o", str(policy)]] * 2)
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    calibration = Calibration.model_validate_json(policy.read_text())
    assert calibration.n_calibration == n and calibration.threshold is not None and calibration.threshold > 0.4

    accepted = tmp_path / "accepted.jsonl"
    runs = _at_once(*[[*CLI, "accept", str(drafts), "--policy", str(policy), "--audit-share", "0.1", "-o", str(accepted)]] * 2)
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    lines = [json.loads(x) for x in accepted.read_text().splitlines()]
    assert sorted(x["article_id"] for x in lines) == sorted(f"a{i}" for i in range(n) if i % 4)  # the confident ones, once each
    _no_temporaries(tmp_path)


def test_two_ingests_into_one_file_at_once_write_each_article_once(tmp_path):
    from annotator.ingest import read_articles

    samples = Path(__file__).resolve().parents[1] / "annotator" / "samples" / "articles"
    out = tmp_path / "articles.jsonl"
    runs = _at_once(*[[*CLI, "ingest", str(samples), "-o", str(out)]] * 2)
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    ids = [a.id for a in read_jsonl(out, Article)]
    assert len(ids) == len(set(ids)) == len({a.id for a in read_articles([samples], on_error=lambda m: None)})
    assert sorted(int(r.stdout.split("written ")[1].split()[0]) for r in runs)[0] == 0  # the second wrote nothing


@pytest.mark.slow
def test_an_eval_waits_for_the_one_writing_the_report_folder_and_says_so(tmp_path):
    drafts, reviews = _drafts_and_reviews(tmp_path, 40)
    report, log = tmp_path / "report", tmp_path / "eval.err"
    with hold([report], "eval", lambda line: None):  # another eval is writing the folder
        proc = subprocess.Popen([*CLI, "eval", "--drafts", str(drafts), "--reviews", str(reviews), "-o", str(report),
                                 "--bootstrap", "20"], stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
        deadline = time.monotonic() + 120
        while "in use by" not in log.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.05)
        assert not (report / "metrics.json").exists()  # it waits, writing nothing
    proc.communicate(timeout=120)
    assert proc.returncode == 0, log.read_text()
    assert f"{report} is in use by `annotator eval` (pid" in log.read_text()
    assert load_metrics(report / "metrics.json").counts.articles == 40


@pytest.mark.labelstudio
@pytest.mark.slow
def test_two_pulls_into_one_reviews_file_at_once(tmp_path, ls_conn, labelstudio, project_title):
    from annotator.labelstudio.annotators import post_reviews
    from annotator.labelstudio.push import push

    articles = make_articles(30, prefix="pulls")
    drafts = make_drafts(TAX, articles)
    assert push(ls_conn, drafts, {a.id: a for a in articles}, TAX, project_title, blind_share=0.2).ok
    reviews = [Review(article_id=d.article_id, annotator="dora@example.com", labels=d.labels, rationale=d.rationale,
                      model_version=d.model_version, lead_time_s=10.0) for d in drafts]
    post_reviews(ls_conn, TAX, project_title, reviews)

    out = tmp_path / "reviews.jsonl"
    env = {**os.environ, "LABEL_STUDIO_URL": labelstudio.url, "LABEL_STUDIO_API_KEY": labelstudio.token}
    runs = _at_once(*[[*CLI, "pull", "--project", project_title, "-o", str(out)]] * 2, env=env)
    assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
    pulled = read_jsonl(out, Review)
    assert sorted(r.article_id for r in pulled) == sorted(a.id for a in articles)  # every review, each once
    assert {r.article_id: r.labels for r in pulled} == {r.article_id: r.labels for r in reviews}
    assert 0 < sum(r.blind for r in pulled) < len(pulled)
    _no_temporaries(tmp_path)
