"""The blind slice (issue 9): stable, draft-free, and reviewed by N different annotators as the
server enforces it."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest
from fixtures_labelstudio import make_articles, make_drafts

from annotator.labelstudio.annotators import ensure_annotator
from annotator.labelstudio.client import find_project
from annotator.labelstudio.config import to_result
from annotator.labelstudio.pull import pull
from annotator.labelstudio.push import BLIND_SUFFIX, assign_blind, existing_tasks, push
from annotator.taxonomy import load_taxonomy

TAX = load_taxonomy("oecd_aim")


def test_assignment_is_deterministic_and_stratified():
    strata = {f"a{i}": ("rare" if i < 4 else "common") for i in range(400)}
    one = assign_blind(strata, {}, 0.1, "s1")
    assert one == assign_blind(dict(reversed(list(strata.items()))), {}, 0.1, "s1")
    assert one != assign_blind(strata, {}, 0.1, "s2")
    counts = Counter(strata[a] for a in one)
    assert counts == {"rare": 1, "common": 40}
    # New articles never move the placed ones and top the slice up to the share.
    placed = {a: a in one for a in strata}
    more = {**strata, **{f"b{i}": "common" for i in range(100)}}
    added = assign_blind(more, placed, 0.1, "s1")
    assert added and all(a.startswith("b") for a in added) and len(added) == 50 - 40
    assert assign_blind(strata, {}, 0.0, "s1") == set()


@pytest.mark.labelstudio
@pytest.mark.slow
def test_blind_slice_on_the_real_server(ls_conn, project_title, labelstudio):
    articles = make_articles(120, prefix="blind")
    by_id = {a.id: a for a in articles}
    drafts = make_drafts(TAX, articles, "p1@model-a", seed=3)
    first = push(ls_conn, drafts, by_id, TAX, project_title, blind_share=0.1, blind_reviewers=3, seed="7")
    assert first.ok and first.created == 120 and first.blind_created >= 12
    main, blind = find_project(ls_conn, project_title), find_project(ls_conn, project_title + BLIND_SUFFIX)
    blind_ids = set(existing_tasks(ls_conn, blind.id))
    assisted_ids = set(existing_tasks(ls_conn, main.id))
    assert len(blind_ids) == first.blind_created and not blind_ids & assisted_ids
    # Every class the drafts used has at least one blind article.
    assert {d.labels["classification"] for d in drafts} == {
        d.labels["classification"] for d in drafts if d.article_id in blind_ids
    }

    # Blind tasks: no prediction and no draft text anywhere in the task.
    texts = {d.rationale for d in drafts}
    for t in ls_conn.ls.tasks.list(project=blind.id, fields="all"):
        assert not t.predictions
        dumped = json.dumps(t.data)
        assert "model-a" not in dumped and not any(x in dumped for x in texts) and t.data["draft_info"] == ""
    settings = ls_conn.ls.projects.get(id=blind.id)
    assert settings.maximum_annotations == 3 and settings.overlap_cohort_percentage == 100

    # Re-push, a new model version and new articles: nobody moves, no blind task gets a prediction.
    push(ls_conn, drafts, by_id, TAX, project_title, blind_share=0.1, blind_reviewers=3, seed="7")
    more = make_articles(30, prefix="blind2")
    all_articles = {**by_id, **{a.id: a for a in more}}
    drafts2 = make_drafts(TAX, articles + more, "p2@model-b", seed=4)
    later = push(ls_conn, drafts2, all_articles, TAX, project_title, blind_share=0.1, blind_reviewers=3, seed="7")
    assert later.predictions_added == len(assisted_ids)
    assert blind_ids <= set(existing_tasks(ls_conn, blind.id))
    assert assisted_ids <= set(existing_tasks(ls_conn, main.id))
    assert len(existing_tasks(ls_conn, blind.id)) + len(existing_tasks(ls_conn, main.id)) == 150
    assert ls_conn.request("GET", "api/predictions/", params={"project": blind.id}) == []

    # The server hands the same blind task to three different annotators, then moves on.
    people = [ensure_annotator(ls_conn, f"blind{i}-{project_title[-6:]}@example.com") for i in range(3)]
    seen = []
    for person in people:
        with httpx.Client(base_url=labelstudio.url, headers={"Authorization": f"Token {person.token}"}) as web:
            task = web.get(f"/api/projects/{blind.id}/next").json()
            seen.append(task["id"])
            assert "predictions" not in task or not task["predictions"]
            result = to_result(TAX, {"classification": "AI hazard"}, f"{person.email} read it blind")
            web.post(f"/api/tasks/{task['id']}/annotations/", json={"result": result, "lead_time": 30}).raise_for_status()
    assert len(set(seen)) == 1
    assert ls_conn.ls.tasks.get(id=seen[0]).is_labeled
    fourth = ensure_annotator(ls_conn, f"blind3-{project_title[-6:]}@example.com")
    with httpx.Client(base_url=labelstudio.url, headers={"Authorization": f"Token {fourth.token}"}) as web:
        assert web.get(f"/api/projects/{blind.id}/next").json()["id"] != seen[0]

    reviews = [r for r in pull(ls_conn, TAX, project_title).reviews if r.task_id == seen[0]]
    assert len(reviews) == 3 and {r.annotator for r in reviews} == {p.email for p in people}
    assert all(r.blind and r.model_version is None and r.accepted_as_is is None for r in reviews)
