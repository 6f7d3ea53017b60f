"""Batch drafting at any size: files within the provider's limits, per-batch status, resume after a kill."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from annotator.cli import main
from annotator.llm import ChatClient, load_settings
from annotator.llm.batch import find, request_line, split, submit
from annotator.records import Draft, read_jsonl

STATE = Path("drafts.jsonl.batches.json")


def _batches() -> list[dict]:
    return json.loads(STATE.read_text())["batches"]


def _ids() -> list[str]:
    return sorted(d.article_id for d in read_jsonl("drafts.jsonl", Draft))


def test_split_respects_both_limits():
    lines = [(f"a{i}", request_line(f"a{i}", {"x": "y" * (10 * i)})) for i in range(10)]
    by_count = split(lines, max_requests=4, max_bytes=10**9)
    assert [len(f) for f in by_count] == [4, 4, 2] and [c for f in by_count for c, _ in f] == [c for c, _ in lines]
    cap = 3 * len(lines[-1][1])
    by_size = split(lines, max_requests=100, max_bytes=cap)
    assert all(sum(len(b) for _, b in f) <= cap for f in by_size) and sum(len(f) for f in by_size) == 10
    with pytest.raises(ValueError, match="a9 alone"):
        split(lines, max_bytes=len(lines[-1][1]) - 1)


def test_many_articles_go_in_several_batches_each_reported(llm_env, write_articles, capsys):
    Path("annotator.toml").write_text("[llm]\nbatch_max_requests = 3\n")
    llm_env.faults.batch_polls = 0
    articles = str(write_articles(7))
    assert main(["draft", articles, "--batch", "-q"]) == 0
    assert [len(b["articles"]) for b in _batches()] == [3, 3, 1]
    out = capsys.readouterr().out
    assert out.count(": submitted,") == 3 and "batch batch-3: submitted, 1 articles" in out
    assert main(["draft", articles, "--batch", "-q"]) == 0  # collect: every batch done
    out = capsys.readouterr().out
    assert "batch batch-1: completed, 3 of 3 answered" in out and "batch batch-3: completed, 1 of 1 answered" in out
    assert _ids() == [f"art-{i:03d}" for i in range(7)] and _batches() == []
    assert llm_env.stats["counts"]["batches_created"] == 3 and llm_env.stats["chat_requests"] == 0


def test_a_batch_created_by_a_killed_run_is_found_not_submitted_again(llm_env, write_articles):
    """The run saved its token, created the batch and was killed before it saved the batch's id."""
    llm_env.faults.batch_polls = 0
    articles = str(write_articles(3))
    settings = load_settings({}, base_url=llm_env.url, model="gpt-4o-mini")

    async def create() -> None:
        async with ChatClient(settings) as client:
            lines = [(f"art-{i:03d}", request_line(f"art-{i:03d}", {"model": "gpt-4o-mini", "messages": [
                {"role": "user", "content": f"id: art-{i:03d}\nA story."}]})) for i in range(3)]
            await submit(client, lines, "tok-123")
            assert await find(client, "tok-123", time.time()) == "batch-1"
            assert await find(client, "other", time.time()) is None

    asyncio.run(create())
    STATE.write_text(json.dumps({"batches": [{"id": None, "token": "tok-123", "mode": "json_schema",
                                              "articles": ["art-000", "art-001", "art-002"],
                                              "model_version": "incident@v1@gpt-4o-mini", "submitted_at": time.time()}]}))
    assert main(["draft", articles, "--batch", "-q"]) == 0
    assert llm_env.stats["counts"]["batches_created"] == 1  # found, not submitted again
    assert _ids() == ["art-000", "art-001", "art-002"] and _batches() == []


def test_two_step_on_with_batch_is_refused_in_one_line_before_anything_is_sent(llm_env, write_articles, capsys):
    """A second step needs a second batch per article: asked for explicitly, it is refused rather
    than silently dropped (auto quietly drafts in one step)."""
    articles = str(write_articles(2))
    assert main(["draft", articles, "--batch", "--two-step", "on", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--two-step on with --batch is not supported" in err and "\n" not in err
    assert llm_env.stats["counts"].get("batches_created", 0) == 0 and not Path("drafts.jsonl").exists()
