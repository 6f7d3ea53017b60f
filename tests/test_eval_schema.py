"""metrics.json is the typed report's JSON: its published schema, the README's layout and a real
report agree, and a notebook reads a report back in one line."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from annotator.cli import main
from annotator.evaluate import EvalMetrics, evaluate, load_metrics, write_report
from annotator.evaluate.model import schema
from annotator.records import Draft, GoldRecord
from annotator.simulate import SimulatedReviewer, noisy_labels, simulate_reviews
from annotator.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parents[1]
TAX = load_taxonomy("oecd_aim")
KINDS = ("single", "multi", "text")


def _layout() -> list[tuple[str, set[str]]]:
    """(path, keys) from the README's metrics.json layout block."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("`tests/test_eval_schema.py` checks this\nblock against the schema):", 1)[1].split("```")[1]
    out = []
    for line in block.strip().splitlines():
        m = re.match(r"^(\S+) (?:\{([^}]*)\}|\[\])", line)
        assert m, f"README layout line not understood: {line!r}"
        out.append((m.group(1), {k.strip() for k in m.group(2).split(",")} if m.group(2) else set()))
    return out


def _resolve(node: dict[str, Any], defs: dict[str, Any], kind: str | None = None) -> dict[str, Any]:
    """Follow $ref and pick the object out of a nullable union (or the variant of this `kind`)."""
    while True:
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[1]]
        elif "anyOf" in node or "oneOf" in node:
            options = [_resolve(o, defs) for o in node.get("anyOf", node.get("oneOf"))]
            options = [o for o in options if o.get("type") != "null"]
            if kind is not None:
                options = [o for o in options if o.get("properties", {}).get("kind", {}).get("const") == kind] or options
            assert len(options) == 1, f"ambiguous union: {options}"
            node = options[0]
        else:
            return node


def _walk(path: str, root: dict[str, Any]) -> dict[str, Any]:
    defs = root["$defs"]
    node = root
    for segment in path.split("."):
        is_list = segment.endswith("[]")
        segment = segment.removesuffix("[]")
        if segment.startswith("<"):
            kind = segment.strip("<>") if segment.strip("<>") in KINDS else None
            node = _resolve(_resolve(node, defs)["additionalProperties"], defs, kind)
        else:
            node = _resolve(_resolve(node, defs)["properties"][segment], defs)
        if is_list:
            node = _resolve(node["items"], defs)
    return node


def test_the_readme_layout_names_every_key_of_the_schema_and_no_other() -> None:
    root = schema()
    layout = _layout()
    assert {path.split(".")[0].removesuffix("[]") for path, _ in layout} == set(root["properties"])
    listed = {path.replace("[]", "") for path, keys in layout if keys}
    shapes = [keys for _, keys in layout]
    for path, keys in layout:
        if not keys:
            continue
        properties = _walk(path, root)["properties"]
        assert set(properties) == keys, path
        # an object inside is drawn on a line of its own, or has the shape of one drawn elsewhere
        for key, sub in properties.items():
            target = _resolve(sub, root["$defs"])
            if "properties" in target:
                drawn = f"{path.replace('[]', '')}.{key}" in listed or set(target["properties"]) in shapes
                assert drawn, f"{path}.{key} is an object the README does not draw"


def _report(tmp_path: Path) -> Path:
    """A report with every section: blind and assisted reviews, confidences, compare, thresholds."""
    rng = random.Random(0)
    truth = [GoldRecord(article_id=f"a{i}", labels=noisy_labels(TAX, {f.name: f.value_ids[0] if f.kind == "single" else [] for f in TAX.label_fields}, 0.5, rng),
                        rationale=f"why {i}") for i in range(120)]
    drafts = [Draft(article_id=g.article_id, labels=noisy_labels(TAX, g.labels, 0.2, rng), rationale="draft",
                    confidence={TAX.primary: rng.random()}) for g in truth]
    blind = {g.article_id for g in truth[::3]}
    panel = [SimulatedReviewer(name=name, noise=0.1, anchoring=0.5) for name in ("ana", "ben", "cleo")]
    reviews = simulate_reviews(TAX, truth, drafts, panel, blind=blind, blind_reviewers=3, assisted_reviewers=2, seed=0)
    report = evaluate(drafts, reviews, TAX, compare=drafts, thresholds={TAX.primary: {"accuracy": 0.1}}, n_boot=30)
    write_report(report, tmp_path)
    return tmp_path / "metrics.json"


def test_a_real_report_validates_against_the_published_schema_and_loads_in_one_line(tmp_path: Path, capsys) -> None:
    path = _report(tmp_path)
    data = json.loads(path.read_text())
    assert main(["eval", "--schema"]) == 0
    published = json.loads(capsys.readouterr().out)
    jsonschema.validate(data, published)
    m = load_metrics(path)
    assert isinstance(m, EvalMetrics) and m.model_dump(mode="json") == data
    assert m.slices["blind"].coverage is not None and m.alt_test is not None and m.compare is not None
    assert m.thresholds is not None and m.thresholds.passed and m.passed
    # every section a lead reads is there, so the schema is not checked on an empty report
    assert m.anchoring and m.lead_time and m.calibration and m.human_agreement and m.slices["assisted"].fields


def test_a_key_the_model_does_not_know_is_refused(tmp_path: Path) -> None:
    data = json.loads(_report(tmp_path).read_text())
    data["fields"][TAX.primary]["acuracy"] = 0.9
    with pytest.raises(ValidationError, match="acuracy"):
        EvalMetrics.model_validate(data)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema())


def test_eval_without_inputs_says_what_it_needs(capsys) -> None:
    assert main(["eval", "--drafts", "d.jsonl"]) == 2
    assert "--reviews or --gold" in capsys.readouterr().err

