"""Known incidents, and which of them an article follows up.

A monitor records incidents, each told by many articles; whether a new article is a new incident
or complementary information about a recorded one depends on what is recorded. This module reads
recorded incidents — an OECD AIM record as the AIM shows it (title, summary, the articles about
it: seed 000's format) or plain JSONL `{id, title, summary, date}` (AIID and other databases) —
into one incidents file, and finds for each article the few recorded incidents most like it, the
candidates the drafting model chooses `follow_up_of` from.

Retrieval is lexical: TF-IDF cosine (scikit-learn's `TfidfVectorizer`, maintained and already a
dependency of the test extra, sparse, fitted in seconds on 100k incidents) over the same tokens
story grouping uses: stemmed content words, character bigrams for Chinese/Japanese/Korean, and
names and figures (the who and how many that survive translation). An incident is described by
its title, its summary and the titles of its articles, so a headline in another language that
the AIM attached to it is part of what an article can match.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from annotator.errors import ConfigError
from annotator.llm import answer_json
from annotator.locks import hold
from annotator.prompt import Prompt, article_slots, delimited, fill
from annotator.records import Article, iter_jsonl, write_jsonl
from annotator.stories import _STOPWORDS, _stem, _story_words, story_names

NONE = "none"  # the link's answer when the article follows up none of the incidents offered
CANDIDATES = 3  # incidents offered to the model and the reviewer per article
# A follow-up comes after its incident: an incident first reported more than this many days after
# the article cannot be what the article follows up.
EARLIEST_SLACK_DAYS = 2


class IncidentArticle(BaseModel):
    title: str
    date: str | None = None
    source: str | None = None


class Incident(BaseModel):
    id: str
    title: str
    summary: str = ""
    date: str | None = None
    url: str | None = None  # the incident's page in its database, shown to the reviewer
    articles: list[IncidentArticle] = Field(default_factory=list)
    origin: str | None = None  # the file it was imported from


class Candidate(BaseModel):
    """A known incident offered for an article, with its retrieval score (cosine, 0-1)."""

    id: str
    title: str
    date: str | None = None
    url: str | None = None
    score: float


# --------------------------------------------------------------------------- reading records


_DATE_LINE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WHY = "Why's our monitor labelling this an incident or hazard?"
_ARTICLES = "Articles about this incident or hazard"
_NOISE = ("Thumbnail Image", "The information displayed in the AIM")


def incident_id(prefix: str, title: str) -> str:
    """An id for a record that carries none: the same title gives the same id on every import."""
    return f"{prefix}-" + hashlib.sha256(" ".join(title.split()).casefold().encode()).hexdigest()[:12]


def parse_aim_record(text: str, source: str = "<record>") -> Incident:
    """An OECD AIM incident page as text: the title first, a summary, the monitor's reasoning,
    the taxonomy, and "Articles about this incident or hazard" (title, date, outlet, each
    perhaps with the monitor's reasoning). Raises ValueError when the text is not such a page."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith(_NOISE)]
    if not lines or _ARTICLES not in lines:
        raise ValueError(f"{source}: not an OECD AIM record (no line {_ARTICLES!r})")
    title = lines[0]
    head = lines[1 : lines.index(_WHY)] if _WHY in lines[: lines.index(_ARTICLES)] else lines[1:2]
    summary = " ".join(head).replace("[AI generated]", "").strip()
    tail = lines[lines.index(_ARTICLES) + 1 :]
    articles = [IncidentArticle(title=tail[k - 1], date=tail[k], source=tail[k + 1] if k + 1 < len(tail) else None)
                for k in range(1, len(tail)) if _DATE_LINE.match(tail[k])]
    dates = sorted(a.date for a in articles if a.date)
    return Incident(id=incident_id("aim", title), title=title, summary=summary, date=dates[0] if dates else None,
                    articles=articles, origin=source)


def read_incidents(paths: Iterable[str | Path], on_error: Callable[[str], None]) -> list[Incident]:
    """Incidents from AIM record files (.txt, .md; or folders of them) and JSONL files of
    `{id, title, summary, date}`. A bad file or line is one line through `on_error`; the rest is read."""
    out: list[Incident] = []
    for path in map(Path, paths):
        if not path.exists():
            raise ConfigError(f"{path}: no such file or folder")
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if f.suffix == ".jsonl":
                for record in iter_jsonl(f, Incident, on_error=lambda e: on_error(str(e))):
                    out.append(record.model_copy(update={"origin": record.origin or str(f)}))
                continue
            try:
                out.append(parse_aim_record(f.read_text(encoding="utf-8"), str(f)))
            except (ValueError, UnicodeDecodeError) as exc:
                on_error(str(exc) if isinstance(exc, ValueError) else f"{f}: not UTF-8 text")
    return out


class ImportSummary(BaseModel):
    path: str
    read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    total: int = 0
    problems: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        return (f"{self.path}: {self.total} incidents ({self.added} added, {self.updated} updated, "
                f"{self.unchanged} unchanged of {self.read} read)"
                + (f"; {len(self.problems)} inputs rejected (see the lines above)" if self.problems else ""))


def load_incidents(path: str | Path, on_error: Callable[[str], None] | None = None) -> list[Incident]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no incidents file (make one with `annotator incidents import FILE -o {path}`)")
    return list(iter_jsonl(path, Incident, on_error=(lambda e: on_error(str(e))) if on_error else None))


def import_incidents(paths: Sequence[str | Path], store: str | Path,
                     on_error: Callable[[str], None] | None = None) -> ImportSummary:
    """Merge incident records into the incidents file `store` (JSONL, one incident per line, by id:
    a re-import of the same records changes nothing; a changed record replaces the old one)."""
    store = Path(store)
    summary = ImportSummary(path=str(store))

    def reject(message: str) -> None:
        summary.problems.append(message)
        if on_error:
            on_error(message)

    incoming = read_incidents(paths, reject)
    summary.read = len(incoming)
    with hold([store], "incidents import", on_error or (lambda _line: None)):  # two imports at once: the second waits
        known = {i.id: i for i in load_incidents(store, reject)} if store.is_file() else {}
        for incident in incoming:
            old = known.get(incident.id)
            if old is None:
                summary.added += 1
            elif old.model_dump(exclude={"origin"}) == incident.model_dump(exclude={"origin"}):
                summary.unchanged += 1
                continue
            else:
                summary.updated += 1
            known[incident.id] = incident
        if summary.added or summary.updated or not store.is_file():
            write_jsonl(store, sorted(known.values(), key=lambda i: (i.date or "", i.id)))
        summary.total = len(known)
    return summary


# --------------------------------------------------------------------------- retrieval


def terms(text: str) -> list[str]:
    """What retrieval matches on: stemmed content words (Chinese, Japanese, Korean as character
    bigrams) and names and figures, marked so a name and a word never collide."""
    words = [_stem(w) for w in _story_words(text) if (len(w) >= 3 or w[0] >= "\u3040") and w not in _STOPWORDS]
    return words + [f"@{n}" for n in story_names("", text)]


def incident_text(incident: Incident) -> str:
    return "\n".join([incident.title, incident.summary, *(a.title for a in incident.articles)])


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat((value or "")[:10])
    except ValueError:
        return None


class IncidentIndex:
    """The known incidents, searchable by an article's text."""

    def __init__(self, incidents: Sequence[Incident]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.incidents = list(incidents)
        self.by_id = {i.id: i for i in self.incidents}
        self.days = [_day(i.date) for i in self.incidents]
        self.vectorizer = TfidfVectorizer(analyzer=terms, sublinear_tf=True)
        self.matrix = self.vectorizer.fit_transform([incident_text(i) for i in self.incidents]) if self.incidents else None

    def candidates(self, article: Article, k: int = CANDIDATES) -> list[Candidate]:
        """The k known incidents most similar to the article (best first), leaving out incidents
        first reported after the article (more than EARLIEST_SLACK_DAYS later) and those sharing
        nothing with it."""
        if self.matrix is None or k <= 0:
            return []
        query = self.vectorizer.transform([f"{article.title}\n{article.text}"])
        scores = (self.matrix @ query.T).toarray().ravel()
        when = _day(article.published_at)
        ranked = sorted(range(len(scores)), key=lambda n: (-scores[n], self.incidents[n].id))
        out: list[Candidate] = []
        for n in ranked:
            if scores[n] <= 0 or len(out) >= k:
                break
            if when and self.days[n] and (self.days[n] - when).days > EARLIEST_SLACK_DAYS:
                continue
            i = self.incidents[n]
            out.append(Candidate(id=i.id, title=i.title, date=i.date, url=i.url, score=round(float(scores[n]), 4)))
        return out


def candidates_for(articles: Iterable[Article], incidents: Sequence[Incident], k: int = CANDIDATES) -> dict[str, list[Candidate]]:
    """article id -> its candidates, for a batch of articles."""
    index = IncidentIndex(incidents)
    return {a.id: index.candidates(a, k) for a in articles}


def as_dicts(candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
    return [c.model_dump(mode="json") for c in candidates]


def parse_candidates(value: Any) -> list[Candidate]:
    """Candidates as stored in a draft's `incident_candidates` (extra field); bad ones are dropped."""
    out = []
    for item in value or []:
        try:
            out.append(Candidate.model_validate(item))
        except ValidationError:
            continue
    return out


# --------------------------------------------------------------------------- the link, drafted

# What the model is asked, in its own short request beside the labels' (so the labels' request,
# and its cache, are the same with or without recorded incidents): prompts/link/VERSION.md.
LINK_PROMPT = "link@v1"
SUMMARY_CHARS = 600  # of each offered incident's summary in the request


def link_schema(name: str, candidates: Sequence[Candidate]) -> dict[str, Any]:
    """The link's answer schema: one of the offered ids, or none; nothing else validates."""
    return {"type": "object", "additionalProperties": False, "required": [name],
            "properties": {name: {"type": "string", "enum": [*(c.id for c in candidates), NONE]}}}


def link_messages(prompt: Prompt, name: str, description: str, article: Article, candidates: Sequence[Candidate],
                  incidents: dict[str, Incident], max_tokens: int | None) -> list[dict[str, str]]:
    """The link request from its template (`LINK_PROMPT`): the article and the offered incidents
    (title, date, summary), each delimited as data."""
    listed = []
    for c in candidates:
        summary = incidents[c.id].summary if c.id in incidents else ""
        listed.append(f"incident {c.id}: {c.title}" + (f" (first reported {c.date})" if c.date else "")
                      + (f"\n{summary[:SUMMARY_CHARS]}" if summary else ""))
    slots, _ = article_slots(article, max_tokens)
    slots |= {"name": name, "description": description.strip(), "ids": ", ".join(c.id for c in candidates),
              "incidents": delimited("\n".join(listed), "incidents")}
    return [{"role": "system", "content": fill(prompt.system_template, slots).strip()},
            {"role": "user", "content": fill(prompt.user_template, slots).strip()}]


def read_link(text: str, name: str, candidates: Sequence[Candidate]) -> str:
    """The id the answer chose, or ValueError saying why it is not one of those offered."""
    try:
        data = answer_json(text)
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    value = data.get(name) if isinstance(data, dict) else None
    offered = [c.id for c in candidates]
    if value not in (*offered, NONE):
        raise ValueError(f"{name} must be one of {', '.join(offered)} or {NONE}, not {value!r}")
    return str(value)
