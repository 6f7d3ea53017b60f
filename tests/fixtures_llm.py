"""Fixtures for the local OpenAI-compatible test server (owned by the drafting work).

- `fake_openai`: a started `FakeOpenAIServer` (tests/fake_openai_server.py), fresh per test; change
  `fake_openai.faults` (a `Faults`) to make it misbehave, read `fake_openai.stats` to count requests.
- `llm_env`: runs the test in `tmp_path` with OPENAI_BASE_URL pointing at `fake_openai` and
  OPENAI_API_KEY set to `FAKE_KEY` (recognisable, so tests can grep for leaks); the server requires it.
- `write_articles(n, texts=None, name="articles.jsonl")`: writes an articles file, returns its path.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai_server import FakeOpenAIServer, Faults  # noqa: E402

FAKE_KEY = "sk-test-NEVER-WRITE-ME-4f7c1e9a2b"


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(Faults(api_key=FAKE_KEY)) as server:
        yield server


@pytest.fixture
def llm_env(fake_openai: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAIServer:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.url)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    return fake_openai


@pytest.fixture
def write_articles(tmp_path: Path) -> Callable[..., Path]:
    def write(n: int = 5, texts: dict[str, str] | None = None, name: str = "articles.jsonl") -> Path:
        rows = [{"id": f"art-{i:03d}", "title": f"Story {i}",
                 "text": f"A city's facial recognition system misidentified resident number {i} as a suspect. " * 3}
                for i in range(n)]
        rows += [{"id": k, "title": k, "text": v} for k, v in (texts or {}).items()]
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path

    return write
