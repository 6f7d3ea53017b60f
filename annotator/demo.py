"""The newcomer demo: the bundled sample articles through the workbench, with nothing to set up.

At this stage it ingests the samples and shows what was read; later stages extend `run_demo`
into the whole loop (draft, review in Label Studio, eval, export).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from annotator.ingest import IngestSummary, ingest
from annotator.records import Article, iter_jsonl

Echo = Callable[[str], None]


def samples_dir() -> Path:
    """The bundled sample articles (JSONL, CSV, Markdown clippings, .txt, .html)."""
    return Path(str(resources.files("annotator") / "samples" / "articles"))


def sample_gold_path() -> Path:
    """Hand-made gold labels (GoldRecords) for every distinct sample article."""
    return Path(str(resources.files("annotator") / "samples" / "gold.jsonl"))


def run_demo(out_dir: str | Path = "out", echo: Echo = print, on_error: Echo | None = None) -> IngestSummary:
    """Ingest the samples into `out_dir/articles.jsonl` and tell what is there; safe to re-run."""
    out_dir = Path(out_dir)
    articles_path = out_dir / "articles.jsonl"
    echo(f"Ingesting the bundled sample articles from {samples_dir()}")
    summary = ingest([samples_dir()], articles_path, on_error=on_error)
    echo(summary.describe())
    articles = list(iter_jsonl(articles_path, Article))
    formats = Counter(str(getattr(a, "format", "?")) for a in articles)
    echo("")
    echo(f"{articles_path} holds {len(articles)} articles: " + ", ".join(f"{n} {f}" for f, n in sorted(formats.items())))
    for a in articles:
        origin = Path(str(getattr(a, "origin", ""))).name
        echo(f"  {a.id}  {origin:<34} {a.language or '--':<3} {a.title}")
    return summary
