"""Taxonomies as data: load and check a taxonomy file, and build what other stages need from it.

The taxonomy file is the one source of truth. The pydantic model of an answer, the JSON schema
sent to the model, the label guide in the prompt, the Label Studio config and the eval and export
columns are all derived from a loaded `Taxonomy`, so that adding a value is a one-line change.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, create_model, field_validator
from pydantic import Field as PydField

from annotator.errors import TaxonomyError

FieldKind = Literal["single", "multi", "text"]
EVIDENCE = "evidence"  # the answer's quotes, by kind (see EvidenceKind); not a label field
QUOTE_CHARS, QUOTES_PER_KIND = 300, 3
_KINDS = ("single", "multi", "text")


class Value(BaseModel):
    """One allowed value. `id` is what records store; `label` is what people read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    label: str = ""
    definition: str = ""
    parent: str | None = None
    aliases: tuple[str, ...] = ()  # other spellings found in data (e.g. AIM's CSV downloads), read as `id`

    @property
    def display(self) -> str:
        return self.label or self.id


class Condition(BaseModel):
    """A field that applies only when another field holds one of `values` (e.g. DISARM techniques
    only when the article reports an influence operation). Otherwise the field stays empty."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    values: tuple[str, ...]

    def holds(self, labels: Mapping[str, Any]) -> bool:
        """Whether `labels` give `field` one of `values` (a single value or a list of them)."""
        held = labels.get(self.field)
        held = [held] if isinstance(held, str) else list(held or [])
        return bool(set(held) & set(self.values))


class Field(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: FieldKind
    required: bool = False
    description: str = ""
    values: tuple[Value, ...] = ()
    hierarchical: bool = False
    max_length: int | None = None
    when: Condition | None = None

    @property
    def value_ids(self) -> tuple[str, ...]:
        return tuple(v.id for v in self.values)

    @property
    def empty(self) -> Any:
        """The answer that says "none": null for a single or text field, an empty list for a multi field."""
        return [] if self.kind == "multi" else None

    def canonical(self, value: Any) -> Any:
        """A value that compares and hashes: a multi field's values as a tuple in taxonomy order."""
        if self.kind != "multi":
            return value
        chosen = set(value or [])
        return tuple(v for v in self.value_ids if v in chosen)

    def same(self, a: Any, b: Any) -> bool:
        """Label equality: a multi field's answers are equal as sets (null counts as empty), others as values."""
        if self.kind == "multi":
            return set(a or []) == set(b or [])
        return a == b

    def path(self, value_id: str) -> list[str]:
        """Ids from the root down to `value_id` (a single item for flat fields)."""
        by_id = {v.id: v for v in self.values}
        chain = [value_id]
        while (parent := by_id[chain[-1]].parent) is not None:
            chain.append(parent)
        return chain[::-1]

    def root_of(self) -> dict[str, str]:
        """Each value id's top-level ancestor (a root's is itself): `path(v)[0]` for every value at
        once, in one pass over the values, where asking `path` per value costs the square."""
        parent = {v.id: v.parent for v in self.values}

        def top(value_id: str) -> str:
            while (up := parent[value_id]) is not None:
                value_id = up
            return value_id

        return {v.id: top(v.id) for v in self.values}


def _pairs(value: Any) -> Any:
    """YAML mappings as tuples of pairs (nested too): a taxonomy is frozen and hashable."""
    if isinstance(value, Mapping):
        return tuple((k, _pairs(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(value)
    return value


class Rule(BaseModel):
    """A rule between fields: when every `when` field holds one of its values, each `then` field
    may hold only the values listed for it (an empty list: the field must be empty)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: tuple[tuple[str, tuple[str, ...]], ...]
    then: tuple[tuple[str, tuple[str, ...]], ...]
    note: str = ""

    _as_pairs = field_validator("when", "then", mode="before")(lambda cls, v: _pairs(v))


class Change(BaseModel):
    """What a version changed, so that records labelled under an older version can be read:
    `renamed` maps field -> old id -> new id; `added` lists new ids (older records never chose them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    added: tuple[tuple[str, tuple[str, ...]], ...] = ()
    renamed: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    _as_pairs = field_validator("added", "renamed", mode="before")(lambda cls, v: _pairs(v))


class EvidenceKind(BaseModel):
    """A kind of verbatim quote the answer gives from the article, shown to reviewers as a highlight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    label: str
    description: str = ""


class Link(BaseModel):
    """The optional link to a known incident (`follow_up_of`): unlike a field, its values are not
    in the file but offered per article, the recorded incidents most like it (`annotator.incidents`)
    plus `none`. It is drafted only when `draft --incidents FILE` gives the recorded incidents; a
    taxonomy without it works as before. Records hold it beside `labels`, under `name`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "follow_up_of"
    description: str = ""


class About(BaseModel):
    """What a taxonomy is and where it comes from: a taxonomy's own, and each member's of a composed one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str
    title: str = ""
    description: str = ""
    source: str = ""  # where the taxonomy comes from (e.g. a framework's STIX bundle)
    license: str = ""  # the source's licence and attribution, which derived files must carry


class Member(About):
    """A taxonomy included in a composed one: its fields appear there as `NAME.FIELD`."""


class Taxonomy(About):
    primary: str = "classification"
    members: tuple[Member, ...] = ()  # set when composed of several taxonomies (`oecd_aim,disarm`)
    fields: tuple[Field, ...]
    rules: tuple[Rule, ...] = ()
    changes: tuple[Change, ...] = ()
    evidence: tuple[EvidenceKind, ...] = ()
    link: Link | None = None

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise TaxonomyError(f"taxonomy {self.name!r} has no field {name!r}")

    @property
    def label_fields(self) -> tuple[Field, ...]:
        """Fields whose answers are values (single or multi): what `labels` holds besides text."""
        return tuple(f for f in self.fields if f.kind != "text")

    @property
    def single_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.kind == "single")

    @property
    def multi_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.kind == "multi")

    @property
    def text_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.kind == "text")

    def __hash__(self) -> int:  # the content hash, computed once: lru_caches keyed by a taxonomy look it up per article
        return hash(self.hash)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Taxonomy:
        """A copy whose content hash is computed afresh (the cached one names the original)."""
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("hash", None)
        return copy

    @functools.cached_property
    def hash(self) -> str:
        """Content hash: part of every cache key, so an edited taxonomy re-drafts."""
        data = self.model_dump(mode="json")
        # Keys absent and empty hash alike, so older taxonomy files keep their hash (and caches).
        for key in ("rules", "changes", "evidence", "source", "license", "members", "link"):
            if not data[key]:
                del data[key]
        for f in data["fields"]:
            if f["when"] is None:
                del f["when"]
            for v in f["values"]:
                if not v["aliases"]:
                    del v["aliases"]
        canonical = json.dumps(data, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- loading


def _check(raw: Mapping[str, Any], source: str) -> Taxonomy:
    """Validate a parsed taxonomy, with messages that name the field and value to fix."""
    if not isinstance(raw, Mapping):
        raise TaxonomyError(f"{source}: a taxonomy file must be a mapping with 'name' and 'fields'")
    for key in ("name", "fields"):
        if key not in raw:
            raise TaxonomyError(f"{source}: missing top-level key {key!r}")
    fields = raw["fields"]
    if not isinstance(fields, list) or not fields:
        raise TaxonomyError(f"{source}: 'fields' must be a non-empty list")
    seen_fields: set[str] = set()
    for i, f in enumerate(fields):
        if not isinstance(f, Mapping) or "name" not in f:
            raise TaxonomyError(f"{source}: field #{i + 1} has no 'name'")
        name = f["name"]
        where = f"{source}: field {name!r}"
        if name in seen_fields:
            raise TaxonomyError(f"{where}: duplicate field name")
        seen_fields.add(name)
        kind = f.get("kind")
        if kind not in _KINDS:
            raise TaxonomyError(f"{where}: unknown kind {kind!r} (use one of {', '.join(_KINDS)})")
        values = f.get("values") or []
        if kind == "text":
            if values:
                raise TaxonomyError(f"{where}: a text field takes no values")
            continue
        if not values:
            raise TaxonomyError(f"{where}: empty value list (a {kind} field needs at least one value)")
        ids: set[str] = set()
        for v in values:
            vid = v.get("id") if isinstance(v, Mapping) else None
            if vid is not None and not isinstance(vid, str):  # YAML reads `yes`, `no`, `2024` as bool/int
                raise TaxonomyError(f"{where}: value id {vid!r} is not text; put the id in quotes")
            if not isinstance(vid, str) or not vid.strip():
                raise TaxonomyError(f"{where}: a value has no 'id': {v!r}")
            if vid in ids:
                raise TaxonomyError(f"{where}: duplicate value id {vid!r}")
            ids.add(vid)
        for v in values:
            parent = v.get("parent")
            if parent is not None and parent not in ids:
                raise TaxonomyError(f"{where}: value {v['id']!r} has unknown parent {parent!r}")
        _check_acyclic(values, where)
    _check_rules_and_changes(raw, fields, source)
    link = raw.get("link")
    if isinstance(link, Mapping) and link.get("name", "follow_up_of") in seen_fields | {"rationale", EVIDENCE}:
        raise TaxonomyError(f"{source}: link: {link.get('name', 'follow_up_of')!r} is already a field name; give the link another")
    _check_conditions(fields, source)
    primary = raw.get("primary", "classification")
    if primary not in seen_fields:
        raise TaxonomyError(f"{source}: primary field {primary!r} is not among the fields")
    try:
        tax = Taxonomy.model_validate({**raw, "version": str(raw.get("version", "0"))})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise TaxonomyError(f"{source}: {loc}: {first['msg']}") from None
    if tax.field(primary).kind != "single":
        raise TaxonomyError(f"{source}: primary field {primary!r} must be a single field")
    return tax


def _check_rules_and_changes(raw: Mapping[str, Any], fields: list[Mapping[str, Any]], source: str) -> None:
    """Every field and value a rule or a change names must exist, or the file is refused."""
    known = {f["name"]: {v.get("id") for v in (f.get("values") or []) if isinstance(v, Mapping)} for f in fields}
    for i, rule in enumerate(raw.get("rules") or [], start=1):
        if not isinstance(rule, Mapping) or not rule.get("when") or "then" not in rule:
            raise TaxonomyError(f"{source}: rule #{i} needs 'when' and 'then' (field: [values])")
        for part in ("when", "then"):
            for name, values in (rule[part] or {}).items():
                if name not in known or not known[name] - {None}:
                    raise TaxonomyError(f"{source}: rule #{i}: {part} names {name!r}, not a single or multi field")
                for v in values or []:
                    if v not in known[name]:
                        raise TaxonomyError(f"{source}: rule #{i}: {v!r} is not a value of {name!r}")
    for change in raw.get("changes") or []:
        for name, ids in (change.get("added") or {}).items():
            for v in ids:
                if v not in known.get(name, set()):
                    raise TaxonomyError(f"{source}: change {change.get('version')}: added {v!r} is not a value of {name!r}")
        for name, mapping in (change.get("renamed") or {}).items():
            for old, new in mapping.items():
                if new not in known.get(name, set()):
                    raise TaxonomyError(f"{source}: change {change.get('version')}: {old!r} renamed to {new!r}, not a value of {name!r}")


def _check_conditions(fields: list[Mapping[str, Any]], source: str) -> None:
    by_name = {f["name"]: f for f in fields}
    for f in fields:
        when = f.get("when")
        if when is None:
            continue
        where = f"{source}: field {f['name']!r}: when"
        if not isinstance(when, Mapping) or set(when) != {"field", "values"} or not isinstance(when["values"], list):
            raise TaxonomyError(f"{where}: write {{field: NAME, values: [VALUE, ...]}}")
        other = by_name.get(when["field"])
        if other is None or other is f or other.get("kind") == "text":
            raise TaxonomyError(f"{where}: {when['field']!r} is not another single or multi field of the taxonomy")
        if other.get("when") is not None:
            raise TaxonomyError(f"{where}: {when['field']!r} is itself conditional; a condition must rest on a field always asked")
        known = {v.get("id") for v in other.get("values") or [] if isinstance(v, Mapping)}
        unknown = [v for v in when["values"] if v not in known]
        if unknown or not when["values"]:
            raise TaxonomyError(f"{where}: {unknown or 'no values'} not among the values of {when['field']!r}")


def _check_acyclic(values: list[Mapping[str, Any]], where: str) -> None:
    parents = {v["id"]: v.get("parent") for v in values}
    for start in parents:
        seen, node = set(), start
        while node is not None:
            if node in seen:
                raise TaxonomyError(f"{where}: value {start!r} is its own ancestor (parent cycle)")
            seen.add(node)
            node = parents.get(node)


def parse_taxonomy(text: str, source: str = "<taxonomy>", base: Path | None = None) -> Taxonomy:
    """A taxonomy from its file's text. A file with `include:` composes the taxonomies it names
    (bundled names, or paths relative to `base`, the file's folder)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if isinstance(raw, Mapping) and "include" in raw:
        from annotator.compose import compose_file

        return compose_file(raw, source, base)
    return _check(raw, source)


def available_taxonomies() -> list[str]:
    """Names of the taxonomies bundled with the package."""
    folder = resources.files("annotator") / "taxonomies"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


@functools.lru_cache(maxsize=32)
def load_taxonomy(name_or_path: str | Path) -> Taxonomy:
    """Load a bundled taxonomy by name (`oecd_aim`), any taxonomy file by path, or several at once
    (`oecd_aim,disarm`: one taxonomy whose fields are namespaced by member, see `annotator.compose`)."""
    if isinstance(name_or_path, str) and "," in name_or_path:
        from annotator.compose import compose

        return compose([load_taxonomy(part.strip()) for part in name_or_path.split(",") if part.strip()])
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():  # a folder named like a taxonomy is not one
        if not path.is_file():
            raise TaxonomyError(f"{path}: no such taxonomy file")
        return parse_taxonomy(path.read_text(encoding="utf-8"), str(path), path.parent)
    bundled = resources.files("annotator") / "taxonomies" / f"{name_or_path}.yaml"
    if not bundled.is_file():
        known = ", ".join(available_taxonomies())
        raise TaxonomyError(f"unknown taxonomy {str(name_or_path)!r} (bundled: {known}; or give a path to a .yaml file)")
    return parse_taxonomy(bundled.read_text(encoding="utf-8"), f"taxonomies/{name_or_path}.yaml", None)


# --------------------------------------------------------------------------- derived artefacts


def _unique(items: list[str]) -> list[str]:
    dupes = sorted({x for x in items if items.count(x) > 1})
    if dupes:
        raise ValueError(f"duplicate values: {', '.join(dupes)}")
    return items


@functools.lru_cache(maxsize=32)
def draft_model(tax: Taxonomy) -> type[BaseModel]:
    """The pydantic model of one answer: every field of the taxonomy, values as `Literal`s.

    Unknown fields, unknown values and duplicate tags do not validate, so nothing outside the
    taxonomy can pass as a label.
    """
    definitions: dict[str, Any] = {}
    validators: dict[str, Any] = {}
    for f in tax.fields:
        if f.kind == "text":
            constraint = PydField(min_length=1 if f.required else 0, max_length=f.max_length)
            definitions[f.name] = (str, constraint) if f.required else (str | None, PydField(None, max_length=f.max_length))
            continue
        allowed = Literal[f.value_ids]  # type: ignore[valid-type]
        if f.kind == "single":
            definitions[f.name] = (allowed, ...) if f.required else (allowed | None, None)
        else:
            definitions[f.name] = (list[allowed], PydField(default_factory=list))
            validators[f"_unique_{f.name}"] = field_validator(f.name)(lambda cls, v: _unique(v))
    if tax.evidence:  # optional here: an answer without quotes is valid, it only highlights nothing
        quotes = create_model(  # type: ignore[call-overload]
            f"{tax.name.title().replace('_', '')}Evidence", __config__=ConfigDict(extra="forbid"),
            **{k.name: (list[str], PydField(default_factory=list)) for k in tax.evidence})
        definitions[EVIDENCE] = (quotes, PydField(default_factory=quotes))
    return create_model(  # type: ignore[call-overload,no-any-return]
        f"{tax.name.title().replace('_', '')}Answer",
        __config__=ConfigDict(extra="forbid"),
        __validators__=validators,
        **definitions,
    )


def json_schema(tax: Taxonomy) -> dict[str, Any]:
    """The answer's JSON schema in the shape OpenAI's strict structured outputs take.

    Every property is required and `additionalProperties` is false; optional single fields are
    nullable instead of absent. `uniqueItems`/`maxItems`/`maxLength` are kept so that
    grammar-constrained servers bound the answer; `llm/` strips what a given endpoint rejects.
    """
    properties: dict[str, Any] = {}
    for f in tax.fields:
        prop: dict[str, Any]
        if f.kind == "text":
            prop = {"type": "string" if f.required else ["string", "null"]}
            if f.max_length:
                prop["maxLength"] = f.max_length
        elif f.kind == "single":
            values: list[Any] = list(f.value_ids)
            prop = {"type": "string", "enum": values} if f.required else {"type": ["string", "null"], "enum": [*values, None]}
        else:
            prop = {
                "type": "array",
                "items": {"type": "string", "enum": list(f.value_ids)},
                "uniqueItems": True,
                "maxItems": len(f.values),
            }
        description = " ".join([f.description, *rule_notes(tax, f.name)]).strip()
        if description:
            prop["description"] = description
        properties[f.name] = prop
    if tax.evidence:
        properties[EVIDENCE] = {
            "type": "object",
            "description": "Short quotes copied word for word from the article (at most 25 words each; empty lists "
                           "when the article has none): " + "; ".join(f"{k.name}: {k.description}" for k in tax.evidence),
            "properties": {k.name: {"type": "array", "items": {"type": "string", "maxLength": QUOTE_CHARS},
                                    "maxItems": QUOTES_PER_KIND} for k in tax.evidence},
            "required": [k.name for k in tax.evidence],
            "additionalProperties": False,
        }
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def rules_schema(tax: Taxonomy) -> dict[str, Any]:
    """The answer schema with the rules on the primary field written in: one alternative per primary value.

    Why: a grammar-constrained server (llama-cpp-python turns the schema into a grammar) then cannot
    break them, so a small model's answer needs no repair round-trip for them (the embedded model
    broke "severity must be AI incident when classification is AI incident" on most incidents, and
    its repair did not mend it). Rules on other fields are left to validation.
    """
    base = json_schema(tax)
    primary = tax.field(tax.primary)
    branches = []
    for value in primary.value_ids:
        props = {**base["properties"], tax.primary: {**base["properties"][tax.primary], "enum": [value]}}
        for rule in tax.rules:
            if dict(rule.when).keys() != {tax.primary} or value not in dict(rule.when)[tax.primary]:
                continue
            for name, allowed in rule.then:
                prop, f = dict(props[name]), tax.field(name)
                if f.kind == "multi" and not allowed:
                    prop["maxItems"] = 0  # the items stay as they are: an empty enum makes an empty grammar rule
                elif f.kind == "multi":
                    prop["items"] = {**prop["items"], "enum": [v for v in prop["items"]["enum"] if v in allowed]}
                    prop["maxItems"] = min(prop["maxItems"], len(prop["items"]["enum"]))
                else:
                    prop["enum"] = [v for v in prop["enum"] if v in allowed] or [None]
                props[name] = prop
        branches.append({**base, "properties": props})
    return {"anyOf": branches}


def label_guide(tax: Taxonomy) -> str:
    """The label guide for prompts and annotator instructions, in Markdown."""
    lines = [f"# {tax.title or tax.name} (taxonomy {tax.name} v{tax.version})", ""]
    members = {m.name: m for m in tax.members}
    current = None
    for f in tax.fields:
        member = members.get(f.name.split(".", 1)[0]) if "." in f.name else None
        if member is not None and member.name != current:
            current = member.name
            lines += [f"# {member.title or member.name} (fields {member.name}.*, taxonomy {member.name} v{member.version})",
                      *([member.description] if member.description else []), ""]
        need = "required" if f.required else "optional"
        if f.when is not None:
            need += f"; only when {f.when.field} is {' or '.join(f.when.values)}, otherwise empty"
        kind = {"single": "one value or null", "multi": "a list of values, possibly empty", "text": "free text"}[f.kind]
        if f.kind == "single" and f.required:
            kind = "exactly one value"
        lines.append(f"## {f.name} ({kind}; {need})")
        if f.description:
            lines.append(f.description)
        for v in f.values:
            depth = len(f.path(v.id)) - 1 if f.hierarchical else 0
            name = f"{v.id}: {v.label}" if v.label else v.id
            lines.append(f"{'  ' * depth}- {name}" + (f" — {v.definition}" if v.definition else ""))
        lines.append("")
    if tax.evidence:
        lines += [f"## {EVIDENCE} (quotes copied word for word from the article, by kind)",
                  *[f"- {k.name}: {k.description}" for k in tax.evidence], ""]
    if tax.rules:
        lines += ["## Rules between fields", *[f"- {note}" for note in rule_notes(tax)], ""]
    return "\n".join(lines).rstrip() + "\n"


def most_specific(f: Field, chosen: list[str]) -> list[str]:
    """`chosen` without the values that are ancestors of another chosen value (T0145 beside T0145.002).

    In a tree a value implies its ancestors (Label Studio's Taxonomy stores the whole path), so
    a parent beside its own child says nothing more; dropping it makes draft, review and gold
    comparable whichever way each was picked.
    """
    if not f.hierarchical or len(chosen) < 2:
        return chosen
    known = set(f.value_ids)  # once: the property builds the tuple at every call
    implied = {a for v in chosen if v in known for a in f.path(v)[:-1]}
    return [v for v in chosen if v not in implied]


def tidy_labels(tax: Taxonomy, labels: Mapping[str, Any]) -> dict[str, Any]:
    """Labels as the taxonomy's rules want them: a conditional field whose condition does not hold
    is empty, and hierarchical fields keep only their most specific values."""
    out = dict(labels)
    for f in tax.label_fields:
        if f.name not in out:
            continue
        if f.when is not None and f.when.field in out and not f.when.holds(out):
            out[f.name] = f.empty
            continue
        if f.kind == "multi" and isinstance(out[f.name], list):
            out[f.name] = most_specific(f, out[f.name])
    return out


def split_answer(tax: Taxonomy, answer: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Turn a flat answer into (labels, rationale) as Draft and Review records hold them."""
    labels = {f.name: answer.get(f.name, f.empty) for f in tax.label_fields}
    rationale = answer.get("rationale")
    return tidy_labels(tax, labels), rationale


def label_validator(tax: Taxonomy) -> Callable[[Mapping[str, Any]], list[str]]:
    """`validate_labels` for many records: the allowed values are looked up once (eval files hold
    100,000s of records); a record that is fine costs one pass, any problem is described in full."""
    allowed = {f.name: (f.kind, frozenset(f.value_ids)) for f in tax.label_fields}

    def ok(name: str, value: Any) -> bool:
        kind, values = allowed.get(name, (None, frozenset()))
        if kind == "single":
            return value is None or (isinstance(value, str) and value in values)
        if kind == "multi":  # null: NOT_ASSESSED
            return value is None or isinstance(value, list) and all(isinstance(v, str) and v in values for v in value) and len(set(value)) == len(value)
        return False

    def check(labels: Mapping[str, Any]) -> list[str]:
        return [] if all(ok(k, v) for k, v in labels.items()) else validate_labels(tax, labels)

    return check


def validate_labels(tax: Taxonomy, labels: Mapping[str, Any]) -> list[str]:
    """Problems with a `labels` mapping (unknown field, unknown value, wrong shape); empty if fine.

    For records that come from outside the model's schema: Label Studio annotations, gold files,
    eval inputs. The one label validator; `label_validator` is its fast form for many records.
    """
    problems: list[str] = []
    known = {f.name: f for f in tax.label_fields}
    for name, value in labels.items():
        f = known.get(name)
        if f is None:
            problems.append(f"unknown field {name!r}")
            continue
        allowed = set(f.value_ids)
        if f.kind == "single":
            if value is not None and not isinstance(value, str):  # a list here is a shape error, not a crash
                problems.append(f"{name}: expected one value or null, got {type(value).__name__}")
            elif value is not None and value not in allowed:
                problems.append(f"{name}: {value!r} is not a value of the taxonomy")
        else:
            if value is None:  # NOT_ASSESSED: never filled in, distinct from [] ("none apply")
                continue
            if not isinstance(value, list):
                problems.append(f"{name}: expected a list, got {type(value).__name__}")
                continue
            for item in value:
                if not isinstance(item, str) or item not in allowed:
                    problems.append(f"{name}: {item!r} is not a value of the taxonomy")
            strings = [item for item in value if isinstance(item, str)]
            if len(set(strings)) != len(strings):
                problems.append(f"{name}: duplicate values")
    return problems


# --------------------------------------------------------------------------- versions, aliases, rules

NOT_ASSESSED = None
"""A multi field holding null (rather than a list) was never assessed: it is not scored and not
exported as "none apply". An empty list means the annotator looked and nothing applies."""


def _spellings(tax: Taxonomy) -> dict[str, dict[str, str]]:
    """field -> other spelling -> current id: aliases, ids renamed by a later version, and each
    id and alias compared without case and runs of blank space."""
    out: dict[str, dict[str, str]] = {}
    for f in tax.label_fields:
        table: dict[str, str] = {}
        for change in tax.changes:
            table.update(dict(dict(change.renamed).get(f.name, ())))
        for v in f.values:
            for spelling in (v.id, *v.aliases):
                table.setdefault(spelling, v.id)
        for spelling, vid in list(table.items()):
            table.setdefault(_loose(spelling), vid)
        out[f.name] = table
    return out


def _loose(text: str) -> str:
    return " ".join(text.split()).casefold()


def canonical_labels(tax: Taxonomy, labels: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`labels` with other spellings (aliases, older versions' ids) read as the current ids.

    Returns the mapped labels and one note per mapped spelling, so a reader can say what it did;
    values that match nothing are left as they are for `validate_labels` to report.
    """
    tables = _cached_spellings(tax)
    notes: list[str] = []
    out: dict[str, Any] = {}

    def one(name: str, value: Any) -> Any:
        table = tables.get(name, {})
        if not isinstance(value, str) or value in table and table[value] == value:
            return value
        new = table.get(value) or table.get(_loose(value))
        if new is None:
            return value
        notes.append(f"{name}: {value!r} read as {new!r}")
        return new

    for name, value in labels.items():
        if isinstance(value, list):
            out[name] = list(dict.fromkeys(one(name, v) for v in value))
        else:
            out[name] = one(name, value)
    return out, notes


@functools.lru_cache(maxsize=32)
def _cached_spellings(tax: Taxonomy) -> dict[str, dict[str, str]]:
    return _spellings(tax)


def _holds(value: Any, allowed: tuple[str, ...]) -> bool:
    chosen = [value] if isinstance(value, str) else list(value or [])
    return bool(chosen) and all(v in allowed for v in chosen)


def rule_violations(tax: Taxonomy, labels: Mapping[str, Any]) -> list[str]:
    """The taxonomy's rules between fields that `labels` break, one readable line each.

    A field the record does not hold (not assessed, not labelled) neither triggers nor breaks a rule.
    """
    out: list[str] = []
    for rule in tax.rules:
        if not all(name in labels and _holds(labels[name], values) for name, values in rule.when):
            continue
        for name, allowed in rule.then:
            if name not in labels or labels[name] is None and tax.field(name).kind == "multi":
                continue
            value = labels[name]
            chosen = [value] if isinstance(value, str) else list(value or [])
            if not allowed and chosen:
                out.append(f"{name} must be empty when {_when(rule)} (got {', '.join(chosen)})")
            elif allowed and not _holds(value, allowed):
                got = ", ".join(chosen) or "nothing"
                out.append(f"{name} must be {' or '.join(allowed)} when {_when(rule)} (got {got})")
    return out


def _when(rule: Rule) -> str:
    return " and ".join(f"{name} is {' or '.join(values)}" for name, values in rule.when)


def rule_notes(tax: Taxonomy, field: str | None = None) -> list[str]:
    """The rules as sentences (all, or those limiting `field`), for the prompt, schema and config."""
    notes = []
    for rule in tax.rules:
        for name, allowed in rule.then:
            if field is None or name == field:
                what = "empty" if not allowed else " or ".join(allowed)
                notes.append(rule.note or f"{name} is {what} when {_when(rule)}.")
    return list(dict.fromkeys(notes))
