"""Faults give one clear line; what was pushed stays pushed; a re-run completes without duplicates."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fixtures_labelstudio import make_articles, make_drafts

from annotator.errors import LabelStudioError
from annotator.labelstudio.client import connect, find_project
from annotator.labelstudio.config import label_config
from annotator.labelstudio.push import existing_tasks, model_version, push, task_data
from annotator.processes import free_port
from annotator.taxonomy import load_taxonomy

pytestmark = pytest.mark.labelstudio
TAX = load_taxonomy("oecd_aim")


def test_server_down():
    with pytest.raises(LabelStudioError, match="cannot reach Label Studio") as err:
        connect(f"http://127.0.0.1:{free_port()}", "0" * 40)
    assert "\n" not in str(err.value)


def test_wrong_token(labelstudio):
    with pytest.raises(LabelStudioError, match="refused the API key") as err:
        connect(labelstudio.url, "0" * 40)
    assert "0" * 40 not in str(err.value)


def test_missing_settings(monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    with pytest.raises(LabelStudioError, match="LABEL_STUDIO_URL"):
        connect()


def test_duplicate_title(ls_conn, project_title):
    """Two projects with one title: the oldest is used while the other is empty; both holding tasks is an error."""
    config = label_config(TAX)
    older, newer = (ls_conn.ls.projects.create(title=project_title, label_config=config) for _ in range(2))
    articles = make_articles(2, prefix="dup")
    result = push(ls_conn, make_drafts(TAX, articles), {a.id: a for a in articles}, TAX, project_title)
    assert result.project_id == older.id and result.created == 2
    ls_conn.post_json(f"api/projects/{newer.id}/import", [{"data": task_data(articles[0], None, [], blind=False)}])
    with pytest.raises(LabelStudioError, match="2 projects are titled") as err:
        push(ls_conn, make_drafts(TAX, articles), {a.id: a for a in articles}, TAX, project_title)
    assert f"{older.id} (2 tasks)" in str(err.value) and "labelstudio check" in str(err.value)


def _settled(conn, project_id, wait=20.0):
    """The task count once the server has finished an import the client gave up on."""
    last, deadline = -1, time.monotonic() + wait
    while time.monotonic() < deadline:
        now = len(existing_tasks(conn, project_id))
        if now == last:
            return now
        last = now
        time.sleep(1.0)
    return last


@pytest.mark.slow
def test_timeout_mid_push_then_rerun_completes(ls_conn, project_title):
    articles = make_articles(400, prefix="cut")
    by_id = {a.id: a for a in articles}
    drafts = make_drafts(TAX, articles)
    with pytest.raises(LabelStudioError, match="timed out.*run the same command again") as err:
        push(ls_conn, drafts, by_id, TAX, project_title, batch_size=100, import_timeout=0.05)
    assert "\n" not in str(err.value)
    project = find_project(ls_conn, project_title)
    kept = _settled(ls_conn, project.id)
    assert kept <= 100  # at most the batch in flight when the client gave up
    done = push(ls_conn, drafts, by_id, TAX, project_title, batch_size=100)
    assert done.created == 400 - kept and done.unchanged == kept
    tasks = existing_tasks(ls_conn, project.id)
    assert len(tasks) == 400 and set(tasks) == set(by_id)
    assert len(list(ls_conn.ls.tasks.list(project=project.id, include="id", fields="task_only"))) == 400


HOLD_S = 15  # how long the test holds SQLite's write lock: past push's first import attempt


def test_predictions_a_busy_sqlite_drops_are_sent_again(labelstudio, ls_conn, project_title):
    """Label Studio 1.23 on SQLite retries a bulk import that met "database is locked" (its
    `retry_database_locked`, 5 s busy timeout, then 3 s, 6 s, ... between attempts), but the first
    attempt has already popped the predictions out of the tasks: the retry makes the tasks without
    them and answers 201 with fewer predictions than sent. Another writer holding the database
    (an annotator's submit, a second push) causes it; here the test holds the write lock itself
    while a push imports, then lets go."""
    articles = make_articles(6, prefix="busy")
    drafts = make_drafts(TAX, articles)
    first = push(ls_conn, drafts[:1], {a.id: a for a in articles}, TAX, project_title)  # the project exists: no write before the import
    assert first.ok and first.created == 1
    db = sqlite3.connect(Path(labelstudio.data_dir) / "label_studio.sqlite3", isolation_level=None, timeout=60)
    db.execute("BEGIN IMMEDIATE")
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pushing = pool.submit(push, ls_conn, drafts, {a.id: a for a in articles}, TAX, project_title)
            time.sleep(HOLD_S)
            db.execute("COMMIT")
            result = pushing.result(timeout=300)
    finally:
        db.close()
    # Label Studio dropped the 5 new predictions (the test fails here if the import got through
    # before the lock was let go: then nothing was dropped and nothing is tested) ...
    assert result.predictions_resent == 5, result.describe()
    assert "5 predictions that Label Studio dropped sent again" in result.describe()
    # ... and push sent them again: every article once, each with exactly its draft.
    assert result.ok and result.created == 5 and result.unchanged == 1, result.problems
    project = find_project(ls_conn, project_title)
    tasks = existing_tasks(ls_conn, project.id)
    assert sorted(tasks) == sorted(a.id for a in articles) and project.task_number == 6
    for d in drafts:
        preds = ls_conn.request("GET", "api/predictions/", params={"task": tasks[d.article_id]})
        assert [p["model_version"] for p in preds] == [model_version(d)], (d.article_id, preds)
