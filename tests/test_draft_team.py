"""Drafting on a shared folder: two runs at once, a dead or wrong endpoint, against the test server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures_llm import FAKE_KEY

from annotator.cli import main


def _start(*args: str, url: str, quiet: bool = True) -> subprocess.Popen[str]:
    env = {**os.environ, "OPENAI_BASE_URL": url, "OPENAI_API_KEY": FAKE_KEY}
    return subprocess.Popen([sys.executable, "-m", "annotator.cli", "draft", *args, *(["-q"] if quiet else [])],
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _lines(path: str | Path) -> list[str]:
    return [json.loads(line)["article_id"] for line in Path(path).read_text().splitlines()]


def _finish(*procs: subprocess.Popen[str]) -> list[tuple[int, str, str]]:
    outs = [p.communicate(timeout=120) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outs, strict=True)]


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(4))
def test_two_runs_started_at_once_pay_once_and_write_once(llm_env, write_articles, round_):
    llm_env.faults.latency = 0.05
    articles = str(write_articles(30))
    a = _start(articles, "-o", "drafts.jsonl", "--concurrency", "4", url=llm_env.url)
    b = _start(articles, "-o", "drafts.jsonl", "--concurrency", "4", url=llm_env.url)
    for code, _, err in _finish(a, b):
        assert code == 0, err
    ids = _lines("drafts.jsonl")
    assert sorted(ids) == sorted(f"art-{i:03d}" for i in range(30))  # every article once, none twice
    assert llm_env.stats["chat_requests"] == 30  # each paid once


def _wait_for(predicate, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_second_run_waits_says_so_once_and_then_pays_nothing(llm_env, write_articles, tmp_path):
    # The first run is held mid-way (its requests hang, time out after 2 s and are retried) until
    # the two others have started and said they wait, however slowly this machine starts them.
    Path("annotator.toml").write_text("[llm]\ntimeout = 2\ndead_after_seconds = 600\nbackoff_cap = 0.2\nmax_attempts = 100\n")
    articles = str(write_articles(20))
    env = {**os.environ, "OPENAI_BASE_URL": llm_env.url, "OPENAI_API_KEY": FAKE_KEY}

    def start(output: str, log: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "annotator.cli", "draft", articles, "-o", output, "-q",
                                 "--concurrency", "1"], env=env, text=True, stdout=subprocess.PIPE,
                                stderr=(tmp_path / log).open("w"))

    first = start("drafts.jsonl", "first.err")
    _wait_for(lambda: Path("drafts.jsonl").exists() and Path("drafts.jsonl").read_text(), 120)
    llm_env.faults.hang = True
    second = start("drafts.jsonl", "second.err")  # same output and cache
    other = start("other.jsonl", "other.err")  # same cache, another output
    _wait_for(lambda: all("in use by" in (tmp_path / f).read_text() for f in ("second.err", "other.err")), 120)
    assert first.poll() is None  # the first still runs: the two others are waiting for it
    llm_env.faults.hang = False
    outs = [p.communicate(timeout=120)[0] for p in (first, second, other)]
    assert [p.returncode for p in (first, second, other)] == [0, 0, 0], (tmp_path / "first.err").read_text()
    err2 = _problems((tmp_path / "second.err").read_text())
    assert err2.count("\n") == 1 and "is in use by `annotator draft` (pid" in err2
    assert "waiting for it to finish" in err2
    assert sorted(_lines("drafts.jsonl")) == sorted(_lines("other.jsonl")) == [f"art-{i:03d}" for i in range(20)]
    answered = [e["user_sha"] for e in llm_env.stats["events"] if e.get("status") == 200]
    assert len(answered) == len(set(answered)) == 20  # each answered once: the waiting runs paid for nothing
    assert "20 already done" in outs[1] and "20 from cache" in outs[2]


def _problems(err: str) -> str:
    """stderr without the line announcing what confidence sampling may cost (said before every run)."""
    return "".join(line + "\n" for line in err.splitlines() if not line.startswith("confidence:"))


def _toml(**llm: float) -> None:
    Path("annotator.toml").write_text("[llm]\n" + "".join(f"{k} = {v}\n" for k, v in llm.items()))


def test_refused_connections_stop_the_run_with_one_message(llm_env, write_articles, monkeypatch, capsys):
    from annotator.processes import free_port

    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    monkeypatch.setenv("OPENAI_BASE_URL", dead)
    _toml(dead_after_seconds=0.5)
    t0 = time.monotonic()
    assert main(["draft", str(write_articles(50)), "-q"]) == 2
    assert time.monotonic() - t0 < 10
    err = _problems(capsys.readouterr().err)
    assert err.count("\n") == 1 and f"{dead} is not answering" in err and "connection refused" in err
    assert "OPENAI_BASE_URL" in err and "run the same command again" in err
    assert not Path("drafts.jsonl").exists() or not Path("drafts.jsonl").read_text()  # no error line per article


@pytest.mark.slow
def test_refused_connections_with_default_settings_stop_within_a_minute(llm_env, write_articles, monkeypatch, capsys):
    from annotator.processes import free_port

    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    t0 = time.monotonic()
    assert main(["draft", str(write_articles(50)), "-q", "--concurrency", "1"]) == 2
    assert time.monotonic() - t0 < 60
    assert "is not answering" in capsys.readouterr().err


def test_a_hung_endpoint_gets_heartbeats_then_stops_the_run(llm_env, write_articles, capsys):
    llm_env.faults.hang = True
    _toml(timeout=1.0, heartbeat=0.5, dead_after_seconds=2)
    t0 = time.monotonic()
    assert main(["draft", str(write_articles(10)), "--concurrency", "2"]) == 2
    assert time.monotonic() - t0 < 20
    err = capsys.readouterr().err
    assert "still waiting for " + llm_env.url in err and "in flight, timeout 1 s" in err
    (last,) = [line for line in err.splitlines() if "is not answering" in line]
    assert "timeout" in last and "raise [llm] timeout" in last and "Traceback" not in err


@pytest.mark.slow
def test_a_hung_endpoint_with_default_settings_stops_within_three_minutes(llm_env, write_articles, capsys):
    llm_env.faults.hang = True
    t0 = time.monotonic()
    assert main(["draft", str(write_articles(20))]) == 2
    assert time.monotonic() - t0 < 180
    err = capsys.readouterr().err
    assert "is not answering" in err
    assert f"draft: still waiting for {llm_env.url}: the oldest request was sent 3" in err  # the heartbeat at 30 s


@pytest.mark.parametrize("kind,ctype,head", [("html", "text/html", "<!DOCTYPE html><html><head><title>Sign in"),
                                             ("json", "application/json", '{"status": "ok"')])
def test_a_200_that_is_not_a_chat_completion_is_one_clear_error(llm_env, write_articles, capsys, kind, ctype, head):
    llm_env.faults.not_chat = kind
    assert main(["draft", str(write_articles(10)), "-q", "--concurrency", "2"]) == 2
    err = _problems(capsys.readouterr().err)
    assert err.count("\n") == 1 and f"{llm_env.url} answered 200 with {ctype}" in err and head in err
    assert "not a chat completion" in err and "Traceback" not in err
    assert llm_env.stats["chat_requests"] <= 2  # no retries of an answer that cannot change


def test_a_huge_article_is_cut_by_default_and_flagged(llm_env, write_articles):
    huge = "A recommender system pushed harmful videos to teenagers, the complaint says. " * 5000  # ~390,000 characters
    assert main(["draft", str(write_articles(1, texts={"huge": huge})), "-q", "--concurrency", "1"]) == 0
    by_id = {json.loads(line)["article_id"]: json.loads(line) for line in Path("drafts.jsonl").read_text().splitlines()}
    assert "truncated" in by_id["huge"]["flags"] and "truncated" not in by_id["art-000"]["flags"]
    sent = llm_env.stats["last_by_article"]["huge"]["messages"][1]["content"]
    assert 30_000 < len(sent) < 40_000  # 8,000 tokens of about 4 characters


@pytest.mark.slow
def test_a_50_mb_text_file_costs_one_ordinary_request(llm_env, tmp_path):
    """The fault as found: a 50 MB .txt file became one article and one 13-million-token request."""
    line = "A recommender system pushed harmful videos to teenagers, the complaint filed on Monday says.\n"
    big = tmp_path / "complaint.txt"
    big.write_text("Big complaint\n" + line * (50_000_000 // len(line)))
    assert main(["ingest", str(big), "-o", "articles.jsonl"]) == 0
    assert main(["draft", "articles.jsonl", "-q"]) == 0
    (d,) = [json.loads(line) for line in Path("drafts.jsonl").read_text().splitlines()]
    assert "truncated" in d["flags"] and d["error"] is None
    assert llm_env.stats["chat_requests"] == 1
    (sent,) = llm_env.stats["last_by_article"].values()
    assert 30_000 < len(sent["messages"][1]["content"]) < 40_000  # 8,000 tokens of about 4 characters
