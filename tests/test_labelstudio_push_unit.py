"""Pure parts of push: what a task shows, and the prediction score."""

from __future__ import annotations

from annotator.labelstudio.push import score, task_data
from annotator.records import Article, Draft
from annotator.taxonomy import load_taxonomy

TAX = load_taxonomy("oecd_aim")


def test_link_is_escaped_and_only_http():
    a = Article(id="a", title="T", text="x", url='https://x.org/?q="><script>alert(1)</script>&b=1')
    link = task_data(a, None, [], blind=False)["link"]
    assert "<script>" not in link and "&quot;&gt;&lt;script&gt;" in link and link.startswith('<a href="https://x.org/')
    assert task_data(a.model_copy(update={"url": "javascript:alert(1)"}), None, [], blind=False)["link"] == ""


def test_blind_task_data_carries_no_draft():
    a = Article(id="a", title="T", text="x", source="S", published_at="2025-01-02")
    d = Draft(article_id="a", labels={"classification": "AI hazard"}, rationale="secret rationale",
              confidence={"classification": 0.42}, model_version="p@m")
    assisted = task_data(a, d, ["truncated"], blind=False)
    blind = task_data(a, d, ["truncated"], blind=True)
    assert "p@m" in assisted["draft_info"] and "0.42" in assisted["draft_info"]
    assert blind["draft_info"] == "" and "secret" not in str(blind) and "0.42" not in str(blind)
    assert blind["flags"] == "⚠ truncated" and blind["meta"] == "S · 2025-01-02"


def test_score_is_the_primary_confidence_else_the_lowest():
    assert score(TAX, Draft(article_id="a", confidence={"classification": 0.8, "severity": 0.1})) == 0.8
    assert score(TAX, Draft(article_id="a", confidence={"classification": None, "severity": 0.3, "industries": 0.6})) == 0.3
    assert score(TAX, Draft(article_id="a")) is None


def test_story_panel_lists_the_other_articles_escaped_and_linked():
    from annotator.labelstudio.push import STORY_LIST_MAX, StoryContext, story_contexts, story_html

    others = [Article(id=f"o{i}", title=f"Retold <i>{i}</i>", text="x", source="Outlet & Co", published_at=f"2025-01-{i + 1:02d}T08:00:00Z",
                      url=f"https://news.example/{i}" if i else "javascript:alert(1)") for i in range(3)]
    panel = story_html(StoryContext(id="s-1", others=others))
    assert "3 other articles" in panel and "Retold &lt;i&gt;0&lt;/i&gt;" in panel and "<i>" not in panel
    assert '<a href="https://news.example/1"' in panel and "javascript" not in panel
    assert "Outlet &amp; Co · 2025-01-02" in panel
    many = story_html(StoryContext(id="s-2", others=[others[1]] * (STORY_LIST_MAX + 5)))
    assert many.count("<li>") == STORY_LIST_MAX + 1 and "and 5 more" in many
    assert story_html(StoryContext(id="s-3")) == ""
    # A story keeps the id its tasks already have when a new article joins it.
    articles = {a.id: a for a in others}
    contexts = story_contexts({"o0": ["o0", "o1"], "o1": ["o0", "o1"], "o2": ["o2"]}, articles, {"o1": "s-old"})
    assert contexts["o0"].id == contexts["o1"].id == "s-old" and [a.id for a in contexts["o0"].others] == ["o1"]
    assert contexts["o2"].id != "s-old" and contexts["o2"].others == []
