"""Several taxonomies in one project: `--taxonomy oecd_aim,disarm`, or a file that includes others.

An article about AI-generated faces on fake profiles is an AI incident for one desk and DISARM
technique T0145.002 for another; one review should answer both. Composing gives one ordinary
`Taxonomy` whose fields are namespaced by member (`oecd_aim.classification`, `disarm.techniques`),
so everything generated from a taxonomy (answer model, JSON schema, label guide, Label Studio
config, eval fields, export columns) works unchanged. The members' rationales become one
`rationale` (records hold one), which asks for what each member's rationale asked. The primary
field is the first member's.

A composed file:

    name: aim_disarm
    version: "1"
    include: [oecd_aim, disarm]          # bundled names, or paths relative to this file
    when:                                # optional: a field asked only when another holds a value
      disarm.techniques: {field: disarm.classification, values: [Influence operation]}

Records labelled with one member alone (a gold file of the AIM desk, with `classification` rather
than `oecd_aim.classification`) are lifted into the composed names by `lift_labels`, so
`eval --gold` scores them on that member's fields only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from annotator.errors import TaxonomyError
from annotator.taxonomy import Member, Taxonomy, _check, canonical_labels, load_taxonomy, validate_labels

SEPARATOR = "."
RATIONALE = "rationale"  # the one text field records hold (Draft.rationale, Review.rationale)


def _namespaced(prefix: str, name: str) -> str:
    return f"{prefix}{SEPARATOR}{name}"


def compose(members: Sequence[Taxonomy], *, name: str | None = None, version: str | None = None, title: str = "",
            description: str = "", when: Mapping[str, Mapping[str, Any]] | None = None) -> Taxonomy:
    """One taxonomy holding every member's fields as `MEMBER.FIELD`, and one shared rationale."""
    if len(members) < 2:
        raise TaxonomyError("composing needs at least two taxonomies (e.g. oecd_aim,disarm)")
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise TaxonomyError(f"a taxonomy is included twice: {', '.join(names)}")
    for m in members:
        if m.members:
            raise TaxonomyError(f"{m.name} is itself composed; include its members instead")
    fields: list[dict[str, Any]] = []
    rationales = []
    for m in members:
        for f in m.fields:
            if f.kind == "text":
                if f.name != RATIONALE:
                    raise TaxonomyError(f"{m.name}: text field {f.name!r} cannot be composed (records hold one rationale)")
                rationales.append((m, f))
                if len(rationales) == 1:
                    fields.append({"name": RATIONALE})  # placeholder: filled once every member's is known
                continue
            data = f.model_dump(mode="json", exclude_none=True)
            data["name"] = _namespaced(m.name, f.name)
            if f.when is not None:
                data["when"] = {"field": _namespaced(m.name, f.when.field), "values": list(f.when.values)}
            fields.append(data)
    for target, condition in (when or {}).items():
        match = next((f for f in fields if f["name"] == target), None)
        if match is None:
            raise TaxonomyError(f"when: {target!r} is not a field of the composed taxonomy ({', '.join(f['name'] for f in fields)})")
        match["when"] = dict(condition)
    if rationales:
        slot = next(f for f in fields if f["name"] == RATIONALE)
        slot.update({
            "kind": "text", "required": any(f.required for _, f in rationales),
            "description": " ".join(f"For {m.title or m.name}: {f.description}".strip() for m, f in rationales),
            **({"max_length": sum(f.max_length for _, f in rationales)} if all(f.max_length for _, f in rationales) else {}),
        })
    first = members[0]
    rules, changes, evidence = _namespaced_parts(members)
    raw = {
        "name": name or "+".join(names),
        "version": version or "+".join(m.version for m in members),
        "title": title or " + ".join(m.title or m.name for m in members),
        "description": description or " ".join(m.description for m in members if m.description),
        "primary": _namespaced(first.name, first.primary),
        "members": [Member(**m.model_dump(include=set(Member.model_fields))).model_dump() for m in members],
        "fields": fields,
        "rules": rules,
        "changes": changes,
        "evidence": evidence,
        "link": _one_link(members),
    }
    return _check(raw, raw["name"])


def _one_link(members: Sequence[Taxonomy]) -> dict[str, Any] | None:
    """The link to a recorded incident, from the member that declares one: records hold one link."""
    links = {m.link for m in members if m.link is not None}
    if len(links) > 1:
        raise TaxonomyError(f"{', '.join(m.name for m in members if m.link)} each declare a link; records hold one")
    return links.pop().model_dump() if links else None


def _namespaced_parts(members: Sequence[Taxonomy]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Each member's rules, version changes and evidence kinds, in the composed names.

    A member's rule names its own fields (`classification`); composed, it must name
    `oecd_aim.classification`, or it would limit nothing (and the file check would refuse it).
    Evidence kinds become `MEMBER.KIND`, so quotes are kept apart per member; their labels (what
    a reviewer sees on a highlight) stay as written unless two members share one.
    """
    def ns(m: Taxonomy, pairs: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
        return {_namespaced(m.name, name): [list(x) if isinstance(x, tuple) else x for x in values] for name, values in pairs}

    rules = [{"when": ns(m, r.when), "then": ns(m, r.then), **({"note": f"{m.name}: {r.note}"} if r.note else {})}
             for m in members for r in m.rules]
    changes = [{"version": f"{m.name} {c.version}", "added": ns(m, c.added),
                "renamed": {_namespaced(m.name, name): dict(pairs) for name, pairs in c.renamed}}
               for m in members for c in m.changes]
    labels = [k.label for m in members for k in m.evidence]
    evidence = [{"name": _namespaced(m.name, k.name), "description": k.description,
                 "label": k.label if labels.count(k.label) == 1 else f"{m.title or m.name}: {k.label}"}
                for m in members for k in m.evidence]
    return rules, changes, evidence


def compose_file(raw: Mapping[str, Any], source: str, base: Path | None) -> Taxonomy:
    """A taxonomy file with `include:` (see the module docstring)."""
    include = raw.get("include")
    if not isinstance(include, list) or not all(isinstance(x, str) for x in include):
        raise TaxonomyError(f"{source}: 'include' must be a list of taxonomy names or paths")
    unknown = set(raw) - {"name", "version", "title", "description", "include", "when"}
    if unknown:
        raise TaxonomyError(f"{source}: a composed taxonomy takes only name, version, title, description, include and "
                            f"when (not {', '.join(sorted(unknown))})")
    when = raw.get("when") or {}
    if not isinstance(when, Mapping):
        raise TaxonomyError(f"{source}: 'when' maps a field to {{field: NAME, values: [...]}}")
    try:  # a member that does not load is named after the file that includes it
        members = []
        for item in include:
            path = Path(item)
            if base is not None and path.suffix in (".yaml", ".yml") and not path.is_absolute():
                path = base / path
            members.append(load_taxonomy(str(path) if path.suffix in (".yaml", ".yml") else item))
        return compose(members, name=raw.get("name"), version=str(raw["version"]) if "version" in raw else None,
                       title=raw.get("title", ""), description=raw.get("description", ""), when=when)
    except TaxonomyError as exc:
        raise TaxonomyError(f"{source}: {exc}") from None


def lift_labels(tax: Taxonomy, labels: Mapping[str, Any], member: str | None = None) -> dict[str, Any] | None:
    """`labels` in a composed taxonomy's names, for records written with one member's own names.

    `member` (a record's `taxonomy`) says which member they belong to; without it, the one member
    whose fields and values fit them all. Returns None when `labels` already use the composed
    names, or when no single member fits (the caller then reports the record as it is).
    """
    if not tax.members or not labels or all(SEPARATOR in k for k in labels):
        return None
    candidates = [m.name for m in tax.members if member in (None, m.name)]
    fits = []
    for name in candidates:
        lifted = {_namespaced(name, k): v for k, v in labels.items()}
        if not validate_labels(tax, canonical_labels(tax, lifted)[0]):  # other spellings are read later, as for any record
            fits.append(lifted)
    return fits[0] if len(fits) == 1 else None
