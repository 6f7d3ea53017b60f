"""The link to a recorded incident at review time, against the real Label Studio server: each task
offers the incidents retrieved for its article (title linked, date, id) and "none", with the
drafted link pre-selected; pull reads the reviewer's choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_labelstudio import make_drafts

from annotator.labelstudio.client import find_project
from annotator.labelstudio.config import LINK_OPTIONS, TEXT, to_result
from annotator.labelstudio.pull import pull
from annotator.labelstudio.push import existing_tasks, push_files
from annotator.records import Article, write_jsonl
from annotator.taxonomy import load_taxonomy

pytestmark = [pytest.mark.labelstudio, pytest.mark.slow]

BUNDLED = Path(__file__).resolve().parents[1] / "annotator" / "taxonomies" / "oecd_aim.yaml"


def test_tasks_offer_the_retrieved_incidents_and_pull_reads_the_reviewers_link(ls_conn, project_title, tmp_path):
    path = tmp_path / "aim_link.yaml"
    path.write_text(BUNDLED.read_text(encoding="utf-8") + "\nlink:\n  name: follow_up_of\n", encoding="utf-8")
    tax = load_taxonomy(str(path))
    articles = [Article(id="a-damages", title="City pays damages for wrongful arrest", text="Detroit paid 300,000 dollars."),
                Article(id="b-nothing", title="Robot lawnmower sales up", text="Sales rose.")]
    write_jsonl(tmp_path / "articles.jsonl", articles)
    drafts = make_drafts(tax, articles, "p1@m")
    offered = [{"id": "inc-k03", "title": "Face match <wrongly> arrests a man", "date": "2024-01-09",
                "url": "https://incidents.example/k03", "score": 0.4},
               {"id": "inc-k05", "title": "Voice clone scam", "date": None, "url": None, "score": 0.1}]
    drafts[0] = drafts[0].model_copy(update={"incident_candidates": offered, "follow_up_of": "inc-k03"})
    drafts[1] = drafts[1].model_copy(update={"incident_candidates": [], "follow_up_of": "none"})
    write_jsonl(tmp_path / "drafts.jsonl", drafts)
    result = push_files(ls_conn, tmp_path / "drafts.jsonl", tmp_path / "articles.jsonl", tax, project_title)
    assert result.ok and result.created == 2, result.problems
    project = find_project(ls_conn, project_title)
    ids = existing_tasks(ls_conn, project.id)
    task = ls_conn.ls.tasks.get(id=ids["a-damages"])
    options = task.data[LINK_OPTIONS]
    assert [o["value"] for o in options] == ["inc-k03", "inc-k05", "none"]
    assert 'href="https://incidents.example/k03"' in options[0]["html"] and "&lt;wrongly&gt;" in options[0]["html"]
    assert "2024-01-09" in options[0]["html"] and "inc-k05" in options[1]["html"]
    assert [o["value"] for o in ls_conn.ls.tasks.get(id=ids["b-nothing"]).data[LINK_OPTIONS]] == ["none"]
    # The draft's link is pre-selected: it is in the prediction.
    preds = ls_conn.request("GET", "api/predictions/", params={"task": ids["a-damages"]})
    link_items = [i for p in preds for i in p["result"] if i["from_name"] == "follow_up_of"]
    assert [i["value"]["choices"] for i in link_items] == [["inc-k03"]]

    # The reviewer corrects the link on one task and confirms none on the other.
    for aid, choice in (("a-damages", "inc-k05"), ("b-nothing", "none")):
        d = next(d for d in drafts if d.article_id == aid)
        item = {"from_name": "follow_up_of", "to_name": TEXT, "type": "choices", "value": {"choices": [choice]}}
        ls_conn.request("POST", f"api/tasks/{ids[aid]}/annotations/", json={"result": to_result(tax, d.labels, "ok") + [item]})
    pulled = pull(ls_conn, tax, project_title)
    assert pulled.ok, pulled.problems
    assert {r.article_id: r.model_extra["follow_up_of"] for r in pulled.reviews} == {"a-damages": "inc-k05", "b-nothing": "none"}
