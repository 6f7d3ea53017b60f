"""Two-step drafting for large hierarchical fields: tactics first, then techniques within them.

The full DISARM framework has 407 values; its label guide alone is about 11,000 tokens, paid on
every article, and a small model lost in a flat list of 400 ids picks badly. So where a
hierarchical field is large, the model first answers every field with that field cut down to its
roots (DISARM's 16 tactics, with their hints), then, for the tactics it chose, is asked once more
for the most specific values under them (a few dozen). An article with no tactic, or whose field
does not apply (its condition does not hold), costs no second request.

The steps' instructions call the levels "tactics" and "techniques", DISARM's words, whatever the
field. They stay written here on purpose: they are inside every DISARM request, so in its cache
key, and taking them from the taxonomy file (a field naming its levels) would change DISARM's
content hash, which is in the cache key of every DISARM answer, both steps' and the composed
aim_disarm's: every team would pay again for every DISARM article, for two words. A field whose
levels have other names says so in its description, which both steps quote first.

Pure: taxonomies in, taxonomies out. `annotator.draft` sends the requests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from annotator.taxonomy import Field, Taxonomy

TwoStep = Literal["auto", "on", "off"]
LARGE = 60  # a hierarchical field with more values than this is drafted in two steps under "auto"


def large_fields(tax: Taxonomy, mode: TwoStep = "auto") -> tuple[str, ...]:
    """Names of the fields drafted in two steps: hierarchical multi fields with more than
    `LARGE` values ("auto"), every hierarchical multi field ("on"), none ("off")."""
    if mode == "off":
        return ()
    return tuple(f.name for f in tax.multi_fields
                 if f.hierarchical and any(v.parent for v in f.values) and (mode == "on" or len(f.values) > LARGE))


def first_step(tax: Taxonomy, fields: Sequence[str]) -> Taxonomy:
    """Every field as it is, except that each of `fields` offers only its top-level values."""
    out = []
    for f in tax.fields:
        if f.name in fields:
            top = tuple(v for v in f.values if v.parent is None)
            f = f.model_copy(update={
                "values": top,
                "description": f"{f.description} Step 1 of 2: choose only the top-level categories (tactics) listed "
                               "here that the article shows; the specific techniques within them are asked next.".strip(),
            })
        out.append(f)
    return tax.model_copy(update={"fields": tuple(out)})


def second_step(tax: Taxonomy, field: str, chosen: Sequence[str]) -> Taxonomy:
    """A taxonomy with the one field `field`, holding the values under the chosen top-level values."""
    f = tax.field(field)
    keep, root = set(chosen), f.root_of()
    values = tuple(v for v in f.values if root[v.id] in keep)
    names = "; ".join(f"{v.id} {v.label}".strip() for v in f.values if v.id in keep)
    narrowed = f.model_copy(update={
        "values": values, "when": None,
        "description": f"{f.description} Step 2 of 2: the article was found to show {names}. Choose the most specific "
                       "techniques below them that the article shows (the top-level value itself only when none fits).".strip(),
    })
    # The other fields' rules and the evidence quotes were asked in step 1 (rules are checked on
    # the whole draft once both steps are in).
    return tax.model_copy(update={"fields": (narrowed,), "members": (), "primary": field,
                                  "rules": (), "evidence": (), "changes": ()})


def applies(tax: Taxonomy, field: str, answer: Mapping[str, Any]) -> bool:
    """Whether the second step is worth a request: the field's condition holds in the first answer."""
    when = tax.field(field).when
    return when is None or when.holds(answer)


def to_roots(f: Field, chosen: Sequence[str]) -> list[str]:
    """Values mapped to their top-level ancestors, once each (few-shot answers shown in step 1)."""
    root = f.root_of()
    return list(dict.fromkeys(root[v] for v in chosen if v in root))
