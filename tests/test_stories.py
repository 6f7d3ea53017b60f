"""Story grouping at scale: the windowed exact comparison finds what comparing every pair finds,
LSH finds copies across years, and the chaining guard cuts a corpus that chains into one group."""

from __future__ import annotations

import itertools
import random
from datetime import date, timedelta

from annotator.records import Article
from annotator.stories import (
    NAMES_COSINE,
    NAMES_MIN_SHARED,
    NAMES_WORD_FLOOR,
    NEAR_DATE_DAYS,
    NEAR_DATE_THRESHOLD,
    STORY_MIN_CAP,
    STORY_THRESHOLD,
    WINDOW_DAYS,
    jaccard,
    story_groups,
    story_id,
    story_names,
    story_tokens,
)


def components(n: int, pairs: list[tuple[int, int]]) -> set[frozenset[int]]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    out: dict[int, set[int]] = {}
    for k in range(n):
        out.setdefault(find(k), set()).add(k)
    return {frozenset(v) for v in out.values()}


def test_windowed_grouping_links_exactly_the_pairs_the_rules_link_within_the_window() -> None:
    # Small vocabulary, so that many pairs cross the thresholds; dates over three weeks, some missing.
    rng = random.Random(11)
    words = [f"topic{i}" for i in range(200)]
    names = [f"Person{i}" for i in range(40)]
    articles = []
    for k in range(150):
        text = " ".join(rng.sample(words, 25) + [f"the {n}" for n in rng.sample(names, 6)])
        day = None if k % 10 == 0 else (date(2024, 3, 1) + timedelta(days=rng.randint(0, 20))).isoformat()
        articles.append(Article(id=f"a{k:03d}", title="", text=text, published_at=day))
    grouping = story_groups(articles)
    assert not grouping.capped

    tokens = [story_tokens(a.title, a.text) for a in articles]
    names_of = [story_names(a.title, a.text) for a in articles]
    pairs = []
    for i, j in itertools.combinations(range(len(articles)), 2):
        di, dj = articles[i].published_at, articles[j].published_at
        if (di is None) != (dj is None):
            continue  # compared by LSH only, tested below
        apart = abs((date.fromisoformat(di) - date.fromisoformat(dj)).days) if di and dj else 0
        if apart > WINDOW_DAYS:
            continue
        words = jaccard(tokens[i], tokens[j])
        shared = len(names_of[i] & names_of[j])
        by_names = (shared >= NAMES_MIN_SHARED and shared / (len(names_of[i]) * len(names_of[j])) ** 0.5 >= NAMES_COSINE
                    and words >= NAMES_WORD_FLOOR)
        if words >= STORY_THRESHOLD or (di and apart <= NEAR_DATE_DAYS and words >= NEAR_DATE_THRESHOLD) or by_names:
            pairs.append((i, j))
    expected = components(len(articles), pairs)
    index = {a.id: k for k, a in enumerate(articles)}
    found = {frozenset(index[a] for a in g) for g in grouping.groups}
    assert len(pairs) > 10 and found == expected


def test_a_copy_published_a_year_later_joins_its_story_and_a_same_topic_article_does_not() -> None:
    rng = random.Random(2)
    vocab = [f"w{i}" for i in range(3000)]
    original = " ".join(rng.sample(vocab, 150))
    articles = [
        Article(id="first", title="Chatbot leaks data", text=original, published_at="2023-01-10"),
        Article(id="syndicated", title="Chatbot leaks data (repost)", text=original.replace("w1 ", "w2 ") + " w5",
                published_at="2024-02-01"),
        Article(id="other", title="Chatbot leaks data again", text=" ".join(rng.sample(vocab, 150)), published_at="2024-02-01"),
    ]
    grouping = story_groups(iter(articles))  # one pass over a stream is enough
    assert grouping.groups == [["first", "syndicated"], ["other"]]
    assert grouping.lsh_candidates >= 1


def events_from_one_vocabulary(n_events: int = 400, seed: int = 3) -> list[Article]:
    """The issue's case: distinct events, each told once, all written from one small vocabulary,
    so that every article looks a little like every other and a pairwise threshold chains them."""
    rng = random.Random(seed)
    vocab = [f"term{i}" for i in range(90)]
    return [Article(id=f"ev{k:03d}", title=f"Event {k}", text=" ".join(rng.sample(vocab, 30)), published_at="2024-05-01")
            for k in range(n_events)]


def test_a_corpus_that_chains_into_one_component_is_cut_and_the_cut_is_reported() -> None:
    articles = events_from_one_vocabulary()
    grouping = story_groups(articles)
    sizes = sorted((len(g) for g in grouping.groups), reverse=True)
    assert sizes[0] <= STORY_MIN_CAP
    assert sum(sizes) == len(articles)
    assert grouping.capped and grouping.capped[0].size == sizes[0] and grouping.capped[0].refused_links > 0
    largest = grouping.largest(3)
    assert largest[0]["size"] == sizes[0] and largest[0]["story"] == grouping.capped[0].story


def test_story_ids_are_stable_across_runs_and_input_order() -> None:
    articles = events_from_one_vocabulary(60)
    one = {story_id(g) for g in story_groups(articles).groups}
    two = {story_id(g) for g in story_groups(reversed(articles)).groups}
    assert one == two


def _export(tmp_path, articles: list[Article], split: str = "80/10/10"):
    from annotator.export import export
    from annotator.records import write_jsonl

    classes = ["AI incident", "AI hazard", "Complementary information", "Unrelated"]
    reviews = [{"article_id": a.id, "annotator": "ann", "labels": {"classification": classes[k % 4]}, "rationale": "r"}
               for k, a in enumerate(articles)]
    write_jsonl(tmp_path / "articles.jsonl", articles)
    write_jsonl(tmp_path / "reviews.jsonl", reviews)
    problems: list[str] = []
    summary = export(tmp_path / "reviews.jsonl", tmp_path / "articles.jsonl", tmp_path / "gold", split=split,
                     formats=["jsonl"], on_error=problems.append)
    return summary, problems


def test_export_of_events_from_one_vocabulary_fails_loudly_and_the_manifest_names_the_cut_stories(tmp_path) -> None:
    import json

    # The case: 375 reviewed articles of distinct events chained into one group, split 375/0/0, exit 0.
    articles = events_from_one_vocabulary()[:375]
    summary, problems = _export(tmp_path, articles)
    assert not summary.ok and not (tmp_path / "gold" / "train.jsonl").exists()
    assert any("validation and test splits would be empty" in p and "375 articles" in p and "--split 80/0/0" in p for p in problems)
    # Told how, the lead exports without them: every group within the cap, the cut ones named.
    summary, problems = _export(tmp_path, articles, split="80/0/0")
    assert summary.ok, problems
    manifest = json.loads((tmp_path / "gold" / "manifest.json").read_text())
    largest = manifest["largest_groups"]
    assert STORY_MIN_CAP >= largest[0]["size"] == max(g["size"] for g in largest) and len(largest) > 1
    assert manifest["capped_groups"] and sum(1 for w in manifest["warnings"] if "chaining" in w) == len(manifest["capped_groups"])


def test_export_that_would_leave_a_split_empty_fails_and_says_how_to_change_it(tmp_path) -> None:
    copies = [Article(id=f"c{k:02d}", title="Same wire story", text="One agency text reprinted by every outlet, word for word.",
                      published_at="2024-05-01") for k in range(30)]
    summary, problems = _export(tmp_path, copies)
    assert not summary.ok
    assert any("validation" in p and "test" in p and "--split" in p and "1 story group" in p for p in problems), problems
    assert not (tmp_path / "gold" / "train.jsonl").exists()
    summary, problems = _export(tmp_path, copies, split="100/0/0")
    assert summary.ok and summary.counts["train"] == 30, problems


def test_applying_a_review_to_its_story_gives_each_other_article_a_marked_review_of_its_own() -> None:
    from annotator.records import Review
    from annotator.stories import applied_reviews

    story_of = {"a": "s1", "b": "s1", "c": "s1", "d": "s1", "x": "s2"}
    task_of = {"a": 1, "b": 2, "c": 3, "d": 4, "x": 5}
    labels = {"classification": "AI incident"}
    reviews = [
        Review(article_id="a", annotator="ana", labels=labels, rationale="why", updated_at="2024-01-01T10:00:00Z",
               story_apply=True, story_except=["d"]),
        Review(article_id="b", annotator="ana", labels={"classification": "Unrelated"}),  # her own review of b wins
        Review(article_id="c", annotator="ben", labels=labels, skipped=True, story_apply=True),  # a skip applies nothing
        Review(article_id="x", annotator="ben", labels=labels, blind=True, story_apply=True),  # nor does a blind review
    ]
    out = applied_reviews(reviews, story_of, task_of)
    assert [(r.article_id, r.annotator, r.task_id) for r in out] == [("c", "ana", 3)]
    assert out[0].labels == labels and out[0].rationale == "why" and out[0].model_extra["applied_from_story"] == "a"
    assert out[0].blind is False and out[0].accepted_as_is is None and out[0].updated_at == "2024-01-01T10:00:00Z"


def test_export_marks_and_counts_articles_labelled_only_by_a_review_applied_from_their_story(tmp_path) -> None:
    import json

    from annotator.export import export
    from annotator.records import write_jsonl

    rng = random.Random(4)
    vocab = [f"tok{i}" for i in range(5000)]
    articles = [Article(id=f"a{k}", title="", text=" ".join(rng.sample(vocab, 60))) for k in range(20)]
    reviews = [{"article_id": a.id, "annotator": "ana", "labels": {"classification": "AI incident"}, "rationale": "r",
                **({"applied_from_story": "a0"} if k % 5 == 1 else {})} for k, a in enumerate(articles)]
    write_jsonl(tmp_path / "articles.jsonl", articles)
    write_jsonl(tmp_path / "reviews.jsonl", reviews)
    summary = export(tmp_path / "reviews.jsonl", tmp_path / "articles.jsonl", tmp_path / "gold", formats=["jsonl"])
    assert summary.ok, summary.problems
    manifest = json.loads((tmp_path / "gold" / "manifest.json").read_text())
    assert manifest["totals"]["applied_from_story"] == 4
    lines = [json.loads(x) for s in ("train", "validation", "test") for x in (tmp_path / "gold" / f"{s}.jsonl").read_text().splitlines()]
    assert sorted(r["article_id"] for r in lines if r.get("applied_from_story")) == ["a1", "a11", "a16", "a6"]
