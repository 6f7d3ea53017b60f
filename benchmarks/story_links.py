"""Story grouping and incident links on the hand-written test set (evals/stories).

Grouping: pairwise precision and recall of `annotator.stories.story_groups` against the gold
`story` of each article (a pair is positive when both articles tell one story). Links: for each
article, the known incidents `annotator.incidents.IncidentIndex` offers (3 candidates), and the
answer of a fake model that always answers the top candidate (none when there is none): accuracy
against the gold `follow_up_of`, with a 95% Wilson interval, per kind of article; and how often the
true incident is among the candidates (recall@3) for articles about a known incident. Then the
same through the whole pipeline: `draft --incidents` against the test server
(tests/fake_openai_server.py, answering every link request with the first incident offered) and
eval's link scores against the gold, which must give the same accuracy.

    .venv/bin/python benchmarks/story_links.py [evals/stories]
"""

from __future__ import annotations

import itertools
import sys
from collections import Counter, defaultdict
from pathlib import Path

from annotator.evaluate.links import wilson
from annotator.incidents import IncidentIndex, load_incidents
from annotator.records import Article, iter_jsonl
from annotator.stories import story_groups


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


def through_the_pipeline(folder: Path) -> None:
    """Draft the links with the test server answering the top candidate, and score them as eval does."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from fake_openai_server import FakeOpenAIServer, Faults

    from annotator.draft import DraftOptions, draft
    from annotator.evaluate.links import link_scores
    from annotator.llm import LLMSettings
    from annotator.records import Draft, GoldRecord
    from annotator.taxonomy import load_taxonomy

    bundled = Path(__file__).resolve().parents[1] / "annotator" / "taxonomies" / "oecd_aim.yaml"
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer(Faults(link="top")) as server:
        tax_path = Path(tmp) / "aim_link.yaml"
        tax_path.write_text(bundled.read_text(encoding="utf-8") + "\nlink:\n  name: follow_up_of\n", encoding="utf-8")
        settings = LLMSettings(base_url=server.url, model="fake-model", api_key="fake")
        options = DraftOptions(taxonomy=str(tax_path), incidents=str(folder / "incidents.jsonl"), cache=str(Path(tmp) / "c.sqlite"))
        draft(folder / "articles.jsonl", Path(tmp) / "drafts.jsonl", settings, options, progress=False)
        drafts = list(iter_jsonl(Path(tmp) / "drafts.jsonl", Draft))
        gold = [GoldRecord(article_id=a.id, labels={}, rationale=None, follow_up_of=a.model_extra["follow_up_of"])
                for a in iter_jsonl(folder / "articles.jsonl", Article)]
        s = link_scores(load_taxonomy(str(tax_path)), drafts, gold)
        print(f"through draft --incidents and eval ({server.stats['chat_requests']} requests to the test server): "
              f"accuracy {s.accuracy:.3f} (95% CI {s.ci95[0]:.3f}-{s.ci95[1]:.3f}, n={s.n}); the gold's incident among "
              f"those offered for {s.among_candidates:.3f} of {s.naming_an_incident}")


if __name__ == "__main__":
    stories = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "evals" / "stories"
    main(stories)
    through_the_pipeline(stories)
