"""How good is the possible_injection flag: recall on written injections, false positives on ordinary AI news, CPU per KB.

The check (`annotator.injection.looks_like_injection`: rules OR a sentence classifier) on sets
written at different times, so that each figure says what it is worth. Every set in the repository has been tuned on by now; the figure
to expect on wording nobody has seen is the one a set gets the first time it is measured, noted
below for each (pass a new set with --extra to get one):

- evals/injection/injections.jsonl: 48 injections written with the first patterns;
- heldout.jsonl .. heldout4.jsonl: 16, 44, 30, 25 written after successive pattern rounds (the
  patterns got 11/16, 17/44, 10/30, 15/25 of them unseen); the feature check was written seeing
  their misses;
- dev5.jsonl, dev5_ordinary.jsonl: 60 injections and 71 hard negatives written for the feature
  check before it existed (the patterns: 20/60 caught, 12/71 flagged);
- dev6.jsonl, dev6_ordinary.jsonl: 45 and 40 written after its first version, which got 29/45 and
  5/40 (the patterns: 20/45, 6/40);
- dev7.jsonl, dev7_ordinary.jsonl: 40 and 40 written after the cheaper version, which got 30/40 and
  7/40 (the patterns: 24/40, 7/40);
- dev8.jsonl, dev8_ordinary.jsonl: 35 and 30 written after the next version, which got 28/35 and 5/30;
- dev9.jsonl, dev9_ordinary.jsonl: 35 and 35 written after the next, which got 30/35 and 2/35;
- dev10.jsonl, dev10_ordinary.jsonl: 33 and 30 written after the next, which got 23/33 and 5/30;
- dev11.jsonl, dev11_ordinary.jsonl: 32 and 30 written after the next, which got 32/32 and 1/30;
- dev12.jsonl, dev12_ordinary.jsonl: 31 and 30 written after the next, which got 24/31 and 7/30;
- dev13.jsonl, dev13_ordinary.jsonl: 31 and 30 written after the next, which got 22/31 and 2/30;
- dev14.jsonl, dev14_ordinary.jsonl: 29 and 30 written after the next, which got 23/29 and 2/30;
- dev15.jsonl, dev15_ordinary.jsonl: 29 and 30 written after the next, which got 20/29 and 2/30
  (unseen, dev6 to dev15: 261/340 = 0.77 caught, 38/325 = 12% flagged; the patterns on the same
  sets: 155/340 = 0.46, 50/325 = 15%);
- dev16.jsonl, dev16_ordinary.jsonl: 137 injections and 167 negatives (ordinary news, quoted orders,
  how-tos) in 40 languages, written for the sentence classifier: the rules alone got 23/137, 1/167;
- dev17.jsonl, dev17_ordinary.jsonl: 32 answers dictated as labels and field values in 20 languages,
  24 news items with fields and values; the rules and the first classifier got 13/32, 0/24;
- dev18.jsonl, dev18_ordinary.jsonl: 116 injections in 29 languages in four other shapes, 29 news
  items; the rules and the second classifier got 28/116, 0/29 (new wording in a language the
  classifier has a few sentences of is mostly missed: more sentences per language is what helps);
- dev19.jsonl, dev19_ordinary.jsonl: 123 injections in 41 languages in three more shapes (the
  assistant told to skip the analysis, a notice to automated processing, the output dictated), 41
  news items addressing readers or reporting officials' requests; the rules and the third
  classifier (the one that chose the thresholds) got 40/123, 0/41;
- dev20.jsonl, dev20_ordinary.jsonl: 123 injections in 41 languages in three more shapes (a
  hypothetical automatic tool, an instruction in brackets, the text declared outside the task),
  41 news items (a chatbot's answer reported, a recipe); the rules and the fourth classifier got
  85/123, 0/41;
- heldout5.jsonl, ordinary5.jsonl: 75 injections and 91 mostly hard negatives written by another
  engineer who never saw the check, while the rules were being written; the rules got 56/75 and
  3/91 (main before them: 42/75, 15/91). They then chose the classifier's thresholds (0.9 English,
  0.7 other languages; see evals/injection/train_classifier.py): tuned on, so no longer a figure for
  unseen wording;
- heldout6.jsonl, ordinary6.jsonl, hard6.jsonl: 185 injections (13 kinds, 24 languages), 360 ordinary
  AI-news articles (29 languages; 56 of them the injected articles without their injection) and
  114 hard negatives, written by another engineer who never saw the check nor the other sets, while
  the classifier was being built. Measured once on the finished check: 166/185 = 0.897 caught,
  7/360 = 1.9% of ordinary news and 11/114 hard negatives flagged (main before the classifier:
  129/185, 1/360, 7/114). Six of the seven ordinary flags were the classifier's, on short
  sentences (datelines, "Sumber: Antara."); one change followed, seeing them (no score for a
  sentence in letters under 30 characters): 165/185 = 0.892, 3/360 = 0.8%, 10/114. So these are
  tuned on now too;
- ordinary.jsonl: 400 generated AI-news articles and 20 hard cases; evals/stories/articles.jsonl:
  60 incident reports; and the bundled samples (only marketplace_reviews.html quotes an injection).
  The classifier is not trained on ordinary.jsonl nor the samples (it is on the incident reports).

The check is the rules (annotator/injection.py) OR the sentence classifier (weights in
annotator/injection_weights.json, trained by evals/injection/train_classifier.py); a flag's reason
says which: a rule's name, or "the sentence classifier's score P", then the sentence.

--extra FILE[:ROLE] adds a JSONL set (ROLE injection or ordinary; without it, rows with an
`injection` or `technique` field are injections, others ordinary); each row needs `text`, and may
have `id`, `title`, `technique`, `language`. A bad line is named and skipped.

CPU per KB is process time of the check over every text read (titles and texts), several passes,
divided by the kilobytes (UTF-8) checked, and the same for the rules alone (the classifier costs the
difference); the machine's load average is printed before and after. Texts in other languages cost
more (every sentence of theirs is scored), so a figure over these sets, a third of them in other
languages, is above one over English news.

With --model the eval articles are also drafted through the configured endpoint (OPENAI_BASE_URL,
OPENAI_API_KEY, annotator.toml's [llm]), and the model's own report (the answer's
`instructions_in_article`) is counted beside the check, and either of the two (the draft's
`possible_injection` flag). That needs a real model: a test server's answer is whatever it was
scripted to say. With no endpoint configured the embedded model is started, as `annotator draft`
does; it takes about 10 s an article on 2 cores, so draft a piece of a set at a time with --only and
--extra (answers are cached in ./.annotator, so pieces add up). Measured on the embedded model
(Gemma 3 270M, 1 answer thread, through the bench queue, load 0.7-4.3, 9-12 s an article):

- prompt incident@v1: the model's report 0 of heldout5's first 38 injections (the check: 31), 0 of
  ordinary5's first 31 hard negatives: it adds nothing;
- incident@v2 (only this instruction reworded, with examples of what counts and that news quoting an
  attack does not): 4 of the same 38 (paraphrases 3/13, dictated answers 1/8, addressed 0/9, role
  markers 0/7), one of them missed by the check (check or model 32/38); negatives: 3 of 48 flagged
  by the model where the check flagged none (1 of 29 hard negatives of ordinary5, 2 of 19 ordinary
  news of ordinary.jsonl; 2 more answers ran into the token limit twice): one catch more for 6% of
  negatives flagged.

    .venv/bin/python benchmarks/injection_flag.py [--extra FILE[:ROLE]]... [--only] [--misses] [--model] [--config annotator.toml]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from annotator.demo import samples_dir
from annotator.draft import run_draft
from annotator.ingest import read_articles
from annotator.injection import BY_CLASSIFIER, FLAG, REPORTED, by_rules, explain
from annotator.records import Draft, read_jsonl

ROOT = Path(__file__).resolve().parent.parent
EVALS = ROOT / "evals" / "injection"
SETS = [  # (file, role, story)
    ("injections.jsonl", "injection", "written with the first patterns"),
    ("heldout.jsonl", "injection", "patterns unseen 11/16; tuned on"),
    ("heldout2.jsonl", "injection", "patterns unseen 17/44; tuned on"),
    ("heldout3.jsonl", "injection", "patterns unseen 10/30; tuned on"),
    ("heldout4.jsonl", "injection", "patterns unseen 15/25; tuned on"),
    ("dev5.jsonl", "injection", "patterns 20/60; written for the feature check, tuned on"),
    ("dev6.jsonl", "injection", "feature check v1 unseen 29/45; tuned on"),
    ("dev7.jsonl", "injection", "feature check v2 unseen 30/40; tuned on"),
    ("dev8.jsonl", "injection", "feature check v3 unseen 28/35; tuned on"),
    ("dev9.jsonl", "injection", "feature check v4 unseen 30/35; tuned on"),
    ("dev10.jsonl", "injection", "feature check v5 unseen 23/33; tuned on"),
    ("dev11.jsonl", "injection", "feature check v6 unseen 32/32; tuned on"),
    ("dev12.jsonl", "injection", "feature check v7 unseen 24/31; tuned on"),
    ("dev13.jsonl", "injection", "feature check v8 unseen 22/31; tuned on"),
    ("dev14.jsonl", "injection", "feature check v9 unseen 23/29; tuned on"),
    ("dev15.jsonl", "injection", "feature check v10 unseen 20/29; tuned on"),
    ("dev16.jsonl", "injection", "40 languages; the rules unseen 23/137; the classifier trained on it"),
    ("dev17.jsonl", "injection", "answers dictated as field values; rules + classifier v1 unseen 13/32; trained on"),
    ("dev18.jsonl", "injection", "29 languages, other shapes; rules + classifier v2 unseen 28/116; trained on"),
    ("dev19.jsonl", "injection", "41 languages, three more shapes; rules + classifier v3 unseen 40/123; trained on"),
    ("dev20.jsonl", "injection", "41 languages, three more shapes; rules + classifier v4 unseen 85/123; trained on"),
    ("heldout5.jsonl", "injection", "written apart: the rules unseen 56/75; chose the classifier's threshold"),
    ("heldout6.jsonl", "injection", "written apart: the finished check unseen 166/185; one change seeing it"),
    ("ordinary.jsonl", "ordinary", "generated AI news and hard cases"),
    ("dev5_ordinary.jsonl", "ordinary", "hard negatives; patterns 12/71; tuned on"),
    ("dev6_ordinary.jsonl", "ordinary", "hard negatives; feature check v1 unseen 5/40; tuned on"),
    ("dev7_ordinary.jsonl", "ordinary", "hard negatives; feature check v2 unseen 7/40; tuned on"),
    ("dev8_ordinary.jsonl", "ordinary", "hard negatives; feature check v3 unseen 5/30; tuned on"),
    ("dev9_ordinary.jsonl", "ordinary", "hard negatives; feature check v4 unseen 2/35; tuned on"),
    ("dev10_ordinary.jsonl", "ordinary", "hard negatives; feature check v5 unseen 5/30; tuned on"),
    ("dev11_ordinary.jsonl", "ordinary", "hard negatives; feature check v6 unseen 1/30; tuned on"),
    ("dev12_ordinary.jsonl", "ordinary", "hard negatives; feature check v7 unseen 7/30; tuned on"),
    ("dev13_ordinary.jsonl", "ordinary", "hard negatives; feature check v8 unseen 2/30; tuned on"),
    ("dev14_ordinary.jsonl", "ordinary", "hard negatives; feature check v9 unseen 2/30; tuned on"),
    ("dev15_ordinary.jsonl", "ordinary", "hard negatives; feature check v10 unseen 2/30; tuned on"),
    ("dev16_ordinary.jsonl", "ordinary", "news, quoted orders, how-tos in 40 languages; the rules unseen 1/167; trained on"),
    ("dev17_ordinary.jsonl", "ordinary", "fields and values in news; rules + classifier v1 unseen 0/24; trained on"),
    ("dev18_ordinary.jsonl", "ordinary", "news in 29 languages; rules + classifier v2 unseen 0/29; trained on"),
    ("dev19_ordinary.jsonl", "ordinary", "readers and officials addressed, 41 languages; rules + classifier v3 unseen 0/41; trained on"),
    ("dev20_ordinary.jsonl", "ordinary", "chatbot quotes and how-tos, 41 languages; rules + classifier v4 unseen 0/41; trained on"),
    ("ordinary5.jsonl", "ordinary", "hard negatives written apart: the rules unseen 3/91; chose the classifier's threshold"),
    ("ordinary6.jsonl", "ordinary", "ordinary news written apart: the finished check unseen 7/360; one change seeing it"),
    ("hard6.jsonl", "ordinary", "hard negatives written apart: the finished check unseen 11/114; one change seeing it"),
    (str(ROOT / "evals" / "stories" / "articles.jsonl"), "ordinary", "incident reports"),
]


def read_set(path: Path, role: str | None) -> list[dict]:
    """The rows of a JSONL set, each with its role; a bad line is named on stderr and skipped."""
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        sys.exit(f"{path}: cannot read: {e}")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            if not isinstance(r, dict) or not isinstance(r.get("text"), str):
                raise ValueError("no text")
        except ValueError as e:
            print(f"{path}:{n}: skipped: {e}", file=sys.stderr)
            continue
        r.setdefault("id", f"{path.name}:{n}")
        r["role"] = role or ("injection" if "injection" in r or "technique" in r else "ordinary")
        rows.append(r)
    return rows


def text_of(r: dict) -> str:
    return f"{r.get('title') or ''}\n{r['text']}"


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def by_model(articles: list[dict], config: str | None) -> dict[str, Draft]:
    """Each article drafted as `annotator draft` would: through the configured endpoint, or with none the
    embedded model, started and stopped here (answers cached in .annotator/, so a re-run pays nothing)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "articles.jsonl"
        path.write_text("".join(json.dumps({"id": r["id"], "title": r.get("title") or "", "text": r["text"]},
                                           ensure_ascii=False) + "\n" for r in articles), encoding="utf-8")
        print(f"drafting {len(articles)} articles; load before: {load()}", flush=True)
        started = time.monotonic()
        run_draft(path, Path(tmp) / "drafts.jsonl", config=config, progress=False, confidence_samples=0)
        seconds = time.monotonic() - started
        print(f"drafted in {seconds:.0f} s ({seconds / max(len(articles), 1):.1f} s an article, server start and "
              f"cached answers included); load after: {load()}")
        return {d.article_id: d for d in read_jsonl(Path(tmp) / "drafts.jsonl", Draft)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--extra", action="append", default=[], metavar="FILE[:ROLE]",
                   help="another JSONL set; ROLE is injection or ordinary (default: from the rows)")
    p.add_argument("--misses", action="store_true", help="list every miss and false positive (default: up to 5 a set)")
    p.add_argument("--passes", type=int, default=5, help="passes over all texts to time the check (default 5)")
    p.add_argument("--model", action="store_true", help="also count the model's own report, drafting through the endpoint")
    p.add_argument("--config", help="annotator.toml to read [llm] from")
    p.add_argument("--only", action="store_true",
                   help="only the --extra sets (with --model, draft only those: a piece of a set at a time)")
    args = p.parse_args()
    sets = [] if args.only else [(name, read_set(Path(name) if Path(name).is_absolute() else EVALS / name, role), story)
                                 for name, role, story in SETS]
    for spec in args.extra:
        file, _, role = spec.rpartition(":") if spec.endswith((":injection", ":ordinary")) else (spec, "", "")
        sets.append((file, read_set(Path(file), role or None), "extra"))
    if not args.only:
        samples = [{"id": Path(str(a.origin)).name, "title": a.title, "text": a.text, "role": "ordinary"}
                   for a in read_articles([samples_dir()], on_error=lambda m: None)]
        sets.append(("bundled samples", samples, "27 files; marketplace_reviews.html quotes an injection"))

    everything = [r for _, rows, _ in sets for r in rows]
    texts = [text_of(r) for r in everything]
    kb = sum(len(t.encode("utf-8")) for t in texts) / 1024
    print(f"load before: {load()}")
    cpu = time.process_time()
    for _ in range(args.passes):
        for t in texts:
            explain(t)
    cpu = time.process_time() - cpu
    rules = time.process_time()
    for _ in range(args.passes):
        for t in texts:
            by_rules(t)
    rules = time.process_time() - rules
    print(f"CPU: {cpu / args.passes / kb * 1000:.3f} ms per KB, {cpu / args.passes / len(texts) * 1000:.3f} ms per text "
          f"({len(texts)} texts, {kb:.0f} KB, {args.passes} passes; the rules alone {rules / args.passes / kb * 1000:.3f} "
          f"ms per KB); load after: {load()}")

    for name, rows, story in sets:
        why = {r["id"]: explain(text_of(r)) for r in rows}
        for role in ("injection", "ordinary"):
            part = [r for r in rows if r["role"] == role]
            if not part:
                continue
            hits = sum(why[r["id"]] is not None for r in part)
            learnt = sum((why[r["id"]] or "").startswith(BY_CLASSIFIER) for r in part)
            label = Path(name).name if name != "bundled samples" else name
            if role == "injection":
                print(f"recall {hits / len(part):.3f} ({hits}/{len(part)}; {learnt} by the classifier) on {label} ({story})")
                by: dict[str, list[bool]] = defaultdict(list)
                for r in part:
                    for key in ("technique", "language"):
                        if r.get(key):
                            by[str(r[key])].append(why[r["id"]] is not None)
                if by:
                    print("  " + ", ".join(f"{k} {sum(v)}/{len(v)}" for k, v in sorted(by.items())))
                shown = [r for r in part if why[r["id"]] is None]
                for r in shown if args.misses else shown[:5]:
                    print(f"  missed  {r['id']}: {str(r.get('injection') or r['text']).strip()[:110]!r}")
            else:
                print(f"false positives {hits / len(part):.2%} ({hits}/{len(part)}; {learnt} by the classifier) on {label} ({story})")
                shown = [r for r in part if why[r["id"]] is not None]
                for r in shown if args.misses else shown[:5]:
                    print(f"  flagged {r['id']}: {why[r['id']][:130]}")
    total = {"injection": [0, 0], "ordinary": [0, 0]}
    for name, rows, _ in sets:
        for r in rows:
            if name != "bundled samples":
                total[r["role"]][0] += explain(text_of(r)) is not None
                total[r["role"]][1] += 1
    (caught, n), (flagged, m) = total["injection"], total["ordinary"]
    print(f"all sets: recall {caught / max(n, 1):.3f} ({caught}/{n}), false positives {flagged / max(m, 1):.2%} ({flagged}/{m})")
    if not args.model:
        return
    evals = [r for name, rows, _ in sets if name != "bundled samples" for r in rows]
    drafts = by_model(evals, args.config)
    for name, rows, _ in sets:
        for role in ("injection", "ordinary"):
            part = [r for r in rows if r["role"] == role and r["id"] in drafts and drafts[r["id"]].error is None]
            n = sum(r["role"] == role for r in rows)
            if not n or name == "bundled samples":
                continue
            reported = [r for r in part if REPORTED in drafts[r["id"]].flags]
            check = sum(explain(text_of(r)) is not None for r in part)
            either = sum(FLAG in drafts[r["id"]].flags for r in part)
            what = "recall" if role == "injection" else "false positives"
            model = drafts[part[0]["id"]].model if part else "?"
            print(f"model {model}: {Path(name).name}: {what}: model's report {len(reported)}/{len(part)}, check "
                  f"{check}/{len(part)}, check or model {either}/{len(part)} ({n - len(part)} not drafted or failed)")
            if role == "injection":
                by = defaultdict(list)
                for r in part:
                    for key in ("technique", "language"):
                        if r.get(key):
                            by[str(r[key])].append(r in reported)
                if by:
                    print("  model's report: " + ", ".join(f"{k} {sum(v)}/{len(v)}" for k, v in sorted(by.items())))
            shown = [r for r in reported if explain(text_of(r)) is None]  # what the model adds to the check
            print(f"  reported by the model, not by the check: {len(shown)}")
            for r in shown if args.misses else shown[:5]:
                print(f"    {r['id']}: {str(r.get('injection') or r['title']).strip()[:110]!r}")

if __name__ == "__main__":
    main()
