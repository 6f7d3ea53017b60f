"""Drafting throughput when the endpoint is the bottleneck: the project against a plain SDK loop.

For each requests-per-minute limit R and latency L, starts tests/fake_openai_server.py in its
own process (a token bucket of R per minute holding one second's worth; beyond it 429 with
Retry-After, and the refused request takes its token too, as OpenAI counts unsuccessful requests;
x-ratelimit-* headers on every answer unless --no-headers; L seconds per answer; 5% of requests
answered 500), then drafts N articles twice:

- project: `annotator.draft.draft` with its defaults (it is not told R: it reads the headers, or
  with --no-headers learns R from the 429s; the number in flight adapts below the default cap),
  cache and drafts file in a temporary folder;
- plain: the same request bodies sent by a plain `openai.AsyncOpenAI` loop (its own retries,
  10 attempts), with the number in flight fixed at what Little's law says for the known R and L
  (R/60 x L, at least 1): a hand-tuned script that sends at the limit and not beyond it (with
  more in flight the refused requests' debt makes the SDK's retries fail: no CPU figure to compare).

It prints, side by side, the sustained rate as a share of R (requests the endpoint admitted, 200s
and 500s, per minute between the 10% and 90% marks of the run; in brackets, articles drafted per
minute over the whole run, start-up and last retries included), the client CPU per article
(process time of this process, which is only the client: the server runs apart; the project's
includes its start: loading the taxonomy, prompt and cache), and the machine load.

    .venv/bin/python benchmarks/draft_throughput.py [--grid 60:0.2,600:1,3000:1,10000:2] [--seconds 20] [--no-headers]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import openai

from annotator.draft import Drafter, DraftOptions, DraftSummary, draft
from annotator.llm import ChatClient, load_settings
from annotator.processes import free_port
from annotator.prompt import load_prompt
from annotator.records import Article, Draft, read_jsonl
from annotator.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parent.parent


def _articles(n: int, tag: str) -> list[Article]:
    return [Article(id=f"{tag}{i:05d}", title=f"Story {i}",
                    text=f"A {tag} city's AI system misidentified resident {i} as a suspect; the council paused it. " * 12)
            for i in range(n)]


def _server(rpm: float, latency: float, error_rate: float, headers: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_openai_server.py"), "--port", str(port),
                             "--latency", str(latency), "--rpm", str(rpm), "--error-rate", str(error_rate),
                             *([] if headers else ["--no-ratelimit-headers"])],
                            stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{url}/_stats", timeout=1).read()
            break
        except OSError:
            time.sleep(0.05)
    return proc, url


def _stats(url: str) -> dict:
    return json.loads(urllib.request.urlopen(f"{url}/_stats", timeout=10).read())


def sustained(url: str, rpm: float) -> float:
    """Requests the endpoint admitted (answered 200 or 500, not 429) per minute between the 10% and
    90% marks of the run, as a share of R: the steady state, without start-up and the last retries."""
    times = sorted(e["t"] for e in _stats(url)["events"] if e.get("status") in (200, 500))
    if len(times) < 10:
        return float("nan")
    lo, hi = times[len(times) // 10], times[len(times) * 9 // 10]
    return (len(times) * 8 // 10) / max(hi - lo, 1e-9) * 60 / rpm


def run_project(url: str, articles: list[Article]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = work / "articles.jsonl"
        path.write_text("".join(a.model_dump_json() + "\n" for a in articles))
        settings = load_settings({}, base_url=f"{url}/v1", api_key="sk-bench", model="gpt-4o-mini")
        options = DraftOptions(cache=str(work / "cache.sqlite"))
        cpu, t0 = time.process_time(), time.monotonic()
        summary = draft(path, work / "drafts.jsonl", settings, options, progress=False)
        wall, cpu = time.monotonic() - t0, time.process_time() - cpu
        drafted = sum(d.error is None for d in read_jsonl(work / "drafts.jsonl", Draft))
    return {"drafted": drafted, "wall": wall, "cpu": cpu, "peak": summary.peak_in_flight}


def _bodies(url: str, articles: list[Article]) -> list[dict]:
    """The project's own request bodies, so both loops send the same bytes."""
    settings = load_settings({}, base_url=f"{url}/v1", api_key="sk-bench", model="gpt-4o-mini")
    client = ChatClient(settings)
    drafter = Drafter(client, load_prompt("incident@v1"), load_taxonomy("oecd_aim"), DraftOptions(), cache=None,  # type: ignore[arg-type]
                      summary=DraftSummary())
    return [client.body(drafter.request(a)[0], drafter.schema) for a in articles]


def run_plain(url: str, bodies: list[dict], in_flight: int) -> dict[str, float]:
    async def main() -> int:
        client = openai.AsyncOpenAI(api_key="sk-bench", base_url=f"{url}/v1", max_retries=10)
        sem = asyncio.Semaphore(in_flight)
        ok = 0

        async def one(body: dict) -> None:
            nonlocal ok
            async with sem:
                try:
                    r = await client.chat.completions.create(**body)
                    json.loads(r.choices[0].message.content or "")
                    ok += 1
                except (openai.APIError, ValueError):
                    pass

        await asyncio.gather(*(one(b) for b in bodies))
        await client.close()
        return ok

    cpu, t0 = time.process_time(), time.monotonic()
    drafted = asyncio.run(main())
    return {"drafted": drafted, "wall": time.monotonic() - t0, "cpu": time.process_time() - cpu, "peak": in_flight}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", default="60:0.2,600:1,3000:1,3000:2,10000:0.2,10000:2",
                   help="R:latency pairs (requests per minute : seconds)")
    p.add_argument("--seconds", type=float, default=20.0, help="run length at the limit: N = R/60 x seconds (at least 20)")
    p.add_argument("--error-rate", type=float, default=0.05)
    p.add_argument("--no-headers", action="store_true", help="the server states no limit: 429s only")
    args = p.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; 5xx share {args.error_rate:.0%}; "
          f"limit {'learnt from 429s only' if args.no_headers else 'stated in x-ratelimit-* headers'}")
    print(f"{'R/min':>7} {'lat s':>5} {'N':>5} | {'project rate/R (all)':>14} {'CPU ms/art':>10} {'in flight':>9} | "
          f"{'plain rate/R (all)':>14} {'CPU ms/art':>10} {'in flight':>9} | {'CPU ratio':>9}  load")
    for pair in args.grid.split(","):
        rpm, latency = (float(x) for x in pair.split(":"))
        n = max(20, int(rpm / 60 * args.seconds))
        row = []
        for kind in ("project", "plain"):
            server, url = _server(rpm, latency, args.error_rate, not args.no_headers)
            try:
                articles = _articles(n, kind[0])  # other texts per run: nothing is answered from a cache
                if kind == "project":
                    r = run_project(url, articles)
                else:
                    r = run_plain(url, _bodies(url, articles), max(1, round(rpm / 60 * latency)))
                r["sustained"] = sustained(url, rpm)
            finally:
                server.terminate()
                server.wait()
            row.append(r)
        cells = [f"{r['sustained']:>6.3f} ({r['drafted'] / r['wall'] * 60 / rpm:.2f}) {1000 * r['cpu'] / max(1, r['drafted']):>10.2f} "
                 f"{r['peak']:>9}" for r in row]
        ratio = (row[0]["cpu"] / max(1, row[0]["drafted"])) / (row[1]["cpu"] / max(1, row[1]["drafted"]))
        print(f"{rpm:>7.0f} {latency:>5.1f} {n:>5} | {cells[0]} | {cells[1]} | {ratio:>9.2f}  "
              f"{os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
