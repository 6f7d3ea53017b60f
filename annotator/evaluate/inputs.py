"""Reading the eval's input files: the I/O edge of the harness.

A bad line (not JSON, not a record) is reported as `FILE:LINE` and skipped; a value outside the
taxonomy is reported as `FILE: article ID` and only its field is dropped (counted as missing for
that record), the record's other fields are still scored; the caller exits 1. Other spellings
(aliases, ids renamed in a later taxonomy version) are read as the current ids and said once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from annotator.compose import lift_labels
from annotator.errors import ConfigError, RecordError
from annotator.evaluate.gcpause import paused_gc
from annotator.records import Article, Draft, GoldRecord, Review, iter_jsonl
from annotator.taxonomy import NOT_ASSESSED, Taxonomy, canonical_labels, label_validator, validate_labels

R = TypeVar("R", Draft, Review, GoldRecord)


def read_labelled(path: str | Path, model: type[R], tax: Taxonomy, on_error: Callable[[str], None]) -> list[R]:
    """Records of `path`, their labels read through the taxonomy; bad lines are reported and skipped.

    Drafts that failed (`error` set) are kept whatever their labels: they are scored as
    disagreement, not rejected. A value outside the taxonomy drops only its own field.
    """
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such file")
    out: list[R] = []
    check = label_validator(tax)
    kinds = {f.name: f.kind for f in tax.label_fields}
    mapped: dict[str, int] = {}

    def bad(exc: RecordError) -> None:
        on_error(str(exc))

    with paused_gc():
        for record in iter_jsonl(path, model, on_error=bad):
            if getattr(record, "error", None):
                out.append(record)
                continue
            if tax.members and check(record.labels):  # gold of one member, in its own field names (composed taxonomies)
                lifted = lift_labels(tax, record.labels, (record.model_extra or {}).get("taxonomy"))
                if lifted is not None:
                    record = record.model_copy(update={"labels": lifted})
            if check(record.labels):
                labels, notes = canonical_labels(tax, record.labels)  # other spellings, older versions
                for note in notes:
                    mapped[note] = mapped.get(note, 0) + 1
                kept = {k: v for k, v in labels.items() if not check({k: v})}
                problems = [p for k in labels.keys() - kept.keys() for p in validate_labels(tax, {k: labels[k]})]
                if problems:
                    missing = ", ".join(sorted(labels.keys() - kept.keys()))
                    on_error(f"{path}: article {record.article_id}: {'; '.join(problems)} "
                             f"({missing} counted as missing for this record; its other fields are kept)")
                record = record.model_copy(update={"labels": kept})
            # A multi field holding null was never assessed: not scored, unlike [] ("none apply").
            if any(v is NOT_ASSESSED and kinds.get(k) == "multi" for k, v in record.labels.items()):
                record = record.model_copy(update={"labels": {
                    k: v for k, v in record.labels.items() if v is not NOT_ASSESSED or kinds.get(k) != "multi"}})
            out.append(record)
    for note, n in mapped.items():
        print(f"{path}: {note} in {n} record(s) (taxonomy {tax.name} v{tax.version})", file=sys.stderr)
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
