"""Turn input files (JSONL, CSV, Markdown clippings, .txt, .html) into one articles.jsonl.

Inputs come from scrapers, exports and hand-made folders, so every reader is lenient about
column names and strict about content: a line or file it cannot turn into an article is
reported on one line (`FILE:LINE: reason: detail`) and skipped, and the run carries on.

Ids are stable so that every later stage (drafts, tasks, reviews, gold) joins on them across
runs: from the URL when there is one (tracking parameters, scheme and trailing slash do not
count), else from the text. Exact duplicates (same URL or same text) are dropped; re-running over
the same inputs into the same output appends nothing.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import re
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from annotator.errors import IngestError
from annotator.locks import hold
from annotator.normalise import article_id, clean_text, clean_title, clean_url, text_key
from annotator.records import Article, JsonlWriter, iter_jsonl

ErrorCallback = Callable[[str], None]

#: Texts longer than this are kept whole but named in the summary: they cost real money to draft.
LARGE_TEXT_CHARS = 200_000

_FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".html": "html",
    ".htm": "html",
}

# Column / key names accepted for each Article field, first match wins (compared lower-cased).
_ALIASES: dict[str, tuple[str, ...]] = {
    "title": ("title", "headline"),
    "text": ("text", "body", "content", "article", "excerpt", "summary", "description"),
    "url": ("url", "sourceurl", "source_url", "link"),
    "source": ("source", "provider", "outlet", "publisher", "sitename"),
    "published_at": ("published_at", "publisheddatetime", "published", "date", "datetime"),
    "language": ("language", "lang"),
}

_LETTER = re.compile(r"[^\W\d_]")
_HAN = re.compile("[\u4e00-\u9fff\u3400-\u4dbf]")
_KANA = re.compile("[\u3040-\u30ff]")
_HANGUL = re.compile("[\uac00-\ud7af]")
_EN_WORDS = frozenset(
    "the a an of and or to in on for with by from at as is are was were be been has have had it its this that "  # noqa: SIM905
    "which who will would said says not but after over than".split()
)


def guess_language(text: str) -> str | None:
    """A cheap guess from the script (zh, ja, ko) or common English words (en); None when unsure.

    Only what a few lines of counting can tell reliably; anything else stays unknown rather
    than wrong. An input's own `language` field always wins.
    """
    sample = text[:1000]
    if not sample.isascii():  # only then can the script be CJK
        letters = len(_LETTER.findall(sample))
        han, kana, hangul = (len(pattern.findall(sample)) for pattern in (_HAN, _KANA, _HANGUL))
        if not letters:
            return None
        if kana / letters > 0.05:
            return "ja"
        if hangul / letters > 0.3:
            return "ko"
        if han / letters > 0.3:
            return "zh"
    words = [w.strip(".,;:!?\"'()").lower() for w in sample.split()]
    if len(words) >= 8 and sum(w in _EN_WORDS for w in words) / len(words) >= 0.15:
        return "en"
    return None


class _TagSniffer(HTMLParser):
    _TAGS = frozenset(
        "p br div span a b i em strong h1 h2 h3 h4 h5 h6 ul ol li html body article section table tr td img "  # noqa: SIM905
        "blockquote script style figure header footer nav main".split()
    )

    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found = self.found or tag in self._TAGS


def looks_like_html(text: str) -> bool:
    if "<" not in text:
        return False
    sniffer = _TagSniffer()
    sniffer.feed(text[:20_000])
    return sniffer.found


def html_to_text(html: str | bytes) -> str:
    """Main text of an HTML page or fragment (boilerplate removed by trafilatura)."""
    import trafilatura

    return trafilatura.extract(html, include_comments=False, favor_recall=True) or ""


class _TagStripper(HTMLParser):
    _BLOCKS = frozenset("p br div li tr h1 h2 h3 h4 h5 h6 blockquote section article header footer ul ol table".split())  # noqa: SIM905

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style")
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style") and self._skip > 0
        if tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def strip_tags(html: str) -> str:
    """Every word of an HTML fragment, tags dropped (scripts and styles too), block tags as line breaks."""
    stripper = _TagStripper()
    stripper.feed(html)
    stripper.close()
    return "".join(stripper.parts)


_WHOLE_PAGE = re.compile(r"<(?:!doctype|html|head|body)\b", re.IGNORECASE)


def markup_to_text(text: str) -> str:
    """The words of a text field that holds HTML.

    A whole page (a scraper's dump) goes through main-text extraction, which drops menus and
    footers; a fragment (an `<i>` lead, a few `<p>`s in a database's summary) is all content, so
    only its tags go, and so do a page's when extraction finds no main text in it.
    """
    if _WHOLE_PAGE.search(text[:2000]):
        extracted = html_to_text(text)
        if extracted.strip():
            return extracted
    return strip_tags(text)


# Control characters (C0 but tab and line breaks, DEL, C1): never words.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: A text with at least this share of control characters is binary data or a broken export, not an article.
MAX_CONTROL_SHARE = 0.2


def control_share(text: str) -> float:
    """The share of NUL and other control characters (line breaks and tabs do not count)."""
    return len(_CONTROL.findall(text)) / len(text) if text else 0.0


# --------------------------------------------------------------------------- readers


@dataclass(frozen=True)
class Rejection:
    """Why one input line or file did not become an article."""

    where: str
    reason: str
    detail: str

    def __str__(self) -> str:
        return " ".join(f"{self.where}: {self.reason}: {self.detail}; skipped".split())


@dataclass
class _Raw:
    fields: dict[str, Any]
    where: str
    format: str


_Item = _Raw | Rejection


def _pick(record: Mapping[str, Any], field: str) -> Any:
    lowered = {str(k).lower(): v for k, v in record.items() if k is not None}
    for key in _ALIASES[field]:
        value = lowered.get(key)
        if isinstance(value, Mapping):  # clippings: provider: {name: Valley Courier, domain: valley-courier.example}
            value = value.get("name") or value.get("domain")
        if value not in (None, ""):
            return value
    return None


def _fields(record: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _pick(record, name) for name in _ALIASES}


def _decode(data: bytes, where: str) -> str | Rejection:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return Rejection(f"{where}:{line}", "not UTF-8", f"byte 0x{data[exc.start]:02X}; save the file as UTF-8")


def _read_jsonl(path: Path, where: str) -> Iterator[_Item]:
    any_line = False
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            any_line = True
            at = f"{where}:{number}"
            line = _decode(raw, at)
            if isinstance(line, Rejection):
                yield Rejection(at, line.reason, line.detail)
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Rejection(at, "malformed line", f"not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(record, dict):
                yield Rejection(at, "malformed line", f"expected a JSON object, got {type(record).__name__}")
                continue
            yield _Raw(_fields(record), at, "jsonl")
    if not any_line:
        yield Rejection(where, "empty file", "nothing to read")


def _read_csv(path: Path, where: str) -> Iterator[_Item]:
    """Rows streamed; a row with bytes that are not UTF-8 is rejected alone, the others are read."""
    bad_lines: dict[int, int] = {}  # line number -> first bad byte

    def lines(fh: Iterable[bytes]) -> Iterator[str]:
        for number, raw in enumerate(fh, start=1):
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                bad_lines[number] = raw[exc.start]
                yield raw.decode("utf-8", errors="replace")

    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # huge articles are articles too
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open("rb") as fh:
        reader = csv.DictReader(lines(fh), delimiter=delimiter)
        header = [h.lower() for h in reader.fieldnames or []]
        if not any(h.strip() for h in header):
            yield Rejection(where, "empty file", "nothing to read")
            return
        if not any(name in header for name in _ALIASES["text"]):
            yield Rejection(f"{where}:1", "no text column", f"header has none of {', '.join(_ALIASES['text'][:3])}")
            return
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Rejection(f"{where}:{start}", "malformed line", str(exc))
                return
            bad = [n for n in bad_lines if n <= reader.line_num]
            if bad:
                yield Rejection(f"{where}:{bad[0]}", "not UTF-8", f"byte 0x{bad_lines[bad[0]]:02X}; save the file as UTF-8")
                bad_lines.clear()
                continue
            yield _Raw(_fields(row), f"{where}:{start}", "csv")


def _split_front_matter(text: str) -> tuple[str | None, str, int]:
    """(front matter or None, body, line number where the front matter starts)."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return None, text, 0
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :]), 2
    return None, text, 0


def _title_and_body(text: str) -> tuple[str, str]:
    """Plain text: the first non-empty line is the title (a Markdown heading's #s dropped)."""
    lines = text.strip().split("\n")
    title = lines[0].lstrip("#").strip() if lines else ""
    body = "\n".join(lines[1:]).strip()
    return title, body or text


def _read_document(path: Path, where: str, fmt: str) -> Iterator[_Item]:
    text = _decode(path.read_bytes(), where)
    if isinstance(text, Rejection):
        yield text
        return
    text = text.replace("\r\n", "\n")
    if not text.strip():
        yield Rejection(where, "empty file", "nothing to read")
        return
    front, body, first_line = _split_front_matter(text)
    if front is None:
        title, body = _title_and_body(text)
        yield _Raw({"title": title, "text": body}, where, fmt)
        return
    try:
        meta = yaml.safe_load(front) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = first_line + (mark.line if mark else 0)
        yield Rejection(f"{where}:{line}", "bad front matter", str(exc).split("\n")[0])
        return
    if not isinstance(meta, dict):
        yield Rejection(f"{where}:{first_line}", "bad front matter", "expected key: value pairs")
        return
    fields = _fields(meta)
    if body.strip():  # a clipping with a body: the body is the text, whatever the excerpt says
        fields["text"] = body
    if not fields["title"] and fields["text"]:
        fields["title"], fields["text"] = _title_and_body(str(fields["text"]))
    yield _Raw(fields, where, "markdown")


def _read_html(path: Path, where: str) -> Iterator[_Item]:
    import trafilatura

    data = path.read_bytes()
    if not data.strip():
        yield Rejection(where, "empty file", "nothing to read")
        return
    doc = trafilatura.bare_extraction(data, with_metadata=True, include_comments=False, favor_recall=True)
    if doc is None or not (doc.text or "").strip():
        yield Rejection(where, "no text", "no main text found in the HTML")
        return
    text = doc.text
    if doc.title and text.split("\n", 1)[0].strip() == doc.title.strip():
        text = text.split("\n", 1)[1] if "\n" in text else text
    fields = {
        "title": doc.title,
        "text": text,
        "url": doc.url,
        "source": doc.sitename or doc.hostname,
        "published_at": doc.date,
        "language": None,
    }
    yield _Raw(fields, where, "html")


def _read_file(path: Path, where: str) -> Iterator[_Item]:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = " ".join(sorted(_FORMATS))
        yield Rejection(where, "unknown file type", f"{path.suffix or 'no extension'!r} (known: {known})")
    elif fmt == "jsonl":
        yield from _read_jsonl(path, where)
    elif fmt == "csv":
        yield from _read_csv(path, where)
    elif fmt == "html":
        yield from _read_html(path, where)
    else:
        yield from _read_document(path, where, fmt)


def _files(inputs: Iterable[str | Path], skip: Collection[Path]) -> Iterator[Path | Rejection]:
    for given in inputs:
        path = Path(given)
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                rel = p.relative_to(path).parts
                # NAME.lock files are other stages' locks on the files beside them (a shared folder), never input
                if (p.is_file() and not any(part.startswith(".") for part in rel) and p.suffix != ".lock"
                        and p.resolve() not in skip):
                    yield p
        elif path.is_file():
            if path.resolve() not in skip:
                yield path
        else:
            yield Rejection(str(path), "not found", "no such file or folder")


def _when(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return " ".join(str(value).split())


def _to_article(raw: _Raw) -> Article | Rejection:
    f = raw.fields
    text = f.get("text")
    if text is not None and not isinstance(text, str):
        if isinstance(text, dict | list):
            return Rejection(raw.where, "malformed line", f"text is a {type(text).__name__}, not a string")
        text = str(text)
    text = text or ""
    share = control_share(text[:100_000])
    if share >= MAX_CONTROL_SHARE:
        return Rejection(raw.where, "not text", f"{share:.0%} of its characters are NUL or control characters")
    if raw.format in ("jsonl", "csv") and looks_like_html(text):  # scrapers often store the page's HTML
        text = markup_to_text(text)
    text = clean_text(text)
    if not text:
        looked_for = ", ".join(_ALIASES["text"][:3])
        detail = f"empty or missing text ({looked_for}, ...)" if raw.format in ("jsonl", "csv") else "the article is empty"
        return Rejection(raw.where, "no text", detail)
    url = clean_url(str(f["url"])) if f.get("url") else None
    language = str(f["language"]).strip().lower() if f.get("language") else guess_language(text)
    return Article(
        id=article_id(url, text),
        title=clean_title(str(f.get("title") or "")),
        text=text,
        url=url or None,
        source=clean_title(str(f["source"])) if f.get("source") else None,
        published_at=_when(f.get("published_at")),
        language=language,
        origin=raw.where,
        format=raw.format,
    )


def _items(inputs: Iterable[str | Path], skip: Collection[Path] = ()) -> Iterator[Article | Rejection]:
    for path in _files(inputs, skip):
        if isinstance(path, Rejection):
            yield path
            continue
        try:
            for item in _read_file(path, str(path)):
                yield item if isinstance(item, Rejection) else _article_or_rejection(item)
        except OSError as exc:
            yield Rejection(str(path), "unreadable", exc.strerror or str(exc))
        except Exception as exc:  # noqa: BLE001 - a reader's failure (a library, a missing dependency) is this file's
            yield Rejection(str(path), "unreadable", _failure(exc))


def _failure(exc: Exception) -> str:
    hint = "; reinstall the package to get its dependencies" if isinstance(exc, ImportError) else ""
    return f"the reader failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}{hint}"


def _article_or_rejection(raw: _Raw) -> Article | Rejection:
    """One record's failure (HTML extraction of its text, say) rejects that record, not the file."""
    try:
        return _to_article(raw)
    except Exception as exc:  # noqa: BLE001
        return Rejection(raw.where, "unreadable", _failure(exc))


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def read_articles(inputs: Iterable[str | Path], on_error: ErrorCallback | None = None) -> Iterator[Article]:
    """Articles from files and folders, normalised and with ids, in input order; no de-duplication.

    Each rejected line or file is passed to `on_error` as one line (default: stderr).
    """
    report = on_error or _to_stderr
    for item in _items(inputs):
        if isinstance(item, Rejection):
            report(str(item))
        else:
            yield item


# --------------------------------------------------------------------------- the job


class IngestSummary(BaseModel):
    """What one ingest run did; `ok` is False when anything was rejected."""

    output: str
    read: int = 0
    written: int = 0
    duplicates: int = 0
    already_present: int = 0
    formats: dict[str, int] = Field(default_factory=dict)
    rejected: dict[str, int] = Field(default_factory=dict)
    large: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected.values())

    def describe(self) -> str:
        formats = ", ".join(f"{k} {v}" for k, v in sorted(self.formats.items()))
        lines = [
            f"read {self.read} article(s)" + (f" ({formats})" if formats else ""),
            f"written {self.written} to {self.output}",
            f"duplicates dropped {self.duplicates}, already in the output {self.already_present}",
        ]
        if self.large:
            lines.append(f"large articles kept (> {LARGE_TEXT_CHARS} characters): {', '.join(self.large)}")
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.rejected.items()))
        lines.append(f"rejected {self.n_rejected}" + (f" ({reasons})" if reasons else ""))
        return "\n".join(lines)


def ingest(inputs: Iterable[str | Path], output: str | Path, on_error: ErrorCallback | None = None) -> IngestSummary:
    """Append the new articles of `inputs` to the JSONL file `output`; returns what happened.

    Articles whose id or text is already in `output` (or earlier in this run) are not written
    again, so the same command can be re-run safely after new files arrive or after a crash.
    Each rejected line or file is passed to `on_error` as one line (default: stderr). Raises
    `IngestError` only when the output cannot be written at all.
    """
    output = Path(output)
    summary = IngestSummary(output=str(output))
    report = on_error or _to_stderr

    def reject(problem: str, reason: str) -> None:
        summary.rejected[reason] = summary.rejected.get(reason, 0) + 1
        report(problem)

    with contextlib.ExitStack() as stack:
        try:  # a second ingest into this file waits, then finds this one's articles already there
            stack.enter_context(hold([output], "ingest", report))
            writer = stack.enter_context(JsonlWriter(output))  # opening repairs a torn last line first
        except OSError as exc:
            raise IngestError(f"{output}: cannot write the output ({exc.strerror or exc})") from None
        old_ids: set[str] = set()
        old_texts: set[str] = set()
        for old in iter_jsonl(
            output, Article, on_error=lambda e: reject(f"{e} (existing output line ignored)", "bad output line")
        ):
            old_ids.add(old.id)
            old_texts.add(text_key(old.text))
        new_ids: set[str] = set()
        new_texts: set[str] = set()
        for item in _items(inputs, skip={output.resolve()}):  # not the output (nor any lock: see _files)
            if isinstance(item, Rejection):
                reject(str(item), item.reason)
                continue
            summary.read += 1
            fmt = str(getattr(item, "format", "?"))
            summary.formats[fmt] = summary.formats.get(fmt, 0) + 1
            tkey = text_key(item.text)
            if item.id in old_ids or tkey in old_texts:
                summary.already_present += 1
                continue
            if item.id in new_ids or tkey in new_texts:
                summary.duplicates += 1
                continue
            writer.write(item)
            new_ids.add(item.id)
            new_texts.add(tkey)
            summary.written += 1
            if len(item.text) > LARGE_TEXT_CHARS:
                summary.large.append(item.id)
    return summary
