"""Taxonomies from STIX 2.1 bundles of tactics and attack patterns (DISARM, MITRE ATT&CK).

Frameworks such as DISARM publish themselves as STIX bundles: `x-mitre-tactic` objects (the
tactics, with a `x_mitre_shortname`) and `attack-pattern` objects (techniques and sub-techniques,
their tactic in `kill_chain_phases`, their id such as T0145.002 in `external_references`, their
parent technique through a `subtechnique-of` relationship or the id before the dot). `import_stix`
turns one into the raw mapping of a taxonomy file: a classification, a rationale and one
hierarchical `techniques` field (tactics as roots, techniques below, sub-techniques below those).
`import_stix` is pure (a parsed bundle in, plain data out); `import_stix_file`, the command's
body, reads the bundle and writes the file.

Hints are written for annotators: the first sentence of a description, without markup, cut at a
word boundary; the long descriptions stay in the framework's own pages. The licence statement of
the bundle's marking definition and its author are recorded in the file: derived taxonomies of
share-alike frameworks (DISARM is CC BY-SA 4.0) must carry them.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from annotator.errors import TaxonomyError
from annotator.records import write_text_atomic
from annotator.taxonomy import parse_taxonomy

HINT_CHARS = 160
SUBJECT = "influence operation"  # what the classification asks about unless --subject says otherwise
_TAGS = re.compile(r"<[^>]+>")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z“\"(])")


def short_hint(description: str, limit: int = HINT_CHARS) -> str:
    """The first sentence of `description`, without HTML or Markdown links, at most `limit` characters."""
    text = html.unescape(_TAGS.sub(" ", description or ""))
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [name](url) -> name
    text = re.sub(r"\s+", " ", text).strip()
    first = _SENTENCE.split(text, maxsplit=1)[0] if text else ""
    if len(first) <= limit:
        return first
    cut = first[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def _external_id(obj: Mapping[str, Any]) -> str | None:
    for ref in obj.get("external_references") or []:
        if ref.get("external_id"):
            return str(ref["external_id"])
    return None


def _live(obj: Mapping[str, Any]) -> bool:
    return not obj.get("revoked") and not obj.get("x_mitre_deprecated")


def _licence(objects: Sequence[Mapping[str, Any]]) -> str:
    statements = []
    for o in objects:
        if o.get("type") == "marking-definition":
            text = (o.get("definition") or {}).get("statement") or (o.get("definition") or {}).get("tlp") or o.get("name")
            if text and text not in statements:
                statements.append(str(text))
    return "; ".join(statements)


def _version(objects: Sequence[Mapping[str, Any]]) -> str:
    """ATT&CK names its release in the collection object; DISARM does not, so the newest change date stands in."""
    for o in objects:
        if o.get("type") == "x-mitre-collection" and o.get("x_mitre_version"):
            return str(o["x_mitre_version"])
    dates = [str(o.get("modified") or o.get("created") or "")[:10] for o in objects if o.get("type") in ("x-mitre-tactic", "attack-pattern")]
    return max((d for d in dates if d), default="0")


def import_stix(bundle: Mapping[str, Any], *, name: str, subject: str = SUBJECT,
                version: str | None = None, source: str = "") -> dict[str, Any]:
    """The raw taxonomy mapping (as `parse_taxonomy` reads it) for a STIX 2.1 bundle.

    `subject` names what the classification asks about ("influence operation" gives the values
    "Influence operation", "Possible influence operation", "Unrelated"). A technique listed under
    several tactics (common in ATT&CK) hangs under the first of them in the matrix's order, and
    its hint names the others. Revoked and deprecated objects are left out.
    """
    objects = bundle.get("objects")
    if bundle.get("type") != "bundle" or not isinstance(objects, list):
        raise TaxonomyError("not a STIX bundle: expected {\"type\": \"bundle\", \"objects\": [...]}")
    tactics = [o for o in objects if o.get("type") == "x-mitre-tactic" and _live(o)]
    matrix = next((o for o in objects if o.get("type") == "x-mitre-matrix"), None)
    if matrix and matrix.get("tactic_refs"):  # the matrix gives the reading order of the tactics
        order = {ref: i for i, ref in enumerate(matrix["tactic_refs"])}
        tactics.sort(key=lambda t: order.get(t.get("id"), len(order)))
    if not tactics:
        raise TaxonomyError("the bundle holds no x-mitre-tactic objects (tactics)")
    tactic_by_phase: dict[str, Mapping[str, Any]] = {}
    for t in tactics:
        if not _external_id(t):
            raise TaxonomyError(f"tactic {t.get('name')!r} has no external id")
        tactic_by_phase[str(t.get("x_mitre_shortname") or t.get("name", "").lower().replace(" ", "-"))] = t
    patterns = [o for o in objects if o.get("type") == "attack-pattern" and _live(o)]
    ids: dict[str, Mapping[str, Any]] = {}
    for p in patterns:
        pid = _external_id(p)
        if pid is None:
            raise TaxonomyError(f"attack pattern {p.get('name')!r} has no external id")
        if pid in ids:
            raise TaxonomyError(f"attack pattern id {pid} appears twice")
        ids[pid] = p
    id_of_ref = {p["id"]: pid for pid, p in ids.items()}
    parent_of: dict[str, str] = {}
    for r in objects:
        if r.get("type") == "relationship" and r.get("relationship_type") == "subtechnique-of":
            child, parent = id_of_ref.get(r.get("source_ref")), id_of_ref.get(r.get("target_ref"))
            if child and parent:
                parent_of[child] = parent
    values: dict[str, list[dict[str, Any]]] = {}  # parent id -> children, in order
    for pid in sorted(ids, key=_id_key):
        p = ids[pid]
        phases = [ph.get("phase_name") for ph in p.get("kill_chain_phases") or []]
        known = [tactic_by_phase[ph] for ph in phases if ph in tactic_by_phase]
        sub = p.get("x_mitre_is_subtechnique") or "." in pid
        parent = parent_of.get(pid) or (pid.split(".")[0] if sub else None)
        if parent is not None and parent not in ids:
            raise TaxonomyError(f"sub-technique {pid} names parent {parent}, which is not in the bundle")
        hint = short_hint(str(p.get("description") or ""))
        if parent is None:
            if not known:
                raise TaxonomyError(f"technique {pid} ({p.get('name')}) has no kill_chain_phases naming a tactic of the bundle")
            known.sort(key=tactics.index)
            parent = str(_external_id(known[0]))
            if len(known) > 1:
                hint = f"{hint} (also under: {', '.join(str(t.get('name')) for t in known[1:])})".strip()
        values.setdefault(parent, []).append({"id": pid, "label": str(p.get("name") or pid), "parent": parent,
                                               "definition": hint})
    tree: list[dict[str, Any]] = []

    def add(node_id: str) -> None:
        for child in values.get(node_id, []):
            tree.append({k: v for k, v in child.items() if v})
            add(child["id"])

    for t in tactics:
        tid = str(_external_id(t))
        tree.append({"id": tid, "label": str(t.get("name") or tid), "definition": short_hint(str(t.get("description") or ""))})
        add(tid)
    framework = str((matrix or {}).get("name") or name)
    author = next((str(o.get("name")) for o in objects if o.get("type") == "identity" and o.get("name")), "")
    licence = _licence(objects)
    noun = subject[:1].upper() + subject[1:]
    return {
        "name": name,
        "version": version or _version(objects),
        "title": f"{framework} techniques",
        "description": f"Say whether an article reports {_article(subject)} {subject}, explain why, and tag the "
                       f"{framework} tactics, techniques and sub-techniques it shows.",
        "source": framework + (f" by {author}" if author else "") + (f" ({source})" if source else ""),
        "license": licence,
        "primary": "classification",
        "fields": [
            {"name": "classification", "kind": "single", "required": True, "description": f"Does the article report {_article(subject)} {subject}?",
             "values": [
                 {"id": noun, "definition": f"The article reports {_article(subject)} {subject}: a coordinated effort using deceptive means such as the techniques below."},
                 {"id": f"Possible {subject}", "definition": f"Signs of {_article(subject)} {subject} are reported, but it is not established."},
                 {"id": "Unrelated", "definition": f"No {subject} is reported."},
             ]},
            {"name": "rationale", "kind": "text", "required": True, "max_length": 1200,
             "description": "2 to 4 sentences naming the actors, the assets and the techniques seen."},
            {"name": "techniques", "kind": "multi", "hierarchical": True,
             "description": f"{framework} tactics, techniques and sub-techniques shown in the article; pick the most specific.",
             "values": tree},
        ],
    }


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def _id_key(pid: str) -> tuple[Any, ...]:
    """T0145.002 after T0145.001 and T0145, T0100 after T099 (numbers compared as numbers)."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", pid))


def taxonomy_yaml(raw: Mapping[str, Any], header: str = "") -> str:
    """The taxonomy file's text: a comment header (licence, where it came from), then the YAML."""
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.strip().splitlines()) if header.strip() else ""
    body = yaml.safe_dump(dict(raw), sort_keys=False, allow_unicode=True, width=110)
    return comment + body


def derived_header(raw: Mapping[str, Any], bundle_name: str) -> str:
    """The comment a derived file carries: what it is derived from, by whom, under which licence."""
    lines = [f"Generated by `annotator taxonomy import-stix {bundle_name}`; regenerate rather than edit.",
             f"Derived from {raw.get('source') or 'a STIX bundle'}, version {raw.get('version')}."]
    if raw.get("license"):
        lines += [f"License of the source: {raw['license']}.",
                  "This file is a derivative work: it keeps that attribution and is shared under the same license.",
                  "Changes: descriptions shortened to their first sentence; tactics and techniques arranged as a tree."]
    return "\n".join(lines)


def import_stix_file(bundle_path: str | Path, output: str | Path | None, *, name: str | None = None,
                     subject: str = SUBJECT, version: str | None = None, source: str = "") -> str:
    """`annotator taxonomy import-stix`: read a bundle, write the taxonomy file, check it loads.

    Returns a one-line summary (tactics, techniques and sub-techniques written).
    """
    bundle_path = Path(bundle_path)
    if output is None:
        raise TaxonomyError("import-stix needs -o FILE.yaml (the taxonomy file to write)")
    output = Path(output)
    if not bundle_path.is_file():
        raise TaxonomyError(f"{bundle_path}: no such file")
    try:
        bundle = json.loads(bundle_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TaxonomyError(f"{bundle_path}: not a JSON file: {exc}") from None
    if not isinstance(bundle, dict):
        raise TaxonomyError(f"{bundle_path}: not a STIX bundle (expected a JSON object)")
    try:
        raw = import_stix(bundle, name=name or output.stem, subject=subject, version=version, source=source)
    except TaxonomyError as exc:
        raise TaxonomyError(f"{bundle_path}: {exc}") from None
    options = "".join(f" {flag} {json.dumps(value, ensure_ascii=False)}" for flag, value in
                      (("--as-name", name), ("--subject", subject if subject != SUBJECT else None),
                       ("--version", version), ("--source", source or None)) if value)
    text = taxonomy_yaml(raw, derived_header(raw, f"{bundle_path.name} -o {output.name}{options}"))
    tax = parse_taxonomy(text, str(output))  # never write a file the loader would refuse
    write_text_atomic(output, text)
    values = tax.field("techniques").values
    roots = sum(v.parent is None for v in values)
    subs = sum(v.parent is not None and "." in v.id for v in values)
    return f"taxonomy {tax.name} v{tax.version}: {roots} tactics, {len(values) - roots - subs} techniques, {subs} sub-techniques"
