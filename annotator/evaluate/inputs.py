"""Reading the eval's input files: the I/O edge of the harness.

A bad line (not JSON, not a record, a label outside the taxonomy) is reported as `FILE:LINE` or
`FILE: article ID` and skipped; the eval still runs on the rest, and the caller exits 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from annotator.errors import ConfigError, RecordError
from annotator.evaluate.gcpause import paused_gc
from annotator.records import Article, Draft, GoldRecord, Review, iter_jsonl
from annotator.taxonomy import Taxonomy, validate_labels

R = TypeVar("R", Draft, Review, GoldRecord)


def label_checker(tax: Taxonomy) -> Callable[[Mapping[str, Any]], list[str]]:
    """`validate_labels` with the allowed values looked up once: eval files hold 100,000s of records.

    The fast path only says "fine"; any problem is described by `validate_labels` itself.
    """
    allowed = {f.name: (f.kind, frozenset(f.value_ids)) for f in tax.label_fields}

    def ok(name: str, value: Any) -> bool:
        kind, values = allowed.get(name, (None, frozenset()))
        if kind == "single":
            return value is None or (isinstance(value, str) and value in values)
        if kind == "multi":
            return isinstance(value, list) and all(isinstance(v, str) and v in values for v in value) and len(set(value)) == len(value)
        return False

    def check(labels: Mapping[str, Any]) -> list[str]:
        if all(ok(k, v) for k, v in labels.items()):
            return []
        lists = [f"{k}: expected one value or null, got a list" for k, v in labels.items() if allowed.get(k, ("",))[0] == "single" and isinstance(v, list)]
        return lists or validate_labels(tax, labels)

    return check


def read_labelled(path: str | Path, model: type[R], tax: Taxonomy, report: Callable[[str], None]) -> list[R]:
    """Records of `path` whose labels fit the taxonomy; every other line is reported and skipped.

    Drafts that failed (`error` set) are kept whatever their labels: they are scored as
    disagreement, not rejected.
    """
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such file")
    out: list[R] = []
    check = label_checker(tax)

    def bad(exc: RecordError) -> None:
        report(str(exc))

    with paused_gc():
        for record in iter_jsonl(path, model, on_error=bad):
            if getattr(record, "error", None):
                out.append(record)
                continue
            problems = check(record.labels)
            if problems:
                report(f"{path}: article {record.article_id}: {'; '.join(problems)} (skipped)")
                continue
            out.append(record)
    return out


def read_titles(path: str | Path, report: Callable[[str], None]) -> dict[str, str]:
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such file")
    return {a.id: a.title for a in iter_jsonl(path, Article, on_error=lambda exc: report(str(exc)))}
