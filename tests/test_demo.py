"""The newcomer's demo, end to end on real parts: the local test LLM server, the session's Label
Studio, and (for what annotators see) Debian's Chromium.

The demo runs as a user runs it (`annotator demo ...` through `main`); the tests read the files it
leaves and what Label Studio holds, and compare them with independent sources (the samples' gold
labels, the drafts file, the reviews file).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd
import pytest
from fake_openai_server import BAD_LABEL, FakeOpenAIServer, Faults
from fixtures_labelstudio import browser_page
from fixtures_llm import FAKE_KEY

from annotator.cli import main
from annotator.demo import EMBEDDED_SAMPLES, sample_gold_path, samples_dir
from annotator.labelstudio.client import find_project
from annotator.labelstudio.push import BLIND_SUFFIX, existing_tasks
from annotator.llm import local
from annotator.records import Article, Draft, GoldRecord, Review, read_jsonl
from annotator.taxonomy import load_taxonomy, validate_labels

TAX = load_taxonomy("oecd_aim")
PROJECT = "demo under test"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
GOLD = {g.article_id: g for g in read_jsonl(sample_gold_path(), GoldRecord)}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="module")
def env(work: Path):
    """The working folder as the current directory, no Label Studio or model settings inherited."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        for name in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
            mp.delenv(name, raising=False)
        yield mp


@pytest.fixture(scope="module")
def runs(env: pytest.MonkeyPatch, work: Path, labelstudio):
    """A run stopped by a refused key, the run that finishes it, and the test server it drafted with."""
    with FakeOpenAIServer(Faults(api_key=FAKE_KEY)) as fake:
        env.setenv("OPENAI_BASE_URL", fake.url)
        args = ["--simulate-review", "--out", str(work / "out"), "--project", PROJECT, "--labelstudio-dir", labelstudio.data_dir]
        env.setenv("OPENAI_API_KEY", "sk-wrong-key")
        stopped = _run(args)
        stopped_summary = json.loads((work / "out" / "demo-summary.json").read_text())
        env.setenv("OPENAI_API_KEY", FAKE_KEY)
        finished = _run(args)
        yield {"stopped": stopped, "stopped_summary": stopped_summary, "finished": finished, "fake": fake, "args": args, "out": work / "out"}


def _run(args: list[str]) -> tuple[int, str, str]:
    """`annotator demo ARGS` as a user runs it: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["demo", *args])
    return code, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------- failure, then resume


@pytest.mark.slow
@pytest.mark.labelstudio
def test_a_stage_that_fails_is_named_with_what_to_do_and_the_next_run_finishes(runs, labelstudio) -> None:
    code, out, err = runs["stopped"]
    assert code == 2 and "sk-wrong-key" not in out + err
    assert "stage 'draft' failed" in out and "OPENAI_API_KEY" in out.split("stage 'draft' failed")[1]
    assert "run the demo again" in out
    assert "the demo stopped at stage 'draft'" in out
    status = {s["name"]: s["status"] for s in runs["stopped_summary"]["stages"]}
    assert status["ingest"] == "done" and status["draft"] == "failed" and status["push"] == "not run"

    code, out, err = runs["finished"]
    assert code == 0, out + err
    for i, stage in enumerate(("label studio", "ingest", "draft", "push", "simulated review", "pull", "eval", "export"), 1):
        assert f"[{i}/8] {stage}" in out
    assert f"reusing the local Label Studio at {labelstudio.url}" in out
    assert f"the OpenAI-compatible endpoint {runs['fake'].url} (OPENAI_BASE_URL)" in out
    assert FAKE_KEY not in out + err
    # What to look at in the browser, where and as whom; and, since the simulated reviewers take every
    # task, the command that gives a fresh project to review by hand (tried below).
    assert f"log in as {labelstudio.username} / {labelstudio.password}" in out
    assert re.search(rf"open {re.escape(labelstudio.url)}/projects/\d+/data", out)
    assert "to review by hand: " in out and "Label All Tasks" in out.split("to review by hand: ")[1]
    assert "simulated reviewers" in out.split("[7/8] eval")[1].split("[8/8]")[0]
    # Closing summary: every stage timed, the cost, where each output is.
    summary = json.loads((runs["out"] / "demo-summary.json").read_text())
    assert [s["status"] for s in summary["stages"]] == ["done"] * 8
    for s in summary["stages"]:
        assert re.search(rf"^  {re.escape(s['name'])}\s+done\s+{s['seconds']:.1f} s$", out, re.M)
    cost = re.search(r"^cost: \$(\d+\.\d{4}) this run; \$(\d+\.\d{4}) for all drafts", out, re.M)
    assert cost and cost.group(1) == cost.group(2) and float(cost.group(1)) > 0  # all paid in this run
    for key in ("articles", "drafts", "reviews", "report", "metrics", "gold"):
        assert summary["outputs"][key] in out and Path(summary["outputs"][key]).exists()


@pytest.mark.slow
@pytest.mark.labelstudio
def test_articles_are_the_samples_and_are_listed(runs) -> None:
    articles = read_jsonl(runs["out"] / "articles.jsonl", Article)
    assert sorted(a.id for a in articles) == sorted(GOLD)
    out = runs["finished"][1]
    for a in articles:
        assert a.id in out and a.title in out


@pytest.mark.slow
@pytest.mark.labelstudio
def test_drafts_are_valid_and_paid_once(runs) -> None:
    drafts = read_jsonl(runs["out"] / "drafts.jsonl", Draft)
    assert sorted(d.article_id for d in drafts) == sorted(GOLD)
    for d in drafts:
        assert d.error is None and validate_labels(TAX, d.labels) == [] and d.rationale
    assert runs["fake"].stats["answered"] == len(GOLD)


@pytest.mark.slow
@pytest.mark.labelstudio
def test_label_studio_holds_one_task_per_article_with_a_blind_slice(runs, ls_conn) -> None:
    project = find_project(ls_conn, PROJECT)
    blind_project = find_project(ls_conn, PROJECT + BLIND_SUFFIX)
    assert project is not None and blind_project is not None
    assisted, blind = existing_tasks(ls_conn, project.id), existing_tasks(ls_conn, blind_project.id)
    assert not set(assisted) & set(blind) and sorted([*assisted, *blind]) == sorted(GOLD)
    # Stratified by the draft's class: every class the drafts gave has a blind article.
    drafts = {d.article_id: d for d in read_jsonl(runs["out"] / "drafts.jsonl", Draft)}
    assert {drafts[a].labels[TAX.primary] for a in blind} == {d.labels[TAX.primary] for d in drafts.values()}


@pytest.mark.slow
@pytest.mark.labelstudio
def test_reviews_are_two_per_assisted_task_and_three_per_blind_one(runs) -> None:
    reviews = read_jsonl(runs["out"] / "reviews.jsonl", Review)
    by_article: dict[str, list[Review]] = defaultdict(list)
    for r in reviews:
        by_article[r.article_id].append(r)
    assert sorted(by_article) == sorted(GOLD)
    for aid, rs in by_article.items():
        blind = {r.blind for r in rs}
        assert len(blind) == 1, aid
        assert len(rs) == (3 if blind == {True} else 2), aid
        assert len({r.annotator for r in rs}) == len(rs) and all(r.annotator.endswith("@example.org") for r in rs)
        assert all(not r.skipped and validate_labels(TAX, r.labels) == [] for r in rs)
        if blind == {False}:
            assert all(r.model_version and r.accepted_as_is is not None for r in rs)
    # Simulated from the gold labels with a little noise: mostly the gold class.
    agree = sum(r.labels[TAX.primary] == GOLD[r.article_id].labels[TAX.primary] for r in reviews)
    assert agree / len(reviews) > 0.6


@pytest.mark.slow
@pytest.mark.labelstudio
def test_eval_report_scores_the_drafts_against_the_reviews(runs) -> None:
    out = runs["out"]
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    drafts = {d.article_id: d for d in read_jsonl(out / "drafts.jsonl", Draft)}
    reviews = read_jsonl(out / "reviews.jsonl", Review)
    assert metrics["counts"]["articles"] == len(GOLD) and metrics["counts"]["pairs"] == len(reviews)
    same = [r.labels[TAX.primary] == drafts[r.article_id].labels[TAX.primary] for r in reviews]
    assert metrics["fields"][TAX.primary]["accuracy"] == pytest.approx(sum(same) / len(same), abs=1e-6)
    blind = [s for s, r in zip(same, reviews, strict=True) if r.blind]
    assert metrics["slices"]["blind"]["fields"][TAX.primary]["accuracy"] == pytest.approx(sum(blind) / len(blind), abs=1e-6)
    html = (out / "report" / "report.html").read_text()
    assert "Blind (unassisted)" in html and TAX.primary in html and "<svg" in html
    assert f"{metrics['fields'][TAX.primary]['accuracy']:.3f}" in html
    summary = (out / "report" / "summary.md").read_text()
    assert summary.startswith("## Eval")
    # Figures from simulated reviewers say so before any figure is read.
    assert summary.index("Simulated reviewers:") < summary.index("| field |")
    assert html.index("Simulated reviewers:") < html.index("<table")


@pytest.mark.slow
@pytest.mark.labelstudio
def test_gold_splits_hold_every_article_as_the_lead_decided(runs) -> None:
    out, stdout = runs["out"], runs["finished"][1]
    lead = re.search(r"policy: lead \((\S+) decides", stdout).group(1)
    lead_labels = {r.article_id: r.labels for r in read_jsonl(out / "reviews.jsonl", Review) if r.annotator == lead}
    assert sorted(lead_labels) == sorted(GOLD)  # the lead reviewed every article
    manifest = json.loads((out / "gold" / "manifest.json").read_text())
    seen = []
    for split in ("train", "validation", "test"):
        records = read_jsonl(out / "gold" / f"{split}.jsonl", GoldRecord)
        assert manifest["counts"][split]["articles"] == len(records)
        assert len(pd.read_parquet(out / "gold" / f"{split}.parquet")) == len(records)
        for g in records:
            assert g.labels == {k: v for k, v in lead_labels[g.article_id].items()}, g.article_id
            seen.append(g.article_id)
    assert sorted(seen) == sorted(GOLD)
    assert len(read_jsonl(out / "gold" / "train.jsonl", GoldRecord)) > len(GOLD) // 2
    assert "Agreement" in (out / "gold" / "README.md").read_text() or "agreement" in (out / "gold" / "README.md").read_text()


@pytest.mark.slow
@pytest.mark.labelstudio
def test_a_second_run_resumes_and_makes_nothing_twice(runs, ls_conn) -> None:
    out = runs["out"]
    before = {name: (out / "gold" / f"{name}.jsonl").read_bytes() for name in ("train", "validation", "test")}
    project = find_project(ls_conn, PROJECT)
    blind_project = find_project(ls_conn, PROJECT + BLIND_SUFFIX)
    n_tasks = len(existing_tasks(ls_conn, project.id)) + len(existing_tasks(ls_conn, blind_project.id))
    n_reviews = len(read_jsonl(out / "reviews.jsonl", Review))
    answered = runs["fake"].stats["answered"]

    code, stdout, err = _run(runs["args"])
    assert code == 0, stdout + err
    assert "0 tasks created" in stdout and "posting 0 simulated reviews" in stdout and f"({n_reviews} already there)" in stdout
    assert "written 0 to" in stdout and "26 already done" in stdout
    assert runs["fake"].stats["answered"] == answered  # nothing drafted (or paid) twice
    assert len(existing_tasks(ls_conn, project.id)) + len(existing_tasks(ls_conn, blind_project.id)) == n_tasks
    assert len(read_jsonl(out / "reviews.jsonl", Review)) == n_reviews
    assert Counter(a.id for a in read_jsonl(out / "articles.jsonl", Article)) == Counter(list(GOLD))
    for name, data in before.items():
        assert (out / "gold" / f"{name}.jsonl").read_bytes() == data, name


@pytest.mark.slow
@pytest.mark.labelstudio
def test_the_hand_review_command_it_prints_gives_a_fresh_queue_with_the_same_drafts(runs, ls_conn) -> None:
    out = runs["finished"][1]
    command = re.search(r"^to review by hand: (.+)$", out, re.M).group(1)
    words = shlex.split(command)
    assert words[:2] == ["annotator", "demo"] or words[0].endswith("/annotator")
    answered = runs["fake"].stats["answered"]
    code, stdout, err = _run(words[2:])
    assert code == 0, stdout + err
    assert runs["fake"].stats["answered"] == answered  # same drafts, from the cache: nothing paid again
    project = find_project(ls_conn, "demo by hand")
    tasks = list(ls_conn.ls.tasks.list(project=project.id, fields="all"))
    # A queue to work through: tasks with the draft as a prediction and nobody's annotation yet.
    assert tasks and all(not t.annotations and t.predictions for t in tasks)
    assert "'Label All Tasks' opens the next task" in stdout
    assert "after reviewing in the browser, run the same command again" in stdout


@pytest.mark.slow
@pytest.mark.labelstudio
def test_a_draft_that_fails_for_one_article_is_listed_and_the_demo_exits_0_or_1_with_strict(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, labelstudio) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    victim = sorted(GOLD)[0]
    with FakeOpenAIServer(Faults(api_key=FAKE_KEY, scripts={victim: [BAD_LABEL]})) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        args = ["--out", "out", "--project", "demo with a failed draft", "--labelstudio-dir", labelstudio.data_dir]
        code, out, err = _run(args)
        assert code == 0, out + err  # every stage ran; the one article's problem is listed, not fatal
        summary = json.loads(Path("out/demo-summary.json").read_text())
        assert {s["name"]: s["status"] for s in summary["stages"]}["draft"] == "flagged"
        listed = out.split("problems (")[1]
        assert f"draft of {victim} failed: invalid_answer" in listed and "exit code 0" in listed
        assert "Definitely not a label" in listed  # what was wrong, quoted
        code, out, err = _run([*args, "--strict"])
        assert code == 1 and "exit code 1 (--strict)" in out
        assert fake.stats["by_article"][victim] == 2  # one answer and its repair; the strict re-run paid nothing


# --------------------------------------------------------------------------- the embedded model


def test_the_embedded_demo_samples_cover_every_class_and_several_formats() -> None:
    """With the embedded model the demo drafts a subset: it must still show every class to the reviewers and the report."""
    from annotator.ingest import read_articles

    articles = list(read_articles([samples_dir() / name for name in EMBEDDED_SAMPLES]))
    assert len(articles) == len(EMBEDDED_SAMPLES) and all(a.id in GOLD for a in articles)
    classes = Counter(GOLD[a.id].labels[TAX.primary] for a in articles)
    assert set(classes) == set(TAX.field(TAX.primary).value_ids) and min(classes.values()) >= 2, classes
    assert {Path(n).suffix for n in EMBEDDED_SAMPLES} == {".html", ".md", ".txt"}


@pytest.mark.slow
@pytest.mark.labelstudio
@pytest.mark.embedded
@pytest.mark.skipif(not local.available(), reason="the embedded model needs the [local] extra (make test installs it)")
def test_the_demo_with_the_embedded_model_exits_0_and_reuses_the_prompt_prefix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, labelstudio) -> None:
    """No key, no base URL: what `make demo` does on a fresh machine, on two sample articles."""
    monkeypatch.chdir(tmp_path)
    for name in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    few = tmp_path / "few"
    few.mkdir()
    for name in ("council_briefing.txt", "health_desk.txt"):
        (few / name).write_bytes((samples_dir() / name).read_bytes())
    code, out, err = _run(["--simulate-review", "--input", str(few), "--out", "out", "--project", "embedded demo",
                           "--labelstudio-dir", labelstudio.data_dir])
    assert code == 0, out + err
    assert "drafting with the embedded local model" in out
    drafts = read_jsonl("out/drafts.jsonl", Draft)
    assert len(drafts) == 2 and {d.model for d in drafts} == {local.LOCAL_MODEL}
    for d in drafts:  # a tiny model may be wrong, never outside the taxonomy
        assert d.error is not None or validate_labels(TAX, d.labels) == []
    status = {s["name"]: s["status"] for s in json.loads(Path("out/demo-summary.json").read_text())["stages"]}
    assert all(status[name] in ("done", "flagged") for name in status), status
    # Every request after the first reused the computed system prompt (about 2,200 tokens) instead
    # of computing it again: the server's log says so per request, and the summary counts it.
    hits = local.prefix_hits(tmp_path / local.LOG)
    requests = sum(d.usage["requests"] for d in drafts)
    assert len(hits) == requests - 1 and min(hits) > 2000, hits
    assert f"(cached {sum(hits)})" in out
    # The answer's threads were chosen from the machine's load, said once, and are the server's.
    said = re.findall(r"embedded model: (\d+) answer threads? \(\d+ cores, 1-minute load", err)
    assert len(said) == 1, err
    assert f"--n_threads {said[0]} ".encode() in (tmp_path / local.LOG).read_bytes()
    # Confidence from the answer's log-probabilities, which the embedded server returns: no label-only re-answers.
    for d in drafts:
        assert d.error is not None or ("confidence_samples" not in d.usage and any(c is not None for c in d.confidence.values()))


# --------------------------------------------------------------------------- what an annotator sees


@pytest.mark.slow
@pytest.mark.labelstudio
def test_an_annotator_sees_the_draft_preselected_and_a_blind_task_without_it(env, work: Path, labelstudio, ls_conn) -> None:
    """Open tasks in headless Chromium, logged in as the demo prints; save what it shows."""
    # The test server answers with the samples' gold labels, so the screenshot shows a sensible draft.
    scripts = {aid: [{**g.labels, "rationale": g.rationale}] for aid, g in GOLD.items()}
    with FakeOpenAIServer(Faults(api_key=FAKE_KEY, scripts=scripts, quote=True)) as fake:
        env.setenv("OPENAI_BASE_URL", fake.url)
        env.setenv("OPENAI_API_KEY", FAKE_KEY)
        title = "demo as annotators see it"
        code, out, err = _run(["--out", str(work / "browser"), "--project", title, "--labelstudio-dir", labelstudio.data_dir])
    assert code == 0, out + err
    assert "no --simulate-review" in out and "after reviewing in the browser, run the same command again" in out
    user, password = re.search(r"log in as (\S+) / (\S+)", out).groups()
    url = re.search(r"open (\S+)/projects/\d+/data", out).group(1)
    drafts = {d.article_id: d for d in read_jsonl(work / "browser" / "drafts.jsonl", Draft)}
    project, blind_project = find_project(ls_conn, title), find_project(ls_conn, title + BLIND_SUFFIX)
    assisted = existing_tasks(ls_conn, project.id)
    blind = existing_tasks(ls_conn, blind_project.id)
    # An incident whose draft tags more than one field, to show the whole form filled in.
    aid = next(a for a in sorted(assisted, key=assisted.get) if drafts[a].labels[TAX.primary] == TAX.field(TAX.primary).value_ids[0])
    draft = drafts[aid]
    header = TAX.primary.replace("_", " ")
    choices = f"xpath=//h4[starts-with(normalize-space(.), '{header}')]/following-sibling::div[contains(@class, 'lsf-choices')][1]"

    ARTIFACTS.mkdir(exist_ok=True)
    with browser_page(url, user, password) as page:
        page.goto(f"{url}/projects/{project.id}/data?task={assisted[aid]}")
        page.locator(choices).wait_for(timeout=60_000)
        page.get_by_text(draft.rationale[:40]).first.wait_for(timeout=30_000)
        page.locator(".htx-highlight").first.wait_for(timeout=30_000)  # the evidence quotes, highlighted
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "labelstudio-task.png"))
        highlighted = page.locator(".htx-highlight").all_inner_texts()
        assert [t.strip() for t in highlighted] == [e["text"] for e in sorted(draft.evidence, key=lambda e: e["start"])]
        checked = page.locator(f"{choices}//input").evaluate_all("els => els.filter(e => e.checked).map(e => e.name)")
        assert checked == [draft.labels[TAX.primary]]
        boxes = page.locator("[data-testid=htx-textbox-content]").all_inner_texts()
        assert [b.strip() for b in boxes] == [draft.rationale.strip()]
        assert f"Draft {draft.model_version}" in page.inner_text("body")
        assert page.get_by_text(Article.model_validate(
            next(a for a in read_jsonl(work / "browser" / "articles.jsonl", Article) if a.id == aid)).title).count() >= 1

        blind_id = next(iter(blind))
        page.goto(f"{url}/projects/{blind_project.id}/data?task={blind[blind_id]}")
        page.locator(choices).wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "labelstudio-blind-task.png"))
        assert page.locator(f"{choices}//input").evaluate_all("els => els.filter(e => e.checked).length") == 0
        assert page.locator("[data-testid=htx-textbox-content]").count() == 0
        body = page.inner_text("body")
        assert "Draft " not in body and drafts[blind_id].rationale[:40] not in body
        assert "⚠" not in body and page.locator(".htx-highlight").count() == 0  # no flag, no highlight


# --------------------------------------------------------------------------- demo-down


def test_demo_down_ends_a_leftover_model_server_and_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed outright leaves the embedded model server and its pid file; `demo --down` ends it."""
    import os
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".annotator").mkdir()
    pid_file = tmp_path / ".annotator" / "llama-server.pid"
    # Stands in for `python -m annotator.llm.embedded_server ...` (same command line marker, no model needed).
    leftover = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "-m", "annotator.llm.embedded_server"])
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        pid_file.write_text(str(bystander.pid))  # a recycled pid naming something else is left alone
        code, out, _ = _run(["--down", "--labelstudio-dir", str(tmp_path / "ls")])
        assert code == 0 and "embedded model server: not running" in out and "was not running" in out
        assert bystander.poll() is None and not pid_file.exists()

        pid_file.write_text(str(leftover.pid))
        code, out, _ = _run(["--down", "--labelstudio-dir", str(tmp_path / "ls")])
        assert code == 0 and "embedded model server: stopped a leftover one" in out
        assert leftover.wait(timeout=10) is not None and not pid_file.exists()
        assert bystander.poll() is None
    finally:
        for p in (leftover, bystander):
            if p.poll() is None:
                os.kill(p.pid, 15)
                p.wait()
