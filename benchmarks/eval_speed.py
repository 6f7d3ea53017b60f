"""Eval speed and memory: 100,000 articles with every field of a taxonomy, 1,000 bootstrap resamples.

    .venv/bin/python benchmarks/eval_speed.py [--articles 100000] [--bootstrap 100 1000]

Writes synthetic drafts and reviews (model agreeing with the reviewer most of the time, 5% of
the articles with a second reviewer, confidences on every label field, rationales edited on 40%
of the reviews) to a temporary folder, then runs `annotator eval` once per resample count, each in
its own process, and prints wall time per stage, CPU time and the process's peak RSS. The goal: the whole
report in under 30 s, and peak memory that does not grow with the number of resamples.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from annotator.taxonomy import load_taxonomy

WORDS = ["the", "model", "flagged", "an", "account", "posting", "synthetic", "images", "of", "a", "public", "figure", "while", "the", "platform", "removed", "posts", "after", "complaints"]


def _pick(rng: random.Random, f, truth):
    if f.kind == "single":
        return truth if rng.random() < 0.8 else rng.choice([*f.value_ids, None])
    out = [v for v in truth if rng.random() < 0.85]
    if rng.random() < 0.3:
        out.append(rng.choice(f.value_ids))
    return sorted(set(out))


def _truth(rng: random.Random, f):
    ids = f.value_ids
    weights = [1 / (i + 1) for i in range(len(ids))]  # a few common values, a long tail
    if f.kind == "single":
        return rng.choices(ids, weights)[0] if (f.required or rng.random() < 0.7) else None
    return sorted(set(rng.choices(ids, weights, k=rng.choice([0, 1, 1, 2, 2, 3]))))


def generate(folder: Path, n: int, taxonomy: str, seed: int = 0) -> None:
    tax = load_taxonomy(taxonomy)
    rng = random.Random(seed)
    with (folder / "drafts.jsonl").open("w") as fd, (folder / "reviews.jsonl").open("w") as fr:
        for i in range(n):
            aid = f"a{i:07d}"
            truth = {f.name: _truth(rng, f) for f in tax.label_fields}
            rationale = " ".join(rng.choices(WORDS, k=40))
            draft = {f.name: _pick(rng, f, truth[f.name]) for f in tax.label_fields}
            error = "timeout" if rng.random() < 0.002 else None
            fd.write(json.dumps({
                "article_id": aid, "labels": {} if error else draft, "rationale": None if error else rationale, "error": error,
                "confidence": {f.name: round(rng.random(), 3) for f in tax.label_fields}, "model_version": "incident@v1@bench",
            }) + "\n")
            for r in range(2 if rng.random() < 0.05 else 1):
                edited = rationale if rng.random() < 0.6 else " ".join(w if rng.random() < 0.85 else rng.choice(WORDS) for w in rationale.split())
                fr.write(json.dumps({
                    "article_id": aid, "task_id": i, "annotator": f"reviewer{r}", "labels": {f.name: _pick(rng, f, truth[f.name]) for f in tax.label_fields},
                    "rationale": edited, "skipped": rng.random() < 0.01, "blind": False, "lead_time_s": 60.0,
                }) + "\n")


def child(folder: Path, n_boot: int, taxonomy: str) -> None:
    from annotator.evaluate import evaluate, write_report
    from annotator.evaluate.inputs import read_labelled
    from annotator.records import Draft, Review

    tax = load_taxonomy(taxonomy)
    start = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = start.ru_utime + start.ru_stime
    t0 = time.perf_counter()
    drafts = read_labelled(folder / "drafts.jsonl", Draft, tax, print)
    reviews = read_labelled(folder / "reviews.jsonl", Review, tax, print)
    t1 = time.perf_counter()
    mid = resource.getrusage(resource.RUSAGE_SELF)
    read_cpu = mid.ru_utime + mid.ru_stime - cpu0
    report = evaluate(drafts, reviews, tax, n_boot=n_boot, seed=0)
    t2 = time.perf_counter()
    write_report(report, folder / f"report{n_boot}")
    t3 = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"bootstrap": n_boot, "read_s": t1 - t0, "evaluate_s": t2 - t1, "write_s": t3 - t2, "total_s": t3 - t0,
                      "cpu_s": usage.ru_utime + usage.ru_stime - cpu0, "read_cpu_s": read_cpu, "peak_rss_mb": usage.ru_maxrss / 1024,
                      "pairs": report.metrics.counts.pairs}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=100_000)
    ap.add_argument("--bootstrap", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--taxonomy", default="oecd_aim")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(Path(args.folder), args.child, args.taxonomy)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        generate(folder, args.articles, args.taxonomy)
        print(f"generated {args.articles} articles in {time.perf_counter() - t:.1f} s (not part of the timing)")
        for n_boot in args.bootstrap:
            out = subprocess.run([sys.executable, __file__, "--child", str(n_boot), "--folder", tmp, "--taxonomy", args.taxonomy],
                                 check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            r = json.loads(out)
            print(f"bootstrap {r['bootstrap']:>5}: read {r['read_s']:5.1f} s, evaluate {r['evaluate_s']:5.1f} s, write {r['write_s']:4.1f} s, "
                  f"total {r['total_s']:5.1f} s wall, {r['cpu_s']:5.1f} s CPU ({r['read_cpu_s']:.1f} s reading), peak RSS {r['peak_rss_mb']:6.0f} MB ({r['pairs']} pairs)")
        print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work on the machine stretches wall time)")


if __name__ == "__main__":
    main()
