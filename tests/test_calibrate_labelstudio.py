"""Auto-accept on the real Label Studio server: accepted drafts leave the review queue, their audit
slice goes to blind review, and pull carries both back."""

from __future__ import annotations

import httpx
import pytest
from fixtures_labelstudio import make_articles, make_drafts

from annotator.calibrate import AUTO_ACCEPTED, Calibration, accept, with_acceptances
from annotator.labelstudio.annotators import ensure_annotator
from annotator.labelstudio.client import find_project
from annotator.labelstudio.config import to_result
from annotator.labelstudio.pull import pull
from annotator.labelstudio.push import BLIND_SUFFIX, existing_tasks, push
from annotator.taxonomy import load_taxonomy

TAX = load_taxonomy("oecd_aim")


def _policy(threshold: float) -> Calibration:
    return Calibration(fields=["classification"], risk=0.05, delta=0.1, method="binomial", threshold=threshold,
                       guarantee="drafts whose classification confidence is >= 0.6 are wrong at most 5.0% of the time",
                       model_versions=["p1@model-a"], taxonomy="oecd_aim", n_calibration=100,
                       n_blind_without_confidence=0, calibration_error_at_threshold=0.0, share_accepted=0.4,
                       drafts_accepted=0, drafts_considered=0, review_seconds_per_article=60.0,
                       review_hours_saved=None, needs=None)


@pytest.mark.labelstudio
@pytest.mark.slow
def test_accepted_drafts_get_no_task_and_the_audit_slice_is_reviewed_blind(ls_conn, project_title, labelstudio):
    articles = make_articles(80, prefix="acc")
    by_id = {a.id: a for a in articles}
    drafts = make_drafts(TAX, articles, "p1@model-a", seed=5)
    accepted, counts = accept(_policy(0.6), drafts, audit_share=0.25, seed="1")
    auto = {a.article_id for a in accepted if not a.audit}
    audit = {a.article_id for a in accepted if a.audit}
    assert auto and audit and counts["below threshold"] == 80 - len(auto) - len(audit)

    marks = {a.article_id: a.audit for a in accepted}
    first = push(ls_conn, drafts, by_id, TAX, project_title, blind_share=0.1, blind_reviewers=1, seed="7", accepted=marks)
    assert first.ok and first.auto_accepted == len(auto) and first.created == 80 - len(auto)
    assert f"{len(auto)} auto-accepted drafts left out of review" in first.describe()
    main = find_project(ls_conn, project_title)
    blind = find_project(ls_conn, project_title + BLIND_SUFFIX)
    assisted_ids, blind_ids = set(existing_tasks(ls_conn, main.id)), set(existing_tasks(ls_conn, blind.id))
    assert not auto & (assisted_ids | blind_ids)  # nobody is asked to review an accepted draft
    assert audit <= blind_ids  # the audit slice is reviewed without seeing the draft
    # a re-push changes nothing and still makes no task for accepted drafts
    again = push(ls_conn, drafts, by_id, TAX, project_title, blind_share=0.1, blind_reviewers=1, seed="7", accepted=marks)
    assert again.created == 0 and again.auto_accepted == len(auto)
    assert len(existing_tasks(ls_conn, main.id)) + len(existing_tasks(ls_conn, blind.id)) == 80 - len(auto)

    # an annotator reviews one audit task blind; pull carries it marked, and the accepted drafts as auto_accepted
    person = ensure_annotator(ls_conn, f"audit-{project_title[-6:]}@example.com")
    target = sorted(audit)[0]
    task_id = existing_tasks(ls_conn, blind.id)[target]
    with httpx.Client(base_url=labelstudio.url, headers={"Authorization": f"Token {person.token}"}) as web:
        result = to_result(TAX, {"classification": "AI hazard"}, "read blind")
        web.post(f"/api/tasks/{task_id}/annotations/", json={"result": result, "lead_time": 42}).raise_for_status()
    reviews = with_acceptances(pull(ls_conn, TAX, project_title).reviews, accepted)
    audited = [r for r in reviews if r.article_id == target]
    assert len(audited) == 1 and audited[0].blind and audited[0].model_extra["audit"]["threshold"] == 0.6
    autos = [r for r in reviews if (r.model_extra or {}).get("source") == AUTO_ACCEPTED]
    assert {r.article_id for r in autos} == auto
    assert all(r.model_extra["threshold"] == 0.6 and "5.0%" in r.model_extra["guarantee"] for r in autos)
