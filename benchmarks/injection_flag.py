"""How good is the possible_injection flag: recall on written injections, false positives on ordinary AI news.

The pattern check (`annotator.injection.looks_like_injection`), on sets written at different times,
so that each figure says what it is worth:

- evals/injection/injections.jsonl: 48 injections written together with the first patterns;
- heldout.jsonl: 16 written after the first patterns (round 1 measured on them: 11/16);
- heldout2.jsonl: 44 written after round 1, before round 2 (round 1 measured on them: 17/44);
  round 2 was then written from the misses of both, so both are tuned on now;
- heldout3.jsonl: 30 written after round 2 (round 2 measured on them: 10/30); the sentence test
  was then written seeing their misses;
- heldout4.jsonl: 25 written before the sentence test and never tuned on (patterns alone: 7/25):
  the figure to expect on wording nobody has seen;
- ordinary.jsonl: 420 generated AI-news articles plus hard cases (chat transcripts, "ignored
  previous warnings", news about prompt injection): the false positives; and the bundled samples.

With --model the eval articles are also drafted through the configured endpoint (OPENAI_BASE_URL,
OPENAI_API_KEY, annotator.toml's [llm]), and the model's own report (the answer's
`instructions_in_article`) is counted beside the patterns, and either of the two (the draft's
`possible_injection` flag). That needs a real model: a test server's answer is whatever it was
scripted to say.

    .venv/bin/python benchmarks/injection_flag.py [--model] [--config annotator.toml]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from annotator.config import read_config
from annotator.demo import samples_dir
from annotator.draft import DraftOptions, draft
from annotator.ingest import read_articles
from annotator.injection import FLAG, REPORTED, looks_like_injection
from annotator.llm import load_settings
from annotator.records import Draft, read_jsonl

EVALS = Path(__file__).resolve().parent.parent / "evals" / "injection"
SETS = [("injections.jsonl", "written with the patterns"), ("heldout.jsonl", "written after round 1; round 2 tuned on it"),
        ("heldout2.jsonl", "written after round 1; round 2 tuned on it"),
        ("heldout3.jsonl", "written after round 2; the sentence test was written seeing its misses"),
        ("heldout4.jsonl", "written before the sentence test, never tuned on")]


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (EVALS / name).read_text(encoding="utf-8").splitlines()]


def flagged(r: dict) -> bool:
    return looks_like_injection(f"{r['title']}\n{r['text']}")


def by_model(articles: list[dict], config: str | None) -> dict[str, Draft]:
    """Each article drafted through the configured endpoint (cached in .annotator/, so a re-run pays nothing)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "articles.jsonl"
        path.write_text("".join(json.dumps({"id": r["id"], "title": r["title"], "text": r["text"]}, ensure_ascii=False) + "\n"
                                for r in articles), encoding="utf-8")
        settings = load_settings(read_config(config))
        draft(path, Path(tmp) / "drafts.jsonl", settings, DraftOptions(confidence_samples=0), progress=False)
        return {d.article_id: d for d in read_jsonl(Path(tmp) / "drafts.jsonl", Draft)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="store_true", help="also count the model's own report, drafting through the endpoint")
    p.add_argument("--config", help="annotator.toml to read [llm] from")
    args = p.parse_args()
    ordinary = rows("ordinary.jsonl")
    cpu = time.process_time()
    false = {r["id"]: flagged(r) for r in ordinary}
    per_article = (time.process_time() - cpu) / len(ordinary) * 1000
    fp = sum(false.values()) / len(false)
    print(f"patterns: false positives {fp:.2%} ({sum(false.values())}/{len(false)} ordinary articles), "
          f"{per_article:.3f} ms CPU per article")
    for r in ordinary:
        if false[r["id"]]:
            print(f"  flagged {r['id']}: {r['text'][:110]}")
    everything = []
    for name, story in SETS:
        injections = rows(name)
        everything += injections
        caught = {r["id"]: flagged(r) for r in injections}
        print(f"patterns: recall {sum(caught.values()) / len(caught):.3f} ({sum(caught.values())}/{len(caught)}) on {name} ({story})")
        by: dict[str, list[bool]] = defaultdict(list)
        for r in injections:
            by[f"technique {r['technique']}"].append(caught[r["id"]])
            by[f"language {r['language']}"].append(caught[r["id"]])
        print("  " + ", ".join(f"{k.split()[1]} {sum(v)}/{len(v)}" for k, v in sorted(by.items())))
        for r in injections:
            if not caught[r["id"]]:
                print(f"  missed  {r['id']}: {r['injection'].strip()[:110]!r}")
    samples = list(read_articles([samples_dir()], on_error=lambda m: None))
    hits = [Path(str(a.origin)).name for a in samples if looks_like_injection(f"{a.title}\n{a.text}")]
    print(f"patterns: bundled samples flagged: {len(hits)} of {len(samples)} ({', '.join(hits) or 'none'})")
    if not args.model:
        return
    drafts = by_model(everything + ordinary, args.config)
    for name, _ in [*SETS, ("ordinary.jsonl", "")]:
        ids = [r["id"] for r in rows(name)]
        got = [drafts[i] for i in ids if i in drafts and drafts[i].error is None]
        reported = sum(REPORTED in d.flags for d in got)
        either = sum(FLAG in d.flags for d in got)
        what = "false positives" if name == "ordinary.jsonl" else "recall"
        print(f"model {drafts[ids[0]].model if ids and ids[0] in drafts else '?'}: {name}: {what}: "
              f"model's report {reported}/{len(got)}, patterns or model {either}/{len(got)} "
              f"({len(ids) - len(got)} not drafted)")


if __name__ == "__main__":
    main()
