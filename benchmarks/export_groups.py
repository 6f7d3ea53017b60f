"""How long near-duplicate grouping and split assignment take as the gold set grows.

Articles are synthetic: 300 words drawn from a Zipf-like distribution over a 20,000-word
vocabulary whose 100 most frequent ranks are left out (grouping drops stopwords, so what remains
of real text starts below them), with 20 capitalised names mixed in, drawn from a Zipf
distribution over 5,000 names (the names signal compares them; its most frequent ones are common
enough to be ignored), and every tenth article has a retelling that keeps 60% of its words and
names. Prints articles, groups found, seconds (machine load included: run it on a quiet machine).

    .venv/bin/python benchmarks/export_groups.py [N ...]
"""

from __future__ import annotations

import random
import sys
import time

from annotator.export.splits import assign_splits, near_duplicate_groups
from annotator.records import Article


def corpus(n: int, seed: int = 0) -> list[Article]:
    rng = random.Random(seed)
    vocab = [f"word{i}" for i in range(20_000)]
    weights = [1 / (i + 101) for i in range(len(vocab))]
    names = [f"Name{i}" for i in range(5_000)]
    name_weights = [1 / (i + 1) for i in range(len(names))]
    out: list[Article] = []
    for i in range(n):
        words = rng.choices(vocab, weights, k=300)
        for name in rng.choices(names, name_weights, k=20):
            words.insert(rng.randrange(1, len(words)), name)
        out.append(Article(id=f"a{i:06d}", title=f"Story {i}", text=" ".join(words)))
        if i % 10 == 0:
            kept = [w if rng.random() < 0.6 else rng.choice(names if w[0].isupper() else vocab) for w in words]
            out.append(Article(id=f"r{i:06d}", title=f"Retold {i}", text=" ".join(kept)))
    return out


def main(sizes: list[int]) -> None:
    print(f"{'articles':>9} {'groups':>7} {'group s':>8} {'group cpu s':>12} {'assign s':>9}")
    for n in sizes:
        articles = corpus(n)
        t0, c0 = time.perf_counter(), time.process_time()
        groups = near_duplicate_groups(articles)
        t1, c1 = time.perf_counter(), time.process_time()
        strata = {a.id: str(i % 4) for i, a in enumerate(articles)}
        assign_splits(groups, strata, {"train": 0.8, "validation": 0.1, "test": 0.1}, seed=0)
        t2 = time.perf_counter()
        print(f"{len(articles):>9} {len(groups):>7} {t1 - t0:>8.2f} {c1 - c0:>12.2f} {t2 - t1:>9.2f}")


if __name__ == "__main__":
    main([int(x) for x in sys.argv[1:]] or [1_000, 5_000, 20_000])
