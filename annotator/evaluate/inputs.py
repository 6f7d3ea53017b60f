"""Reading the eval's input files: the I/O edge of the harness.

A bad line (not JSON, not a record, a label outside the taxonomy) is reported as `FILE:LINE` or
`FILE: article ID` and skipped; the eval still runs on the rest, and the caller exits 1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from annotator.errors import ConfigError, RecordError
from annotator.records import Article, Draft, GoldRecord, Review, iter_jsonl
from annotator.taxonomy import Taxonomy, validate_labels

R = TypeVar("R", Draft, Review, GoldRecord)


def _shape_problems(tax: Taxonomy, labels: dict) -> list[str]:
    """Problems `validate_labels` cannot see: a list in a single field would not even hash."""
    return [f"{f.name}: expected one value or null, got a list" for f in tax.single_fields if isinstance(labels.get(f.name), list)]


def read_labelled(path: str | Path, model: type[R], tax: Taxonomy, report: Callable[[str], None]) -> list[R]:
    """Records of `path` whose labels fit the taxonomy; every other line is reported and skipped.

    Drafts that failed (`error` set) are kept whatever their labels: they are scored as
    disagreement, not rejected.
    """
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such file")
    out: list[R] = []

    def bad(exc: RecordError) -> None:
        report(str(exc))

    for record in iter_jsonl(path, model, on_error=bad):
        if getattr(record, "error", None):
            out.append(record)
            continue
        problems = _shape_problems(tax, record.labels) or validate_labels(tax, record.labels)
        if problems:
            report(f"{path}: article {record.article_id}: {'; '.join(problems)} (skipped)")
            continue
        out.append(record)
    return out


def read_titles(path: str | Path, report: Callable[[str], None]) -> dict[str, str]:
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such file")
    return {a.id: a.title for a in iter_jsonl(path, Article, on_error=lambda exc: report(str(exc)))}
