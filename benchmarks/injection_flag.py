"""How good is the possible_injection flag: recall on written injections, false positives on ordinary AI news.

Reads evals/injection/injections.jsonl (injections of several techniques and languages, each set
inside an ordinary news paragraph, written together with the patterns), evals/injection/heldout.jsonl
(16 more, written after the patterns and not tuned on) and evals/injection/ordinary.jsonl (generated AI-news articles
plus hard cases: chat transcripts, "ignored previous warnings", news about prompt injection), and
the bundled sample articles (one of which quotes an injection on purpose). Prints recall per
technique and language, the false-positive rate, what was missed or wrongly flagged, and the time
per article.

    .venv/bin/python benchmarks/injection_flag.py
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

from annotator.demo import samples_dir
from annotator.ingest import read_articles
from annotator.injection import looks_like_injection

EVALS = Path(__file__).resolve().parent.parent / "evals" / "injection"


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (EVALS / name).read_text(encoding="utf-8").splitlines()]


def main() -> None:
    injections, ordinary = rows("injections.jsonl"), rows("ordinary.jsonl")
    cpu = time.process_time()
    caught = {r["id"]: looks_like_injection(f"{r['title']}\n{r['text']}") for r in injections}
    flagged = {r["id"]: looks_like_injection(f"{r['title']}\n{r['text']}") for r in ordinary}
    per_article = (time.process_time() - cpu) / (len(injections) + len(ordinary)) * 1000
    by: dict[str, list[bool]] = defaultdict(list)
    for r in injections:
        by[f"technique {r['technique']}"].append(caught[r["id"]])
        by[f"language {r['language']}"].append(caught[r["id"]])
    recall = sum(caught.values()) / len(caught)
    fp = sum(flagged.values()) / len(flagged)
    print(f"recall {recall:.3f} ({sum(caught.values())}/{len(caught)} injections)   "
          f"false positives {fp:.2%} ({sum(flagged.values())}/{len(flagged)} ordinary articles)   "
          f"{per_article:.3f} ms CPU per article")
    for key in sorted(by):
        print(f"  {key:<22} {sum(by[key])}/{len(by[key])}")
    for r in injections:
        if not caught[r["id"]]:
            print(f"  missed  {r['id']}: {r['injection']}")
    for r in ordinary:
        if flagged[r["id"]]:
            print(f"  flagged {r['id']}: {r['text'][:110]}")
    held = rows("heldout.jsonl")
    held_hits = [looks_like_injection(f"{r['title']}\n{r['text']}") for r in held]
    print(f"held-out recall {sum(held_hits) / len(held):.3f} ({sum(held_hits)}/{len(held)}; written after the patterns "
          "and never tuned on: the figure to expect on injections nobody has seen)")
    for r, hit in zip(held, held_hits, strict=True):
        if not hit:
            print(f"  missed  {r['id']}: {r['injection']}")
    samples = list(read_articles([samples_dir()], on_error=lambda m: None))
    hits = [Path(str(a.origin)).name for a in samples if looks_like_injection(f"{a.title}\n{a.text}")]
    print(f"bundled samples flagged: {len(hits)} of {len(samples)} ({', '.join(hits) or 'none'})")


if __name__ == "__main__":
    main()
