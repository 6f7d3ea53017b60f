"""Several people at once: pushes that race make one project and one task per article, and
`labelstudio check` finds and repairs what older runs left, never touching annotated work."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from fixtures_labelstudio import make_articles, make_drafts

from annotator.cli import main
from annotator.labelstudio.check import check
from annotator.labelstudio.client import connect, projects_titled
from annotator.labelstudio.config import to_result
from annotator.labelstudio.push import BLIND_SUFFIX, existing_tasks, push, task_data
from annotator.labelstudio.tasks import task_refs
from annotator.records import write_jsonl
from annotator.taxonomy import load_taxonomy

pytestmark = [pytest.mark.labelstudio, pytest.mark.slow]
TAX = load_taxonomy("oecd_aim")
ROUNDS = 5


def _articles_per_task(conn, title):
    """article id -> number of tasks, over the project and its blind companion."""
    counts: Counter[str] = Counter()
    for name in (title, title + BLIND_SUFFIX):
        for p in projects_titled(conn, name):
            counts.update(r.article_id for r in task_refs(conn, p.id))
    return counts


def _race(url, key, drafts, by_id, title, **options):
    """Two pushes of the same drafts started at the same moment, each with its own client; both must succeed."""
    start = threading.Barrier(2)
    results, errors = [], []

    def one():
        conn = connect(url, key)  # each its own client, as two people would have
        start.wait()
        try:
            results.append(push(conn, drafts, by_id, TAX, title, **options))
        except Exception as exc:  # noqa: BLE001 - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all(res.ok for res in results), [res.problems for res in results]


def test_two_pushes_at_once_make_one_project_and_one_task_per_article(labelstudio_pg, project_title):
    """On PostgreSQL, the team database: on SQLite two imports at once meet "database is locked",
    Label Studio's retry drops the batch's predictions, and push has to send them again (see
    test_labelstudio_faults), so the race measures that retry more than push there."""
    ls_any = connect(labelstudio_pg.url, labelstudio_pg.token)
    url, key = ls_any.url, ls_any.api_key
    articles = make_articles(60, prefix="race")
    by_id = {a.id: a for a in articles}
    drafts = make_drafts(TAX, articles)
    for r in range(ROUNDS):
        title = f"{project_title[:30]} r{r}"
        _race(url, key, drafts, by_id, title, batch_size=20, blind_share=0.1)
        assert len(projects_titled(ls_any, title)) == 1 and len(projects_titled(ls_any, title + BLIND_SUFFIX)) == 1
        assert _articles_per_task(ls_any, title) == Counter(list(by_id))  # every article exactly once, in one of the two
        again = push(ls_any, drafts, by_id, TAX, title, batch_size=20, blind_share=0.1)
        assert (again.created, again.duplicates_removed, again.unchanged) == (0, 0, 60) and again.ok


def test_two_small_pushes_at_once_into_a_large_project(labelstudio_pg, project_title):
    """A push of a few drafts looks its articles up by id instead of listing the project; two
    such pushes racing still leave each article exactly once (the ones made meanwhile are found
    after the import by task id)."""
    conn = connect(labelstudio_pg.url, labelstudio_pg.token)
    articles = make_articles(60 + 6 * ROUNDS, prefix="few")
    by_id = {a.id: a for a in articles}
    drafts = make_drafts(TAX, articles)
    assert push(conn, drafts[:60], by_id, TAX, project_title, batch_size=20).ok
    for r in range(ROUNDS):
        few = drafts[r * 4 : r * 4 + 4] + drafts[60 + 6 * r : 66 + 6 * r]  # four it holds, six new
        _race(conn.url, conn.api_key, few, by_id, project_title, batch_size=4)
        assert _articles_per_task(conn, project_title) == Counter(a.id for a in articles[: 66 + 6 * r])
        again = push(conn, few, by_id, TAX, project_title)
        assert (again.created, again.duplicates_removed, again.unchanged) == (0, 0, 10) and again.ok


def test_two_push_commands_at_once(labelstudio_pg, project_title, tmp_path):
    labelstudio = labelstudio_pg
    articles = make_articles(150, prefix="cmd")
    write_jsonl(tmp_path / "articles.jsonl", articles)
    write_jsonl(tmp_path / "drafts.jsonl", make_drafts(TAX, articles))
    env = {**os.environ, "LABEL_STUDIO_URL": labelstudio.url, "LABEL_STUDIO_API_KEY": labelstudio.token,
           "PYTHONPATH": str(Path(__file__).parents[1])}
    cmd = [sys.executable, "-m", "annotator", "push", str(tmp_path / "drafts.jsonl"), "--project", project_title, "--batch-size", "50"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    conn = connect(labelstudio.url, labelstudio.token)
    assert len(projects_titled(conn, project_title)) == 1
    assert _articles_per_task(conn, project_title) == Counter(a.id for a in articles)


def test_check_reports_and_fix_keeps_annotated_work(labelstudio, ls_conn, project_title, monkeypatch, capsys):
    monkeypatch.setenv("LABEL_STUDIO_URL", labelstudio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", labelstudio.token)
    articles = make_articles(12, prefix="chk")
    by_id = {a.id: a for a in articles}
    drafts = make_drafts(TAX, articles, failed_every=6)  # two failed drafts: no prediction, on purpose
    assert push(ls_conn, drafts, by_id, TAX, project_title, blind_share=0.2).ok
    assert main(["labelstudio", "check", "--project", project_title]) == 0
    project = projects_titled(ls_conn, project_title)[0]
    blind = projects_titled(ls_conn, project_title + BLIND_SUFFIX)[0]
    tasks = existing_tasks(ls_conn, project.id)
    assisted = [d for d in drafts if d.article_id in tasks and not d.error]

    # What an older push racing another (or a hand import) leaves: copies of three tasks.
    copies = [
        {"data": task_data(by_id[d.article_id], d, [], blind=False), "meta": {"article_id": d.article_id},
         "predictions": [{"model_version": d.model_version, "result": to_result(TAX, d.labels, d.rationale)}]}
        for d in assisted[:3]
    ]
    ls_conn.post_json(f"api/projects/{project.id}/import", copies)
    copy_ids = sorted(r.id for r in task_refs(ls_conn, project.id) if r.id not in tasks.values())
    annotated_copy = copy_ids[0]
    ann = ls_conn.request("POST", f"api/tasks/{annotated_copy}/annotations/", json={"result": to_result(TAX, assisted[0].labels, "kept")})
    # A task that lost its prediction, a blind task that got one, a second project with the title.
    lost = assisted[4].article_id
    for p in ls_conn.request("GET", "api/predictions/", params={"task": tasks[lost]}):
        ls_conn.request("DELETE", f"api/predictions/{p['id']}/")
    blind_aid, blind_task = next(iter(existing_tasks(ls_conn, blind.id).items()))
    ls_conn.post_json(f"api/projects/{blind.id}/import/predictions",
                      [{"task": blind_task, "model_version": "x", "result": to_result(TAX, assisted[0].labels, "r")}])
    twin = ls_conn.ls.projects.create(title=project_title)

    assert main(["labelstudio", "check", "--project", project_title]) == 1
    out = capsys.readouterr().out
    assert "2 projects are titled" in out and str(twin.id) in out
    assert "3 articles have more than one task" in out and all(d.article_id in out for d in assisted[:3])
    assert f"1 tasks lack their draft's prediction: {lost!r}" in out
    assert f"1 blind tasks carry a prediction: {blind_aid!r}" in out
    assert f"article {assisted[0].article_id!r}: annotated copies [{annotated_copy}] of task {tasks[assisted[0].article_id]} are kept" in out

    report = check(ls_conn, project_title, fix=True)
    main_check = next(p for p in report.projects if p.project_id == project.id)
    assert sorted(main_check.removed) == copy_ids[1:]  # the annotated copy stays
    after = Counter(r.article_id for r in task_refs(ls_conn, project.id))
    assert after[assisted[0].article_id] == 2 and after[assisted[1].article_id] == 1 and after[assisted[2].article_id] == 1
    assert ls_conn.request("GET", f"api/annotations/{ann['id']}/")["task"] == annotated_copy
    assert not report.ok  # the title twin, the lost prediction, the blind prediction and the annotated copy remain
