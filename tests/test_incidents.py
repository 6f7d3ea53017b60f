"""Known incidents: importing OECD AIM records and plain JSONL, and finding the incidents an
article may follow up."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from annotator.cli import main
from annotator.incidents import IncidentIndex, load_incidents, parse_aim_record
from annotator.records import Article, Draft, iter_jsonl, read_jsonl

DATA = Path(__file__).resolve().parent / "data"
STORIES = Path(__file__).resolve().parents[1] / "evals" / "stories"


def test_an_aim_record_gives_title_summary_first_date_and_its_articles() -> None:
    incident = parse_aim_record((DATA / "aim_record.txt").read_text(encoding="utf-8"), "aim_record.txt")
    assert incident.title == "Hospital Chatbot Gives Dangerous Dosage Advice to Patients"
    assert incident.summary.startswith("A patient-support chatbot deployed by Lakeside Clinics")
    assert "[AI generated]" not in incident.summary and "Thumbnail" not in incident.summary
    assert incident.date == "2024-03-11"  # its earliest article
    assert [(a.title[:8], a.date, a.source) for a in incident.articles] == [
        ("Lakeside", "2024-03-12", "Health Desk"), ("莱克赛德诊所聊天", "2024-03-11", "Example Zhongwen News"),
        ("Patients", "2024-03-13", "Medical Wire")]
    assert incident.id.startswith("aim-") and incident.id == parse_aim_record((DATA / "aim_record.txt").read_text()).id


def test_import_merges_by_id_reports_bad_input_and_changes_nothing_the_second_time(tmp_path, capsys) -> None:
    jsonl = tmp_path / "aiid.jsonl"
    jsonl.write_text('{"id": "aiid-1", "title": "Robot vacuum maps homes", "summary": "s", "date": "2023-01-02"}\n'
                     '{"title": "no id"}\n', encoding="utf-8")
    not_a_record = tmp_path / "note.txt"
    not_a_record.write_text("Just a note, not an incident page.\n", encoding="utf-8")
    store = tmp_path / "incidents.jsonl"
    assert main(["incidents", "import", str(DATA / "aim_record.txt"), str(jsonl), str(not_a_record), "-o", str(store)]) == 1
    err = capsys.readouterr().err
    assert f"{jsonl}:2:" in err and f"{not_a_record}: not an OECD AIM record" in err
    first = store.read_bytes()
    assert [i.id for i in load_incidents(store)] == ["aiid-1", parse_aim_record((DATA / "aim_record.txt").read_text()).id]
    assert main(["incidents", "import", str(DATA / "aim_record.txt"), "-o", str(store)]) == 0
    assert "0 added, 0 updated, 1 unchanged" in capsys.readouterr().out and store.read_bytes() == first


def test_two_imports_at_once_lose_nothing(tmp_path) -> None:
    files = []
    for k in range(2):
        f = tmp_path / f"db{k}.jsonl"
        f.write_text("".join(json.dumps({"id": f"db{k}-{n}", "title": f"Incident {k} {n}"}) + "\n" for n in range(300)))
        files.append(f)
    store = tmp_path / "incidents.jsonl"
    runs = [subprocess.Popen([sys.executable, "-m", "annotator.cli", "incidents", "import", str(f), "-o", str(store)])
            for f in files]
    assert [r.wait(timeout=120) for r in runs] == [0, 0]
    assert len({i.id for i in load_incidents(store)}) == 600 == len(store.read_text().splitlines())


def test_candidates_find_the_incident_an_article_follows_up_and_never_a_later_one() -> None:
    incidents = load_incidents(STORIES / "incidents.jsonl")
    index = IncidentIndex(incidents)
    articles = {a.id: a for a in iter_jsonl(STORIES / "articles.jsonl", Article)}
    follow_up = articles["k03-g"]  # damages paid four months after a wrongful arrest
    found = index.candidates(follow_up)
    assert found[0].id == "inc-k03" and len(found) == 3 and found[0].score > found[1].score
    # The same article dated before the incident was first reported cannot follow it up.
    early = follow_up.model_copy(update={"published_at": "2023-12-01"})
    assert "inc-k03" not in {c.id for c in index.candidates(early)}
    # A translated report finds its incident through names and figures.
    assert index.candidates(articles["k02-c"])[0].id == "inc-k02"


# --------------------------------------------------------------------------- the link, drafted

LINK = "\nlink:\n  name: follow_up_of\n  description: Recorded incidents come from the team's incidents file.\n"


def _link_setup(tmp_path: Path, ids: list[str]) -> tuple[Path, Path]:
    """A taxonomy file that declares the link, and an articles file."""
    from annotator.taxonomy import load_taxonomy

    loaded, tax = _link_tax(tmp_path)
    assert loaded.link is not None and load_taxonomy("oecd_aim").link is None
    articles = {a.id: a for a in iter_jsonl(STORIES / "articles.jsonl", Article)}
    path = tmp_path / "articles.jsonl"
    rows = [articles[i].model_dump(mode="json", exclude={"follow_up_of", "story", "kind"}) for i in ids]
    rows.append({"id": "nothing-known", "title": "Zyxqv wobbles", "text": "Qwrtz plimb vorple snark."})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return tax, path


def test_draft_links_each_article_to_one_offered_incident_or_none(llm_env, tmp_path, capsys) -> None:
    tax, articles = _link_setup(tmp_path, ["k03-g", "k02-c"])
    # Without recorded incidents: drafts as before, no link asked.
    assert main(["draft", str(articles), "-o", "plain.jsonl", "--taxonomy", str(tax), "-q"]) == 0
    plain = llm_env.stats["chat_requests"]
    assert plain == 3 and all("incident_candidates" not in (d.model_extra or {}) for d in read_jsonl("plain.jsonl", Draft))
    # With them: the labels come from the cache; only the link is asked, for articles with candidates.
    args = ["draft", str(articles), "-o", "plain.jsonl", "--taxonomy", str(tax), "--incidents",
            str(STORIES / "incidents.jsonl"), "-q"]
    assert main(args) == 0
    assert llm_env.stats["chat_requests"] - plain == 2
    drafts = {d.article_id: d.model_extra for d in read_jsonl("plain.jsonl", Draft) if "incident_candidates" in d.model_extra}
    assert drafts["k03-g"]["follow_up_of"] == drafts["k03-g"]["incident_candidates"][0]["id"] == "inc-k03"
    assert [c["id"] for c in drafts["k02-c"]["incident_candidates"]][0] == "inc-k02" == drafts["k02-c"]["follow_up_of"]
    assert drafts["nothing-known"] == {**drafts["nothing-known"], "incident_candidates": [], "follow_up_of": "none"}
    # The request shows the offered incidents as delimited data, and allows only their ids or none.
    req = llm_env.stats["last_request"]
    user = req["messages"][1]["content"]
    assert re.search(r"<incidents-[0-9a-f]{12}>\nincident inc-\w+: ", user) and "<article-" in user
    offered = [c["id"] for c in drafts[[a for a in drafts if a in user][0]]["incident_candidates"]]
    assert req["response_format"]["json_schema"]["schema"]["properties"]["follow_up_of"]["enum"] == [*offered, "none"]
    # A re-run pays for nothing.
    before = llm_env.stats["chat_requests"]
    assert main(args) == 0 and llm_env.stats["chat_requests"] == before
    # The link is asked from a versioned template: a team's own ./prompts/link/v1.md is what the
    # model reads, and an edit to it asks the links again (the labels stay cached).
    from annotator.prompt import prompt_dirs
    bundled = (prompt_dirs()[1] / "link" / "v1.md").read_text(encoding="utf-8")
    (tmp_path / "prompts" / "link").mkdir(parents=True)
    (tmp_path / "prompts" / "link" / "v1.md").write_text(bundled.replace("it must be the same event.",
                                                                         "it must be the very same event."))
    assert main([*args, "-o", "edited.jsonl"]) == 0 and llm_env.stats["chat_requests"] == before + 2
    assert "it must be the very same event." in llm_env.stats["last_request"]["messages"][0]["content"]


def test_a_link_outside_the_offered_incidents_is_never_stored(llm_env, tmp_path, capsys) -> None:
    tax, articles = _link_setup(tmp_path, ["k03-g"])
    llm_env.faults.link = "bad"
    assert main(["draft", str(articles), "--taxonomy", str(tax), "--incidents", str(STORIES / "incidents.jsonl"), "-q"]) == 0
    d = next(d for d in read_jsonl("drafts.jsonl", Draft) if d.article_id == "k03-g")
    assert d.model_extra["follow_up_of"] is None and "link_invalid" in d.flags and d.labels  # labels kept
    assert llm_env.stats["chat_requests"] == 2 + 2  # labels twice (two articles), the link and its one repair


def test_incidents_with_a_taxonomy_without_a_link_is_refused_in_one_line(llm_env, tmp_path, capsys) -> None:
    _, articles = _link_setup(tmp_path, ["k03-g"])
    assert main(["draft", str(articles), "--incidents", str(STORIES / "incidents.jsonl"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "declares no link" in err and "follow_up_of" in err and llm_env.stats["chat_requests"] == 0


def _link_tax(tmp_path: Path):
    """The bundled taxonomy plus three lines that declare the link, and its file."""
    from annotator.taxonomy import load_taxonomy

    bundled = Path(__file__).resolve().parents[1] / "annotator" / "taxonomies" / "oecd_aim.yaml"
    path = tmp_path / "aim_link.yaml"
    path.write_text(bundled.read_text(encoding="utf-8") + LINK, encoding="utf-8")
    return load_taxonomy(str(path)), path


def test_eval_scores_the_link_and_whether_retrieval_offered_the_right_incident(tmp_path) -> None:
    from annotator.evaluate import evaluate, write_report
    from annotator.records import GoldRecord

    tax, _ = _link_tax(tmp_path)
    offered = {"i1": {"id": "i1", "title": "One", "score": 0.5}, "i2": {"id": "i2", "title": "Two", "score": 0.3}}
    cases = [  # article, offered, drafted, gold
        ("a1", ["i1", "i2"], "i1", "i1"),  # right
        ("a2", ["i1", "i2"], "i1", "i2"),  # wrong choice among the right candidates
        ("a3", ["i2"], "i2", "i3"),  # retrieval missed the incident
        ("a4", [], "none", None),  # nothing offered, no recorded incident: right
    ]
    drafts = [Draft(article_id=a, labels={"classification": "AI incident"}, model_version="p@m",
                    incident_candidates=[offered[c] for c in cands], follow_up_of=link) for a, cands, link, _ in cases]
    gold = [GoldRecord(article_id=a, labels={"classification": "AI incident"}, rationale="r", follow_up_of=g)
            for a, _, _, g in cases]
    report = evaluate(drafts, gold, tax, n_boot=50)
    link = report.metrics.link
    assert (link.n, link.accuracy, link.naming_an_incident) == (4, 0.5, 3)
    assert abs(link.among_candidates - 2 / 3) < 1e-6 and link.ci95[0] < 0.5 < link.ci95[1]
    write_report(report, tmp_path / "report")
    summary = (tmp_path / "report" / "summary.md").read_text(encoding="utf-8")
    assert "`follow_up_of`: the drafted link is the reference's on 50%" in summary and "among those offered for 67%" in summary
    # A taxonomy without the link scores no link.
    from annotator.taxonomy import load_taxonomy

    assert evaluate(drafts, gold, load_taxonomy("oecd_aim"), n_boot=50).metrics.link is None


def test_export_carries_the_link_the_reviewers_agree_on(tmp_path) -> None:
    from annotator.export import export

    _, tax_path = _link_tax(tmp_path)
    articles = [{"id": f"a{i}", "title": f"Report {i}", "text": f"Distinct words number{i} here", "url": f"https://n.example/{i}"}
                for i in range(3)]
    review = {"labels": {"classification": "AI incident"}, "rationale": "r", "updated_at": "2026-11-01T10:00:00Z"}
    reviews = [{**review, "article_id": "a0", "annotator": "ann", "follow_up_of": "inc-k03"},
               {**review, "article_id": "a0", "annotator": "bob", "follow_up_of": "inc-k03"},
               {**review, "article_id": "a1", "annotator": "ann", "follow_up_of": "inc-k03"},
               {**review, "article_id": "a1", "annotator": "bob", "follow_up_of": "none"},
               {**review, "article_id": "a2", "annotator": "ann"}]
    for name, rows in (("articles.jsonl", articles), ("reviews.jsonl", reviews)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    summary = export(tmp_path / "reviews.jsonl", tmp_path / "articles.jsonl", tmp_path / "gold", taxonomy=str(tax_path),
                     formats=["jsonl", "csv"], split="100/0/0", on_error=lambda m: None)
    gold = {json.loads(line)["article_id"]: json.loads(line) for line in (tmp_path / "gold" / "train.jsonl").read_text().splitlines()}
    assert {a: g["follow_up_of"] for a, g in gold.items()} == {"a0": "inc-k03", "a1": None, "a2": None}
    header = (tmp_path / "gold" / "train.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert "follow_up_of" in header and summary is not None


def test_a_failed_link_request_keeps_the_labels_and_a_rerun_asks_again(llm_env, tmp_path, capsys) -> None:
    tax, articles = _link_setup(tmp_path, ["k03-g"])
    (tmp_path / "fast.toml").write_text("[llm]\nbackoff_cap = 0.05\nmax_attempts = 2\n", encoding="utf-8")
    args = ["draft", str(articles), "--taxonomy", str(tax), "--incidents", str(STORIES / "incidents.jsonl"),
            "--config", str(tmp_path / "fast.toml"), "-q"]
    llm_env.faults.link = "fail"
    assert main(args) == 0
    d = next(d for d in read_jsonl("drafts.jsonl", Draft) if d.article_id == "k03-g")
    assert d.labels and "link_failed" in d.flags and "incident_candidates" not in d.model_extra
    llm_env.faults.link = "top"
    before = llm_env.stats["chat_requests"]
    assert main(args) == 0
    assert llm_env.stats["chat_requests"] == before + 1  # the link only: the labels come from the cache
    d = [d for d in read_jsonl("drafts.jsonl", Draft) if d.article_id == "k03-g"][-1]
    assert d.model_extra["follow_up_of"] == "inc-k03" and "link_failed" not in d.flags
