"""Ingest: every input format, every kind of bad input, stable ids, de-duplication, re-runs, samples."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from annotator.cli import main
from annotator.demo import sample_gold_path, samples_dir
from annotator.ingest import (
    LARGE_TEXT_CHARS,
    article_id,
    guess_language,
    ingest,
    read_articles,
)
from annotator.normalise import clean_text, url_key
from annotator.records import Article, GoldRecord, read_jsonl
from annotator.taxonomy import load_taxonomy, validate_labels

CLIPPING = """---
category: news
title: "Friendloop removes fake accounts that used AI-generated profile photos"
excerpt: "Researchers who studied the accounts said generated portraits had never been used on fake profiles at this scale."
publishedDateTime: 2025-11-14T18:40:00Z
sourceUrl: https://www.meridian-tech-wire.example/news/friendloop-fake-accounts/
provider:
  name: Meridian Tech Wire
  domain: meridian-tech-wire.example
topics:
  - AI
---
"""
PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Robot vacuum uploaded floor plans | Daily Tech</title>
<link rel="canonical" href="https://dailytech.example/robot-vacuum-floor-plans">
<meta property="og:site_name" content="Daily Tech"></head>
<body><nav><a href="/">Home</a> | <a href="/news">News</a> | <a href="/sport">Sport</a></nav>
<article><h1>Robot vacuum uploaded floor plans</h1>
<p>A robot vacuum cleaner uploaded detailed floor plans of customers' homes to a cloud server without asking them, researchers said on Tuesday.</p>
<p>The manufacturer said the maps were used to improve navigation and that it would add a setting to switch the upload off.</p>
</article><footer>Copyright 2025 Daily Tech. Cookie settings.</footer></body></html>
"""


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def run(inputs, output, messages: list[str] | None = None):
    return ingest(inputs, output, on_error=(messages.append if messages is not None else None))


# --------------------------------------------------------------------------- formats


def test_jsonl_with_field_aliases_and_html_in_text(tmp_path) -> None:
    src = write(
        tmp_path / "in.jsonl",
        jsonl(
            {"title": "One", "text": "First  article\r\n\r\n\r\nwith   space.", "url": "https://a.example/1", "lang": "EN"},
            {
                "headline": "Two",
                "body": "<div><p>Para <b>one</b> of the story.</p><p>Para two.</p><script>var x=1;</script></div>",
                "link": "https://a.example/2",
                "provider": {"name": "Wire"},
                "publishedDateTime": "2024-01-02",
            },
        ),
    )
    summary = run([src], tmp_path / "out.jsonl")
    assert (summary.read, summary.written, summary.ok) == (2, 2, True)
    one, two = read_jsonl(tmp_path / "out.jsonl", Article)
    assert (one.title, one.text, one.language) == ("One", "First article\n\nwith space.", "en")
    assert one.origin == f"{src}:1"
    assert two.title == "Two" and two.source == "Wire" and two.published_at == "2024-01-02"
    assert "<" not in two.text and "var x" not in two.text
    assert "Para one of the story." in two.text and "Para two." in two.text


def test_csv_and_tsv(tmp_path) -> None:
    write(tmp_path / "a.csv", 'title,Content,URL\n"Quoted, title","Line one\nline two",https://b.example/1\n')
    write(tmp_path / "b.tsv", "headline\ttext\nTab title\tTab separated text\n")
    summary = run([tmp_path / "a.csv", tmp_path / "b.tsv"], tmp_path / "out.jsonl")
    assert summary.formats == {"csv": 2} and summary.ok
    a, b = read_jsonl(tmp_path / "out.jsonl", Article)
    assert (a.title, a.text, a.url) == ("Quoted, title", "Line one\nline two", "https://b.example/1")
    assert (b.title, b.text, b.url) == ("Tab title", "Tab separated text", None)


def test_markdown_clipping_takes_text_from_the_excerpt(tmp_path) -> None:
    src = write(tmp_path / "clip.md", CLIPPING)
    run([src], tmp_path / "out.jsonl")
    [art] = read_jsonl(tmp_path / "out.jsonl", Article)
    assert art.title == "Friendloop removes fake accounts that used AI-generated profile photos"
    assert art.text.startswith("Researchers who studied the accounts")
    assert art.url == "https://www.meridian-tech-wire.example/news/friendloop-fake-accounts/"
    assert art.source == "Meridian Tech Wire"
    assert art.published_at is not None and art.published_at.startswith("2025-11-14T18:40:00")


def test_clipping_named_txt_is_read_as_a_clipping(tmp_path) -> None:
    run([samples_dir() / "clipping_generated_faces.txt"], tmp_path / "out.jsonl")  # the clipping service's format
    [art] = read_jsonl(tmp_path / "out.jsonl", Article)
    assert art.source == "Meridian Tech Wire" and art.format == "markdown"
    assert art.text.startswith("Researchers who studied the group of accounts said")


def test_markdown_with_body_and_plain_text(tmp_path) -> None:
    write(tmp_path / "notes.md", "---\nsourceUrl: https://c.example/x\n---\n# Heading title\n\nBody paragraph.\n")
    write(tmp_path / "plain.txt", "\n\n  Title line  \n\nFirst paragraph.\n\nSecond paragraph.\n")
    run([tmp_path / "notes.md", tmp_path / "plain.txt"], tmp_path / "out.jsonl")
    md, txt = read_jsonl(tmp_path / "out.jsonl", Article)
    assert (md.title, md.text, md.url) == ("Heading title", "Body paragraph.", "https://c.example/x")
    assert (txt.title, txt.text) == ("Title line", "First paragraph.\n\nSecond paragraph.")


def test_html_main_text_without_boilerplate(tmp_path) -> None:
    run([write(tmp_path / "page.html", PAGE)], tmp_path / "out.jsonl")
    [art] = read_jsonl(tmp_path / "out.jsonl", Article)
    assert art.title == "Robot vacuum uploaded floor plans"
    assert art.url == "https://dailytech.example/robot-vacuum-floor-plans"
    assert art.source == "Daily Tech"
    assert "uploaded detailed floor plans" in art.text and "switch the upload off" in art.text
    for boilerplate in ("Home", "Sport", "Copyright", "Cookie"):
        assert boilerplate not in art.text


def test_folders_are_read_recursively_skipping_hidden_files_the_output_and_locks(tmp_path) -> None:
    write(tmp_path / "in" / "a.txt", "A title\nA text.")
    write(tmp_path / "in" / "drafts.jsonl.lock", '{"command": "draft", "pid": 1}')  # another stage's, in a shared folder
    write(tmp_path / "in" / "deep" / "er" / "b.jsonl", jsonl({"text": "B text."}))
    write(tmp_path / "in" / ".hidden" / "c.txt", "Hidden\nNot an article.")
    write(tmp_path / "in" / ".DS_Store", b"\x00\x01")
    out = tmp_path / "in" / "articles.jsonl"  # the output inside an input folder is not read back
    summary = run([tmp_path / "in"], out)
    summary = run([tmp_path / "in"], out)
    assert summary.ok and summary.read == 2 and summary.already_present == 2
    assert [a.text for a in read_jsonl(out, Article)] == ["A text.", "B text."]


def test_non_english_passes_through_intact(tmp_path) -> None:
    title = "领英1000多个假账户被曝光,用AI生成假脸冒充真人发推销信息"
    text = "研究人员发现，领英上有一千多个账户使用人工智能生成的假脸。\n\n这些账户冒充真人发送推销信息。"
    write(tmp_path / "zh.jsonl", jsonl({"title": title, "text": text}))
    write(tmp_path / "ja.txt", "AIが生成した顔写真\n\nリンクトインで偽のアカウントが見つかった。")
    run([tmp_path], tmp_path / "out.jsonl")
    ja, zh = read_jsonl(tmp_path / "out.jsonl", Article)
    assert (zh.title, zh.text, zh.language) == (title, text, "zh")
    assert ja.language == "ja" and ja.title == "AIが生成した顔写真"
    assert title in (tmp_path / "out.jsonl").read_text(encoding="utf-8")


def test_huge_article_is_kept_and_named(tmp_path) -> None:
    body = "An AI system did something worth reporting. " * (LARGE_TEXT_CHARS // 40)
    write(tmp_path / "big.jsonl", jsonl({"title": "Big", "text": body}, {"title": "Small", "text": "Small text."}))
    summary = run([tmp_path / "big.jsonl"], tmp_path / "out.jsonl")
    big, _small = read_jsonl(tmp_path / "out.jsonl", Article)
    assert len(big.text) > LARGE_TEXT_CHARS and big.text == body.strip()
    assert summary.large == [big.id] and summary.ok
    assert big.id in summary.describe()


# --------------------------------------------------------------------------- bad input


def test_each_bad_input_gets_one_line_and_the_rest_is_ingested(tmp_path) -> None:
    d = tmp_path / "in"
    write(d / "a.jsonl", jsonl({"text": "Good one."}) + "{not json\n" + jsonl({"title": "no text here"}, {"text": "Good two."}))
    write(d / "b.csv", "title,text\nFine,Good three.\nEmpty,\nAlso fine,Good four.\n")
    write(d / "c.txt", "")
    write(d / "d.txt", b"Title\nCaf\xe9 au lait\n")
    write(d / "e.pdf", b"%PDF-1.4")
    write(d / "f.md", "---\ntitle: Only a title\n---\n")
    write(d / "g.jsonl", b'{"text": "Good five."}\n{"text": "bad \xff byte"}\n')
    messages: list[str] = []
    summary = run([d, tmp_path / "missing.jsonl"], tmp_path / "out.jsonl", messages)

    assert [a.text for a in read_jsonl(tmp_path / "out.jsonl", Article)] == [
        "Good one.", "Good two.", "Good three.", "Good four.", "Good five.",
    ]  # fmt: skip
    expected = [
        (f"{d / 'a.jsonl'}:2: malformed line", "not valid JSON"),
        (f"{d / 'a.jsonl'}:3: no text", "empty or missing text"),
        (f"{d / 'b.csv'}:3: no text", "empty or missing text"),
        (f"{d / 'c.txt'}: empty file", ""),
        (f"{d / 'd.txt'}:2: not UTF-8", "0xE9"),
        (f"{d / 'e.pdf'}: unknown file type", ".pdf"),
        (f"{d / 'f.md'}: no text", "empty"),
        (f"{d / 'g.jsonl'}:2: not UTF-8", "0xFF"),
        (f"{tmp_path / 'missing.jsonl'}: not found", ""),
    ]
    assert len(messages) == len(expected)
    for message, (start, detail) in zip(messages, expected, strict=True):
        assert message.startswith(start) and detail in message and "\n" not in message
    assert summary.rejected == {
        "malformed line": 1, "no text": 3, "empty file": 1, "not UTF-8": 2, "unknown file type": 1, "not found": 1,
    }  # fmt: skip
    assert not summary.ok
    assert "rejected 9" in summary.describe()


def test_csv_row_with_bad_bytes_is_rejected_alone(tmp_path) -> None:
    src = write(tmp_path / "x.csv", b'title,text\nA,Good one\nB,caf\xe9 bad\nC,"multi\nline good"\n')
    messages: list[str] = []
    summary = run([src], tmp_path / "out.jsonl", messages)
    assert [a.text for a in read_jsonl(tmp_path / "out.jsonl", Article)] == ["Good one", "multi\nline good"]
    assert messages == [f"{src}:3: not UTF-8: byte 0xE9; save the file as UTF-8; skipped"]
    assert summary.rejected == {"not UTF-8": 1}


def test_csv_without_a_text_column_is_one_line(tmp_path) -> None:
    src = write(tmp_path / "x.csv", "title,author\nA,B\nC,D\n")
    messages: list[str] = []
    summary = run([src], tmp_path / "out.jsonl", messages)
    assert messages == [f"{src}:1: no text column: header has none of text, body, content; skipped"]
    assert summary.read == 0


def test_cli_exit_codes_and_stderr(tmp_path, capsys) -> None:
    good = write(tmp_path / "good.jsonl", jsonl({"text": "Fine."}))
    assert main(["ingest", str(good), "-o", str(tmp_path / "out.jsonl")]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "written 1" in captured.out

    bad = write(tmp_path / "bad.jsonl", jsonl({"text": "Also fine."}) + "[1, 2]\n")
    assert main(["ingest", str(bad), "-o", str(tmp_path / "out.jsonl")]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"{bad}:2: malformed line: expected a JSON object, got list; skipped"]
    assert "written 1" in captured.out and "rejected 1 (1 malformed line)" in captured.out


def test_unwritable_output_is_exit_2_with_one_line(tmp_path, capsys) -> None:
    src = write(tmp_path / "a.jsonl", jsonl({"text": "Fine."}))
    assert main(["ingest", str(src), "-o", str(tmp_path)]) == 2  # a folder, not a file
    assert capsys.readouterr().err.splitlines() == [f"annotator: {tmp_path}: cannot write the output (Is a directory)"]


def test_console_script_reports_and_exits_1(tmp_path) -> None:
    script = Path(sys.executable).with_name("annotator")
    if not script.exists():
        pytest.skip("console script not installed next to this Python")
    write(tmp_path / "in" / "ok.txt", "Title\nText.")
    write(tmp_path / "in" / "x.docx", b"PK")
    done = subprocess.run(
        [str(script), "ingest", str(tmp_path / "in"), "-o", str(tmp_path / "out.jsonl")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"{tmp_path / 'in' / 'x.docx'}: unknown file type: '.docx' (known: .csv .htm .html .jsonl .markdown .md .ndjson "
        ".tsv .txt); skipped"
    ]
    assert "written 1" in done.stdout


# --------------------------------------------------------------------------- ids, de-duplication, re-runs


def test_url_normalisation() -> None:
    same = [
        "https://news.example/story/42",
        "http://news.example/story/42/",
        "https://www.NEWS.example/story/42?utm_source=twitter&utm_medium=social",
        "https://news.example/story/42?fbclid=abc#comments",
        "  https://news.example:443/story/42  ",
    ]
    assert {url_key(u) for u in same} == {"https://news.example/story/42"}
    assert url_key("https://news.example/story?b=2&a=1") == url_key("https://news.example/story?a=1&b=2")
    assert url_key("https://news.example/story?id=1") != url_key("https://news.example/story?id=2")
    assert url_key("https://news.example/Story/42") != url_key("https://news.example/story/42")


def test_id_from_url_ignores_tracking_and_text() -> None:
    a = article_id("https://news.example/s/1?utm_campaign=x", "one text")
    b = article_id("http://www.news.example/s/1/", "another text entirely")
    assert a == b and a.startswith("a_") and len(a) == 18
    assert article_id("https://news.example/s/2", "one text") != a


def test_id_from_text_ignores_layout_but_not_content() -> None:
    assert article_id(None, "Same  text,\r\nwrapped.") == article_id("", "same text, wrapped.")
    assert article_id(None, "Same text.") != article_id(None, "Other text.")
    assert clean_text("café") == clean_text("cafe\u0301")  # NFC: one spelling of é


def test_ids_are_stable_across_runs_and_outputs(tmp_path) -> None:
    src = write(tmp_path / "in.jsonl", jsonl({"text": "No URL here."}, {"text": "x", "url": "https://d.example/1?utm_source=a"}))
    run([src], tmp_path / "one.jsonl")
    run([src], tmp_path / "two.jsonl")
    ids_one = [a.id for a in read_jsonl(tmp_path / "one.jsonl", Article)]
    ids_two = [a.id for a in read_jsonl(tmp_path / "two.jsonl", Article)]
    assert ids_one == ids_two
    assert ids_one == [article_id(None, "No URL here."), article_id("https://d.example/1", "")]


def test_exact_duplicates_are_dropped_and_counted(tmp_path) -> None:
    write(
        tmp_path / "a.jsonl",
        jsonl(
            {"title": "Original", "text": "Story one.", "url": "https://e.example/one"},
            {"title": "Same URL, tracking", "text": "Story one, updated.", "url": "https://e.example/one/?utm_source=x"},
            {"title": "Same text, no URL", "text": "story   ONE."},
            {"title": "Other", "text": "Story two."},
        ),
    )
    write(tmp_path / "b.csv", "title,text,url\nSyndicated,Story two.,https://f.example/two\n")
    summary = run([tmp_path / "a.jsonl", tmp_path / "b.csv"], tmp_path / "out.jsonl")
    assert [a.title for a in read_jsonl(tmp_path / "out.jsonl", Article)] == ["Original", "Other"]
    assert (summary.read, summary.written, summary.duplicates, summary.ok) == (5, 2, 3, True)
    assert "duplicates dropped 3" in summary.describe()


def test_rerun_appends_nothing_and_new_files_are_added(tmp_path) -> None:
    src = tmp_path / "in"
    write(src / "a.jsonl", jsonl({"text": "First."}, {"text": "Second.", "url": "https://g.example/2"}))
    out = tmp_path / "out.jsonl"
    run([src], out)
    before = out.read_bytes()
    again = run([src], out)
    assert out.read_bytes() == before
    assert (again.written, again.already_present, again.duplicates) == (0, 2, 0)
    write(src / "b.txt", "Third title\nThird.")
    third = run([src], out)
    assert (third.written, third.already_present) == (1, 2)
    assert [a.text for a in read_jsonl(out, Article)] == ["First.", "Second.", "Third."]


def test_rerun_after_a_torn_write_completes_the_file(tmp_path) -> None:
    src = write(tmp_path / "a.jsonl", jsonl({"text": "One."}, {"text": "Two."}))
    out = tmp_path / "out.jsonl"
    run([src], out)
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(lines[0] + lines[1][:15])  # killed half-way through the second record
    summary = run([src], out)
    assert (summary.written, summary.already_present, summary.ok) == (1, 1, True)
    assert [a.text for a in read_jsonl(out, Article)] == ["One.", "Two."]


def test_read_articles_reports_through_the_callback(tmp_path) -> None:
    write(tmp_path / "a.jsonl", jsonl({"text": "One."}) + "oops\n" + jsonl({"text": "One."}))
    messages: list[str] = []
    articles = list(read_articles([tmp_path / "a.jsonl"], on_error=messages.append))
    assert [a.text for a in articles] == ["One.", "One."]  # no de-duplication here
    assert len(messages) == 1 and messages[0].startswith(f"{tmp_path / 'a.jsonl'}:2: malformed line")


def test_language_guess_is_cheap_and_cautious() -> None:
    assert guess_language("The company said on Monday that the model it had trained was not safe for use.") == "en"
    assert guess_language("La empresa dijo el lunes que el modelo no era seguro para su uso en hospitales.") is None
    assert guess_language("人工智能生成的假脸冒充真人") == "zh"
    assert guess_language("인공지능이 만든 가짜 얼굴") == "ko"
    assert guess_language("12345 ---") is None


# --------------------------------------------------------------------------- the bundled samples


def test_samples_ingest_cleanly_and_gold_covers_them(tmp_path) -> None:
    summary = run([samples_dir()], tmp_path / "articles.jsonl")
    articles = read_jsonl(tmp_path / "articles.jsonl", Article)
    assert summary.ok and summary.duplicates == 1 and summary.written == len(articles) >= 24
    assert set(summary.formats) == {"jsonl", "csv", "markdown", "text", "html"}
    assert any(a.language == "zh" for a in articles)
    assert any("Ignore previous instructions" in a.text for a in articles)

    tax = load_taxonomy("oecd_aim")
    gold = read_jsonl(sample_gold_path(), GoldRecord)
    assert sorted(g.article_id for g in gold) == sorted(a.id for a in articles)
    label_fields = {f.name for f in tax.label_fields}
    for g in gold:
        assert set(g.labels) == label_fields, g.article_id
        assert validate_labels(tax, g.labels) == [], g.article_id
        assert g.rationale and 2 <= g.rationale.count(". ") + 1 <= 4, g.article_id
    classes = Counter(g.labels[tax.primary] for g in gold)
    assert set(classes) == set(tax.field(tax.primary).value_ids) and min(classes.values()) >= 4


def test_the_eval_suites_gold_is_the_samples_gold() -> None:
    """evals/gold.jsonl is a copy (the eval suite ships with the repository, the samples with the
    package): a sample rewritten in one and not the other would score the suite on a stale id."""
    evals_gold = Path(__file__).resolve().parents[1] / "evals" / "gold.jsonl"
    assert evals_gold.read_bytes() == sample_gold_path().read_bytes()
