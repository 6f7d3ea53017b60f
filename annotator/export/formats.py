"""Output formats of the gold data: gold records, CSV/Parquet columns, and chat examples for fine-tuning.

The chat format needs the drafting prompt's system and user messages; it receives the prompt as
data (anything shaped like `ChatPrompt`, e.g. a loaded `annotator.prompt.Prompt`), so export does
not depend on the drafting stage. The caller (CLI, demo) loads it.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from annotator.calibrate import AUTO_ACCEPTED
from annotator.errors import TaxonomyError
from annotator.export.adjudicate import Decision
from annotator.records import Article, GoldRecord, Review, newer_key, replacing
from annotator.taxonomy import Taxonomy, draft_model

SUFFIX = {"jsonl": ".jsonl", "csv": ".csv", "parquet": ".parquet", "chat": ".chat.jsonl"}
FORMATS = tuple(SUFFIX)
MULTI_SEP = "|"  # multi-valued fields in CSV cells; taxonomy values may not contain it
# What OpenAI's fine-tuning endpoint accepts in a chat example (its data-preparation checks):
CHAT_ROLES = ("system", "user", "assistant")
CHAT_MESSAGE_KEYS = ("role", "content", "name", "weight")
CHAT_MIN_EXAMPLES = 10  # a training file with fewer examples is refused
CHAT_MAX_TOKENS = 65_536  # per-example context of gpt-4o(-mini) fine-tuning; longer examples get truncated


class ChatPrompt(Protocol):
    """What the chat format needs of a prompt: its version and hash for the manifest, and its messages."""

    @property
    def version(self) -> str: ...

    @property
    def hash(self) -> str: ...

    def system_message(self, tax: Taxonomy) -> str: ...

    def user_message(self, article: Article) -> tuple[str, bool]: ...


def _estimate_tokens(text: str) -> int:
    """Rough token count, 4 characters a token (the rule the drafting prompt budgets with)."""
    return math.ceil(len(text) / 4)


def gold_record(tax: Taxonomy, decision: Decision, article: Article, *, policy: str, split: str, group: str) -> GoldRecord:
    """A gold line: labels, the article it labels, and where the labels came from."""
    reviews = decision.reviews
    stamps = sorted(r.updated_at for r in reviews if r.updated_at)
    versions = [r.model_version for r in sorted(reviews, key=newer_key) if r.model_version]
    auto = next((r.model_extra for r in reviews if (r.model_extra or {}).get("source") == AUTO_ACCEPTED), None)
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
        label_source=AUTO_ACCEPTED if auto else "review",
        auto_guarantee=auto.get("guarantee") if auto else None,
        **({tax.link.name: reviewed_link(tax.link.name, reviews)} if tax.link else {}),
    )


def reviewed_link(name: str, reviews: Sequence[Review]) -> str | None:
    """The reviewers' link to a recorded incident: the one they agree on; null when none chose one
    or they chose differently (the labels' adjudication does not decide between incidents)."""
    chosen = {(r.model_extra or {}).get(name) for r in reviews} - {None}
    return chosen.pop() if len(chosen) == 1 else None


_META_COLUMNS = ("article_id", "split", "group", "title", "text", "url", "source", "published_at", "language")
_PROVENANCE_COLUMNS = ("annotators", "n_reviews", "reviewed_at", "model_version", "blind", "policy", "taxonomy", "taxonomy_version",
                       "label_source", "auto_guarantee")


def gold_columns(tax: Taxonomy) -> list[str]:
    """Columns of the CSV and Parquet files: article, one per label field, rationale, provenance."""
    fields = [f.name for f in tax.label_fields] + ([tax.link.name] if tax.link else [])
    clash = set(fields) & set(_META_COLUMNS + _PROVENANCE_COLUMNS + ("rationale",))
    if clash:
        raise TaxonomyError(f"taxonomy {tax.name!r}: field names {sorted(clash)} clash with export columns")
    return [*_META_COLUMNS, *fields, "rationale", *_PROVENANCE_COLUMNS]


def _row(tax: Taxonomy, record: GoldRecord) -> dict[str, Any]:
    data = record.model_dump(mode="json")
    return {col: data["labels"].get(col) if col in data["labels"] else data.get(col) for col in gold_columns(tax)}




def chat_answer(tax: Taxonomy, labels: Mapping[str, Any], rationale: str | None) -> str:
    """The assistant's answer: the flat JSON object the drafting prompt asks for, validated by the
    taxonomy's answer model (raises `pydantic.ValidationError` if it would not validate)."""
    flat = {f.name: labels.get(f.name, f.empty) for f in tax.fields}
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




def write_csv(path: Path, tax: Taxonomy, records: Sequence[GoldRecord]) -> None:
    multi = {f.name for f in tax.multi_fields} | {"annotators"}
    with replacing(path) as tmp, tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=gold_columns(tax), quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writeheader()
        for record in records:
            row = _row(tax, record)
            for col in multi:
                row[col] = MULTI_SEP.join(row[col] or [])
            writer.writerow({k: "" if v is None else v for k, v in row.items()})


def write_parquet(path: Path, tax: Taxonomy, records: Sequence[GoldRecord]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    listed = {f.name for f in tax.multi_fields} | {"annotators"}
    types = {"n_reviews": pa.int64(), "blind": pa.bool_()}
    schema = pa.schema([(c, pa.list_(pa.string()) if c in listed else types.get(c, pa.string())) for c in gold_columns(tax)])
    rows = [_row(tax, r) for r in records]
    table = pa.Table.from_pylist(rows, schema=schema)
    with replacing(path) as tmp:
        pq.write_table(table, tmp)


def chat_examples(tax: Taxonomy, chat_prompt: ChatPrompt, rows: Sequence[GoldRecord], articles: Mapping[str, Article],
                  reject: Callable[[str], None], warnings: list[str]) -> list[dict[str, Any]]:
    """The chat examples of one split; a record whose answer or messages would be refused is rejected."""
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
        tokens = _estimate_tokens(system + user + answer)
        if tokens > CHAT_MAX_TOKENS:
            warnings.append(f"chat: article {r.article_id} is about {tokens} tokens, over {CHAT_MAX_TOKENS}: fine-tuning truncates it")
        examples.append(example)
    return examples
