"""The records that stages hand each other, and JSONL files of them.

The fields listed in DESIGN.md are a contract with the other stages and with users' own scripts:
they are fixed here; extra fields are kept as they come (`extra="allow"`), so a stage never
drops what another wrote.

JSONL reading streams line by line and reports a bad line as `FILE:LINE: what is wrong`;
writing appends whole lines and flushes each, so a killed run leaves no half-written record
(`JsonlWriter` cuts off a torn last line before it appends).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from annotator.errors import RecordError

LabelValue = str | list[str] | None


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class Article(_Record):
    id: str
    title: str = ""
    text: str
    url: str | None = None
    source: str | None = None
    published_at: str | None = None
    language: str | None = None


class Draft(_Record):
    article_id: str
    labels: dict[str, LabelValue] = Field(default_factory=dict)
    rationale: str | None = None
    confidence: dict[str, float | None] = Field(default_factory=dict)
    model: str = ""
    prompt_version: str = ""
    model_version: str = ""
    usage: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    flags: list[str] = Field(default_factory=list)
    evidence: list[dict[str, Any]] = Field(default_factory=list)  # quotes found: {kind, start, end, text}

    # A gold or review file read as drafts (the eval suite's self-check) carries null here.
    _null_is_empty = field_validator("model", "prompt_version", "model_version", mode="before")(
        lambda cls, v: "" if v is None else v)


class Review(_Record):
    article_id: str
    task_id: int | None = None
    annotator: str = ""
    labels: dict[str, LabelValue] = Field(default_factory=dict)
    rationale: str | None = None
    model_version: str | None = None
    accepted_as_is: bool | None = None
    lead_time_s: float | None = None
    skipped: bool = False
    blind: bool = False
    updated_at: str | None = None
    evidence: list[dict[str, Any]] = Field(default_factory=list)  # the reviewed highlights: {kind, start, end, text}


class GoldRecord(_Record):
    """A reviewed label set used as truth. Review records validate as GoldRecords too."""

    article_id: str
    labels: dict[str, LabelValue] = Field(default_factory=dict)
    rationale: str | None = None


_EPOCH = datetime.min.replace(tzinfo=UTC)


def newer_key(record: BaseModel) -> tuple[bool, datetime]:
    """Sort key for "which of two reviews of one article is newer", shared by eval and export.

    Compares `updated_at` as instants (naive stamps taken as UTC), not as strings, so stamps
    written with different offsets order correctly; a record without a readable stamp is older
    than any with one.
    """
    stamp = getattr(record, "updated_at", None)
    try:
        when = datetime.fromisoformat(stamp) if stamp else None
    except ValueError:
        when = None
    if when is None:
        return (False, _EPOCH)
    return (True, when if when.tzinfo else when.replace(tzinfo=UTC))


R = TypeVar("R", bound=BaseModel)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "record"
        parts.append(f"{loc}: {err['msg']}")
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def iter_jsonl(
    path: str | Path,
    model: type[R],
    on_error: Callable[[RecordError], None] | None = None,
) -> Iterator[R]:
    """Yield one record per non-blank line, streaming.

    A bad line raises `RecordError` naming the file and line, or, with `on_error`, is handed to
    it and skipped so that the rest of the file is still read.
    """
    path = Path(path)
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw.decode("utf-8"))
                if not isinstance(data, dict):
                    raise RecordError(str(path), number, f"expected a JSON object, got {type(data).__name__}")
                record = model.model_validate(data)
            except RecordError as exc:
                error = exc
            except UnicodeDecodeError as exc:
                error = RecordError(str(path), number, f"not UTF-8 (byte {exc.start})")
            except json.JSONDecodeError as exc:
                error = RecordError(str(path), number, f"not valid JSON: {exc.msg} at column {exc.colno}")
            except ValidationError as exc:
                error = RecordError(str(path), number, f"not a valid {model.__name__}: {_describe(exc)}")
            else:
                yield record
                continue
            if on_error is None:
                raise error
            on_error(error)


def read_jsonl(path: str | Path, model: type[R]) -> list[R]:
    """All records of a file; raises `RecordError` at the first bad line."""
    return list(iter_jsonl(path, model))


_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8_json(data: Any, **options: Any) -> str:
    """`json.dumps` keeping non-ASCII text as it is, with each lone surrogate (a model's answer cut
    inside an emoji's escape pair) replaced by U+FFFD, as a UTF-8 decoder shows a broken sequence.

    A lone surrogate has no UTF-8 form: a file or SQLite refuses it, and Label Studio stores its
    `\\u` escape and then answers 500 to every listing of the task's predictions.
    """
    text = json.dumps(data, ensure_ascii=False, **options)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return _SURROGATE.sub("\ufffd", text)
    return text


def _dumps(record: BaseModel | dict[str, Any]) -> str:
    data = record.model_dump(mode="json") if isinstance(record, BaseModel) else record
    return utf8_json(data, separators=(",", ":"))


class JsonlWriter:
    """Append records to a JSONL file, one flushed line each.

    Opening repairs a torn last line (a line without its newline, left by a killed process), so
    that resumed runs never build on half a record.
    """

    def __init__(self, path: str | Path, *, truncate: bool = False, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if truncate:
            self.path.write_bytes(b"")
        else:
            _drop_torn_tail(self.path)
        self._fh = self.path.open("a", encoding="utf-8")
        self._fsync = fsync

    def write(self, record: BaseModel | dict[str, Any]) -> None:
        self._fh.write(_dumps(record) + "\n")
        self._fh.flush()
        if self._fsync:
            os.fsync(self._fh.fileno())

    def write_all(self, records: Iterable[BaseModel | dict[str, Any]]) -> int:
        n = 0
        for r in records:
            self.write(r)
            n += 1
        return n

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary file to write `path`'s new content into; when the block ends it replaces `path`
    whole (a reader sees the old file or the new, never half of one), and when the block fails it
    is removed and `path` is left as it was.

    The temporary file is `NAME.PID.tmp`: two runs writing one file at once (two pulls into one
    reviews.jsonl, say) each fill their own, and the last to finish wins with a whole file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_jsonl(path: str | Path, records: Iterable[BaseModel | dict[str, Any]]) -> int:
    """Write records to a new file (replacing it) atomically; returns how many."""
    with replacing(path) as tmp, JsonlWriter(tmp, truncate=True) as w:
        return w.write_all(records)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace a file whole: a reader sees the old content or the new, never half of it."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _drop_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        # Walk back to the last newline and cut everything after it.
        size = fh.seek(0, os.SEEK_END)
        pos = size
        block = 4096
        while pos > 0:
            step = min(block, pos)
            pos -= step
            fh.seek(pos)
            chunk = fh.read(step)
            idx = chunk.rfind(b"\n")
            if idx != -1:
                _cut_or_close(fh, pos + idx + 1, size)
                return
        _cut_or_close(fh, 0, size)


def _cut_or_close(fh: Any, start: int, size: int) -> None:
    """Drop the tail from `start` unless it is a whole record that only lacks its newline.

    A hand-edited file often ends without a newline; its last record is not torn and must not
    be lost. A torn write never parses as a JSON object (its closing brace is missing).
    """
    fh.seek(start)
    tail = fh.read(size - start)
    try:
        whole = isinstance(json.loads(tail.decode("utf-8")), dict)
    except (UnicodeDecodeError, json.JSONDecodeError):
        whole = False
    if whole:
        fh.seek(0, os.SEEK_END)
        fh.write(b"\n")
    else:
        fh.truncate(start)
