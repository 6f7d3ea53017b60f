"""Inputs that cannot hurt: binary and control-character texts, HTML fragments, readers that fail."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from annotator.ingest import ingest
from annotator.records import Article, read_jsonl


def _ingest(inputs: list[Path], out: Path) -> tuple[list[Article], list[str]]:
    messages: list[str] = []
    ingest(inputs, out, on_error=messages.append)
    return (read_jsonl(out, Article) if out.exists() else []), messages


def test_nul_and_control_character_texts_are_rejected_with_file_and_reason(tmp_path):
    (tmp_path / "zeros.txt").write_bytes(b"\x00" * 5000)
    (tmp_path / "noise.jsonl").write_text(json.dumps({"text": "\x01\x02\x03\x04 abc \x05\x06\x07\x08"}) + "\n"
                                          + json.dumps({"text": "A chatbot gave wrong advice."}) + "\n")
    articles, messages = _ingest([tmp_path / "zeros.txt", tmp_path / "noise.jsonl"], tmp_path / "out.jsonl")
    assert sorted(messages) == sorted([
        f"{tmp_path / 'zeros.txt'}: not text: 100% of its characters are NUL or control characters; skipped",
        f"{tmp_path / 'noise.jsonl'}:1: not text: 62% of its characters are NUL or control characters; skipped",
    ])
    (a,) = articles
    assert a.text == "A chatbot gave wrong advice."


def test_a_text_field_holding_an_html_fragment_keeps_its_words(tmp_path):
    fragment = ("<i>This briefing is part of our series on influence operations.</i> A network of accounts used "
                "<b>AI-generated</b> profile pictures to pose as local journalists.<br>The platform removed 300 accounts.")
    (tmp_path / "in.jsonl").write_text(json.dumps({"title": "Fake faces", "text": fragment}) + "\n"
                                       + json.dumps({"title": "Only markup", "text": "<p><br></p><script>x()</script>"}) + "\n")
    articles, messages = _ingest([tmp_path / "in.jsonl"], tmp_path / "out.jsonl")
    (a,) = articles
    assert a.text.startswith("This briefing is part of our series on influence operations. A network of accounts used")
    assert "AI-generated profile pictures" in a.text and "The platform removed 300 accounts." in a.text and "<" not in a.text
    assert messages == [f"{tmp_path / 'in.jsonl'}:2: no text: empty or missing text (text, body, content, ...); skipped"]


def test_a_failing_reader_rejects_its_file_and_the_rest_is_ingested(tmp_path):
    """As on an install where trafilatura cannot be imported: HTML files are rejected, one line each."""
    (tmp_path / "page.html").write_text("<html><body><article><p>An AI model leaked data.</p></article></body></html>")
    (tmp_path / "page.jsonl").write_text(json.dumps({"text": "<html><body><p>A robot fell.</p></body></html>"}) + "\n")
    (tmp_path / "plain.txt").write_text("Title\nA self-driving car hit a barrier.\n")
    code = ("import sys; sys.modules['trafilatura'] = None\n"  # what a broken dependency looks like to the reader
            "from annotator.cli import main; sys.exit(main(['ingest', sys.argv[1], '-o', sys.argv[2]]))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(tmp_path / "out.jsonl")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{tmp_path / 'page.html'}: unreadable: the reader failed: ModuleNotFoundError" in proc.stderr
    assert f"{tmp_path / 'page.jsonl'}:1: unreadable: the reader failed: ModuleNotFoundError" in proc.stderr
    assert [a.text for a in read_jsonl(tmp_path / "out.jsonl", Article)] == ["A self-driving car hit a barrier."]


def test_html_extraction_imports_and_the_cleaner_it_needs_is_declared():
    """On one fresh install `import trafilatura` failed: lxml.html.clean now lives in the separate
    lxml_html_clean package, which lxml's extra no longer always pulls in; ingest stopped mid-way."""
    proc = subprocess.run([sys.executable, "-c", "import trafilatura, lxml.html.clean"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    root = Path(__file__).resolve().parent.parent
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(re.match(r"lxml[_-]html[_-]clean\b", d) for d in declared)  # a fresh install gets it too
