"""Two taxonomies in one Label Studio project, as an annotator sees it: both panels, the DISARM
techniques as a searchable tree with the draft pre-selected, and hidden when no influence
operation is reported."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fixtures_labelstudio import browser_page, make_articles

from annotator.labelstudio.client import find_project
from annotator.labelstudio.push import existing_tasks, push
from annotator.records import Draft
from annotator.taxonomy import load_taxonomy

pytestmark = [pytest.mark.labelstudio, pytest.mark.slow]

TAX = load_taxonomy("aim_disarm")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def _draft(article_id: str, aim: str, disarm: str, techniques: list[str]) -> Draft:
    labels = {f.name: ([] if f.kind == "multi" else None) for f in TAX.label_fields}
    labels |= {"oecd_aim.classification": aim, "disarm.classification": disarm, "disarm.techniques": techniques}
    return Draft(article_id=article_id, labels=labels, rationale=f"Draft rationale for {article_id}.", model="m",
                 prompt_version="incident@v1", model_version="incident@v1@m", confidence={})


def test_annotator_sees_both_panels_and_the_techniques_tree(labelstudio, ls_conn, project_title) -> None:
    from playwright.sync_api import expect

    io_article, plain = make_articles(2, prefix="two")
    drafts = [_draft(io_article.id, "AI incident", "Influence operation", ["T0145.002"]),
              _draft(plain.id, "Unrelated", "Unrelated", [])]
    assert push(ls_conn, drafts, {io_article.id: io_article, plain.id: plain}, TAX, project_title).ok
    project = find_project(ls_conn, project_title)
    tasks = existing_tasks(ls_conn, project.id)
    ARTIFACTS.mkdir(exist_ok=True)
    with browser_page(labelstudio.url, labelstudio.username, labelstudio.password) as page:
        page.goto(f"{labelstudio.url}/projects/{project.id}/data?task={tasks[io_article.id]}")
        page.get_by_text("Draft rationale for").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        body = page.inner_text("body")
        assert "OECD AI Incidents Monitor" in body and "DISARM Framework techniques" in body  # one panel each
        # The draft's technique is pre-selected, shown with its name (the full path, tactic first).
        assert "T0145.002 AI-Generated Account Imagery" in body
        assert re.search(r"^techniques$", body, re.MULTILINE)  # the field's header, shown
        page.screenshot(path=str(ARTIFACTS / "labelstudio-two-taxonomies.png"))
        # The tree is searchable by name: the search narrows it to the technique and its ancestors.
        # (Typed into the search box once it is there: keys typed before the dropdown opens are
        # lost. Asserted on the tree's nodes, rendered or scrolled out of a loaded page's view.)
        page.locator(".ant-select-selector").last.click()
        search = page.get_by_test_id("taxonomy-search").last
        search.wait_for(timeout=60_000)
        search.fill("animal account")
        titles = page.locator(".ant-select-dropdown").last.locator(".ant-select-tree-title")
        expect(titles).to_have_text(["TA15 Establish Assets", "T0145 Establish Account Imagery",
                                     "T0145.003 Animal Account Imagery"], timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "labelstudio-techniques-search.png"))

        page.goto(f"{labelstudio.url}/projects/{project.id}/data?task={tasks[plain.id]}")
        page.get_by_text("Draft rationale for").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        body = page.inner_text("body")
        assert "DISARM Framework techniques" in body
        # No influence operation: the techniques field is hidden.
        assert not re.search(r"^techniques$", body, re.MULTILINE), body[-1500:]
