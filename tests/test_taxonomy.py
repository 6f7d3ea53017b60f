"""Taxonomy files: the loader's error messages, the generated answer model and JSON schema, the CLI."""

from __future__ import annotations

import json
import textwrap

import jsonschema
import pytest
from pydantic import ValidationError

from annotator.cli import main
from annotator.errors import TaxonomyError
from annotator.taxonomy import (
    available_taxonomies,
    draft_model,
    json_schema,
    label_guide,
    load_taxonomy,
    parse_taxonomy,
    validate_labels,
)

GOOD = """
name: tiny
version: "1"
fields:
  - name: classification
    kind: single
    required: true
    values:
      - id: incident
      - id: other
  - name: rationale
    kind: text
    required: true
  - name: tags
    kind: multi
    values:
      - id: red
      - id: blue
"""


def broken(fields_yaml: str) -> str:
    head = "name: broken\nfields:\n  - name: classification\n    kind: single\n    values: [{id: a}]\n"
    return head + textwrap.indent(textwrap.dedent(fields_yaml).strip() + "\n", "  ")


@pytest.mark.parametrize(
    ("fields_yaml", "must_name"),
    [
        ("- name: tags\n  kind: multi\n  values: [{id: red}, {id: red}]", ["'tags'", "duplicate value id", "'red'"]),
        ("- name: tech\n  kind: multi\n  values: [{id: T1, parent: TA9}]", ["'tech'", "'T1'", "unknown parent", "'TA9'"]),
        ("- name: tags\n  kind: multi\n  values: []", ["'tags'", "empty value list"]),
        ("- name: tags\n  kind: multi", ["'tags'", "empty value list"]),
        ("- name: tags\n  kind: multiple\n  values: [{id: red}]", ["'tags'", "unknown kind", "'multiple'"]),
        ("- name: classification\n  kind: text", ["'classification'", "duplicate field name"]),
    ],
)
def test_loader_rejects_broken_file_naming_field_and_value(fields_yaml: str, must_name: list[str]) -> None:
    with pytest.raises(TaxonomyError) as info:
        parse_taxonomy(broken(fields_yaml), "broken.yaml")
    message = str(info.value)
    assert message.startswith("broken.yaml: ")
    assert "\n" not in message
    for part in must_name:
        assert part in message


def test_loader_rejects_parent_cycle_and_non_single_primary() -> None:
    cycle = "- name: tech\n  kind: multi\n  values: [{id: A, parent: B}, {id: B, parent: A}]"
    with pytest.raises(TaxonomyError, match="'tech'.*ancestor"):
        parse_taxonomy(broken(cycle))
    with pytest.raises(TaxonomyError, match="primary field 'tags' must be a single field"):
        parse_taxonomy(GOOD + "primary: tags\n")


def test_unknown_taxonomy_name_lists_the_bundled_ones(tmp_path) -> None:
    with pytest.raises(TaxonomyError, match="oecd_aim"):
        load_taxonomy("no_such_taxonomy")
    with pytest.raises(TaxonomyError, match="no such taxonomy file"):
        load_taxonomy(tmp_path / "missing.yaml")


def test_bundled_taxonomies_load() -> None:
    assert {"oecd_aim", "disarm"} <= set(available_taxonomies())
    aim = load_taxonomy("oecd_aim")
    assert aim.primary == "classification"
    assert aim.field("classification").value_ids == ("AI incident", "AI hazard", "Complementary information", "Unrelated")
    assert [f.name for f in aim.text_fields] == ["rationale"]
    disarm = load_taxonomy("disarm")
    techniques = disarm.field("techniques")
    assert techniques.path("T0145.002") == ["TA15", "T0145", "T0145.002"]


def test_taxonomy_file_by_path(tmp_path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(GOOD, encoding="utf-8")
    tax = load_taxonomy(path)
    assert tax.name == "tiny"
    assert tax.field("classification").value_ids == ("incident", "other")


def test_unquoted_yes_as_value_id_is_named() -> None:
    # YAML 1.1 reads `yes` as a boolean; the message must say which value and how to fix it.
    with pytest.raises(TaxonomyError, match="field 'tags': value id True is not text; put the id in quotes"):
        parse_taxonomy(broken("- name: tags\n  kind: multi\n  values: [{id: yes}]"))


# --------------------------------------------------------------------------- draft model and JSON schema


def _answer(tax, **override):
    answer = {f.name: ([] if f.kind == "multi" else None) for f in tax.fields}
    answer[tax.primary] = tax.field(tax.primary).value_ids[0]
    for f in tax.text_fields:
        answer[f.name] = "Because the article says so."
    if tax.evidence:
        answer["evidence"] = {k.name: [] for k in tax.evidence}
    answer.update(override)
    return answer


@pytest.mark.parametrize("name", ["oecd_aim", "disarm"])
def test_schema_and_model_accept_a_valid_answer(name: str) -> None:
    tax = load_taxonomy(name)
    multi = tax.multi_fields[0]
    answer = _answer(tax, **{multi.name: list(multi.value_ids[:2])})
    jsonschema.validate(answer, json_schema(tax))
    assert draft_model(tax).model_validate(answer).model_dump()[multi.name] == list(multi.value_ids[:2])


@pytest.mark.parametrize("name", ["oecd_aim", "disarm"])
def test_schema_and_model_reject_out_of_taxonomy_value(name: str) -> None:
    tax = load_taxonomy(name)
    bad_single = _answer(tax, **{tax.primary: "Maybe an incident"})
    multi = tax.multi_fields[0]
    bad_multi = _answer(tax, **{multi.name: ["not a value"]})
    for answer in (bad_single, bad_multi):
        with pytest.raises(jsonschema.ValidationError, match="is not one of"):
            jsonschema.validate(answer, json_schema(tax))
        with pytest.raises(ValidationError):
            draft_model(tax).model_validate(answer)


@pytest.mark.parametrize("name", ["oecd_aim", "disarm"])
def test_schema_and_model_reject_duplicate_list_item(name: str) -> None:
    tax = load_taxonomy(name)
    multi = tax.multi_fields[0]
    value = multi.value_ids[0]
    answer = _answer(tax, **{multi.name: [value, value]})
    with pytest.raises(jsonschema.ValidationError, match="non-unique"):
        jsonschema.validate(answer, json_schema(tax))
    with pytest.raises(ValidationError, match="duplicate values"):
        draft_model(tax).model_validate(answer)


def test_schema_has_the_strict_structured_output_shape() -> None:
    tax = load_taxonomy("oecd_aim")
    schema = json_schema(tax)
    assert schema["additionalProperties"] is False
    assert schema["required"] == [f.name for f in tax.fields] + ["evidence"]
    quotes = schema["properties"]["evidence"]  # strict mode: every object closed, every key required
    assert quotes["additionalProperties"] is False and quotes["required"] == ["ai_system", "harm", "realised"]
    for f in tax.single_fields:
        assert set(schema["properties"][f.name]["enum"]) - {None} == set(f.value_ids)
    for f in tax.multi_fields:
        assert schema["properties"][f.name]["items"]["enum"] == list(f.value_ids)
    # Unknown and missing keys are refused too.
    with pytest.raises(jsonschema.ValidationError, match="Additional properties"):
        jsonschema.validate(_answer(tax, mood="angry"), schema)
    missing = _answer(tax)
    del missing["rationale"]
    with pytest.raises(jsonschema.ValidationError, match="'rationale' is a required property"):
        jsonschema.validate(missing, schema)


def test_validate_labels_reports_problems_without_raising() -> None:
    tax = load_taxonomy("oecd_aim")
    assert validate_labels(tax, {"classification": "AI incident", "harm_types": ["Psychological"]}) == []
    problems = validate_labels(
        tax,
        {"classification": ["AI incident"], "harm_types": ["Boredom", "Other", "Other"], "mood": "x", "industries": "Other"},
    )
    text = " | ".join(problems)
    assert "classification: expected one value or null" in text
    assert "harm_types: 'Boredom' is not a value" in text
    assert "harm_types: duplicate values" in text
    assert "unknown field 'mood'" in text
    assert "industries: expected a list" in text


def test_label_guide_lists_every_field_and_value() -> None:
    tax = load_taxonomy("oecd_aim")
    guide = label_guide(tax)
    for f in tax.fields:
        assert f"## {f.name} " in guide
        for v in f.values:
            assert f"- {v.id}" in guide


# --------------------------------------------------------------------------- CLI


def test_cli_taxonomy_show_prints_fields_and_values(capsys) -> None:
    assert main(["taxonomy", "show", "oecd_aim"]) == 0
    out = capsys.readouterr().out
    assert "## classification (exactly one value; required)" in out
    assert "- Complementary information" in out
    assert "- Media, social platforms, and marketing" in out


def test_cli_taxonomy_schema_prints_the_json_schema(capsys) -> None:
    assert main(["taxonomy", "schema", "disarm"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema == json_schema(load_taxonomy("disarm"))
    assert "T0145.002" in schema["properties"]["techniques"]["items"]["enum"]


def test_cli_taxonomy_list_and_unknown_name(capsys) -> None:
    assert main(["taxonomy", "list"]) == 0
    assert "oecd_aim" in capsys.readouterr().out
    assert main(["taxonomy", "show", "nope"]) == 2
    assert "unknown taxonomy 'nope'" in capsys.readouterr().err


# --------------------------------------------------------------------------- versions, aliases, rules

def test_aim_csv_spellings_and_renamed_ids_are_read_as_the_current_values() -> None:
    from annotator.taxonomy import canonical_labels

    tax = load_taxonomy("oecd_aim")
    labels, notes = canonical_labels(tax, {"industries": ["Government & security & defence", "Digital security"],
                                           "classification": "ai  INCIDENT"})
    assert labels == {"industries": ["Government, security, and defence", "Digital security"], "classification": "AI incident"}
    assert len(notes) == 2 and "Government & security & defence" in notes[0]
    assert "No-action autonomy (human support)" in tax.field("autonomy_level").value_ids
    renamed = parse_taxonomy(GOOD.replace('version: "1"', 'version: "2"\nchanges:\n  - version: "2"\n    renamed: {tags: {crimson: red}}'))
    assert canonical_labels(renamed, {"tags": ["crimson", "red"]})[0] == {"tags": ["red"]}


def test_rules_between_fields_are_checked_stated_and_refused_when_they_name_nothing() -> None:
    from annotator.taxonomy import rule_violations

    tax = load_taxonomy("oecd_aim")
    assert rule_violations(tax, {"classification": "AI incident", "severity": "AI incident"}) == []
    assert rule_violations(tax, {"classification": "AI incident", "severity": "AI hazard"}) == [
        "severity must be AI incident when classification is AI incident (got AI hazard)"]
    assert rule_violations(tax, {"classification": "Unrelated", "severity": "AI hazard", "harm_types": ["Psychological"]}) == [
        "severity must be empty when classification is Complementary information or Unrelated (got AI hazard)",
        "harm_types must be empty when classification is Unrelated (got Psychological)"]
    assert rule_violations(tax, {"classification": "Unrelated"}) == []  # fields a record lacks are not judged
    assert "severity is AI incident when classification is AI incident." in label_guide(tax)
    assert "severity is AI hazard when classification is AI hazard" in json_schema(tax)["properties"]["severity"]["description"]
    bad = GOOD + "rules:\n  - when: {classification: [incident]}\n    then: {tags: [green]}\n"
    with pytest.raises(TaxonomyError, match="'green' is not a value of 'tags'"):
        parse_taxonomy(bad)


def test_the_schema_with_rules_accepts_exactly_the_answers_that_keep_them() -> None:
    """What a grammar-constrained server gets (the embedded model): it cannot write an answer that breaks a rule."""
    from annotator.taxonomy import rule_violations, rules_schema

    tax = load_taxonomy("oecd_aim")
    plain, ruled = json_schema(tax), rules_schema(tax)
    base = {f.name: ([] if f.kind == "multi" else None) for f in tax.fields}
    base.update(rationale="A chatbot gave wrong advice.", evidence={k.name: [] for k in tax.evidence})
    checked = 0
    for classification in tax.field("classification").value_ids:
        for severity in [*tax.field("severity").value_ids, None]:
            for harms in ([], ["Psychological"]):
                answer = {**base, "classification": classification, "severity": severity, "harm_types": harms}
                jsonschema.validate(answer, plain)
                keeps = not rule_violations(tax, answer)
                assert jsonschema.Draft202012Validator(ruled).is_valid(answer) == keeps, answer
                checked += keeps
    assert checked == 7  # severity matching an incident or hazard, or none otherwise; harms for any but unrelated


def test_multi_field_null_is_not_assessed_and_differs_from_none_apply() -> None:
    tax = load_taxonomy("oecd_aim")
    assert validate_labels(tax, {"harm_types": None, "industries": []}) == []
    assert validate_labels(tax, {"harm_types": "Psychological"}) == ["harm_types: expected a list, got str"]


def test_a_copy_with_other_content_has_another_hash():
    """The content hash is computed once per taxonomy; a changed copy must not inherit it (two-step
    drafting and composition derive taxonomies by copying)."""
    tax = load_taxonomy("oecd_aim")
    before = tax.hash
    narrowed = tax.model_copy(update={"fields": tax.fields[:2]})
    assert narrowed.hash != before and tax.hash == before and tax.model_copy().hash == before
    assert len({tax, narrowed, tax.model_copy()}) == 2
