"""An eval that names a lazy model (issue 17): the sample articles drafted by a fake model that
answers like a lazy one, and by one that answers like the reviewers, through the real client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer, Faults
from fixtures_llm import FAKE_KEY

from annotator.checks import COPIES_ARTICLE, RATIONALE_FLAGS
from annotator.cli import main
from annotator.demo import sample_gold_path, samples_dir
from annotator.records import Draft, GoldRecord, read_jsonl
from annotator.taxonomy import load_taxonomy

TAX = load_taxonomy("oecd_aim")
GOLD = read_jsonl(sample_gold_path(), GoldRecord)


def _draft_and_eval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, faults: Faults) -> tuple[dict, str, list[Draft]]:
    monkeypatch.chdir(tmp_path)
    assert main(["ingest", str(samples_dir()), "-o", "articles.jsonl"]) == 0
    with FakeOpenAIServer(faults) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
        assert main(["draft", "articles.jsonl", "-o", "drafts.jsonl"]) == 0
    assert main(["eval", "--drafts", "drafts.jsonl", "--gold", str(sample_gold_path()), "-o", "report",
                 "--bootstrap", "200"]) == 0
    metrics = json.loads(Path("report/metrics.json").read_text())
    return metrics, Path("report/summary.md").read_text(), read_jsonl("drafts.jsonl", Draft)


@pytest.mark.slow
def test_a_lazy_model_trips_every_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    metrics, summary, drafts = _draft_and_eval(tmp_path, monkeypatch, Faults(api_key=FAKE_KEY, lazy="AI incident"))
    lazy = metrics["lazy"]
    primary = metrics["baselines"]["classification"]
    # 9 of the 26 sample articles are incidents: always "AI incident" is the majority baseline, exactly.
    assert primary["candidate"] == primary["majority_baseline"] == pytest.approx(9 / 26, abs=1e-4)
    assert primary["skill_vs_majority"] == 0 and primary["skill_vs_prior"] > 0
    assert any(w.startswith("classification: the drafts do not beat the majority baseline") for w in lazy)
    assert any(w.startswith("classification: constant: the drafts give 'AI incident' for all 26 articles") for w in lazy)
    assert any(w.startswith("ai_system_tasks: tags follow the taxonomy's order") for w in lazy)
    assert any(w.startswith("industries: constant") for w in lazy)
    # The summary opens with them, before any figure can be read alone.
    head = summary.split("| field")[0]
    assert "Read first" in head and "do not beat the majority baseline" in head and "taxonomy's order" in head
    # Every draft is flagged: copied rationale, invented quotes; the report gives the shares.
    assert all(COPIES_ARTICLE in d.flags and "evidence: quote not in the article (dropped)" in d.flags and not d.evidence
               for d in drafts)
    shares = metrics["draft_checks"]["flags"]["flags"]
    assert shares[COPIES_ARTICLE]["share"] == 1.0 and shares["evidence: quote not in the article (dropped)"]["share"] == 1.0


@pytest.mark.slow
def test_a_model_answering_like_the_reviewers_trips_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scripts = {g.article_id: [{**g.labels, "rationale": g.rationale}] for g in GOLD}
    metrics, summary, drafts = _draft_and_eval(tmp_path, monkeypatch, Faults(api_key=FAKE_KEY, scripts=scripts, quote=True))
    assert metrics["lazy"] == [] and "Read first" not in summary
    assert metrics["baselines"]["classification"]["skill_vs_majority"] == 1.0
    assert all(not set(d.flags) & {*RATIONALE_FLAGS, "evidence: quote not in the article (dropped)"} for d in drafts)
    assert sum(bool(d.evidence) for d in drafts) >= 24, [d.article_id for d in drafts if not d.evidence]
    assert metrics["draft_checks"]["rules"]["drafts"]["breaking"] == 0
