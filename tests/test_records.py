"""Records and JSONL files: line-numbered errors, streaming, torn lines, extra fields kept."""

from __future__ import annotations

import json

import pytest

from annotator.errors import RecordError
from annotator.records import Article, Draft, GoldRecord, JsonlWriter, Review, iter_jsonl, read_jsonl, write_jsonl


def test_round_trip_keeps_extra_fields_and_non_ascii(tmp_path) -> None:
    path = tmp_path / "articles.jsonl"
    articles = [
        Article(id="a_1", title="领英假账户", text="用AI生成假脸", language="zh", origin="x.jsonl:1"),
        Article(id="a_2", text="Plain text", url="https://example.com/a"),
    ]
    assert write_jsonl(path, articles) == 2
    back = read_jsonl(path, Article)
    assert [a.model_dump() for a in back] == [a.model_dump() for a in articles]
    assert back[0].origin == "x.jsonl:1"  # extra fields survive a stage that does not know them
    assert "领英" in path.read_text(encoding="utf-8")  # stored as text, not \\u escapes


def test_bad_line_is_reported_as_file_and_line(tmp_path) -> None:
    path = tmp_path / "drafts.jsonl"
    path.write_text(
        '{"article_id": "a_1", "labels": {"classification": "AI incident"}}\n'
        "\n"
        '{"article_id": "a_2", "labels": \n'
        '["not", "an", "object"]\n'
        '{"labels": {}}\n'
        '{"article_id": "a_3"}\n',
        encoding="utf-8",
    )
    with pytest.raises(RecordError) as info:
        read_jsonl(path, Draft)
    assert str(info.value).startswith(f"{path}:3: not valid JSON")
    assert info.value.line == 3

    errors: list[RecordError] = []
    good = list(iter_jsonl(path, Draft, on_error=errors.append))
    assert [d.article_id for d in good] == ["a_1", "a_3"]
    assert [(e.line, e.message.split(":")[0]) for e in errors] == [
        (3, "not valid JSON"),
        (4, "expected a JSON object, got list"),
        (5, "not a valid Draft"),
    ]
    assert "article_id" in errors[2].message


def test_non_utf8_line_is_reported_and_the_rest_read(tmp_path) -> None:
    path = tmp_path / "reviews.jsonl"
    path.write_bytes(b'{"article_id": "a_1"}\n{"article_id": "caf\xe9"}\n{"article_id": "a_2"}\n')
    errors: list[RecordError] = []
    ids = [r.article_id for r in iter_jsonl(path, Review, on_error=errors.append)]
    assert ids == ["a_1", "a_2"]
    assert str(errors[0]).startswith(f"{path}:2: not UTF-8")


def test_iter_jsonl_streams(tmp_path) -> None:
    path = tmp_path / "gold.jsonl"
    path.write_text('{"article_id": "a_1"}\n{broken\n', encoding="utf-8")
    records = iter_jsonl(path, GoldRecord)
    assert next(records).article_id == "a_1"  # the first record arrives before the bad line is read
    with pytest.raises(RecordError, match=":2:"):
        next(records)


def test_writer_cuts_a_torn_last_line_before_appending(tmp_path) -> None:
    path = tmp_path / "drafts.jsonl"
    path.write_text('{"article_id": "a_1"}\n{"article_id": "a_2", "labels": {"classif', encoding="utf-8")
    with JsonlWriter(path) as writer:
        writer.write(Draft(article_id="a_3"))
    assert [d.article_id for d in read_jsonl(path, Draft)] == ["a_1", "a_3"]


def test_writer_keeps_a_whole_last_record_without_newline(tmp_path) -> None:
    path = tmp_path / "articles.jsonl"
    path.write_text('{"id": "a_1", "text": "one"}\n{"id": "a_2", "text": "two"}', encoding="utf-8")
    with JsonlWriter(path) as writer:
        writer.write(Article(id="a_3", text="three"))
    assert [a.id for a in read_jsonl(path, Article)] == ["a_1", "a_2", "a_3"]


def test_writer_with_only_a_torn_line_starts_clean(tmp_path) -> None:
    path = tmp_path / "drafts.jsonl"
    path.write_text('{"article_id": "a_', encoding="utf-8")
    with JsonlWriter(path) as writer:
        writer.write({"article_id": "a_9"})
    assert path.read_text(encoding="utf-8") == '{"article_id":"a_9"}\n'


def test_writer_flushes_each_record(tmp_path) -> None:
    path = tmp_path / "out" / "reviews.jsonl"
    writer = JsonlWriter(path)
    writer.write(Review(article_id="a_1", annotator="ann@example.org"))
    # Still open: what a killed process would leave behind is already on disk.
    assert json.loads(path.read_text(encoding="utf-8"))["annotator"] == "ann@example.org"
    writer.close()


def test_write_jsonl_replaces_the_file(tmp_path) -> None:
    path = tmp_path / "gold.jsonl"
    write_jsonl(path, [GoldRecord(article_id="a_1")])
    write_jsonl(path, [GoldRecord(article_id="a_2"), GoldRecord(article_id="a_3")])
    assert [g.article_id for g in read_jsonl(path, GoldRecord)] == ["a_2", "a_3"]
    assert not list(tmp_path.glob("*.tmp"))


def test_review_validates_as_gold() -> None:
    review = Review(article_id="a_1", task_id=7, labels={"classification": "AI hazard"}, rationale="Plausible harm.")
    gold = GoldRecord.model_validate(review.model_dump())
    assert gold.labels == {"classification": "AI hazard"}
    assert gold.task_id == 7


def test_newer_review_is_decided_by_instant_not_by_string() -> None:
    from annotator.records import newer_key

    # 09:30 at +02:00 is 07:30 UTC: earlier than 08:00Z, although it sorts later as a string.
    east = Review(article_id="a", annotator="x", updated_at="2026-01-01T09:30:00+02:00")
    utc = Review(article_id="a", annotator="x", updated_at="2026-01-01T08:00:00Z")
    undated = Review(article_id="a", annotator="x")
    assert max([utc, east], key=newer_key) is utc
    assert max([undated, east], key=newer_key) is east


def test_a_lone_surrogate_is_written_as_the_replacement_character(tmp_path) -> None:
    """Half an emoji in a model's answer has no UTF-8 form: the line is written, with U+FFFD for it."""
    path = tmp_path / "drafts.jsonl"
    write_jsonl(path, [{"article_id": "a", "rationale": "half \ud83d an emoji, 中文 kept"}])
    assert path.read_text(encoding="utf-8") == '{"article_id":"a","rationale":"half \ufffd an emoji, 中文 kept"}\n'
