"""Two taxonomies on one article, and two-step drafting of the large DISARM hierarchy, through the
real `openai` client against the test server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotator.checks import locate_evidence
from annotator.cli import main
from annotator.compose import lift_labels
from annotator.errors import TaxonomyError
from annotator.labelstudio.config import spans_from_result, spans_to_result
from annotator.prompt import estimate_tokens, load_prompt
from annotator.records import Draft, read_jsonl
from annotator.taxonomy import (
    EVIDENCE,
    canonical_labels,
    draft_model,
    json_schema,
    label_guide,
    load_taxonomy,
    parse_taxonomy,
    rule_violations,
    tidy_labels,
)
from annotator.twostep import first_step, large_fields, second_step, to_roots

AIM_DISARM = load_taxonomy("aim_disarm")
IO = "Influence operation"


def test_two_taxonomies_compose_into_one_namespaced_answer() -> None:
    tax = load_taxonomy("oecd_aim,disarm")
    aim, disarm = load_taxonomy("oecd_aim"), load_taxonomy("disarm")
    names = [f.name for f in tax.fields]
    assert names[:2] == ["oecd_aim.classification", "rationale"] and "disarm.techniques" in names
    assert len(names) == len(aim.fields) + len(disarm.fields) - 1  # one rationale for both
    assert tax.primary == "oecd_aim.classification" and [m.name for m in tax.members] == ["oecd_aim", "disarm"]
    assert tax.field("disarm.techniques").path("T0145.002") == ["TA15", "T0145", "T0145.002"]
    assert "CC-BY-SA-4.0" in tax.members[1].license
    answer = {f.name: ([] if f.kind == "multi" else None) for f in tax.fields}
    answer |= {"oecd_aim.classification": "AI incident", "disarm.classification": IO, "rationale": "Fake faces.",
               "disarm.techniques": ["T0145.002"]}
    assert draft_model(tax).model_validate(answer).model_dump()["disarm.techniques"] == ["T0145.002"]
    guide = label_guide(tax)
    assert "# OECD AI Incidents Monitor (fields oecd_aim.*" in guide and "# DISARM Framework techniques (fields disarm.*" in guide
    # The bundled composed file adds the condition; the comma form has none.
    assert tax.field("disarm.techniques").when is None
    assert AIM_DISARM.field("disarm.techniques").when.values == (IO, "Possible influence operation")
    assert "only when disarm.classification is Influence operation or Possible influence operation" in label_guide(AIM_DISARM)


def test_a_composed_taxonomy_keeps_each_members_rules_changes_and_evidence_in_its_names() -> None:
    aim = load_taxonomy("oecd_aim")
    assert AIM_DISARM.rules and len(AIM_DISARM.rules) == len(aim.rules)
    assert all(name.startswith("oecd_aim.") for r in AIM_DISARM.rules for name, _ in (*r.when, *r.then))
    unrelated = {"oecd_aim.classification": "Unrelated", "oecd_aim.harm_types": ["Psychological"],
                 "disarm.classification": IO, "disarm.techniques": ["T0145.002"]}
    broken = rule_violations(AIM_DISARM, unrelated)
    assert broken == ["oecd_aim.harm_types must be empty when oecd_aim.classification is Unrelated (got Psychological)"]
    assert rule_violations(aim, {"classification": "Unrelated", "harm_types": ["Psychological"]})  # the member's own
    # Evidence quotes per member kind, in the answer schema and the draft model.
    kinds = [k.name for k in AIM_DISARM.evidence]
    assert kinds == [f"oecd_aim.{k.name}" for k in aim.evidence]
    assert list(json_schema(AIM_DISARM)["properties"][EVIDENCE]["properties"]) == kinds
    quotes = {"oecd_aim.ai_system": ["a face generator"], "oecd_aim.harm": [], "oecd_aim.realised": []}
    answer = {f.name: ([] if f.kind == "multi" else None) for f in AIM_DISARM.fields}
    answer |= {"oecd_aim.classification": "AI incident", "disarm.classification": IO, "rationale": "x", EVIDENCE: quotes}
    assert draft_model(AIM_DISARM).model_validate(answer).model_dump()[EVIDENCE] == quotes
    text = "Profiles used a face generator to fool recruiters."
    spans, missing = locate_evidence(text, quotes)
    assert spans == [{"kind": "oecd_aim.ai_system", "start": 14, "end": 30, "text": "a face generator"}] and not missing
    result = spans_to_result(AIM_DISARM, text, spans)  # highlighted in Label Studio, pulled back
    assert result[0]["value"]["labels"] == ["AI system"] and spans_from_result(AIM_DISARM, text, result) == spans
    # Aliases and version changes read in composed names; gold in a member's own names with an alias is lifted.
    csv_spelling = {"oecd_aim.industries": ["Food & beverages"]}
    assert canonical_labels(AIM_DISARM, csv_spelling)[0] == {"oecd_aim.industries": ["Food and beverages"]}
    assert lift_labels(AIM_DISARM, {"industries": ["Food & beverages"]}) == {"oecd_aim.industries": ["Food & beverages"]}
    assert [c.added for c in AIM_DISARM.changes] == [(("oecd_aim.autonomy_level", ("No-action autonomy (human support)",)),)]
    # A member alone keeps its own taxonomy, and so its hash (caches stay valid).
    assert not aim.members and aim.rules[0].when[0][0] == "classification"


def test_a_conditional_field_is_empty_when_its_condition_does_not_hold() -> None:
    labels = {"disarm.classification": "Unrelated", "disarm.techniques": ["T0145.002"]}
    assert tidy_labels(AIM_DISARM, labels)["disarm.techniques"] == []
    labels["disarm.classification"] = IO
    assert tidy_labels(AIM_DISARM, labels)["disarm.techniques"] == ["T0145.002"]
    labels["disarm.techniques"] = ["TA15", "T0145", "T0145.002", "T0086.002"]  # ancestors are implied
    assert tidy_labels(AIM_DISARM, labels)["disarm.techniques"] == ["T0145.002", "T0086.002"]


def test_composed_file_errors_name_the_problem(tmp_path) -> None:
    with pytest.raises(TaxonomyError, match="'disarm.nope' is not a field"):
        parse_taxonomy("name: x\ninclude: [oecd_aim, disarm]\nwhen: {disarm.nope: {field: disarm.classification, values: [Unrelated]}}")
    with pytest.raises(TaxonomyError, match=r"\['Maybe'\] not among the values of 'disarm.classification'"):
        parse_taxonomy("name: x\ninclude: [oecd_aim, disarm]\nwhen: {disarm.techniques: {field: disarm.classification, values: [Maybe]}}")
    with pytest.raises(TaxonomyError, match="at least two"):
        load_taxonomy("oecd_aim,")
    with pytest.raises(TaxonomyError, match="unknown taxonomy 'nope'"):
        load_taxonomy("oecd_aim,nope")
    composed = tmp_path / "mine.yaml"  # a member that does not load is named with the file that includes it
    composed.write_text("name: mine\ninclude: [oecd_aim, gone.yaml]\n", encoding="utf-8")
    with pytest.raises(TaxonomyError, match=f"^{composed}: {tmp_path / 'gone.yaml'}: no such taxonomy file$"):
        load_taxonomy(str(composed))


def test_gold_labelled_with_one_member_is_lifted_into_the_composed_names() -> None:
    aim_only = {"classification": "AI incident", "harm_types": ["Psychological"]}
    assert lift_labels(AIM_DISARM, aim_only) == {"oecd_aim.classification": "AI incident", "oecd_aim.harm_types": ["Psychological"]}
    assert lift_labels(AIM_DISARM, {"classification": IO, "techniques": ["T0145.002"]}) == {
        "disarm.classification": IO, "disarm.techniques": ["T0145.002"]}
    assert lift_labels(AIM_DISARM, {"classification": "Unrelated"}) is None  # both members have that value: ambiguous
    assert lift_labels(AIM_DISARM, {"classification": "Unrelated"}, member="disarm") == {"disarm.classification": "Unrelated"}
    assert lift_labels(AIM_DISARM, {"oecd_aim.classification": "AI incident"}) is None  # already composed


def test_two_step_prompts_are_a_fraction_of_the_one_step_prompt() -> None:
    prompt = load_prompt()
    assert large_fields(AIM_DISARM) == ("disarm.techniques",) and large_fields(load_taxonomy("oecd_aim")) == ()
    one = estimate_tokens(prompt.system_message(AIM_DISARM))
    step1 = first_step(AIM_DISARM, ["disarm.techniques"])
    assert step1.field("disarm.techniques").value_ids[:2] == ("TA01", "TA02") and len(step1.field("disarm.techniques").values) == 16
    step2 = second_step(AIM_DISARM, "disarm.techniques", ["TA15"])
    assert [f.name for f in step2.fields] == ["disarm.techniques"]
    assert "T0145.002" in step2.field("disarm.techniques").value_ids and "T0086.002" not in step2.field("disarm.techniques").value_ids
    two = estimate_tokens(prompt.system_message(step1)) + estimate_tokens(prompt.system_message(step2))
    assert two < one / 2, (one, two)


def test_each_value_maps_to_the_root_of_its_path() -> None:
    f = AIM_DISARM.field("disarm.techniques")
    assert f.root_of() == {v.id: f.path(v.id)[0] for v in f.values}
    assert to_roots(f, ["T0145.002", "TA15", "T0086.002", "not a value"]) == ["TA15", "TA06"] == [
        f.path("T0145.002")[0], f.path("T0086.002")[0]]


def _gold_scripts(answers: dict[str, dict]) -> dict[str, list[dict]]:
    """Answers as a perfect model would give them: hierarchical values with their ancestors, so the
    test server (fit_scripts) can answer a request for tactics and one for techniques alike."""
    f = AIM_DISARM.field("disarm.techniques")
    out = {}
    for aid, answer in answers.items():
        closed = list(dict.fromkeys(a for v in answer.get("disarm.techniques", []) for a in f.path(v)))
        out[aid] = [{**answer, "disarm.techniques": closed}]
    return out


ANSWERS = {
    "art-io": {"oecd_aim.classification": "AI incident", "disarm.classification": IO, "rationale": "Fake profiles with GAN faces.",
               "disarm.techniques": ["T0145.002", "T0086.002"]},
    "art-none": {"oecd_aim.classification": "Unrelated", "disarm.classification": "Unrelated", "rationale": "A bakery award.",
                 "disarm.techniques": []},
}


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_drafting_two_taxonomies_in_one_or_two_steps_gives_the_same_labels(llm_env, write_articles, mode) -> None:
    llm_env.faults.scripts = _gold_scripts(ANSWERS)
    llm_env.faults.fit_scripts = True
    articles = write_articles(0, texts={"art-io": "Accounts with AI-generated faces pushed a narrative.",
                                        "art-none": "A bakery won a bread award."})
    assert main(["draft", str(articles), "--taxonomy", "aim_disarm", "--two-step", mode, "-q"]) == 0
    got = {d.article_id: d for d in read_jsonl("drafts.jsonl", Draft)}
    for aid, answer in ANSWERS.items():
        assert got[aid].error is None
        for name in ("oecd_aim.classification", "disarm.classification", "disarm.techniques"):
            assert got[aid].labels[name] == answer[name], (aid, name)
    stats = llm_env.stats
    by_article = {aid: stats["by_article"].get(aid, 0) for aid in ANSWERS}
    if mode == "off":
        assert by_article == {"art-io": 1, "art-none": 1}
        assert got["art-io"].usage["steps"] == 1
    else:  # tactics, then techniques under TA15 and TA06; an unrelated article needs no second request
        assert by_article == {"art-io": 2, "art-none": 1}
        assert got["art-io"].usage["steps"] == 2 and got["art-none"].usage["steps"] == 1
        last = stats["last_by_article"]["art-io"]
        schema = last["response_format"]["json_schema"]["schema"]
        assert list(schema["properties"]) == ["disarm.techniques"]
        assert set(schema["properties"]["disarm.techniques"]["items"]["enum"]) >= {"TA15", "T0145.002", "TA06", "T0086.002"}
        assert "T0002" not in schema["properties"]["disarm.techniques"]["items"]["enum"]
    # A re-run pays for nothing, whichever the number of steps.
    before = llm_env.stats["chat_requests"]
    Path("drafts.jsonl").unlink()
    assert main(["draft", str(articles), "--taxonomy", "aim_disarm", "--two-step", mode, "-q"]) == 0
    assert llm_env.stats["chat_requests"] == before


def test_eval_gold_with_only_one_taxonomy_scores_only_its_fields(llm_env, tmp_path) -> None:
    draft = {"article_id": "a1", "labels": {"oecd_aim.classification": "AI incident", "disarm.classification": IO,
                                             "disarm.techniques": ["T0145.002"]}, "rationale": "x", "model": "m"}
    Path("drafts.jsonl").write_text(json.dumps(draft) + "\n")
    gold = [{"article_id": "a1", "labels": {"classification": "AI incident"}, "rationale": "x"},
            {"article_id": "a1", "taxonomy": "disarm", "labels": {"classification": IO, "techniques": ["T0145.002"]},
             "rationale": "x"}]
    Path("aim.jsonl").write_text(json.dumps(gold[0]) + "\n")
    Path("disarm.jsonl").write_text(json.dumps(gold[1]) + "\n")
    for path, scored in (("aim.jsonl", "oecd_aim.classification"), ("disarm.jsonl", "disarm.techniques")):
        out = tmp_path / path.replace(".jsonl", "-report")
        assert main(["eval", "--drafts", "drafts.jsonl", "--gold", path, "--taxonomy", "aim_disarm", "-o", str(out),
                     "--bootstrap", "20"]) == 0
        fields = json.loads((out / "metrics.json").read_text())["fields"]
        assert fields[scored]["n"] == 1
        other = "disarm.techniques" if scored.startswith("oecd") else "oecd_aim.classification"
        assert fields.get(other, {}).get("n", 0) == 0


def test_export_of_a_two_taxonomy_project_carries_both(tmp_path, monkeypatch) -> None:
    root = Path(__file__).resolve().parents[1] / "evals" / "disarm"
    monkeypatch.chdir(tmp_path)
    gold = [json.loads(line) for line in (root / "gold.jsonl").read_text().splitlines()][:12]
    Path("reviews.jsonl").write_text("".join(json.dumps(
        {"article_id": g["article_id"], "task_id": i, "annotator": "ana@example.org", "labels": g["labels"],
         "rationale": g["rationale"], "updated_at": "2025-01-01T00:00:00Z"}) + "\n" for i, g in enumerate(gold)))
    assert main(["export", "reviews.jsonl", "--articles", str(root / "articles.jsonl"), "-o", "gold",
                 "--taxonomy", "aim_disarm", "--format", "jsonl,csv"]) == 0
    records = [json.loads(line) for split in ("train", "validation", "test")
               for line in Path(f"gold/{split}.jsonl").read_text().splitlines()]
    by_id = {r["article_id"]: r for r in records}
    assert len(by_id) == 12 and by_id["io-001"]["labels"]["disarm.techniques"] == ["T0145.002", "T0143.002"]
    assert by_id["io-001"]["labels"]["oecd_aim.classification"] == "AI incident" and by_id["io-001"]["taxonomy"] == "aim_disarm"
    header = Path("gold/train.csv").read_text().splitlines()[0].split(",")
    assert {"oecd_aim.classification", "disarm.classification", "disarm.techniques"} <= set(header)


def test_a_members_link_to_recorded_incidents_is_the_composed_taxonomys(tmp_path) -> None:
    from importlib import resources

    aim = (resources.files("annotator") / "taxonomies" / "oecd_aim.yaml").read_text(encoding="utf-8")
    (tmp_path / "aim_linked.yaml").write_text(aim + "link: {name: follow_up_of}\n", encoding="utf-8")
    (tmp_path / "both.yaml").write_text("name: both\ninclude: [aim_linked.yaml, disarm]\n", encoding="utf-8")
    composed = load_taxonomy(str(tmp_path / "both.yaml"))
    assert composed.link is not None and composed.link.name == "follow_up_of"
    assert AIM_DISARM.link is None  # no member declares one
