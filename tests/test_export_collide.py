"""Two exports into one folder: the second waits for the first, the folder is never a mix."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_export import CLASSES, review, synthetic_articles, write_jsonl

from annotator.locks import hold


def _inputs(tmp_path: Path) -> list[str]:
    articles = synthetic_articles(30)
    reviews = [review(str(a["id"]), "ann", CLASSES[i % 4]) for i, a in enumerate(articles)]
    a, r = write_jsonl(tmp_path / "articles.jsonl", articles), write_jsonl(tmp_path / "reviews.jsonl", reviews)
    return [sys.executable, "-m", "annotator.cli", "export", str(r), "--articles", str(a), "-o", str(tmp_path / "gold"),
            "--format", "jsonl,csv"]


def _exported(gold: Path) -> list[str]:
    ids = [json.loads(line)["article_id"] for s in ("train", "validation", "test")
           for line in (gold / f"{s}.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids))
    return sorted(ids)


@pytest.mark.slow
def test_an_export_waits_for_the_one_writing_the_folder(tmp_path):
    cmd = _inputs(tmp_path)
    gold, log = tmp_path / "gold", tmp_path / "export.err"
    with hold([gold], "export", lambda m: None):  # another export holds the folder
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
        deadline = time.monotonic() + 60
        while "in use by" not in log.read_text():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(0.5)
        assert proc.poll() is None and not (gold / "manifest.json").exists()  # it waits, writing nothing
    proc.communicate(timeout=60)
    err = log.read_text()
    assert proc.returncode == 0, err
    assert err.count("\n") == 1 and f"{gold} is in use by `annotator export` (pid" in err
    assert len(_exported(gold)) == 30


@pytest.mark.slow
def test_two_exports_started_at_once_leave_one_whole_export(tmp_path):
    cmd = _inputs(tmp_path)
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    gold = tmp_path / "gold"
    assert _exported(gold) == sorted(a["id"] for a in synthetic_articles(30))
    rows = sum(len(list(csv.DictReader((gold / f"{s}.csv").open()))) for s in ("train", "validation", "test"))
    assert rows == 30 and json.loads((gold / "manifest.json").read_text())
