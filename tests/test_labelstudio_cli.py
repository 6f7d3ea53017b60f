"""The thin CLI over the Label Studio library: exit codes, messages, files."""

from __future__ import annotations

import json

import pytest
from fixtures_labelstudio import make_articles, make_drafts

from annotator.cli import main
from annotator.labelstudio import postgres, server
from annotator.labelstudio.client import connect
from annotator.records import Review, read_jsonl, write_jsonl
from annotator.taxonomy import load_taxonomy

pytestmark = pytest.mark.labelstudio


def test_label_config_command_writes_the_committed_file(tmp_path):
    out = tmp_path / "oecd.xml"
    assert main(["label-config", "--taxonomy", "oecd_aim", "-o", str(out)]) == 0
    assert out.read_text() == (__import__("pathlib").Path(__file__).parents[1] / "label_config" / "oecd_aim.xml").read_text()


def test_push_and_pull_commands(tmp_path, labelstudio, project_title, monkeypatch, capsys):
    monkeypatch.setenv("LABEL_STUDIO_URL", labelstudio.url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", labelstudio.token)
    tax = load_taxonomy("oecd_aim")
    articles = make_articles(20, prefix="cli")
    write_jsonl(tmp_path / "articles.jsonl", articles)
    drafts = make_drafts(tax, articles)
    write_jsonl(tmp_path / "drafts.jsonl", drafts)
    with (tmp_path / "drafts.jsonl").open("a") as fh:
        fh.write('{"article_id": "not-in-articles", "labels": {}}\n{broken\n')

    assert main(["push", str(tmp_path / "drafts.jsonl"), "--project", project_title]) == 1
    out, err = capsys.readouterr()
    assert "20 tasks created" in out
    assert "drafts.jsonl:22:" in err and "not-in-articles" in err  # one line each, the rest pushed

    from annotator.labelstudio.annotators import post_reviews

    post_reviews(connect(), tax, project_title, [Review(article_id=articles[0].id, annotator="dora@example.com",
                                                        labels=drafts[0].labels, rationale=drafts[0].rationale,
                                                        model_version=drafts[0].model_version)])
    out_file = tmp_path / "reviews.jsonl"
    assert main(["pull", "--project", project_title, "-o", str(out_file)]) == 0
    (review,) = read_jsonl(out_file, Review)
    assert review.annotator == "dora@example.com" and review.accepted_as_is is True and review.blind is False

    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "f" * 40)
    assert main(["pull", "--project", project_title, "-o", str(out_file)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "LABEL_STUDIO_API_KEY" in err and "f" * 40 not in err


@pytest.mark.slow
@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_labelstudio_up_status_down(tmp_path, capsys, db):
    data_dir = tmp_path / "ls"
    try:
        assert main(["labelstudio", "up", "--data-dir", str(data_dir), "--db", db]) == 0
        out = capsys.readouterr().out
        state = server.read_state(data_dir)
        assert state.db == db and f"database {db}" in out
        assert state.url in out and f"LABEL_STUDIO_API_KEY={state.token}" in out and state.username in out
        assert json.loads((data_dir / server.STATE_NAME).read_text())["pid"] == state.pid
        assert main(["labelstudio", "status", "--data-dir", str(data_dir)]) == 0
        assert capsys.readouterr().out.startswith("up:")
        # A second `up` finds the running server instead of starting another.
        assert main(["labelstudio", "up", "--data-dir", str(data_dir)]) == 0
        assert server.read_state(data_dir).pid == state.pid
        if db == "postgres":  # a project to find after a restart; asking this data dir for SQLite is refused
            connect(state.url, state.token).ls.projects.create(title="kept")
            assert main(["labelstudio", "up", "--data-dir", str(data_dir), "--db", "sqlite"]) == 2
            assert "holds a Label Studio on postgres" in capsys.readouterr().err
    finally:
        main(["labelstudio", "down", "--data-dir", str(data_dir)])
    assert not server.healthy(state.url)
    assert main(["labelstudio", "status", "--data-dir", str(data_dir)]) == 1
    if db == "postgres":
        assert not postgres._alive(state.postgres.pid)  # `down` stopped the database too
        # Up again on the same data dir: the projects made before are still there.
        try:
            assert main(["labelstudio", "up", "--data-dir", str(data_dir)]) == 0
            again = server.read_state(data_dir)
            conn = connect(again.url, again.token)
            assert again.db == "postgres" and [p.title for p in conn.ls.projects.list()] == ["kept"]
        finally:
            server.stop(data_dir, remove_database=True)
