"""The closest article pairs by each story signal, to check the thresholds in annotator/stories.py
against real articles: one story must group, different events on one topic must not.

Prints the top pairs by word Jaccard (title + lead) and by shared names (whole text), each with
both scores and whether `near_duplicate_groups` put them in one group.

    .venv/bin/python benchmarks/story_pairs.py annotator/samples/articles tests/data/stories [--top N]
"""

from __future__ import annotations

import argparse
import itertools

from annotator.ingest import read_articles
from annotator.stories import jaccard, near_duplicate_groups, story_names, story_tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    articles = list({a.id: a for a in read_articles(args.inputs, on_error=print)}.values())
    group_of = {m: g[0] for g in near_duplicate_groups(articles) for m in g}
    words = [story_tokens(a.title, a.text) for a in articles]
    names = [story_names(a.title, a.text) for a in articles]
    rows = []
    for i, j in itertools.combinations(range(len(articles)), 2):
        shared = len(names[i] & names[j])
        cosine = shared / (len(names[i]) * len(names[j])) ** 0.5 if shared else 0.0
        rows.append((jaccard(words[i], words[j]), shared, cosine, i, j))
    print(f"{len(articles)} articles, {len(set(group_of.values()))} groups")
    for title, key in (("by word Jaccard", lambda r: r[0]), ("by shared names", lambda r: (r[1], r[2]))):
        print(f"\ntop {args.top} pairs {title}:")
        print(f"{'words':>6} {'names':>5} {'cosine':>6} {'grouped':>7}  pair")
        for w, shared, cosine, i, j in sorted(rows, key=key, reverse=True)[: args.top]:
            a, b = articles[i], articles[j]
            same = "yes" if group_of[a.id] == group_of[b.id] else "no"
            print(f"{w:>6.3f} {shared:>5} {cosine:>6.3f} {same:>7}  {a.id} {a.title[:38]!r} / {b.id} {b.title[:38]!r}")


if __name__ == "__main__":
    main()
