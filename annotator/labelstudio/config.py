"""The labeling config, generated from the taxonomy, and the translation between our records and
Label Studio result items. Pure functions: plain data in, plain data out.

The rationale is pre-filled only through the prediction (`value.text`), never through a config
default: a `TextArea` default is submitted even when the reviewer never read it, so drafts would
reach the gold set unseen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from xml.sax.saxutils import quoteattr

from annotator.records import LabelValue
from annotator.taxonomy import EVIDENCE, Field, Taxonomy, Value, label_validator, tidy_labels

TEXT = "text"  # the object tag every control points at
RATIONALE = "rationale"
# Task data keys the config reads; each must be present in every task (Label Studio rejects a batch otherwise).
DATA_KEYS = ("title", "meta", "link", "text", "flags", "draft_info", "story")
# Review a story once: the reviewer ticks STORY_APPLY and `annotator pull` writes the same labels for
# the story's other articles (except those named in STORY_EXCEPT, or labelled by the same reviewer).
STORY_APPLY = "story_apply"
STORY_EXCEPT = "story_except"
APPLY_VALUE = "Apply these labels to the rest of the story"


def _attrs(**kw: Any) -> str:
    return "".join(f" {k.rstrip('_')}={quoteattr(str(v))}" for k, v in kw.items() if v is not None and v != "")


def _hint(f: Field, value_id: str) -> str:
    v = next(v for v in f.values if v.id == value_id)
    return " — ".join(p for p in (v.label, v.definition) if p)


def tree_value(f: Field, value_id: str) -> str:
    """What a hierarchical field's tree shows and stores for a value: id and name ("T0145.002
    AI-Generated Account Imagery"), so that the Taxonomy tag's search finds a technique by either."""
    v = next((v for v in f.values if v.id == value_id), None)
    return _shown(v) if v is not None else value_id


def _shown(v: Value) -> str:
    return f"{v.id} {v.label}" if v.label else v.id


def _from_tree(f: Field, shown: str) -> str:
    """The value id behind a tree entry (also an id alone, as configs before names were shown stored).

    One pass over the values: it runs for every technique of every review a pull reads."""
    return next((v.id for v in f.values if shown == v.id or shown == _shown(v)), shown)


def _taxonomy_choices(f: Field, parent: str | None, depth: int) -> list[str]:
    lines = []
    for v in (v for v in f.values if v.parent == parent):
        children = _taxonomy_choices(f, v.id, depth + 1)
        pad = "  " * depth
        attrs = _attrs(value=tree_value(f, v.id), hint=v.definition)
        if children:
            lines += [f"{pad}<Choice{attrs}>", *children, f"{pad}</Choice>"]
        else:
            lines.append(f"{pad}<Choice{attrs}/>")
    return lines


def _shown_when(tax: Taxonomy, f: Field) -> dict[str, str]:
    """Label Studio's `visibleWhen` for a field the taxonomy's rules require empty for some values
    of the primary field: the control shows only for the other values, so a reviewer cannot fill
    in what a rule forbids (the eval still reports records that break a rule)."""
    primary = tax.field(tax.primary)
    empty_for = {v for rule in tax.rules if [n for n, _ in rule.when] == [primary.name]
                 for name, allowed in rule.then if name == f.name and not allowed for v in dict(rule.when)[primary.name]}
    shown = [v for v in primary.value_ids if v not in empty_for]
    if not empty_for or not shown or f.name == primary.name or any("," in v for v in shown):  # the list is comma-separated
        return {}
    return {"visibleWhen": "choice-selected", "whenTagName": primary.name, "whenChoiceValue": ",".join(shown)}


def _control(f: Field, shown: dict[str, str] | None = None) -> list[str]:
    title = f.name.rsplit(".", 1)[-1].replace("_", " ")  # a composed taxonomy's panel names the member
    head = f"      <Header{_attrs(value=title + (' *' if f.required else ''), size='5')}/>"
    if f.kind == "text":
        return [
            head,
            f"      <TextArea{_attrs(name=f.name, toName=TEXT, rows='5', editable='true', maxSubmissions='1', required='true' if f.required else None, hint=f.description)}/>",
        ]
    if f.hierarchical:
        body = _taxonomy_choices(f, None, 4)
        tag = f"      <Taxonomy{_attrs(name=f.name, toName=TEXT, leafsOnly='false', showFullPath='true', required='true' if f.required else None)}>"
        return [head, tag, *body, "      </Taxonomy>"]
    choice = "single" if f.kind == "single" else "multiple"
    tag = f"      <Choices{_attrs(name=f.name, toName=TEXT, choice=choice, showInline='false', required='true' if f.required else None, hint=f.description, **(shown or {}))}>"
    body = [f"        <Choice{_attrs(value=v.id, hint=_hint(f, v.id))}/>" for v in f.values]
    return [head, tag, *body, "      </Choices>"]


_SPAN_COLOURS = ("#ffd54f", "#ef9a9a", "#90caf9", "#a5d6a7", "#ce93d8")


def _evidence_labels(tax: Taxonomy) -> list[str]:
    """The highlight labels for the draft's evidence quotes, one per kind, on the article text."""
    if not tax.evidence:
        return []
    labels = [f"      <Label{_attrs(value=k.label, background=_SPAN_COLOURS[i % len(_SPAN_COLOURS)], hint=k.description)}/>"
              for i, k in enumerate(tax.evidence)]
    return [f"    <Labels{_attrs(name=EVIDENCE, toName=TEXT, choice='single')}>", *labels, "    </Labels>"]


# Task data: the recorded incidents a task offers for the taxonomy's link, as Label Studio's
# dynamic choices ({"value": id, "html": shown}; always at least "none", see push.link_options).
LINK_OPTIONS = "incident_options"


def _link_control(tax: Taxonomy) -> list[str]:
    """The link to a recorded incident: a single choice among the options each task carries."""
    if tax.link is None:
        return []
    hint = tax.link.description or "The recorded incident this article reports on or follows up, or none"
    return ["    <View>", f"      <Header{_attrs(value=tax.link.name.replace('_', ' '), size='5')}/>",
            f"      <Choices{_attrs(name=tax.link.name, toName=TEXT, choice='single', showInline='false', value='$' + LINK_OPTIONS, hint=hint)}/>",
            "    </View>"]


def link_result(tax: Taxonomy, value: str | None) -> list[dict[str, Any]]:
    """The result item that pre-selects the drafted link (none when there is no link or answer)."""
    if tax.link is None or not value:
        return []
    return [{"from_name": tax.link.name, "to_name": TEXT, "type": "choices", "value": {"choices": [value]}}]


def link_choice(tax: Taxonomy, result: Iterable[Mapping[str, Any]]) -> str | None:
    """The reviewer's link (an incident id or "none") from result items; None when not chosen."""
    for item in result:
        if tax.link is not None and item.get("from_name") == tax.link.name:
            chosen = (item.get("value") or {}).get("choices") or []
            return str(chosen[0]) if chosen else None
    return None


def _licence_comments(tax: Taxonomy) -> list[str]:
    """A config generated from a share-alike framework is a derived work too: it carries the attribution."""
    out = []
    for part in (tax, *tax.members):
        if part.license:
            text = f"{part.name}: {part.source}. License: {part.license}; this config is shared under the same license."
            out.append(f"<!-- {text.replace('--', '-')} -->")
    return out


def label_config(tax: Taxonomy) -> str:
    """The labeling config XML: the article on the left, the taxonomy's fields on the right."""
    lines = [
        f"<!-- Generated from taxonomy {tax.name} v{tax.version} ({tax.hash}) by `annotator label-config`; do not edit. -->",
        *_licence_comments(tax),
        '<View style="display: flex; gap: 1em;">',
        '  <View style="flex: 3; max-height: 85vh; overflow-y: auto;">',
        '    <Header value="$title" size="3"/>',
        '    <Text name="meta" value="$meta"/>',
        '    <HyperText name="link" value="$link" inline="true"/>',
        '    <View style="color: #b00; font-weight: bold;"><Text name="flags" value="$flags"/></View>',
        *_evidence_labels(tax),
        f'    <Text name="{TEXT}" value="$text"/>',
        '    <View style="margin-top: 1em; font-size: 90%;"><HyperText name="story" value="$story" inline="true"/></View>',
        "  </View>",
        '  <View style="flex: 2; max-height: 85vh; overflow-y: auto;">',
        '    <Text name="draft_info" value="$draft_info"/>',
    ]
    primary = tax.field(tax.primary)
    ordered = [primary, *[f for f in tax.fields if f.name != primary.name]]
    panels = _panels(tax, ordered)
    for title, fields in panels:
        if title:  # a composed taxonomy: one panel per member
            lines += ['    <View style="border-top: 2px solid #ccc; margin-top: 1em;">', f"      <Header{_attrs(value=title, size='4')}/>"]
        for f in fields:
            lines += [f"    <View{_visible_when(f)}>", *_control(f, _shown_when(tax, f)), "    </View>"]
        if title:
            lines.append("    </View>")
    lines += _link_control(tax)
    lines += [
        "    <View>",
        f"      <Header{_attrs(value='story', size='5')}/>",
        f"      <Choices{_attrs(name=STORY_APPLY, toName=TEXT, choice='multiple', showInline='true')}>",
        f"        <Choice{_attrs(value=APPLY_VALUE, hint='Each other article of the story listed on the left gets your labels as its own review, marked as applied from this one')}/>",
        "      </Choices>",
        f"      <TextArea{_attrs(name=STORY_EXCEPT, toName=TEXT, rows='2', editable='true', maxSubmissions='1', placeholder='ids of articles the labels do not fit, one per line')}/>",
        "    </View>",
    ]
    lines += ["  </View>", "</View>"]
    return "\n".join(lines) + "\n"


def _panels(tax: Taxonomy, ordered: list[Field]) -> list[tuple[str, list[Field]]]:
    """Fields grouped by the member taxonomy they come from (one untitled group for a plain taxonomy).

    The shared rationale sits in the first member's panel, after its classification."""
    if not tax.members:
        return [("", ordered)]
    groups: dict[str, list[Field]] = {m.name: [] for m in tax.members}
    first = tax.members[0].name
    for f in ordered:
        prefix = f.name.split(".", 1)[0] if "." in f.name else first
        groups.get(prefix, groups[first]).append(f)
    return [(m.title or m.name, groups[m.name]) for m in tax.members]


def _visible_when(f: Field) -> str:
    """A conditional field shows only while its condition's field holds one of the values."""
    if f.when is None:
        return ""
    return _attrs(visibleWhen="choice-selected", whenTagName=f.when.field, whenChoiceValue=",".join(f.when.values))


def normalise_config(xml: str) -> str:
    """What to compare for drift: the config without comments and blank space."""
    import re

    return re.sub(r"\s+", "", re.sub(r"<!--.*?-->", "", xml, flags=re.S))


# --------------------------------------------------------------------------- records <-> result items


def _item(f: Field, value: dict[str, Any], score: float | None) -> dict[str, Any]:
    kind = "textarea" if f.kind == "text" else "taxonomy" if f.hierarchical else "choices"
    item: dict[str, Any] = {"from_name": f.name, "to_name": TEXT, "type": kind, "value": value}
    if score is not None:
        item["score"] = score
    return item


def to_result(
    tax: Taxonomy,
    labels: Mapping[str, LabelValue],
    rationale: str | None,
    confidence: Mapping[str, float | None] | None = None,
) -> list[dict[str, Any]]:
    """Result items for a prediction or an annotation. Empty answers produce no item."""
    confidence = confidence or {}
    out = []
    for f in tax.fields:
        score = confidence.get(f.name)
        if f.kind == "text":
            text = rationale if f.name == RATIONALE else None
            if text:
                out.append(_item(f, {"text": [text]}, score))
            continue
        value = labels.get(f.name)
        chosen = [value] if isinstance(value, str) else list(value or [])
        if not chosen:
            continue
        if f.hierarchical:
            out.append(_item(f, {"taxonomy": [[tree_value(f, p) for p in f.path(v)] for v in chosen]}, score))
        else:
            out.append(_item(f, {"choices": chosen}, score))
    return out


def from_result(tax: Taxonomy, result: Iterable[Mapping[str, Any]]) -> tuple[dict[str, LabelValue], str | None, list[str]]:
    """(labels, rationale, problems) from result items.

    Values that are not (or no longer) in the taxonomy are kept out of `labels` and named in
    `problems`, so that the caller reports them instead of losing them silently.
    """
    labels: dict[str, LabelValue] = {f.name: f.empty for f in tax.label_fields}
    check = label_validator(tax)  # the taxonomy's one validator decides which values are kept
    rationale: str | None = None
    problems: list[str] = []
    fields = {f.name: f for f in tax.fields}
    for item in result:
        name = item.get("from_name")
        value = item.get("value") or {}
        if name == EVIDENCE and tax.evidence:
            continue  # highlights: `spans_from_result`
        f = fields.get(name)  # type: ignore[arg-type]
        if name in (STORY_APPLY, STORY_EXCEPT) or (tax.link is not None and name == tax.link.name):
            continue  # not a label: see story_request, link_choice
        if f is None:
            problems.append(f"field {name!r} is not in taxonomy {tax.name}")
            continue
        if f.kind == "text":
            text = "\n".join(value.get("text") or [])
            if f.name == RATIONALE:
                rationale = text
            continue
        chosen = ([_from_tree(f, path[-1]) for path in value["taxonomy"] if path] if "taxonomy" in value
                  else list(value.get("choices") or []))
        rejected = {v: check({f.name: v if f.kind == "single" else [v]}) for v in chosen}
        problems += [p for v in chosen for p in rejected[v]]
        chosen = list(dict.fromkeys(v for v in chosen if not rejected[v]))
        if f.kind == "single":
            labels[f.name] = chosen[0] if chosen else None
            if len(chosen) > 1:
                problems.append(f"{f.name}: several values {chosen!r} for a single field; kept the first")
        else:
            labels[f.name] = chosen
    # A hidden conditional field may still hold the draft's values: they are not the reviewer's answer.
    return tidy_labels(tax, labels), rationale, problems


def story_request(result: Iterable[Mapping[str, Any]]) -> tuple[bool, list[str]]:
    """(apply the labels to the rest of the story?, article ids left out) from result items."""
    apply, except_ids = False, []
    for item in result:
        value = item.get("value") or {}
        if item.get("from_name") == STORY_APPLY:
            apply = APPLY_VALUE in (value.get("choices") or [])
        elif item.get("from_name") == STORY_EXCEPT:
            except_ids = [w for t in value.get("text") or [] for w in t.replace(",", " ").split()]
    return apply, except_ids


# --------------------------------------------------------------------------- evidence spans <-> result items
# Label Studio counts offsets in UTF-16 code units (JavaScript strings); records count Python
# characters. They differ after any character outside the Basic Multilingual Plane (emoji, some CJK).


def _utf16(text: str, i: int) -> int:
    return len(text[:i].encode("utf-16-le")) // 2


def _from_utf16(text: str, u: int) -> int:
    i = n = 0
    while i < len(text) and n < u:
        n += 2 if ord(text[i]) > 0xFFFF else 1
        i += 1
    return i


def spans_to_result(tax: Taxonomy, text: str, spans: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`Labels` result items highlighting the evidence spans {kind, start, end} in the article text."""
    label = {k.name: k.label for k in tax.evidence}
    out = []
    for n, span in enumerate(spans):
        if span.get("kind") not in label:
            continue
        start, end = int(span["start"]), int(span["end"])
        out.append({
            "id": f"ev{n}", "from_name": EVIDENCE, "to_name": TEXT, "type": "labels",
            "value": {"start": _utf16(text, start), "end": _utf16(text, end), "text": text[start:end],
                      "labels": [label[span["kind"]]]},
        })
    return out


def spans_from_result(tax: Taxonomy, text: str, result: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Evidence spans {kind, start, end, text} (Python offsets) from `Labels` result items."""
    kind = {k.label: k.name for k in tax.evidence}
    out = []
    for item in result:
        value = item.get("value") or {}
        if item.get("from_name") != EVIDENCE or "start" not in value:
            continue
        start, end = _from_utf16(text, int(value["start"])), _from_utf16(text, int(value["end"]))
        for name in (kind.get(v) for v in value.get("labels") or []):
            if name:
                out.append({"kind": name, "start": start, "end": end, "text": text[start:end]})
    return out
