"""Story grouping and incident links on the hand-written test set (evals/stories).

Grouping: pairwise precision and recall of `annotator.stories.story_groups` against the gold
`story` of each article (a pair is positive when both articles tell one story). Links: for each
article, the known incidents `annotator.incidents.IncidentIndex` offers (3 candidates), and the
answer of a fake model that always answers the top candidate (none when there is none): accuracy
against the gold `follow_up_of`, with a 95% Wilson interval, per kind of article; and how often the
true incident is among the candidates (recall@3) for articles about a known incident.

    .venv/bin/python benchmarks/story_links.py [evals/stories]
"""

from __future__ import annotations

import itertools
import math
import sys
from collections import Counter, defaultdict
from pathlib import Path

from annotator.incidents import IncidentIndex, load_incidents
from annotator.records import Article, iter_jsonl
from annotator.stories import story_groups


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if not n:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def main(folder: Path) -> None:
    articles = list(iter_jsonl(folder / "articles.jsonl", Article))
    gold_story = {a.id: a.model_extra["story"] for a in articles}
    gold_link = {a.id: a.model_extra["follow_up_of"] for a in articles}
    kind = {a.id: a.model_extra["kind"] for a in articles}

    grouping = story_groups(articles)
    group_of = {a: k for k, g in enumerate(grouping.groups) for a in g}
    tp = fp = fn = 0
    missed: list[tuple[str, str]] = []
    wrong: list[tuple[str, str]] = []
    for x, y in itertools.combinations(sorted(gold_story), 2):
        same_gold, same_found = gold_story[x] == gold_story[y], group_of[x] == group_of[y]
        tp += same_gold and same_found
        fp += same_found and not same_gold
        fn += same_gold and not same_found
        if same_gold and not same_found:
            missed.append((x, y))
        if same_found and not same_gold:
            wrong.append((x, y))
    print(f"articles {len(articles)}, gold stories {len(set(gold_story.values()))}, groups found {len(grouping.groups)}")
    print(f"grouping: pairwise precision {tp / max(tp + fp, 1):.3f} ({tp}/{tp + fp}), recall {tp / max(tp + fn, 1):.3f} ({tp}/{tp + fn})")
    by_kind = Counter(kind[y] if kind[y] != "report" else kind[x] for x, y in missed)
    print(f"  missed pairs {len(missed)} by kind of article: {dict(by_kind)}; wrongly joined pairs {len(wrong)}: {wrong[:5]}")

    index = IncidentIndex(load_incidents(folder / "incidents.jsonl"))
    right: dict[str, list[bool]] = defaultdict(list)
    in_top: list[bool] = []
    for a in articles:
        found = index.candidates(a)
        answer = found[0].id if found else None
        right[kind[a.id]].append(answer == gold_link[a.id])
        if gold_link[a.id]:
            in_top.append(gold_link[a.id] in {c.id for c in found})
    every = [r for rs in right.values() for r in rs]
    lo, hi = wilson(sum(every), len(every))
    print(f"links, fake model answering the top candidate: accuracy {sum(every) / len(every):.3f} "
          f"(95% CI {lo:.3f}-{hi:.3f}, n={len(every)})")
    for k, rs in sorted(right.items()):
        lo, hi = wilson(sum(rs), len(rs))
        print(f"  {k:<11} {sum(rs):>3}/{len(rs):<3} = {sum(rs) / len(rs):.3f} (95% CI {lo:.3f}-{hi:.3f})")
    print(f"true incident among the 3 candidates (articles about a known incident): {sum(in_top)}/{len(in_top)} "
          f"= {sum(in_top) / len(in_top):.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "evals" / "stories")
