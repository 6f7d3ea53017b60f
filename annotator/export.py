"""Reviewed labels become gold training data: adjudicated, split without leaks, in the formats trainers read.

The decisions are pure functions (`adjudicate`, `chat_example`, `check_chat_example`, the split
logic in `annotator.splits`); `export` is the I/O edge that reads reviews and articles and writes
`gold/`. Nothing time-dependent goes into the output, so exporting the same input twice writes
the same bytes, and re-exporting into the same folder keeps every old article in its split
(the assignments are read back from `gold/manifest.json`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from annotator.errors import ConfigError, TaxonomyError
from annotator.records import Article, GoldRecord, Review, iter_jsonl, newer_key, write_jsonl
from annotator.splits import (
    NAMES_COSINE,
    NAMES_MIN_SHARED,
    NAMES_WORD_FLOOR,
    NEAR_DATE_DAYS,
    NEAR_DATE_THRESHOLD,
    SPLITS,
    STORY_THRESHOLD,
    assign_splits,
    near_duplicate_groups,
    parse_ratios,
)
from annotator.taxonomy import Taxonomy, draft_model, load_taxonomy, validate_labels

POLICIES = ("latest", "majority", "lead")
SUFFIX = {"jsonl": ".jsonl", "csv": ".csv", "parquet": ".parquet", "chat": ".chat.jsonl"}
FORMATS = tuple(SUFFIX)
MIN_EXAMPLES = 10  # fewer examples of a label in a split than this, and a per-label score there means little
MULTI_SEP = "|"  # multi-valued fields in CSV cells; taxonomy values may not contain it
# What OpenAI's fine-tuning endpoint accepts in a chat example (its data-preparation checks):
CHAT_ROLES = ("system", "user", "assistant")
CHAT_MESSAGE_KEYS = ("role", "content", "name", "weight")
CHAT_MIN_EXAMPLES = 10  # a training file with fewer examples is refused
CHAT_MAX_TOKENS = 65_536  # per-example context of gpt-4o(-mini) fine-tuning; longer examples get truncated


# --------------------------------------------------------------------------- adjudication


class Decision(BaseModel):
    """The labels an article gets, and the reviews they were decided from."""

    article_id: str
    labels: dict[str, Any]
    rationale: str | None
    reviews: list[Review]


class Conflict(BaseModel):
    """Reviews the policy cannot decide between: a lead has to."""

    article_id: str
    policy: str
    reason: str
    fields: list[str] = Field(default_factory=list)
    reviews: list[dict[str, Any]] = Field(default_factory=list)


def is_completed(review: Review) -> bool:
    """Skipped and cancelled annotations are not answers."""
    extra = review.model_extra or {}
    return not review.skipped and not extra.get("was_cancelled") and not extra.get("cancelled")


def _canon(tax: Taxonomy, labels: Mapping[str, Any]) -> dict[str, Any]:
    """Labels in a comparable form: multi fields as a tuple in taxonomy order."""
    out: dict[str, Any] = {}
    for f in tax.label_fields:
        value = labels.get(f.name)
        if f.kind == "multi":
            chosen = set(value or [])
            out[f.name] = tuple(v for v in f.value_ids if v in chosen)
        else:
            out[f.name] = value
    return out


def _plain(tax: Taxonomy, canon: Mapping[str, Any]) -> dict[str, Any]:
    return {f.name: list(canon[f.name]) if f.kind == "multi" else canon[f.name] for f in tax.label_fields}


def latest_per_annotator(reviews: Sequence[Review]) -> list[Review]:
    """One review per annotator (their latest); a re-pulled or edited annotation is one vote, not two."""
    by_person: dict[str, Review] = {}
    for i, r in enumerate(reviews):
        key = r.annotator or f"#{i}"
        if key not in by_person or newer_key(r) >= newer_key(by_person[key]):
            by_person[key] = r
    return sorted(by_person.values(), key=newer_key)


def _conflict(tax: Taxonomy, reviews: Sequence[Review], policy: str, reason: str, fields: Iterable[str]) -> Conflict:
    return Conflict(
        article_id=reviews[0].article_id,
        policy=policy,
        reason=reason,
        fields=list(fields),
        reviews=[
            {"annotator": r.annotator, "labels": _plain(tax, _canon(tax, r.labels)), "rationale": r.rationale,
             "updated_at": r.updated_at, "task_id": r.task_id}
            for r in reviews
        ],
    )


def _differing(tax: Taxonomy, reviews: Sequence[Review]) -> list[str]:
    canons = [_canon(tax, r.labels) for r in reviews]
    return [f.name for f in tax.label_fields if len({c[f.name] for c in canons}) > 1]


def _decide(reviews: Sequence[Review], labels: Mapping[str, Any], source: Review) -> Decision:
    return Decision(article_id=source.article_id, labels=dict(labels), rationale=source.rationale, reviews=list(reviews))


def _unanimous(tax: Taxonomy, reviews: Sequence[Review], all_reviews: Sequence[Review], policy: str, reason: str) -> Decision | Conflict:
    differing = _differing(tax, reviews)
    if differing:
        return _conflict(tax, all_reviews, policy, reason, differing)
    latest = reviews[-1]
    return _decide(all_reviews, _plain(tax, _canon(tax, latest.labels)), latest)


def _majority(tax: Taxonomy, reviews: Sequence[Review]) -> Decision | Conflict:
    n = len(reviews)
    canons = [_canon(tax, r.labels) for r in reviews]
    result: dict[str, Any] = {}
    undecided: list[str] = []
    for f in tax.label_fields:
        if f.kind == "single":
            votes = Counter(c[f.name] for c in canons)
            value, top = votes.most_common(1)[0]
            if top * 2 > n:
                result[f.name] = value
            else:
                undecided.append(f.name)
            continue
        votes = Counter(v for c in canons for v in c[f.name])
        if any(count * 2 == n for count in votes.values()):
            undecided.append(f.name)
        result[f.name] = tuple(v for v in f.value_ids if votes[v] * 2 > n)
    if undecided:
        return _conflict(tax, reviews, "majority", "no strict majority (more than half of the reviewers)", undecided)
    # The rationale comes from the latest reviewer whose labels are the decided ones, if any.
    agreeing = [r for r, c in zip(reviews, canons, strict=True) if c == result]
    primary = [r for r, c in zip(reviews, canons, strict=True) if c[tax.primary] == result[tax.primary]]
    source = (agreeing or primary or list(reviews))[-1]
    return _decide(reviews, _plain(tax, result), source)


def adjudicate(tax: Taxonomy, reviews: Sequence[Review], policy: str, leads: Iterable[str] = ()) -> Decision | Conflict:
    """Decide one article's labels from its completed reviews, or say why they cannot be decided.

    - `latest`: the most recent review (by `updated_at`); disagreeing reviews with no or equal
      timestamps at the top are a conflict.
    - `majority`: per single field the value more than half of the reviewers gave; per value of a
      multi field, in if more than half gave it, out if fewer than half did; a tie is a conflict.
    - `lead`: reviews by `leads` win; leads who disagree, or disagreeing reviews without a lead,
      are a conflict.
    Each annotator counts once, with their latest review.
    """
    if policy not in POLICIES:
        raise ConfigError(f"unknown policy {policy!r} (use one of {', '.join(POLICIES)})")
    reviews = latest_per_annotator(reviews)
    if not reviews:
        raise ValueError("adjudicate needs at least one completed review")
    if policy == "majority":
        return _majority(tax, reviews)
    if policy == "lead":
        lead_set = set(leads)
        by_leads = [r for r in reviews if r.annotator in lead_set]
        if by_leads:
            return _unanimous(tax, by_leads, reviews, "lead", "the leads' reviews disagree")
        return _unanimous(tax, reviews, reviews, "lead", "reviewers disagree and no lead has reviewed")
    top = newer_key(reviews[-1])
    tied = [r for r in reviews if newer_key(r) == top] if top[0] else list(reviews)
    return _unanimous(tax, tied, reviews, "latest", "disagreeing reviews with no distinct latest updated_at")


# --------------------------------------------------------------------------- gold records


def gold_record(tax: Taxonomy, decision: Decision, article: Article, *, policy: str, split: str, group: str) -> GoldRecord:
    """A gold line: labels, the article it labels, and where the labels came from."""
    reviews = decision.reviews
    stamps = sorted(r.updated_at for r in reviews if r.updated_at)
    versions = [r.model_version for r in sorted(reviews, key=newer_key) if r.model_version]
    return GoldRecord(
        article_id=decision.article_id,
        labels=decision.labels,
        rationale=decision.rationale,
        split=split,
        group=group,
        title=article.title,
        text=article.text,
        url=article.url,
        source=article.source,
        published_at=article.published_at,
        language=article.language,
        annotators=sorted({r.annotator for r in reviews if r.annotator}),
        n_reviews=len(reviews),
        reviewed_at=stamps[-1] if stamps else None,
        model_version=versions[-1] if versions else None,
        blind=all(r.blind for r in reviews),
        policy=policy,
        taxonomy=tax.name,
        taxonomy_version=tax.version,
    )


_META_COLUMNS = ("article_id", "split", "group", "title", "text", "url", "source", "published_at", "language")
_PROVENANCE_COLUMNS = ("annotators", "n_reviews", "reviewed_at", "model_version", "blind", "policy", "taxonomy", "taxonomy_version")


def gold_columns(tax: Taxonomy) -> list[str]:
    """Columns of the CSV and Parquet files: article, one per label field, rationale, provenance."""
    fields = [f.name for f in tax.label_fields]
    clash = set(fields) & set(_META_COLUMNS + _PROVENANCE_COLUMNS + ("rationale",))
    if clash:
        raise TaxonomyError(f"taxonomy {tax.name!r}: field names {sorted(clash)} clash with export columns")
    return [*_META_COLUMNS, *fields, "rationale", *_PROVENANCE_COLUMNS]


def _row(tax: Taxonomy, record: GoldRecord) -> dict[str, Any]:
    data = record.model_dump(mode="json")
    return {col: data["labels"].get(col) if col in data["labels"] else data.get(col) for col in gold_columns(tax)}


# --------------------------------------------------------------------------- chat format


def chat_answer(tax: Taxonomy, labels: Mapping[str, Any], rationale: str | None) -> str:
    """The assistant's answer: the flat JSON object the drafting prompt asks for, validated by the
    taxonomy's answer model (raises `pydantic.ValidationError` if it would not validate)."""
    flat = {f.name: labels.get(f.name, [] if f.kind == "multi" else None) for f in tax.fields}
    if "rationale" in flat:
        flat["rationale"] = rationale
    answer = draft_model(tax).model_validate(flat)
    return json.dumps(answer.model_dump(mode="json"), ensure_ascii=False)


def chat_example(system: str, user: str, answer: str) -> dict[str, Any]:
    return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": user},
                         {"role": "assistant", "content": answer}]}


def check_chat_example(example: Any) -> list[str]:
    """What OpenAI's fine-tuning endpoint would refuse in one chat example; empty if fine.

    An object with only `messages`, a non-empty list; each message has a known role and a
    non-empty string content and no other keys than role/content/name/weight; a system message
    only first; the last message is the assistant's.
    """
    if not isinstance(example, dict):
        return [f"an example is a JSON object, not {type(example).__name__}"]
    problems = [f"unexpected key {k!r}" for k in example if k != "messages"]
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, "'messages' must be a non-empty list"]
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            problems.append(f"message {i}: not an object")
            continue
        problems += [f"message {i}: unexpected key {k!r}" for k in m if k not in CHAT_MESSAGE_KEYS]
        if m.get("role") not in CHAT_ROLES:
            problems.append(f"message {i}: role {m.get('role')!r} is not one of {', '.join(CHAT_ROLES)}")
        if m.get("role") == "system" and i != 0:
            problems.append(f"message {i}: a system message may only come first")
        content = m.get("content")
        if not isinstance(content, str) or not content.strip():
            problems.append(f"message {i}: content must be a non-empty string")
    if isinstance(messages[-1], dict) and messages[-1].get("role") != "assistant":
        problems.append("the last message must be the assistant's")
    return problems


# --------------------------------------------------------------------------- writers


def _write_csv(path: Path, tax: Taxonomy, records: Sequence[GoldRecord]) -> None:
    multi = {f.name for f in tax.multi_fields} | {"annotators"}
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=gold_columns(tax), quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writeheader()
        for record in records:
            row = _row(tax, record)
            for col in multi:
                row[col] = MULTI_SEP.join(row[col] or [])
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    os.replace(tmp, path)


def _write_parquet(path: Path, tax: Taxonomy, records: Sequence[GoldRecord]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    listed = {f.name for f in tax.multi_fields} | {"annotators"}
    types = {"n_reviews": pa.int64(), "blind": pa.bool_()}
    schema = pa.schema([(c, pa.list_(pa.string()) if c in listed else types.get(c, pa.string())) for c in gold_columns(tax)])
    rows = [_row(tax, r) for r in records]
    table = pa.Table.from_pylist(rows, schema=schema)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the export job


class ExportSummary(BaseModel):
    """What an export did; `problems` are the lines printed on the way (each a rejected input)."""

    out_dir: str
    reviews_read: int = 0
    reviews_completed: int = 0
    articles_exported: int = 0
    counts: dict[str, int] = Field(default_factory=dict)
    conflicts: int = 0
    problems: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        splits = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        lines = [f"exported {self.articles_exported} articles to {self.out_dir} ({splits}) "
                 f"from {self.reviews_completed} completed of {self.reviews_read} reviews"]
        if self.conflicts:
            lines.append(f"{self.conflicts} articles need a lead: {Path(self.out_dir) / 'conflicts.jsonl'}")
        if self.warnings:
            lines.append(f"{len(self.warnings)} warnings in {Path(self.out_dir) / 'manifest.json'}")
        if self.problems:
            lines.append(f"{len(self.problems)} inputs rejected (see the lines above)")
        return "\n".join(lines)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _previous_assignments(manifest_path: Path, seed: int, ratios: Mapping[str, float], tax: Taxonomy, warnings: list[str]) -> dict[str, str]:
    """Where earlier exports into this folder put each article, if they split the same way."""
    if not manifest_path.is_file():
        return {}
    try:
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        same = (old["seed"] == seed and old["split"] == dict(ratios) and old["taxonomy"]["name"] == tax.name)
        assignments = {**old.get("held_assignments", {}), **old["assignments"]}
    except (ValueError, KeyError, TypeError):
        warnings.append(f"{manifest_path}: unreadable; articles were split afresh")
        return {}
    if not same:
        warnings.append(f"{manifest_path}: an earlier export used another seed, split or taxonomy; articles were split afresh")
        return {}
    return {str(k): str(v) for k, v in assignments.items() if v in SPLITS}


def _label_counts(tax: Taxonomy, records: Iterable[GoldRecord]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {f.name: Counter() for f in tax.label_fields}
    for r in records:
        for f in tax.label_fields:
            value = r.labels.get(f.name)
            for v in (value or []) if f.kind == "multi" else [value]:
                if v is not None:
                    counts[f.name][v] += 1
    return {name: {v: c[v] for v in tax.field(name).value_ids if c[v]} for name, c in counts.items()}


def _field_table(fields: Any, tax: Taxonomy) -> list[str]:
    """A Markdown table of the numbers per field, whatever the metrics are called."""
    if not isinstance(fields, dict):
        return []
    known = [f.name for f in tax.fields]
    names = [n for n in known if n in fields] + [n for n in fields if n not in known]
    rows = [(n, {k: v for k, v in fields[n].items() if isinstance(v, int | float) and not isinstance(v, bool)})
            for n in names if isinstance(fields[n], dict)]
    keys = list(dict.fromkeys(k for _, figures in rows for k in figures))
    if not keys:
        return []
    return ["| field | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|",
            *[f"| {n} | " + " | ".join(_fmt(figures.get(k, "")) for k in keys) + " |" for n, figures in rows]]


def _metrics_lines(metrics: Any, tax: Taxonomy) -> list[str]:
    """Agreement figures from an eval report (`annotator eval`'s metrics.json), read defensively."""
    if not isinstance(metrics, dict):
        return ["The eval report given holds no figures this card can read."]
    human = metrics.get("human_agreement")
    blocks = [
        ("Reviewer against reviewer, on articles reviewed more than once (how reliable the labels are)",
         human.get("fields") if isinstance(human, dict) else None),
        ("Model draft against reviewed label (how much reviewers changed)", metrics.get("fields")),
    ]
    lines: list[str] = []
    for title, fields in blocks:
        table = _field_table(fields, tax)
        if table:
            lines += [f"{title}:", "", *table, ""]
    return lines[:-1] if lines else ["The eval report given holds no figures this card can read."]


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _data_card(manifest: Mapping[str, Any], tax: Taxonomy, metrics_lines: list[str] | None) -> str:
    splits = manifest["counts"]
    primary_values = [v for v in tax.field(tax.primary).value_ids]
    table = [f"| {tax.primary} | " + " | ".join(SPLITS) + " |", "|---" * (len(SPLITS) + 1) + "|"]
    for v in primary_values:
        table.append(f"| {v} | " + " | ".join(str(splits[s]["labels"][tax.primary].get(v, 0)) for s in SPLITS) + " |")
    table.append("| **articles** | " + " | ".join(str(splits[s]["articles"]) for s in SPLITS) + " |")
    table.append("| near-duplicate groups | " + " | ".join(str(splits[s]["groups"]) for s in SPLITS) + " |")
    src = manifest["sources"]
    totals = manifest["totals"]
    prompt = manifest.get("prompt")
    lines = [
        f"# Gold data: {tax.title or tax.name}",
        "",
        "## Where the labels come from",
        "",
        f"An LLM drafted labels for each news article{f' (prompt `{prompt}`)' if prompt else ''}; people reviewed "
        "and corrected them in Label Studio. These files hold the reviewed labels, not the drafts.",
        f"- Reviews: `{src['reviews']['path']}` (sha256 {src['reviews']['sha256'][:16]}), "
        f"{totals['reviews_completed']} completed of {totals['reviews_read']} read (skipped and cancelled ones do not count).",
        f"- Articles: `{src['articles']['path']}` (sha256 {src['articles']['sha256'][:16]}).",
        f"- Policy for articles with several reviews: `{manifest['policy']}`"
        + (f" (leads: {', '.join(manifest['leads'])})" if manifest["leads"] else "") + "; each annotator counts once.",
        f"- {totals['conflicts']} articles where reviewers disagree and the policy cannot decide are left out "
        "and listed in `conflicts.jsonl` for a lead.",
        f"- Taxonomy `{tax.name}` version {tax.version} (hash {tax.hash})."
        + (f" Chat examples use prompt `{prompt}`." if prompt else ""),
        f"- Model versions whose drafts reviewers saw: {', '.join(manifest['model_versions']) or 'none recorded'}.",
        "",
        "## Counts",
        "",
        f"Split {'/'.join(str(round(manifest['split'][s] * 100)) for s in SPLITS)} (train/validation/test), seed "
        f"{manifest['seed']}, stratified by `{tax.primary}`; near-duplicates (same URL, same text, or the same story "
        f"with content-word Jaccard >= {STORY_THRESHOLD}, or >= {NEAR_DATE_THRESHOLD} when published within "
        f"{NEAR_DATE_DAYS} days of each other, or at least {NAMES_MIN_SHARED} shared names and figures with cosine "
        f">= {NAMES_COSINE} and word Jaccard >= {NAMES_WORD_FLOOR}) stay in one split.",
        "",
        *table,
        "",
        f"Per-label counts for every field are in `manifest.json`. Labels with fewer than {MIN_EXAMPLES} examples "
        "in a split are listed there under `warnings`.",
        "",
        "## Agreement",
        "",
        *(metrics_lines or ["No eval report was given (`annotator export --eval report/metrics.json` adds it here)."]),
        "",
        "## Files",
        "",
        *[f"- `{name}`" for name in manifest["files"]],
        "",
        "## Known limits",
        "",
        "- Near-duplicates are found by word and name overlap: a translation without shared names or figures, "
        "or a retelling in other words and names, of a story already in another split is not caught.",
        "- Splits stay stable across exports only when exporting into the same folder (its `manifest.json` "
        "holds the assignments); a new seed or split ratio splits afresh.",
        "- Reviewers saw the model's draft unless a task was blind, so labels lean towards the drafts "
        f"({totals['blind_articles']} of {totals['articles_exported']} articles were reviewed blind only).",
        "- Article texts are untrusted web content; the CSV is for data tools, not spreadsheets "
        "(cells are not escaped against formulas).",
    ]
    if manifest["warnings"]:
        lines += ["", f"{len(manifest['warnings'])} warnings: see `manifest.json`."]
    return "\n".join(lines) + "\n"


def export(
    reviews_path: str | Path,
    articles_path: str | Path,
    out_dir: str | Path,
    *,
    taxonomy: str | Taxonomy = "oecd_aim",
    policy: str = "majority",
    leads: Sequence[str] = (),
    split: str = "80/10/10",
    seed: int = 0,
    formats: Sequence[str] = FORMATS,
    prompt: str = "incident@v1",
    eval_path: str | Path | None = None,
    on_error: Callable[[str], None] | None = None,
) -> ExportSummary:
    """Write `out_dir/{train,validation,test}.*`, `conflicts.jsonl`, `manifest.json` and `README.md`.

    Bad review lines, invalid labels and reviewed articles missing from the articles file are
    reported (one line each, through `on_error`) and left out; everything else is exported.
    Raises `ConfigError`/`TaxonomyError` when the job cannot run at all.
    """
    tax = taxonomy if isinstance(taxonomy, Taxonomy) else load_taxonomy(taxonomy)
    reviews_path, articles_path, out = Path(reviews_path), Path(articles_path), Path(out_dir)
    ratios = _check_args(policy, leads, split, formats)
    for path in (reviews_path, articles_path):
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
    columns_ok = gold_columns(tax)  # a taxonomy whose fields clash with columns cannot be exported
    if "csv" in formats:
        bad = [f"{f.name}: {v}" for f in tax.multi_fields for v in f.value_ids if MULTI_SEP in v]
        if bad:
            raise TaxonomyError(f"taxonomy {tax.name!r}: values contain {MULTI_SEP!r}, which CSV cells use between values: {bad}")
    chat_prompt = None
    if "chat" in formats:
        from annotator.prompt import load_prompt

        chat_prompt = load_prompt(prompt)
    metrics_lines = None
    if eval_path is not None:
        try:
            metrics_lines = _metrics_lines(json.loads(Path(eval_path).read_text(encoding="utf-8")), tax)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{eval_path}: cannot read the eval report: {exc}") from None

    summary = ExportSummary(out_dir=str(out))

    def reject(message: str) -> None:
        summary.problems.append(message)
        if on_error:
            on_error(message)

    # Reviews: completed, with labels the taxonomy knows, grouped by article.
    by_article: dict[str, list[Review]] = defaultdict(list)
    for review in iter_jsonl(reviews_path, Review, on_error=lambda e: reject(str(e))):
        summary.reviews_read += 1
        if not is_completed(review):
            continue
        problems = validate_labels(tax, review.labels)
        if not problems and review.labels.get(tax.primary) is None:
            problems = [f"no {tax.primary} given"]
        if problems:
            reject(f"{reviews_path}: article {review.article_id} by {review.annotator or '?'}: {'; '.join(problems)}")
            continue
        summary.reviews_completed += 1
        by_article[review.article_id].append(review)

    decisions: dict[str, Decision] = {}
    conflicts: list[Conflict] = []
    for article_id in sorted(by_article):
        outcome = adjudicate(tax, by_article[article_id], policy, leads)
        if isinstance(outcome, Conflict):
            conflicts.append(outcome)
        else:
            decisions[article_id] = outcome

    # Articles: only those reviewed; the first record of an id wins.
    articles: dict[str, Article] = {}
    for article in iter_jsonl(articles_path, Article, on_error=lambda e: reject(str(e))):
        if article.id in by_article and article.id not in articles:
            articles[article.id] = article
    for article_id in sorted(set(by_article) - set(articles)):
        reject(f"{reviews_path}: article {article_id} has reviews but is not in {articles_path}; left out")
        decisions.pop(article_id, None)
    conflicts = [c for c in conflicts if c.article_id in articles]

    # Splits.
    warnings: list[str] = []
    manifest_path = out / "manifest.json"
    previous = _previous_assignments(manifest_path, seed, ratios, tax, warnings)
    gold_articles = [articles[a] for a in sorted(decisions)]
    groups = near_duplicate_groups(gold_articles)
    strata = {a: str(d.labels.get(tax.primary)) for a, d in decisions.items()}
    assignment, split_warnings = assign_splits(groups, strata, ratios, seed, previous)
    warnings += split_warnings
    group_of = {m: g[0] for g in groups for m in g}
    records: dict[str, list[GoldRecord]] = {s: [] for s in SPLITS}
    for article_id, decision in decisions.items():
        s = assignment[article_id]
        records[s].append(gold_record(tax, decision, articles[article_id], policy=policy, split=s, group=group_of[article_id]))

    # Files.
    out.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    for s in SPLITS:
        rows = sorted(records[s], key=lambda r: r.article_id)
        for fmt in formats:
            path = out / f"{s}{SUFFIX[fmt]}"
            if fmt == "jsonl":
                write_jsonl(path, rows)
            elif fmt == "csv":
                _write_csv(path, tax, rows)
            elif fmt == "parquet":
                _write_parquet(path, tax, rows)
            else:
                assert chat_prompt is not None
                examples = _chat_examples(tax, chat_prompt, rows, articles, reject, warnings)
                write_jsonl(path, examples)
                if s == "train" and len(examples) < CHAT_MIN_EXAMPLES:
                    warnings.append(f"{path.name}: {len(examples)} examples; a fine-tuning job needs at least {CHAT_MIN_EXAMPLES}")
            files.append(path.name)
    for s in SPLITS:
        for fmt in set(FORMATS) - set(formats):
            (out / f"{s}{SUFFIX[fmt]}").unlink(missing_ok=True)  # stale output of an earlier export
    write_jsonl(out / "conflicts.jsonl", conflicts)
    files += ["conflicts.jsonl", "manifest.json", "README.md"]

    counts = {s: {"articles": len(records[s]), "groups": len({r.group for r in records[s]}),  # type: ignore[attr-defined]
                  "labels": _label_counts(tax, records[s])} for s in SPLITS}
    overall = _label_counts(tax, [r for s in SPLITS for r in records[s]])
    for name, values in overall.items():
        for value in values:
            thin = [s for s in SPLITS if ratios[s] > 0 and counts[s]["labels"][name].get(value, 0) < MIN_EXAMPLES]
            if thin:
                per = ", ".join(f"{s} {counts[s]['labels'][name].get(value, 0)}" for s in thin)
                warnings.append(f"{name}={value}: fewer than {MIN_EXAMPLES} examples in {per}")
    all_reviews = [r for d in decisions.values() for r in d.reviews]
    manifest = {
        "taxonomy": {"name": tax.name, "version": tax.version, "hash": tax.hash},
        "prompt": chat_prompt.version if chat_prompt else None,
        "prompt_hash": chat_prompt.hash if chat_prompt else None,
        "policy": policy,
        "leads": sorted(leads),
        "seed": seed,
        "split": dict(ratios),
        "similarity": {"threshold": STORY_THRESHOLD, "near_date_threshold": NEAR_DATE_THRESHOLD,
                       "near_date_days": NEAR_DATE_DAYS, "names_min_shared": NAMES_MIN_SHARED,
                       "names_cosine": NAMES_COSINE, "names_word_floor": NAMES_WORD_FLOOR},
        "formats": list(formats),
        "sources": {
            "reviews": {"path": str(reviews_path), "sha256": _sha256(reviews_path)},
            "articles": {"path": str(articles_path), "sha256": _sha256(articles_path)},
            "eval": str(eval_path) if eval_path else None,
        },
        "totals": {
            "reviews_read": summary.reviews_read,
            "reviews_completed": summary.reviews_completed,
            "articles_exported": len(decisions),
            "conflicts": len(conflicts),
            "rejected": len(summary.problems),
            "blind_articles": sum(1 for d in decisions.values() if all(r.blind for r in d.reviews)),
        },
        "model_versions": sorted({r.model_version for r in all_reviews if r.model_version}),
        "counts": counts,
        "warnings": warnings,
        "files": files,
        "columns": columns_ok,
        "assignments": dict(sorted(assignment.items())),
        "held_assignments": dict(sorted((a, s) for a, s in previous.items() if a not in assignment)),
    }
    _write_text(manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    _write_text(out / "README.md", _data_card(manifest, tax, metrics_lines))

    summary.articles_exported = len(decisions)
    summary.counts = {s: len(records[s]) for s in SPLITS}
    summary.conflicts = len(conflicts)
    summary.warnings = warnings
    summary.files = files
    return summary


def _check_args(policy: str, leads: Sequence[str], split: str, formats: Sequence[str]) -> dict[str, float]:
    if policy not in POLICIES:
        raise ConfigError(f"unknown policy {policy!r} (use one of {', '.join(POLICIES)})")
    if policy == "lead" and not leads:
        raise ConfigError("--policy lead needs --leads (the annotators whose reviews win)")
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(f"unknown format(s) {unknown} (use any of {', '.join(FORMATS)})")
    try:
        return parse_ratios(split)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _chat_examples(tax: Taxonomy, chat_prompt: Any, rows: Sequence[GoldRecord], articles: Mapping[str, Article],
                   reject: Callable[[str], None], warnings: list[str]) -> list[dict[str, Any]]:
    from annotator.prompt import estimate_tokens

    system = chat_prompt.system_message(tax)
    examples = []
    for r in rows:
        try:
            answer = chat_answer(tax, r.labels, r.rationale)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            reject(f"chat: article {r.article_id} left out: its answer does not validate ({where}: {first['msg']})")
            continue
        user, _ = chat_prompt.user_message(articles[r.article_id])
        example = chat_example(system, user, answer)
        problems = check_chat_example(example)
        if problems:
            reject(f"chat: article {r.article_id} left out: {'; '.join(problems)}")
            continue
        tokens = estimate_tokens(system + user + answer)
        if tokens > CHAT_MAX_TOKENS:
            warnings.append(f"chat: article {r.article_id} is about {tokens} tokens, over {CHAT_MAX_TOKENS}: fine-tuning truncates it")
        examples.append(example)
    return examples


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)

