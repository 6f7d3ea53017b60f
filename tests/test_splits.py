"""Story grouping on articles: one event told by a digest record and by a long feature (test
articles written for the project, tests/data/stories), the bundled samples, Chinese text, and the
names signal."""

from __future__ import annotations

from pathlib import Path

from annotator.ingest import read_articles
from annotator.records import Article
from annotator.stories import NAMES_MIN_SHARED, jaccard, near_duplicate_groups, story_names, story_tokens

STORIES = Path(__file__).resolve().parent / "data" / "stories"
SAMPLES = Path(__file__).resolve().parents[1] / "annotator" / "samples" / "articles"
ROBOTAXI = ["a_54a1c83c5fa1df58", "a_62572ded123a5350"]


def story(name: str) -> Article:
    problems: list[str] = []
    articles = list(read_articles([STORIES / f"{name}.txt"], on_error=problems.append))
    assert problems == [] and len(articles) == 1, problems
    return articles[0]


def group_of(groups: list[list[str]], article_id: str) -> list[str]:
    return next(g for g in groups if article_id in g)


def test_one_event_told_by_a_digest_and_a_feature_is_one_group_and_another_event_is_not() -> None:
    # A monitor's record of fake recruiter profiles (summary, tags, headlines), a long feature on the
    # same event in other words, and another event on the same topic (AI-faced accounts taken down).
    record, feature, other = story("digest_fake_recruiters"), story("feature_fake_recruiters"), story("other_fake_faces")
    # The words of their leads barely overlap: the names and figures they share join them.
    assert jaccard(story_tokens(record.title, record.text), story_tokens(feature.title, feature.text)) < 0.2
    assert len(story_names(record.title, record.text) & story_names(feature.title, feature.text)) >= NAMES_MIN_SHARED
    groups = near_duplicate_groups([record, feature, other])
    assert group_of(groups, record.id) == sorted([record.id, feature.id])
    assert group_of(groups, other.id) == [other.id]


def test_samples_and_stories_group_only_the_stories_told_twice() -> None:
    problems: list[str] = []
    articles = {a.id: a for a in read_articles([SAMPLES, *sorted(STORIES.glob("*.txt"))], on_error=problems.append)}
    assert problems == []
    pair = sorted([story("digest_fake_recruiters").id, story("feature_fake_recruiters").id])
    groups = near_duplicate_groups(list(articles.values()))
    assert len(groups) == len(articles) - 2  # different events on one topic stay apart
    assert [g for g in groups if len(g) > 1] == sorted([ROBOTAXI, pair])


# One event in Chinese (the sample from the agency wire) retold by another outlet, and another
# event on the same topic: word overlap without spaces between words only works on characters.
RETOLD_ZH = Article(
    id="retold", published_at="2023-05-23", title="男子遭遇AI换脸诈骗 10分钟内被骗走430万元",
    text="据警方通报，一家科技公司负责人郭先生近日接到“好友”发起的微信视频聊天。对方说正在外地参加投标，"
         "需要借公司的账户走账430万元保证金。郭先生看到视频里的好友面孔和声音都没有异样，便在10分钟内"
         "先后两次转账。随后他给好友打电话，对方表示并不知情，他才意识到被骗。经调查，骗子使用了人工智能"
         "换脸和声音合成技术。目前警方已拦截了部分资金，并提醒大家转账前一定要通过电话、见面等方式核实身份。",
)
OTHER_ZH = Article(
    id="other", published_at="2023-05-22", title="香港一公司职员遭深度伪造视频会议诈骗 损失2亿港元",
    text="香港警方通报，一家跨国公司的财务职员应邀参加一场多人视频会议，会上的“首席财务官”和多名同事"
         "其实都是利用深度伪造技术生成的假影像。该职员按照指示先后15次转账，共汇出2亿港元，一周后向总部"
         "查询才发现被骗。警方表示，这是香港首宗多人视频会议的AI换脸诈骗案，提醒市民在视频通话中要求对方"
         "做出动作以核实身份。",
)


def test_chinese_retellings_are_compared_by_character_bigrams() -> None:
    wire = next(a for a in read_articles([SAMPLES / "agency_wire.jsonl"]) if a.title.startswith("AI换脸"))
    tokens = story_tokens(wire.title, wire.text)
    assert "换脸" in tokens and "430" in tokens and "视频" in tokens
    same = jaccard(tokens, story_tokens(RETOLD_ZH.title, RETOLD_ZH.text))
    other = jaccard(tokens, story_tokens(OTHER_ZH.title, OTHER_ZH.text))
    assert same > 2 * other
    assert near_duplicate_groups([wire, RETOLD_ZH, OTHER_ZH]) == [sorted([wire.id, "retold"]), ["other"]]


def test_story_names_are_names_and_figures_not_capitalised_words() -> None:
    names = story_names(
        "Probe Finds Fake Profiles On LinkedIn",
        "Researchers at the Stanford Internet Observatory finds 1,000 fake profiles in 2022. "
        "Renee DiResta's team told NPR on Monday; TheRegister.com and www.cnet.com followed. "
        "Fake faces are everywhere, said the AI researchers. 领英1000多个假账户",
    )
    # Not the headline's words, a sentence's first word (Researchers, Renee), days, years or "AI".
    assert names == {"linkedin", "stanford", "internet", "observatory", "1000", "diresta", "npr",
                     "theregister.com", "cnet.com"}


def test_a_figure_is_one_name_whatever_the_thousands_separator() -> None:
    english = story_names("", "The tribunal ordered it to refund 9,000 euros and 1,250,000 more, 12.5 times the fare.")
    portuguese = story_names("", "O tribunal mandou devolver 9.000 euros e 1.250.000 a mais, 12.5 vezes a tarifa.")
    assert {"9000", "1250000", "12.5"} <= english & portuguese
