"""How long story grouping takes, and how much memory, as the corpus grows to a million articles;
and whether it finds the retellings, translations and copies planted in it.

Synthetic news, `--per-day` articles a day (so a bigger corpus spans more days, as a monitor's
archive does): each article tells its own event in 300 words drawn from a Zipf-like distribution
over a 20,000-word vocabulary (its 100 most frequent ranks left out, as grouping drops
stopwords), with 12 names drawn from a Zipf distribution over 5,000 names and 6 names and 2
figures of its own event. Every tenth article is told again, each telling by one kind:
- retold: another outlet 0-3 days later, 60% of the words and all the event's names;
- translated: 0-3 days later in another vocabulary, sharing the event's names and figures and 10%
  of the words (loanwords, acronyms);
- copied: the same text syndicated 30-400 days later with a new headline.
Prints per size: articles, groups, wall and CPU seconds, peak memory of the grouping process, pairs
compared exactly, LSH candidates, stories capped, and recall per kind (the share of planted pairs
grouped) and pairwise precision (the share of grouped pairs that are planted ones). Then the growth
exponent fitted to wall time. Each size runs in its own process (peak memory is per process);
the corpus is written to a JSONL file first and read back, as export reads it.

    .venv/bin/python benchmarks/export_groups.py [N ...] [--per-day 500] [--keep DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

START = date(2019, 1, 1)


def write_corpus(path: Path, n: int, per_day: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    vocab = [f"word{i}" for i in range(20_000)]
    cum = list(itertools.accumulate(1 / (i + 101) for i in range(len(vocab))))
    foreign = [f"mot{i}" for i in range(20_000)]
    names = [f"Name{i}" for i in range(5_000)]
    name_cum = list(itertools.accumulate(1 / (i + 1) for i in range(len(names))))
    kinds = ("retold", "translated", "copied")
    written = 0
    tmp = path.with_name(path.name + ".tmp")  # a killed run leaves no half corpus to be reused
    with tmp.open("w", encoding="utf-8") as fh:
        for e in itertools.count():
            if written >= n:
                break
            day = START + timedelta(days=e // per_day)
            words = rng.choices(vocab, cum_weights=cum, k=300)
            own = [f"Ev{e}x{k}" for k in range(6)] + [str(100_000 + e * 7 + k) for k in range(2)]
            general = rng.choices(names, cum_weights=name_cum, k=12)
            for name in own + general:
                words.insert(rng.randrange(1, len(words)), name)
            fh.write(json.dumps({"id": f"e{e}", "title": f"Story {e}", "text": " ".join(words),
                                 "published_at": day.isoformat(), "event": e, "kind": "first"}) + "\n")
            written += 1
            if e % 10 or written >= n:
                continue
            kind = kinds[(e // 10) % 3]
            if kind == "retold":
                text = [w if w in own or rng.random() < 0.6 else rng.choice(vocab) for w in words]
                when = day + timedelta(days=rng.randint(0, 3))
            elif kind == "translated":
                text = [w if w in own or w[0].isdigit() or rng.random() < 0.1 else foreign[int(w[4:])] if w.startswith("word")
                        else rng.choice(names) for w in words]
                when = day + timedelta(days=rng.randint(0, 3))
            else:
                text = words
                when = day + timedelta(days=rng.randint(30, 400))
            fh.write(json.dumps({"id": f"{kind[0]}{e}", "title": f"Again {e}", "text": " ".join(text),
                                 "published_at": when.isoformat(), "event": e, "kind": kind}) + "\n")
            written += 1
    tmp.replace(path)


def measure(path: Path) -> dict[str, object]:
    from annotator.records import Article, iter_jsonl
    from annotator.stories import story_groups

    truth: dict[str, tuple[int, str]] = {}

    def articles():
        for a in iter_jsonl(path, Article):
            truth[a.id] = (a.model_extra["event"], a.model_extra["kind"])
            yield a

    t0, c0 = time.perf_counter(), time.process_time()
    grouping = story_groups(articles())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    found = Counter()
    grouped_pairs = planted_grouped = 0
    group_of = {a: k for k, g in enumerate(grouping.groups) for a in g}
    for g in grouping.groups:
        grouped_pairs += len(g) * (len(g) - 1) // 2
        events = Counter(truth[a][0] for a in g)
        planted_grouped += sum(c * (c - 1) // 2 for c in events.values())
    planted = Counter()
    for aid, (event, kind) in truth.items():
        if kind != "first":
            planted[kind] += 1
            found[kind] += group_of[aid] == group_of.get(f"e{event}")
    return {
        "articles": len(truth), "groups": len(grouping.groups), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
        "peak_mb": round(peak_mb), "pairs_compared": grouping.pairs_compared, "lsh_candidates": grouping.lsh_candidates,
        "capped": len(grouping.capped), "largest": max(len(g) for g in grouping.groups),
        "recall": {k: round(found[k] / planted[k], 4) for k in planted},
        "precision": round(planted_grouped / grouped_pairs, 4) if grouped_pairs else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000])
    parser.add_argument("--per-day", type=int, default=500)
    parser.add_argument("--keep", type=Path, help="keep the corpora in this folder (reused when there)")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    folder = args.keep or Path(tempfile.mkdtemp(prefix="story-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}; {args.per_day} articles a day")
    print(f"{'articles':>9} {'groups':>8} {'wall s':>7} {'cpu s':>7} {'peak MB':>8} {'compared':>13} {'lsh cand':>9} "
          f"{'capped':>6} {'largest':>7} {'retold':>7} {'transl':>7} {'copied':>7} {'precision':>9} {'load':>5}")
    rows = []
    for n in args.sizes:
        path = folder / f"corpus-{n}-{args.per_day}.jsonl"
        if not path.exists():
            write_corpus(path, n, args.per_day)
        out = subprocess.run([sys.executable, __file__, "--one", str(path)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        rec = r["recall"]
        print(f"{r['articles']:>9} {r['groups']:>8} {r['wall_s']:>7} {r['cpu_s']:>7} {r['peak_mb']:>8} {r['pairs_compared']:>13,} "
              f"{r['lsh_candidates']:>9,} {r['capped']:>6} {r['largest']:>7} {rec.get('retold', 0):>7.3f} "
              f"{rec.get('translated', 0):>7.3f} {rec.get('copied', 0):>7.3f} {r['precision']:>9} {os.getloadavg()[0]:>5.2f}",
              flush=True)
        if not args.keep:
            path.unlink()
    if len(rows) > 1:
        # CPU time too: on a shared machine wall time measures the load as much as the grouping.
        print("fitted growth exponent: " + ", ".join(f"{key.removesuffix('_s')} time {exponent(rows, key):.2f}" for key in ("wall_s", "cpu_s")))


def exponent(rows: list[dict[str, object]], key: str) -> float:
    """The slope of log(time) against log(articles), least squares."""
    xs = [math.log(float(r["articles"])) for r in rows]  # type: ignore[arg-type]
    ys = [math.log(max(float(r[key]), 0.01)) for r in rows]  # type: ignore[arg-type]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


if __name__ == "__main__":
    main()
