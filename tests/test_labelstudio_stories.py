"""Stories at review time, against the real Label Studio server: each task carries its story id
(filterable in the Data Manager) and lists the story's other articles; the id survives a re-push
in which a new article joins the story."""

from __future__ import annotations

import json

import pytest
from fixtures_labelstudio import make_drafts

from annotator.labelstudio.annotators import ensure_annotator
from annotator.labelstudio.client import find_project
from annotator.labelstudio.config import APPLY_VALUE, STORY_APPLY, STORY_EXCEPT, TEXT, to_result
from annotator.labelstudio.pull import pull
from annotator.labelstudio.push import existing_tasks, push_files
from annotator.records import Article, write_jsonl
from annotator.taxonomy import load_taxonomy

pytestmark = [pytest.mark.labelstudio, pytest.mark.slow]

LEAD = ("Nordwind Air must refund passenger Marta Kowalczyk 812 euros after its website chatbot invented a bereavement "
        "fare, a civil tribunal in Gdansk ruled. The airline argued the chatbot was responsible for its own answers.")


def story_filter(story: str) -> str:
    return json.dumps({"filters": {"conjunction": "and", "items": [
        {"filter": "filter:tasks:data.story_id", "operator": "equal", "type": "String", "value": story}]}})


def test_tasks_carry_their_story_and_list_its_other_articles(ls_conn, project_title, tmp_path):
    tax = load_taxonomy("oecd_aim")
    articles = [
        Article(id="b-report", title="Tribunal makes Nordwind Air pay for chatbot", text=LEAD, source="Baltic Courier",
                published_at="2024-02-15", url="https://courier.example/nordwind"),
        Article(id="c-retold", title="Nordwind Air loses chatbot refund case", text=LEAD + " Travel desk.", source="Travel Desk",
                published_at="2024-02-16", url="https://travel.example/nordwind"),
        Article(id="d-other", title="Port crane drops container in Rotterdam", source="Harbour Times", published_at="2024-02-15",
                text="An automated crane at a Rotterdam terminal dropped a container after misreading its weight."),
    ]
    write_jsonl(tmp_path / "articles.jsonl", articles)
    # The retelling has no draft yet: it is listed in the report's task all the same.
    write_jsonl(tmp_path / "drafts.jsonl", make_drafts(tax, [articles[0], articles[2]], "p1@m"))
    result = push_files(ls_conn, tmp_path / "drafts.jsonl", tmp_path / "articles.jsonl", tax, project_title)
    assert result.ok and result.created == 2, result.problems
    project = find_project(ls_conn, project_title)
    tasks = {aid: ls_conn.ls.tasks.get(id=tid) for aid, tid in existing_tasks(ls_conn, project.id).items()}
    story = tasks["b-report"].data["story_id"]
    assert story and tasks["d-other"].data["story_id"] not in ("", story)
    panel = tasks["b-report"].data["story"]
    assert "Nordwind Air loses chatbot refund case" in panel and "Travel Desk · 2024-02-16" in panel
    assert 'href="https://travel.example/nordwind"' in panel and tasks["d-other"].data["story"] == ""

    # A new article joins the story (its id sorts first) and the retelling is drafted: same story id.
    articles.append(Article(id="a-translated", title="Nordwind Air muss zahlen", text=LEAD, source="Reisewelt",
                            published_at="2024-02-17"))
    write_jsonl(tmp_path / "articles.jsonl", articles)
    write_jsonl(tmp_path / "drafts.jsonl", make_drafts(tax, articles, "p1@m"))
    again = push_files(ls_conn, tmp_path / "drafts.jsonl", tmp_path / "articles.jsonl", tax, project_title)
    assert again.ok and again.created == 2, again.problems
    ids = existing_tasks(ls_conn, project.id)
    assert {ls_conn.ls.tasks.get(id=ids[a]).data["story_id"] for a in ("a-translated", "b-report", "c-retold")} == {story}

    # The Data Manager filter by story id finds exactly the story's tasks.
    found = ls_conn.request("GET", "api/tasks/", params={"project": project.id, "query": story_filter(story)})
    found = found["tasks"] if isinstance(found, dict) else found
    assert sorted(t["data"]["article_id"] for t in found) == ["a-translated", "b-report", "c-retold"]

    # Review a story once: Ana labels the report and applies it to the story, having labelled the
    # translation herself; Ben applies his labels from the report too but leaves the retelling out.
    def annotate(email: str, article: str, labels: dict, apply: bool, leave_out: str = "") -> None:
        user = ensure_annotator(ls_conn, email)
        result = to_result(tax, labels, f"{email} on {article}")
        if apply:
            result.append({"from_name": STORY_APPLY, "to_name": TEXT, "type": "choices", "value": {"choices": [APPLY_VALUE]}})
        if leave_out:
            result.append({"from_name": STORY_EXCEPT, "to_name": TEXT, "type": "textarea", "value": {"text": [leave_out]}})
        ls_conn.request("POST", f"api/tasks/{ids[article]}/annotations/", json={"result": result, "completed_by": user.id})

    incident = {"classification": "AI incident", "severity": "AI incident"}
    annotate("ana@example.org", "b-report", incident, apply=True)
    annotate("ana@example.org", "a-translated", {"classification": "Complementary information"}, apply=False)
    annotate("ben@example.org", "b-report", incident, apply=True, leave_out="c-retold")
    pulled = pull(ls_conn, tax, project_title)
    assert pulled.ok, pulled.problems
    got = {(r.annotator, r.article_id): r for r in pulled.reviews}
    assert sorted(got) == [("ana@example.org", "a-translated"), ("ana@example.org", "b-report"), ("ana@example.org", "c-retold"),
                           ("ben@example.org", "a-translated"), ("ben@example.org", "b-report")]
    applied = {k: r for k, r in got.items() if (r.model_extra or {}).get("applied_from_story")}
    assert set(applied) == {("ana@example.org", "c-retold"), ("ben@example.org", "a-translated")}
    assert all(r.labels["classification"] == "AI incident" and r.model_extra["applied_from_story"] == "b-report"
               and r.model_extra["story"] == story and r.task_id == ids[r.article_id] for r in applied.values())
    assert got["ana@example.org", "a-translated"].labels["classification"] == "Complementary information"
