"""Evidence quotes reach the reviewer as highlights and come back reviewed; blind tasks show
nothing of the draft, not even a flag."""

from __future__ import annotations

import pytest
from fixtures_labelstudio import make_articles, make_drafts

from annotator.checks import locate_evidence
from annotator.labelstudio.client import find_project
from annotator.labelstudio.config import DATA_KEYS, to_result
from annotator.labelstudio.pull import pull
from annotator.labelstudio.push import BLIND_SUFFIX, existing_tasks, push
from annotator.taxonomy import load_taxonomy

TAX = load_taxonomy("oecd_aim")
FLAGS = ["repaired", "possible_injection", "truncated", "rule: severity must be AI incident when classification is AI incident",
         "evidence: quote not in the article (dropped)", "rationale: copies the article"]


def _walk(value, path=""):
    """Every (path, leaf) of a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, value


@pytest.mark.labelstudio
def test_quotes_are_highlighted_reviewed_and_pulled_back_and_blind_tasks_carry_nothing_of_the_draft(ls_conn, project_title):
    articles = make_articles(8, prefix="ev")
    by_id = {a.id: a for a in articles}
    drafts = make_drafts(TAX, articles, "p1@model-ev", seed=5)
    for d in drafts:
        d.evidence, _ = locate_evidence(by_id[d.article_id].text, {"ai_system": ["a recommender system"], "harm": ["did things"]})
        d.flags = list(FLAGS)
    result = push(ls_conn, drafts, by_id, TAX, project_title, blind_share=0.25, blind_reviewers=1, seed="1")
    assert result.ok, result.problems
    main, blind = find_project(ls_conn, project_title), find_project(ls_conn, project_title + BLIND_SUFFIX)

    # Assisted tasks: one highlight per quote, labelled by kind, on the article's own characters.
    tasks = {t.data["article_id"]: t for t in ls_conn.ls.tasks.list(project=main.id, fields="all")}
    aid, task = next(iter(tasks.items()))
    spans = [r for r in task.predictions[0].result if r["type"] == "labels"]
    text = by_id[aid].text
    assert [(s["value"]["labels"], text[s["value"]["start"]:s["value"]["end"]]) for s in spans] == [
        (["AI system"], "a recommender system"), (["Harm"], "did things")]
    assert "repaired" in task.data["flags"] and "rationale: copies the article" in task.data["flags"]

    # The reviewer moves one highlight and deletes the other; pull brings back what they left.
    start = text.index("A chatbot")
    moved = {**spans[0], "value": {**spans[0]["value"], "start": start, "end": start + 9, "text": "A chatbot"}}
    ls_conn.request("POST", f"api/tasks/{task.id}/annotations/", json={"result": to_result(TAX, drafts[0].labels, "ok") + [moved]})
    review = next(r for r in pull(ls_conn, TAX, project_title).reviews if r.article_id == aid)
    assert review.evidence == [{"kind": "ai_system", "start": start, "end": start + 9, "text": "A chatbot"}]

    # Blind tasks: every field of the data is the article's or empty; no flag, no draft word.
    blind_tasks = list(ls_conn.ls.tasks.list(project=blind.id, fields="all"))
    assert blind_tasks and len(blind_tasks) + len(existing_tasks(ls_conn, main.id)) == 8
    draft_words = {d.model_version for d in drafts} | {d.rationale for d in drafts} | set(FLAGS) | {"⚠", "Draft"}
    for t in blind_tasks:
        assert not t.predictions and set(t.data) == {*DATA_KEYS, "article_id", "blind", "story_id"}
        a = by_id[t.data["article_id"]]
        article_words = {a.id, a.title, a.text, a.source, a.published_at, a.language, a.url}
        for path, leaf in _walk(t.data):
            if isinstance(leaf, str) and leaf:
                assert not any(w in leaf for w in draft_words), path
                # the story panel lists other articles (theirs, not the draft's)
                assert path in (".meta", ".link", ".story", ".story_id") or leaf in article_words, path
        assert t.data["flags"] == "" and t.data["draft_info"] == "" and t.meta["article_id"] == a.id
        assert set(t.meta) <= {"article_id", "story"}
