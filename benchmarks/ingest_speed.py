"""How fast ingest turns inputs into articles.jsonl, per format, and what a re-run costs.

Inputs are synthetic: N articles of about 400 words as one JSONL file, one CSV file, and N/10
separate .html pages (the slow path: trafilatura parses each page). Prints format, articles,
seconds, articles per second, and the same for a re-run that appends nothing.

    .venv/bin/python benchmarks/ingest_speed.py [N]
"""

from __future__ import annotations

import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from annotator.ingest import ingest


def article(i: int, rng: random.Random) -> dict[str, str]:
    words = [rng.choice(("model", "system", "harm", "city", "said", "the", "of", "data", "police", "users")) for _ in range(400)]
    paragraphs = [" ".join(words[k : k + 80]) + "." for k in range(0, 400, 80)]
    return {"title": f"Story {i}", "text": "\n\n".join(paragraphs), "url": f"https://news.example/{i}?utm_source=x"}


def timed(label: str, inputs: list[Path], out: Path) -> None:
    for run in ("first run", "re-run"):
        start = time.perf_counter()
        summary = ingest(inputs, out)
        seconds = time.perf_counter() - start
        print(f"{label:<6} {run:<9} read {summary.read:>6}  written {summary.written:>6}  {seconds:7.2f} s  "
              f"{summary.read / seconds:8.0f} articles/s")


def main(n: int) -> None:
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        records = [article(i, rng) for i in range(n)]
        (root / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        with (root / "b.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["title", "text", "url"])
            writer.writeheader()
            writer.writerows(article(n + i, rng) for i in range(n))
        pages = root / "pages"
        pages.mkdir()
        for i in range(n // 10):
            r = article(2 * n + i, rng)
            body = "".join(f"<p>{p}</p>" for p in r["text"].split("\n\n"))
            html = (f"<html><head><title>{r['title']}</title><link rel='canonical' href='{r['url']}'></head>"
                    f"<body><nav>Home | News</nav><article><h1>{r['title']}</h1>{body}</article></body></html>")
            (pages / f"{i}.html").write_text(html, encoding="utf-8")
        timed("jsonl", [root / "a.jsonl"], root / "out-jsonl.jsonl")
        timed("csv", [root / "b.csv"], root / "out-csv.jsonl")
        timed("html", [pages], root / "out-html.jsonl")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
