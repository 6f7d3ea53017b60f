"""Drafts in as predictions, reviews out as records, against the real Label Studio server."""

from __future__ import annotations

import pytest
from fixtures_labelstudio import make_articles, make_drafts

from annotator.errors import LabelStudioError
from annotator.labelstudio.annotators import post_reviews
from annotator.labelstudio.client import find_project
from annotator.labelstudio.config import label_config, to_result
from annotator.labelstudio.pull import pull
from annotator.labelstudio.push import existing_tasks, push
from annotator.records import Review
from annotator.taxonomy import load_taxonomy

pytestmark = [pytest.mark.labelstudio, pytest.mark.slow]


def _predictions(conn, project_id):
    return conn.request("GET", "api/predictions/", params={"project": project_id})


@pytest.mark.parametrize("name", ["oecd_aim", "disarm", "aim_disarm"])
def test_push_repush_new_version_review_pull(ls_any, project_title, name):
    tax = load_taxonomy(name)
    n = {"oecd_aim": 300, "disarm": 120}.get(name, 60)
    articles = make_articles(n, prefix=name)
    by_id = {a.id: a for a in articles}
    drafts = make_drafts(tax, articles, "p1@model-a", seed=1, failed_every=25)

    first = push(ls_any, drafts, by_id, tax, project_title, batch_size=100)
    assert first.ok, first.problems
    assert first.created == n and first.failed_drafts == n // 25
    project = find_project(ls_any, project_title)
    tasks = existing_tasks(ls_any, project.id)
    assert set(tasks) == set(by_id)
    preds = _predictions(ls_any, project.id)
    assert len(preds) == n - n // 25
    full = ls_any.ls.projects.get(id=project.id)
    assert full.model_version == "p1@model-a" and full.sampling == "Uncertainty sampling"

    # Failed drafts: a task without prediction, flagged for reviewers.
    failed = next(d for d in drafts if d.error)
    task = ls_any.ls.tasks.get(id=tasks[failed.article_id])
    assert "draft failed" in task.data["flags"]
    assert not [p for p in preds if p["task"] == task.id]
    # The prediction carries the draft: model version, score from confidence, labels.
    ok = next(d for d in drafts if not d.error)
    pred = next(p for p in preds if p["task"] == tasks[ok.article_id])
    assert pred["model_version"] == "p1@model-a" and pred["score"] == pytest.approx(ok.confidence[tax.primary])

    # Re-push: nothing new.
    again = push(ls_any, drafts, by_id, tax, project_title, batch_size=100)
    assert (again.created, again.predictions_added, again.unchanged) == (0, 0, n)
    assert len(existing_tasks(ls_any, project.id)) == n and len(_predictions(ls_any, project.id)) == len(preds)

    # Two reviewers annotate 40 tasks each (through POST /api/tasks/{id}/annotations).
    reviewed = [d for d in drafts if not d.error][:40]
    other = make_drafts(tax, [by_id[d.article_id] for d in reviewed], "p1@model-a", seed=99)
    reviews = []
    for d, o in zip(reviewed, other, strict=True):
        reviews.append(
            Review(
                article_id=d.article_id,
                annotator="alice@example.com",
                labels=d.labels,
                rationale=d.rationale,
                model_version="p1@model-a",
                lead_time_s=11.5,
            )
        )
        reviews.append(
            Review(
                article_id=d.article_id,
                annotator="bob@example.com",
                labels=o.labels,
                rationale="Bob's own words & <tags>.",
                model_version="p1@model-a",
                lead_time_s=42.0,
            )
        )
    reviews.append(Review(article_id=drafts[-2].article_id, annotator="bob@example.com", skipped=True, lead_time_s=3.0))
    post_reviews(ls_any, tax, project_title, reviews)

    # A new model version: predictions added to every existing task, annotations untouched.
    drafts2 = make_drafts(tax, articles, "p2@model-b", seed=2)
    newer = push(ls_any, drafts2, by_id, tax, project_title, batch_size=100)
    assert newer.created == 0 and newer.predictions_added == n
    assert ls_any.ls.projects.get(id=project.id).model_version == "p2@model-b"
    assert len(existing_tasks(ls_any, project.id)) == n

    pulled = pull(ls_any, tax, project_title)
    assert pulled.ok, pulled.problems
    paged = pull(ls_any, tax, project_title, page_size=7)  # many pages: the same reviews, each once
    assert sorted(r.model_dump_json() for r in paged.reviews) == sorted(r.model_dump_json() for r in pulled.reviews)
    got = {(r.article_id, r.annotator): r for r in pulled.reviews}
    assert len(pulled.reviews) == len(reviews)
    for want in reviews:
        r = got[(want.article_id, want.annotator)]
        assert r.task_id == tasks[want.article_id]
        assert r.skipped == want.skipped and r.lead_time_s == want.lead_time_s and r.blind is False
        assert r.updated_at
        if want.skipped:
            continue
        full_labels = {f.name: want.labels.get(f.name, [] if f.kind == "multi" else None) for f in tax.label_fields}
        assert r.labels == full_labels
        assert r.rationale == want.rationale
        assert r.model_version == "p1@model-a"
        assert r.accepted_as_is is (
            want.annotator == "alice@example.com"
            or (r.labels, r.rationale) == (next(d for d in drafts if d.article_id == want.article_id).labels, want.rationale)
        )


def test_config_drift_is_refused_until_update_config(ls_any, project_title):
    tax = load_taxonomy("oecd_aim")
    articles = make_articles(5, prefix="drift")
    by_id = {a.id: a for a in articles}
    old = label_config(tax).replace('<Choice value="Safety"', '<Choice value="Safety (old)"/>\n<Choice value="Safety"')
    project = ls_any.ls.projects.create(title=project_title, label_config=old)
    with pytest.raises(LabelStudioError, match="--update-config"):
        push(ls_any, make_drafts(tax, articles), by_id, tax, project_title)
    assert existing_tasks(ls_any, project.id) == {}
    result = push(ls_any, make_drafts(tax, articles), by_id, tax, project_title, update_config=True)
    assert result.created == 5
    assert "Safety (old)" not in ls_any.ls.projects.get(id=project.id).label_config


def test_values_outside_the_taxonomy_are_reported_on_pull(ls_any, project_title):
    tax = load_taxonomy("oecd_aim")
    articles = make_articles(3, prefix="gone")
    push(ls_any, make_drafts(tax, articles), {a.id: a for a in articles}, tax, project_title)
    project = find_project(ls_any, project_title)
    task_id = existing_tasks(ls_any, project.id)[articles[0].id]
    result = [
        {"from_name": "classification", "to_name": "text", "type": "choices", "value": {"choices": ["AI incident"]}},
        {"from_name": "ai_principles", "to_name": "text", "type": "choices", "value": {"choices": ["Safety", "Retired value"]}},
    ]
    ls_any.request("POST", f"api/tasks/{task_id}/annotations/", json={"result": result})
    seen = []
    pulled = pull(ls_any, tax, project_title, on_error=seen.append)
    assert len(pulled.reviews) == 1 and pulled.reviews[0].labels["ai_principles"] == ["Safety"]
    assert len(seen) == 1 and "Retired value" in seen[0] and articles[0].id in seen[0]


def test_pull_since_only_returns_what_changed(ls_any, project_title):
    tax = load_taxonomy("oecd_aim")
    articles = make_articles(4, prefix="since")
    drafts = make_drafts(tax, articles)
    push(ls_any, drafts, {a.id: a for a in articles}, tax, project_title)
    post_reviews(
        ls_any,
        tax,
        project_title,
        [Review(article_id=articles[0].id, annotator="carol@example.com", labels=drafts[0].labels, rationale="r")],
    )
    first = pull(ls_any, tax, project_title)
    mark = max(r.updated_at for r in first.reviews)
    post_reviews(
        ls_any,
        tax,
        project_title,
        [Review(article_id=articles[1].id, annotator="carol@example.com", labels=drafts[1].labels, rationale="r2")],
    )
    later = pull(ls_any, tax, project_title, since=mark)
    assert [r.article_id for r in later.reviews] == [articles[1].id]
    # An edited annotation counts as changed.
    mark = max(r.updated_at for r in later.reviews)
    edited = first.reviews[0]
    ls_any.request("PATCH", f"api/annotations/{edited.annotation_id}/", json={"result": to_result(tax, drafts[2].labels, "edited")})
    again = pull(ls_any, tax, project_title, since=mark)
    assert [(r.article_id, r.rationale) for r in again.reviews] == [(articles[0].id, "edited")]


def test_push_of_a_few_drafts_into_a_larger_project(ls_any, project_title):
    """A few drafts (a tenth of the project) are looked up by article id, not by listing the
    project: those it holds get the new model version, the new ones one task each."""
    tax = load_taxonomy("oecd_aim")
    articles = make_articles(43, prefix="few")
    by_id = {a.id: a for a in articles}
    assert push(ls_any, make_drafts(tax, articles[:40], "p1@model-a"), by_id, tax, project_title).ok
    later = make_drafts(tax, articles[36:], "p2@model-b", seed=5)  # four it holds, three new
    res = push(ls_any, later, by_id, tax, project_title)
    assert res.ok, res.problems
    assert (res.created, res.predictions_added, res.unchanged) == (3, 4, 0)
    project = find_project(ls_any, project_title)
    assert set(existing_tasks(ls_any, project.id)) == set(by_id)
    again = push(ls_any, later, by_id, tax, project_title)
    assert (again.created, again.predictions_added, again.unchanged) == (0, 0, 7)


def test_a_draft_holding_half_an_emoji_is_pushed_and_its_predictions_listed(ls_conn, project_title):
    """A model's rationale cut inside an emoji's escape pair holds a lone surrogate, which has no
    UTF-8 form: the import sends U+FFFD in its place, instead of stopping the push with a traceback
    (or sending its escape, which Label Studio stores and then answers 500 to every listing)."""
    tax = load_taxonomy("oecd_aim")
    articles = make_articles(3, prefix="half-emoji")
    drafts = make_drafts(tax, articles, "p1@model-a")
    drafts[1] = drafts[1].model_copy(update={"rationale": "Fake faces \ud83d on fake accounts."})
    res = push(ls_conn, drafts, {a.id: a for a in articles}, tax, project_title)
    assert res.ok and res.created == 3, res.problems
    project = find_project(ls_conn, project_title)
    texts = [i["value"]["text"] for p in _predictions(ls_conn, project.id) for i in p["result"] if i["from_name"] == "rationale"]
    assert len(texts) == 3 and ["Fake faces \ufffd on fake accounts."] in texts
