"""The labeling config is generated from the taxonomy, survives XML-special characters, and our
records translate to Label Studio result items and back without loss."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from label_studio_sdk.label_interface import LabelInterface

from annotator.labelstudio.config import from_result, label_config, to_result, tree_value
from annotator.taxonomy import load_taxonomy, tidy_labels

ROOT = Path(__file__).resolve().parents[1]
TAXONOMIES = ["oecd_aim", "disarm", "aim_disarm"]


@pytest.mark.parametrize("name", TAXONOMIES)
def test_committed_config_matches_taxonomy(name):
    committed = (ROOT / "label_config" / f"{name}.xml").read_text(encoding="utf-8")
    assert committed == label_config(load_taxonomy(name)), (
        f"label_config/{name}.xml drifted from the taxonomy: run `annotator label-config --taxonomy {name} -o label_config/{name}.xml`"
    )


@pytest.mark.parametrize("name", TAXONOMIES)
def test_config_has_every_value_with_its_definition(name):
    tax = load_taxonomy(name)
    root = ET.fromstring(label_config(tax))
    controls = {el.get("name"): el for el in root.iter() if el.tag in ("Choices", "Taxonomy", "TextArea")}
    assert set(controls) == {f.name for f in tax.fields} | {"story_apply", "story_except"}  # + review a story once
    assert controls[tax.primary].get("required") == "true" and controls[tax.primary].get("choice") == "single"
    for f in tax.label_fields:
        # A tree shows (and stores) id and name, so its search finds a technique by either.
        shown = {(tree_value(f, v.id) if f.hierarchical else v.id): v for v in f.values}
        choices = {c.get("value"): c.get("hint") for c in controls[f.name].iter("Choice")}
        assert set(choices) == set(shown)
        for key, v in shown.items():
            assert v.definition in choices[key]
        if f.hierarchical:
            assert controls[f.name].tag == "Taxonomy"
        elif f.kind == "multi":
            assert controls[f.name].get("choice") == "multiple"
    # The rationale is pre-filled only through predictions: a config default would be submitted unread.
    for f in tax.text_fields:
        assert controls[f.name].get("value") is None


def test_xml_special_characters_are_escaped():
    tax = load_taxonomy("oecd_aim")
    xml = label_config(tax)
    assert 'value="Transparency &amp; explainability"' in xml
    values = [c.get("value") for c in ET.fromstring(xml).iter("Choice")]
    assert "Transparency & explainability" in values


@pytest.mark.parametrize("name", TAXONOMIES)
def test_result_round_trip_every_value(name):
    tax = load_taxonomy(name)
    interface = LabelInterface(label_config(tax))
    labels = {f.name: (f.value_ids[-1] if f.kind == "single" else list(f.value_ids)) for f in tax.label_fields}
    result = to_result(tax, labels, "Why: a & b <c>.", {f.name: 0.5 for f in tax.label_fields})
    assert interface.validate_prediction({"model_version": "x", "score": 0.5, "result": result}, return_errors=True) == []
    back, rationale, problems = from_result(tax, json.loads(json.dumps(result)))
    # A tree's parent beside its own child is implied by the child's path: only the most specific come back.
    assert (back, rationale, problems) == (tidy_labels(tax, labels), "Why: a & b <c>.", [])


def test_hierarchical_values_travel_as_paths():
    tax = load_taxonomy("disarm")
    result = to_result(tax, {"classification": "Unrelated", "techniques": ["T0145.002"]}, None)
    item = next(i for i in result if i["from_name"] == "techniques")
    assert item["value"] == {"taxonomy": [["TA15 Establish Assets", "T0145 Establish Account Imagery",
                                           "T0145.002 AI-Generated Account Imagery"]]}
    assert from_result(tax, result)[0]["techniques"] == ["T0145.002"]
    # Results stored by configs that showed ids alone still read back.
    item["value"] = {"taxonomy": [["TA15", "T0145", "T0145.002"]]}
    assert from_result(tax, result)[0]["techniques"] == ["T0145.002"]


def test_values_no_longer_in_the_taxonomy_are_reported():
    tax = load_taxonomy("oecd_aim")
    result = [
        {"from_name": "classification", "to_name": "text", "type": "choices", "value": {"choices": ["AI incident"]}},
        {"from_name": "ai_principles", "to_name": "text", "type": "choices", "value": {"choices": ["Safety", "Old value"]}},
        {"from_name": "gone_field", "to_name": "text", "type": "choices", "value": {"choices": ["x"]}},
    ]
    labels, _, problems = from_result(tax, result)
    assert labels["ai_principles"] == ["Safety"] and labels["classification"] == "AI incident"
    assert len(problems) == 2
    assert any("'Old value'" in p for p in problems) and any("gone_field" in p for p in problems)


@pytest.mark.labelstudio
def test_server_accepts_config_and_parses_special_values(ls_conn, project_title):
    tax = load_taxonomy("oecd_aim")
    project = ls_conn.ls.projects.create(title=project_title, label_config=label_config(tax))
    parsed = ls_conn.ls.projects.get(id=project.id).parsed_label_config
    assert "Transparency & explainability" in parsed["ai_principles"]["labels"]
    # A prediction using the value: what the server stores is exactly a value the config offers,
    # which is what the editor compares to mark the choice as selected.
    data = {"article_id": "a", "title": "t", "meta": "", "link": "", "text": "x", "flags": "", "draft_info": "", "story": ""}
    result = to_result(tax, {"classification": "AI hazard", "ai_principles": ["Transparency & explainability"]}, "why")
    ls_conn.ls.projects.import_tasks(
        id=project.id, request=[{"data": data, "predictions": [{"model_version": "v", "result": result}]}]
    )
    task = next(iter(ls_conn.ls.tasks.list(project=project.id, fields="all")))
    stored = task.predictions[0]["result"] if isinstance(task.predictions[0], dict) else task.predictions[0].result
    chosen = next(i for i in stored if i["from_name"] == "ai_principles")["value"]["choices"]
    assert chosen == ["Transparency & explainability"]
    assert set(chosen) <= set(parsed["ai_principles"]["labels"])


def test_a_field_a_rule_keeps_empty_is_hidden_for_those_classes() -> None:
    xml = label_config(load_taxonomy("oecd_aim"))
    severity = next(line for line in xml.splitlines() if 'name="severity"' in line)
    assert 'visibleWhen="choice-selected"' in severity and 'whenChoiceValue="AI incident,AI hazard"' in severity
    assert "visibleWhen" not in next(line for line in xml.splitlines() if 'name="industries"' in line)
