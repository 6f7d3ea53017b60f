"""Reading the eval's input files: the I/O edge of the harness.

A bad line (not JSON, not a record, a label outside the taxonomy) is reported as `FILE:LINE` or
`FILE: article ID` and skipped; the eval still runs on the rest, and the caller exits 1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from annotator.errors import ConfigError, RecordError
from annotator.evaluate.gcpause import paused_gc
from annotator.records import Article, Draft, GoldRecord, Review, iter_jsonl
from annotator.taxonomy import Taxonomy, label_validator

R = TypeVar("R", Draft, Review, GoldRecord)


def read_labelled(path: str | Path, model: type[R], tax: Taxonomy, on_error: Callable[[str], None]) -> list[R]:
    """Records of `path` whose labels fit the taxonomy; every other line is reported and skipped.

    Drafts that failed (`error` set) are kept whatever their labels: they are scored as
    disagreement, not rejected.
    """
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such file")
    out: list[R] = []
    check = label_validator(tax)

    def bad(exc: RecordError) -> None:
        on_error(str(exc))

    with paused_gc():
        for record in iter_jsonl(path, model, on_error=bad):
            if getattr(record, "error", None):
                out.append(record)
                continue
            problems = check(record.labels)
            if problems:
                on_error(f"{path}: article {record.article_id}: {'; '.join(problems)} (skipped)")
                continue
            out.append(record)
    return out


def read_titles(path: str | Path, on_error: Callable[[str], None]) -> dict[str, str]:
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such file")
    return {a.id: a.title for a in iter_jsonl(path, Article, on_error=lambda exc: on_error(str(exc)))}


def without_applied(records: list[R]) -> tuple[list[R], int]:
    """Records without the reviews applied from a story (`applied_from_story`), and how many there
    were: agreement is measured on reviews of each article, not on one review copied to its story."""
    own = [r for r in records if not (r.model_extra or {}).get("applied_from_story")]
    return own, len(records) - len(own)
