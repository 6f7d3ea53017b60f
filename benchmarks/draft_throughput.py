"""Drafting throughput against a rate-limited server: how close to the limit, nothing lost, nothing paid twice.

Starts tests/fake_openai_server.py (200 ms latency, 600 requests per minute as a token bucket) in
its own process, drafts N articles with `annotator.draft` (the client is not told the limit; it
learns it from 429s), with and without 5% injected 500s, and prints articles per minute as a share
of the limit, articles lost and answers paid twice.

    .venv/bin/python benchmarks/draft_throughput.py [--articles 500] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

from annotator.draft import DraftOptions, draft
from annotator.llm import load_settings
from annotator.processes import free_port
from annotator.records import Draft, read_jsonl

ROOT = Path(__file__).resolve().parent.parent


def one_run(n: int, concurrency: int, latency: float, rpm: float, error_rate: float) -> dict[str, float]:
    port = free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_openai_server.py"), "--port", str(port),
                               "--latency", str(latency), "--rpm", str(rpm), "--error-rate", str(error_rate)],
                              stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/_stats", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            articles = work / "articles.jsonl"
            articles.write_text("".join(json.dumps({"id": f"b{i:04d}", "title": f"Story {i}",
                                                    "text": f"An AI system did something notable, case {i}. " * 20}) + "\n"
                                        for i in range(n)))
            settings = load_settings({}, base_url=f"{url}/v1", api_key="sk-bench", model="gpt-4o-mini")
            options = DraftOptions(concurrency=concurrency, cache=str(work / "cache.sqlite"))
            t0 = time.monotonic()
            summary = draft(articles, work / "drafts.jsonl", settings, options, progress=False)
            elapsed = time.monotonic() - t0
            drafts = read_jsonl(work / "drafts.jsonl", Draft)
        stats = json.loads(urllib.request.urlopen(f"{url}/_stats").read())
    finally:
        server.terminate()
        server.wait()
    ok_ids = {d.article_id for d in drafts if d.error is None}
    answered = Counter(e["user_sha"] for e in stats["events"] if e.get("status") == 200)
    per_minute = len(ok_ids) / elapsed * 60
    return {
        "articles": n, "drafted": len(ok_ids), "seconds": round(elapsed, 1), "per_minute": round(per_minute, 1),
        "share_of_limit": round(per_minute / rpm, 3), "lost": n - len(ok_ids),
        "paid_twice": sum(c - 1 for c in answered.values()), "lines": len(drafts),
        "http_429": stats["counts"].get("status:429", 0), "http_500": stats["counts"].get("status:500", 0),
        "failed": sum(summary.failed.values()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--articles", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--rpm", type=float, default=600)
    args = p.parse_args()
    for error_rate in (0.0, 0.05):
        r = one_run(args.articles, args.concurrency, args.latency, args.rpm, error_rate)
        print(f"500s {error_rate:>4.0%}: {r['drafted']}/{r['articles']} drafted in {r['seconds']} s = {r['per_minute']} "
              f"articles/min = {r['share_of_limit']:.1%} of the {args.rpm:g} rpm limit; lost {r['lost']}, "
              f"paid twice {r['paid_twice']}, draft lines {r['lines']}; server sent {r['http_429']} x 429, {r['http_500']} x 500",
              flush=True)


if __name__ == "__main__":
    main()
