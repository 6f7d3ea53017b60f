"""Speed of the honest-agreement figures (anchoring, lead time, alt-test, blind coverage) at scale.

    .venv/bin/python benchmarks/honest_speed.py [--articles 100000] [--blind-share 0.1] [--bootstrap 1000]

Simulates drafts and reviews for every field of the OECD taxonomy (20 reviewers; blind articles
get 3 reviewers, the others 1), then times `honest_figures` once with the blind slice and once with
every review marked assisted (what `annotator eval` adds when nobody pushed a blind slice), and
prints wall and CPU time (the CPU figure is the one to compare on a shared machine) and the
process's peak RSS (mostly the simulated records themselves).
"""

from __future__ import annotations

import argparse
import random
import resource
import time

from annotator.evaluate.honest import honest_figures
from annotator.records import Draft, GoldRecord
from annotator.simulate import SimulatedReviewer, noisy_labels, simulate_reviews
from annotator.taxonomy import load_taxonomy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=100_000)
    ap.add_argument("--blind-share", type=float, default=0.1)
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    tax = load_taxonomy("oecd_aim")
    rng = random.Random(0)
    t0 = time.perf_counter()
    truth = [
        GoldRecord(
            article_id=f"a{i}",
            labels={f.name: rng.choice(f.value_ids) if f.kind == "single" else rng.sample(f.value_ids, rng.randint(0, 2)) for f in tax.label_fields},
        )
        for i in range(args.articles)
    ]
    drafts = [Draft(article_id=g.article_id, labels=noisy_labels(tax, g.labels, 0.15, rng), model_version="v1@m") for g in truth]
    blind = {g.article_id for g in truth if rng.random() < args.blind_share}
    panel = [SimulatedReviewer(name=f"r{i}", noise=0.1, anchoring=0.4) for i in range(20)]
    reviews = simulate_reviews(tax, truth, drafts, panel, blind=blind, seed=0)
    t1 = time.perf_counter()
    n_blind = sum(r.blind for r in reviews)
    print(f"simulated {args.articles} articles, {len(reviews)} reviews ({n_blind} blind) in {t1 - t0:.1f} s")

    t, c = time.perf_counter(), time.process_time()
    honest_figures(tax, drafts, reviews, n_boot=args.bootstrap)
    print(f"honest_figures with the blind slice, {args.bootstrap} resamples: {time.perf_counter() - t:.1f} s wall, {time.process_time() - c:.1f} s CPU")

    assisted = [r.model_copy(update={"blind": False}) for r in reviews]
    t, c = time.perf_counter(), time.process_time()
    honest_figures(tax, drafts, assisted, n_boot=args.bootstrap)
    print(f"honest_figures without a blind slice: {time.perf_counter() - t:.1f} s wall, {time.process_time() - c:.1f} s CPU")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
