"""Fixtures for the real Label Studio server (owned by the Label Studio work).

One server per test session, started through `annotator.labelstudio.server` into a fresh data
dir (a copy of the initialised template: seconds, not the 35-50 s of a cold start) and stopped at
the end. If it cannot start, every test that needs it errors: nothing is skipped.
"""

from __future__ import annotations

import contextlib
import random
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from annotator.labelstudio import server
from annotator.labelstudio.client import Connection, connect
from annotator.records import Article, Draft
from annotator.taxonomy import Taxonomy, tidy_labels

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def browser_page(url: str, user: str, password: str) -> Iterator[Any]:
    """A headless Chromium page logged in to Label Studio at `url`, as an annotator sees the
    server (the browser tests); the browser is closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/user/login/")
            page.fill("input[name=email]", user)
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r"^(?!.*/user/login).*$"))
            yield page
        finally:
            browser.close()


@pytest.fixture(scope="session")
def labelstudio(tmp_path_factory: pytest.TempPathFactory) -> server.ServerState:
    data_dir = tmp_path_factory.mktemp("labelstudio")
    state = server.start(data_dir, log=print, tie_to_parent=True)
    yield state
    server.stop(data_dir)


@pytest.fixture(scope="session")
def labelstudio_pg(tmp_path_factory: pytest.TempPathFactory) -> server.ServerState:
    """The same server on PostgreSQL (a private cluster; Debian's package is installed if absent)."""
    data_dir = tmp_path_factory.mktemp("labelstudio-pg")
    state = server.start(data_dir, log=print, tie_to_parent=True, db="postgres")
    yield state
    server.stop(data_dir, remove_database=True)


@pytest.fixture
def ls_conn(labelstudio: server.ServerState) -> Connection:
    return connect(labelstudio.url, labelstudio.token)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def ls_any(request: pytest.FixtureRequest) -> Connection:
    """A connection to the SQLite server, then to the PostgreSQL one: the test runs on both."""
    state = request.getfixturevalue("labelstudio" if request.param == "sqlite" else "labelstudio_pg")
    return connect(state.url, state.token)


@pytest.fixture
def project_title(request: pytest.FixtureRequest) -> str:
    """A title no other test uses."""
    return f"{request.node.name[:25]} {uuid.uuid4().hex[:6]}"


def make_articles(n: int, prefix: str = "art") -> list[Article]:
    return [
        Article(
            id=f"{prefix}-{i:05d}",
            title=f'Article {i} <b>&</b> "quotes"',
            text=f"Body of article {i}. A chatbot & a recommender system did things; <script>alert(1)</script> " * 3,
            url=f"https://news.example.org/{prefix}/{i}?a=1&b=2",
            source="Example News",
            published_at="2025-05-01",
            language="en",
        )
        for i in range(n)
    ]


def make_drafts(
    tax: Taxonomy,
    articles: list[Article],
    version: str = "p1@model-a",
    seed: int = 0,
    failed_every: int = 0,
) -> list[Draft]:
    """Drafts with random but valid labels, a rationale and confidences; every Nth one failed."""
    rng = random.Random(seed)
    out = []
    for i, a in enumerate(articles):
        prompt, model = version.split("@")
        if failed_every and i % failed_every == failed_every - 1:
            out.append(Draft(article_id=a.id, model=model, prompt_version=prompt, model_version=version, error="timeout"))
            continue
        labels: dict = {}
        for f in tax.label_fields:
            if f.kind == "single":
                labels[f.name] = rng.choice(f.value_ids) if f.required or rng.random() < 0.7 else None
            else:
                labels[f.name] = rng.sample(f.value_ids, k=rng.randint(0, min(3, len(f.values))))
        conf = {f.name: round(rng.random(), 3) for f in tax.label_fields}
        out.append(
            Draft(
                article_id=a.id,
                labels=tidy_labels(tax, labels),  # as the drafter writes them (conditions, most specific values)
                rationale=f"Draft rationale {i} by {version}: a system & its <harm>.",
                confidence=conf,
                model=model,
                prompt_version=prompt,
                model_version=version,
                flags=["truncated"] if i % 7 == 0 else [],
            )
        )
    return out
