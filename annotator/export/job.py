"""The export job: the I/O edge that reads reviews and articles and writes `gold/`.

Adjudication, splits, formats and the data card are pure modules beside this one. Nothing
time-dependent goes into the output, so exporting the same input twice writes the same bytes, and
re-exporting into the same folder keeps every old article in its split (the assignments are read
back from `gold/manifest.json`).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from annotator.calibrate import is_auto
from annotator.config import DEFAULT_TAXONOMY
from annotator.errors import ConfigError, TaxonomyError
from annotator.evaluate.model import load_metrics
from annotator.export.adjudicate import POLICIES, Conflict, Decision, adjudicate, is_completed
from annotator.export.card import MIN_EXAMPLES, data_card, metrics_lines
from annotator.export.formats import (
    CHAT_MIN_EXAMPLES,
    FORMATS,
    MULTI_SEP,
    SUFFIX,
    ChatPrompt,
    chat_examples,
    gold_columns,
    gold_record,
    write_csv,
    write_parquet,
)
from annotator.export.splits import SPLITS, assign_splits, parse_ratios
from annotator.locks import hold
from annotator.records import Article, GoldRecord, Review, iter_jsonl, write_jsonl, write_text_atomic
from annotator.stories import (
    NAMES_COSINE,
    NAMES_MIN_SHARED,
    NAMES_WORD_FLOOR,
    NEAR_DATE_DAYS,
    NEAR_DATE_THRESHOLD,
    STORY_THRESHOLD,
    story_groups,
)
from annotator.taxonomy import Taxonomy, load_taxonomy, validate_labels

EMPTY_SPLIT_MIN = 2  # articles a split's share asks for, from which an empty split fails the export


class ExportSummary(BaseModel):
    """What an export did; `problems` are the lines printed on the way (each a rejected input)."""

    out_dir: str
    reviews_read: int = 0
    reviews_completed: int = 0
    auto_accepted: int = 0  # drafts accepted without review that were exported (--include-auto)
    auto_left_out: int = 0  # ... that were left out (the default)
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
        if self.auto_accepted or self.auto_left_out:
            lines.append(f"auto-accepted drafts: {self.auto_accepted} exported (label_source auto_accepted), "
                         f"{self.auto_left_out} left out" + ("" if self.auto_accepted else " (--include-auto exports them)"))
        if self.conflicts:
            lines.append(f"{self.conflicts} articles need a lead: {Path(self.out_dir) / 'conflicts.jsonl'}")
        # "Fewer than N examples" comes once per thin label: on a small gold set that is most labels,
        # and it is expected there; one line says so and the other warnings are shown as they are.
        thin = [w for w in self.warnings if THIN_LABEL in w]
        if thin:
            lines.append(f"{len(thin)} labels have {THIN_LABEL} in a split (per-label scores there mean little; "
                         f"each is listed in {Path(self.out_dir) / 'manifest.json'})")
        lines += [f"warning: {w}" for w in self.warnings if THIN_LABEL not in w]
        if self.problems:
            lines.append(f"{len(self.problems)} inputs rejected (see the lines above)")
        return "\n".join(lines)


THIN_LABEL = f"fewer than {MIN_EXAMPLES} examples"


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


def export(
    reviews_path: str | Path,
    articles_path: str | Path,
    out_dir: str | Path,
    *,
    taxonomy: str | Taxonomy = DEFAULT_TAXONOMY,
    policy: str = "majority",
    leads: Sequence[str] = (),
    split: str = "80/10/10",
    seed: int = 0,
    formats: Sequence[str] = FORMATS,
    prompt: ChatPrompt | None = None,
    eval_path: str | Path | None = None,
    on_error: Callable[[str], None] | None = None,
    include_auto: bool = False,
) -> ExportSummary:
    """Write `out_dir/{train,validation,test}.*`, `conflicts.jsonl`, `manifest.json` and `README.md`.

    Bad review lines, invalid labels and reviewed articles missing from the articles file are
    reported (one line each, through `on_error`) and left out; everything else is exported.
    Raises `ConfigError`/`TaxonomyError` when the job cannot run at all.

    Drafts accepted without review (`source: auto_accepted` records, from `pull --accepted`) are
    left out unless `include_auto`; an article a person reviewed is decided by the reviews alone.

    A second export into the same folder waits for this one (one line through `on_error` says so),
    so two people exporting at once never interleave their files.
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
    if "chat" in formats and prompt is None:
        raise ConfigError("the chat format needs the drafting prompt (the CLI's --prompt)")
    chat_prompt = prompt if "chat" in formats else None
    card_metrics = None
    if eval_path is not None:
        try:
            card_metrics = metrics_lines(load_metrics(eval_path), tax)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"{eval_path}: not an eval report's metrics.json ({where}: {first['msg']})") from None
        except OSError as exc:
            raise ConfigError(f"{eval_path}: cannot read the eval report: {exc}") from None

    # The folder to itself from here on (bad arguments have failed by now, without waiting).
    with hold([out], "export", on_error or (lambda m: print(m, file=sys.stderr))):
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
        for article_id, group in list(by_article.items()):
            people = [r for r in group if not is_auto(r)]
            if len(people) == len(group):
                continue
            summary.reviews_completed -= len(group) - len(people)  # an accepted draft is not a review
            if people:  # a person reviewed it after all: the reviews decide
                by_article[article_id] = people
            elif include_auto:
                summary.auto_accepted += 1
                by_article[article_id] = group[-1:]
            else:
                summary.auto_left_out += 1
                del by_article[article_id]

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
        grouping = story_groups(gold_articles)
        groups = grouping.groups
        warnings += [f"story {c.story}: {c.refused_links} links refused at {c.cap} articles (chaining: the story cap, "
                     f"see the README's 'Stories'); {c.size} articles kept together" for c in grouping.capped]
        strata = {a: str(d.labels.get(tax.primary)) for a, d in decisions.items()}
        assignment, split_warnings = assign_splits(groups, strata, ratios, seed, previous)
        warnings += split_warnings
        group_of = {m: g[0] for g in groups for m in g}
        records: dict[str, list[GoldRecord]] = {s: [] for s in SPLITS}
        for article_id, decision in decisions.items():
            s = assignment[article_id]
            record = gold_record(tax, decision, articles[article_id], policy=policy, split=s, group=group_of[article_id])
            if _applied_only(decision):  # a review applied from its story, never one of its own: marked, and counted apart
                record = record.model_copy(update={"applied_from_story": True})
            records[s].append(record)
        # An empty split whose share asks for EMPTY_SPLIT_MIN articles or more means stories swallowed it:
        # refuse. Below that (a tiny export, rounding within each label) it is a warning.
        expected = {s: ratios[s] * len(decisions) for s in SPLITS}
        empty = [s for s in SPLITS if expected[s] >= EMPTY_SPLIT_MIN and not records[s]]
        warnings += [f"{s}: empty ({expected[s]:.1f} articles at this share)" for s in SPLITS
                     if 0 < expected[s] < EMPTY_SPLIT_MIN and not records[s]]
        if empty:
            largest = grouping.largest(3)
            sizes = ", ".join(f"{g['story']} {g['size']}" for g in largest) or "all of one article"
            reject(f"export: the {' and '.join(empty)} split{'s' if len(empty) > 1 else ''} would be empty: {len(decisions)} articles "
                   f"fell into {len(groups)} story group{'s' if len(groups) != 1 else ''} (largest: {sizes}) and a story is never "
                   f"split; nothing was written. Export more articles, or give the empty split no share (e.g. --split "
                   f"{'/'.join('0' if s in empty else str(round(ratios[s] * 100)) for s in SPLITS)}), or check the largest "
                   "groups for stories chained together")
            summary.articles_exported = 0
            return summary

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
                    write_csv(path, tax, rows)
                elif fmt == "parquet":
                    write_parquet(path, tax, rows)
                else:
                    assert chat_prompt is not None
                    examples = chat_examples(tax, chat_prompt, rows, articles, reject, warnings)
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
                    warnings.append(f"{name}={value}: {THIN_LABEL} in {per}")
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
                "applied_from_story": sum(1 for d in decisions.values() if _applied_only(d)),
                "auto_accepted": sum(1 for d in decisions.values() if any(is_auto(r) for r in d.reviews)),
            },
            "model_versions": sorted({r.model_version for r in all_reviews if r.model_version}),
            "counts": counts,
            "largest_groups": grouping.largest(10),
            "capped_groups": [c.model_dump() for c in grouping.capped],
            "warnings": warnings,
            "files": files,
            "columns": columns_ok,
            "assignments": dict(sorted(assignment.items())),
            "held_assignments": dict(sorted((a, s) for a, s in previous.items() if a not in assignment)),
        }
        write_text_atomic(manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        write_text_atomic(out / "README.md", data_card(manifest, tax, card_metrics))

        summary.articles_exported = len(decisions)
        summary.counts = {s: len(records[s]) for s in SPLITS}
        summary.conflicts = len(conflicts)
        summary.warnings = warnings
        summary.files = files
        return summary


def _applied_only(decision: Decision) -> bool:
    return all((r.model_extra or {}).get("applied_from_story") for r in decision.reviews)


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


