"""Drafting throughput when the endpoint is the bottleneck: the project against a plain SDK loop.

For each requests-per-minute limit R and latency L, starts tests/fake_openai_server.py in its
own process (a token bucket of R per minute holding one second's worth; beyond it 429 with
Retry-After, and the refused request takes its token too, as OpenAI counts unsuccessful requests;
x-ratelimit-* headers on every answer unless --no-headers; L seconds per answer; 5% of requests
answered 500), then drafts N articles twice:

- project: `annotator.draft.draft` with its defaults (it is not told R: it reads the headers, or
  with --no-headers learns R from the 429s; the number in flight adapts below the default cap),
  cache and drafts file in a temporary folder;
- plain: the same request bodies sent through a plain `openai.AsyncOpenAI` loop
  (`chat.completions.create`) written by someone who knows R and L: every attempt starts on a fixed
  pace of 97% of R, up to 2 x pace x L + 4 in flight, 500s and 429s tried again on the same pace
  (10 attempts). It shows what this machine allows at that R and L; an unpaced loop with R/60 x L in
  flight (the earlier reference) fell short of R by its own round trip, over L by the time to send,
  read and retry (0.70-0.74 of R at 10,000 a minute, 0.2 s, while it and the server used 0.6 of the
  two cores; 1.0 with 54 in flight), and collapsed at 3,000 a minute, 2 s, where the SDK's own
  retries kept the bucket in debt.

It prints, side by side, the sustained rate as a share of R (requests the endpoint admitted, 200s
and 500s, per minute between the 10% and 90% marks of the run, less what the bucket held at the
start; in square brackets without that correction; in round ones, articles drafted per minute over
the whole run, start-up and last retries included), the client CPU per article
(process time of this process, which is only the client: the server runs apart; the project's
includes its start: loading the taxonomy, prompt and cache), the server's CPU per request it
answered (429s included), the cores the client and server used between them (their CPU over the
run's wall time), the cores the whole machine was busy with meanwhile (/proc/stat: other jobs
included; near the core count, the row measures the machine, not the client), the project's rate
and CPU as ratios to the plain loop's, and the load average at the end of the row.

    .venv/bin/python benchmarks/draft_throughput.py [--grid 60:0.2,600:1,3000:1,10000:2] [--seconds 20] [--no-headers]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
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


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stats(url: str) -> dict:
    return json.loads(urllib.request.urlopen(f"{url}/_stats", timeout=10).read())


def sustained(events: list[dict], rpm: float) -> tuple[float, float]:
    """Requests the endpoint admitted (answered 200 or 500, not 429) per minute between the 10% and
    90% marks of the run, as a share of R: the steady state, without start-up and the last retries.

    The tokens the bucket held at the 10% mark and no longer holds at the 90% mark are taken out
    (and a bucket in debt at the 10% mark, from 429s before it, is paid back): a bucket full at
    the start holds a second's worth of requests, which a client still climbing at the 10% mark
    spends inside the window, on top of R. What is left is the bucket's refill over the window
    less what it lost to 429s and to overflowing while full (tokens still in the bucket at the 90%
    mark are not counted as lost, so a bucket fuller there than at the 10% mark adds them); it
    cannot pass 1. Returns (that share, the share before taking the bucket out)."""
    admitted = [(e["t"], e.get("bucket", 0.0)) for e in events if e.get("status") in (200, 500)]  # in arrival order
    if len(admitted) < 10:
        return float("nan"), float("nan")
    (lo, before), (hi, after) = admitted[len(admitted) // 10], admitted[len(admitted) * 9 // 10]
    count = len(admitted) * 9 // 10 - len(admitted) // 10  # admitted after the 10% mark, up to the 90% mark
    per_minute = 60 / max(hi - lo, 1e-9) / rpm
    return (count - (before - after)) * per_minute, count * per_minute


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


PACE = 0.97  # share of a known limit a hand-written script paces at (the project's own margin for a stated one)


def run_plain(url: str, bodies: list[dict], rpm: float, latency: float) -> dict[str, float]:
    """A hand-written script that knows R and L: every attempt starts on a fixed pace of 97% of R, with
    up to twice Little's law's count in flight (2 x pace x L + 4); 500s, 429s and dropped connections
    are tried again (10 attempts, backoff), each attempt on the pace, so retries never push it past R.
    Requests go through the SDK's ordinary `chat.completions.create` (its own retries off)."""
    rate = rpm / 60 * PACE
    in_flight = math.ceil(2 * rate * latency) + 4

    async def main() -> int:
        client = openai.AsyncOpenAI(api_key="sk-bench", base_url=f"{url}/v1", max_retries=0)
        sem = asyncio.Semaphore(in_flight)
        ok = 0
        next_start = 0.0

        async def paced() -> None:
            nonlocal next_start
            now = time.monotonic()
            start = max(now, next_start)
            next_start = start + 1 / rate
            if start > now:
                await asyncio.sleep(start - now)

        async def one(body: dict) -> None:
            nonlocal ok
            async with sem:
                for attempt in range(10):
                    await paced()
                    try:
                        r = await client.chat.completions.create(**body)
                        json.loads(r.choices[0].message.content or "")
                        ok += 1
                        return
                    except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError):
                        await asyncio.sleep(random.uniform(0.25, 0.5) * 2 ** min(attempt, 4))
                    except (openai.APIError, ValueError):
                        return

        await asyncio.gather(*(one(b) for b in bodies))
        await client.close()
        return ok

    cpu, t0 = time.process_time(), time.monotonic()
    drafted = asyncio.run(main())
    return {"drafted": drafted, "wall": time.monotonic() - t0, "cpu": time.process_time() - cpu, "peak": in_flight}


def _busy() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine so far (Linux /proc/stat), every process counted."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # idle and iowait are not busy


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
    print(f"{'R/min':>7} {'lat s':>5} {'N':>5} | {'project rate/R [raw] (all)':>22} {'CPU ms/art':>10} {'in flight':>9} "
          f"{'srv ms/req':>10} {'cores':>5} {'busy':>4} | {'plain rate/R [raw] (all)':>22} {'CPU ms/art':>10} {'in flight':>9} "
          f"{'srv ms/req':>10} {'cores':>5} {'busy':>4} | {'rate ratio':>10} {'CPU ratio':>9}  load")
    for pair in args.grid.split(","):
        rpm, latency = (float(x) for x in pair.split(":"))
        n = max(20, int(rpm / 60 * args.seconds))
        row = []
        for kind in ("project", "plain"):
            server, url = _server(rpm, latency, args.error_rate, not args.no_headers)
            try:
                articles = _articles(n, kind[0])  # other texts per run: nothing is answered from a cache
                bodies = None if kind == "project" else _bodies(url, articles)
                server_cpu, busy = _cpu_seconds(server.pid), _busy()
                r = run_project(url, articles) if bodies is None else run_plain(url, bodies, rpm, latency)
                r["server_cpu"] = _cpu_seconds(server.pid) - server_cpu
                after = _busy()
                r["machine"] = (after[0] - busy[0]) / max(1, after[1] - busy[1]) * (os.cpu_count() or 1)
                events = _stats(url)["events"]
                r["requests"] = len(events)
                r["sustained"], r["raw"] = sustained(events, rpm)
            finally:
                server.terminate()
                server.wait()
            row.append(r)
        cells = [f"{r['sustained']:>6.3f} [{r['raw']:.3f}] ({r['drafted'] / r['wall'] * 60 / rpm:.2f}) {1000 * r['cpu'] / max(1, r['drafted']):>10.2f} "
                 f"{r['peak']:>9} {1000 * r['server_cpu'] / max(1, r['requests']):>10.2f} "
                 f"{(r['cpu'] + r['server_cpu']) / r['wall']:>5.2f} {r['machine']:>4.2f}" for r in row]
        ratio = (row[0]["cpu"] / max(1, row[0]["drafted"])) / (row[1]["cpu"] / max(1, row[1]["drafted"]))
        print(f"{rpm:>7.0f} {latency:>5.1f} {n:>5} | {cells[0]} | {cells[1]} | "
              f"{row[0]['sustained'] / row[1]['sustained']:>10.2f} {ratio:>9.2f}  {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
