"""DISARM techniques beside OECD AIM: one-step against two-step drafting on the eval set.

Drafts `evals/disarm/articles.jsonl` (45 short articles written for this set, gold in
`evals/disarm/gold.jsonl`) with the composed taxonomy `aim_disarm`, once in one request per article
(`--two-step off`: the whole 407-value DISARM guide in every prompt) and once in two steps
(tactics first, then techniques under the chosen tactics), and prints per mode: technique
micro/macro F1 (the eval harness's `disarm.techniques` figures), tactic accuracy (share of
articles whose set of tactics, the roots of the techniques, equals the gold's), the two
classification accuracies, prompt tokens and requests per article, and seconds per article.

    python benchmarks/disarm_twostep.py --model fake        # the test server answering from gold: a sanity floor
    python benchmarks/disarm_twostep.py --model embedded --limit 10 --modes auto   # Gemma 3 270M, if installed
    python benchmarks/disarm_twostep.py --base-url URL --model NAME                 # any OpenAI-compatible endpoint

The fake model answers every request with the gold labels fitted to the request's schema, so both
modes must score 1.0: it checks the pipeline, not a model, and its token counts (characters / 4)
show what each mode puts in the prompt. Each run drafts into a fresh temporary folder and cache.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from annotator.draft import DraftOptions, draft  # noqa: E402
from annotator.evaluate import evaluate  # noqa: E402
from annotator.llm.config import load_settings  # noqa: E402
from annotator.records import Draft, GoldRecord, read_jsonl  # noqa: E402
from annotator.taxonomy import load_taxonomy  # noqa: E402

TAX = load_taxonomy("aim_disarm")
FIELD = TAX.field("disarm.techniques")


def tactics(values: list[str]) -> frozenset[str]:
    return frozenset(FIELD.path(v)[0] for v in values if v in FIELD.value_ids)


def scores(drafts: list[Draft], gold: list[GoldRecord]) -> dict[str, float | None]:
    report = evaluate(drafts, gold, TAX, n_boot=50, seed=0)
    fields = report.metrics.model_dump(mode="json")["fields"]  # the typed report, as metrics.json holds it
    by_id = {d.article_id: d for d in drafts}
    same_tactics = [tactics(by_id[g.article_id].labels.get(FIELD.name) or []) == tactics(g.labels[FIELD.name])
                    for g in gold if g.article_id in by_id and not by_id[g.article_id].error]
    return {
        "technique_micro_f1": fields[FIELD.name]["micro_f1"],
        "technique_macro_f1": fields[FIELD.name]["macro_f1"],
        "tactic_accuracy": sum(same_tactics) / len(same_tactics) if same_tactics else None,
        "disarm_classification_accuracy": fields["disarm.classification"]["accuracy"],
        "aim_classification_accuracy": fields["oecd_aim.classification"]["accuracy"],
    }


def gold_scripts(gold: list[GoldRecord]) -> dict[str, list[dict]]:
    """Gold answers with each technique's ancestors, which the test server fits to each request."""
    out = {}
    for g in gold:
        closed = list(dict.fromkeys(a for v in g.labels[FIELD.name] for a in FIELD.path(v)))
        answer = {f.name: g.labels.get(f.name, [] if f.kind == "multi" else None) for f in TAX.label_fields}
        out[g.article_id] = [{**answer, FIELD.name: closed, "rationale": g.rationale}]
    return out


def run(mode: str, articles: Path, gold: list[GoldRecord], args: argparse.Namespace, work: Path) -> dict:
    out = work / f"drafts-{mode}.jsonl"
    options = DraftOptions(taxonomy="aim_disarm", two_step=mode, cache=str(work / f"cache-{mode}.sqlite"), concurrency=args.concurrency)
    start = time.monotonic()
    if args.model == "embedded":
        from annotator.draft import run_draft

        env_key = os.environ.pop("OPENAI_API_KEY", None), os.environ.pop("OPENAI_BASE_URL", None)
        try:
            summary = run_draft(articles, out, config=work / "none.toml", progress=True, taxonomy="aim_disarm",
                                two_step=mode, cache=str(work / f"cache-{mode}.sqlite"))
        finally:
            for k, v in zip(("OPENAI_API_KEY", "OPENAI_BASE_URL"), env_key, strict=True):
                if v is not None:
                    os.environ[k] = v
    else:
        settings = load_settings({}, model=args.model, base_url=args.base_url)
        summary = draft(articles, out, settings, options, progress=False)
    seconds = time.monotonic() - start
    drafts = read_jsonl(out, Draft)
    ok = [d for d in drafts if not d.error]
    usage = [d.usage for d in drafts]
    return {
        "mode": "two-step" if mode == "auto" else "one-step",
        "articles": len(drafts), "failed": len(drafts) - len(ok),
        "errors": sorted({(d.error or "").split(":", 1)[0] for d in drafts if d.error}),
        "prompt_tokens_per_article": statistics.mean(u.get("input_tokens", 0) for u in usage) if usage else None,
        "requests_per_article": statistics.mean(u.get("requests", 0) for u in usage) if usage else None,
        "seconds_per_article": seconds / max(1, len(drafts)),
        "mode_used": summary.mode,
        **scores(drafts, [g for g in gold if g.article_id in {d.article_id for d in drafts}]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="fake", help="fake (test server from gold), embedded (Gemma 3 270M), or a model name")
    p.add_argument("--base-url", help="OpenAI-compatible endpoint for a named model (default: OPENAI_BASE_URL)")
    p.add_argument("--limit", type=int, help="only the first N articles (the embedded model takes about a minute each)")
    p.add_argument("--modes", default="off,auto", help="off (one step), auto (two steps), or both (default off,auto)")
    p.add_argument("--concurrency", type=int, default=4)
    args = p.parse_args()
    gold = read_jsonl(ROOT / "evals" / "disarm" / "gold.jsonl", GoldRecord)
    lines = (ROOT / "evals" / "disarm" / "articles.jsonl").read_text(encoding="utf-8").splitlines()[: args.limit]
    gold = gold[: len(lines)]
    server = None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        articles = work / "articles.jsonl"
        articles.write_text("\n".join(lines) + "\n", encoding="utf-8")
        if args.model == "fake":
            from fake_openai_server import FakeOpenAIServer, Faults

            server = FakeOpenAIServer(Faults(scripts=gold_scripts(gold), fit_scripts=True)).start()
            os.environ["OPENAI_BASE_URL"], os.environ["OPENAI_API_KEY"] = server.url, "sk-benchmark"
            args.model = "gpt-4o-mini"  # the test server answers any name; this one has a price
        try:
            results = [run(mode, articles, gold, args, work) for mode in args.modes.split(",")]
        finally:
            if server is not None:
                server.stop()
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(results, indent=1))
    print(f"machine: {os.cpu_count()} cores; {load}")
    cols = ["mode", "articles", "failed", "technique_micro_f1", "technique_macro_f1", "tactic_accuracy",
            "disarm_classification_accuracy", "aim_classification_accuracy", "prompt_tokens_per_article",
            "requests_per_article", "seconds_per_article"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in results:
        cells = [r[c] if not isinstance(r[c], float) else f"{r[c]:.3f}" if r[c] < 100 else f"{r[c]:,.0f}" for c in cols]
        print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
