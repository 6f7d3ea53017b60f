"""Versioned prompt templates: what the model is told, and which version told it.

A template is a Markdown file `prompts/NAME/VERSION.md` with YAML front matter and two parts,
`<!-- system -->` and `<!-- user -->`. The system part holds everything that does not change per
article (definitions, the label guide generated from the taxonomy, output rules, few-shot
examples) so that providers' prompt caching applies to it; the article comes last, in the user
part, inside a tag whose name is derived from the article's own text, so the text cannot close it.
The template's hash goes into every cache key, so an edited template re-drafts.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from annotator.config import DEFAULT_PROMPT
from annotator.errors import ConfigError
from annotator.injection import with_report
from annotator.records import Article
from annotator.taxonomy import Taxonomy, json_schema, label_guide

EXAMPLE_TOKENS = 400  # few-shot articles are cut to this, so K shots cost K x this at most
_PARTS = re.compile(r"^<!--\s*(system|user)\s*-->\s*$", re.MULTILINE)
_SLOT = re.compile(r"\{\{(\w+)\}\}")

# An example is an article and the flat answer (every taxonomy field, rationale included).
Example = tuple[Article, Mapping[str, Any]]


def estimate_tokens(text: str) -> int:
    """Rough token count (4 characters a token, the usual rule for English with GPT tokenizers).

    Used for the article budget only; exact counts come back from the endpoint in `usage`.
    """
    return math.ceil(len(text) / 4)


def truncate_to_tokens(text: str, max_tokens: int | None) -> tuple[str, bool]:
    """Cut `text` to about `max_tokens` tokens at a word boundary; says whether it cut."""
    if max_tokens is None or estimate_tokens(text) <= max_tokens:
        return text, False
    limit = max(0, max_tokens * 4)
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit * 0.8:
        cut = cut[:space]
    return cut.rstrip() + " […]", True


def _tag(*texts: str) -> str:
    """A delimiter name the enclosed text cannot contain: it is derived from that very text."""
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:12]
    return f"article-{digest}"


def _enclose(tag: str, body: str) -> str:
    # The tag is a hash of the body, so the body cannot hold the closing tag except by a hash
    # collision; should it ever, the occurrence is defused rather than trusted.
    return body.replace(f"</{tag}>", f"<\\/{tag}>")


def delimited(body: str, kind: str) -> str:
    """`body` between tags named `KIND-HASH` after its own content, so it cannot close them: how
    any untrusted text (an article, recorded incidents) goes into a message, as data."""
    tag = f"{kind}-" + _tag(body).removeprefix("article-")
    return f"<{tag}>\n{_enclose(tag, body)}\n</{tag}>"


def fill(template: str, values: Mapping[str, str]) -> str:
    """`template` with each `{{NAME}}` of `values` put in, in one pass: what goes in (an article) is
    never searched for slots itself, so an article holding `</{{tag}}>` cannot close its own tag."""
    return _SLOT.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def article_slots(article: Article, max_tokens: int | None) -> tuple[dict[str, str], bool]:
    """A template's `{{article}}` (metadata, then the text cut to `max_tokens`) and `{{tag}}`, the
    name of the delimiter to put around it, derived from it; and whether the text was cut."""
    text, truncated = truncate_to_tokens(article.text, max_tokens)
    block = _article_block(article, text)
    tag = _tag(block)
    return {"article": _enclose(tag, block), "tag": tag}, truncated


def _article_block(article: Article, text: str) -> str:
    meta = [("id", article.id), ("title", article.title), ("source", article.source),
            ("published", article.published_at), ("url", article.url)]
    head = "\n".join(f"{k}: {v}" for k, v in meta if v)
    return f"{head}\n\n{text}".strip()


class Prompt(BaseModel):
    """A loaded template. Rendering is pure: same inputs, same messages (and same cache key)."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str  # "NAME@VERSION", what drafts record as prompt_version
    hash: str
    description: str = ""
    system_template: str
    user_template: str
    path: str = ""

    def system_message(self, tax: Taxonomy, examples: Sequence[Example] = ()) -> str:
        keys = ", ".join(f'"{name}"' for name in with_report(json_schema(tax))["properties"])
        shots = ""
        if examples:
            blocks = ["", "# Examples", "", "Answers a reviewer accepted for similar articles:"]
            for i, (article, answer) in enumerate(examples, start=1):
                text = _article_block(article, truncate_to_tokens(article.text, EXAMPLE_TOKENS)[0])
                tag = _tag(text)
                body = {f.name: answer.get(f.name, f.empty) for f in tax.fields}
                blocks += [
                    "",
                    f"## Example {i}",
                    f"<{tag}>\n{_enclose(tag, text)}\n</{tag}>",
                    "Answer:",
                    json.dumps(body, ensure_ascii=False),
                ]
            shots = "\n".join(blocks) + "\n"
        out = (self.system_template.replace("{{label_guide}}", label_guide(tax).strip())
               .replace("{{keys}}", keys)
               .replace("{{examples}}", shots))
        return out.strip() + "\n"

    def user_message(self, article: Article, max_article_tokens: int | None = None) -> tuple[str, bool]:
        """The user message for one article, and whether its text was cut to the token budget."""
        slots, truncated = article_slots(article, max_article_tokens)
        return fill(self.user_template, slots).strip() + "\n", truncated


def prompt_dirs() -> list[Path]:
    """Where templates are looked up: ./prompts first, then the repository's prompts/."""
    return [Path.cwd() / "prompts", Path(__file__).resolve().parent.parent / "prompts"]


def parse_prompt(text: str, source: str) -> Prompt:
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n(.*)$", text, re.DOTALL)
    if not match:
        raise ConfigError(f"{source}: a prompt template starts with YAML front matter between '---' lines")
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: front matter is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(meta, dict) or "name" not in meta or "version" not in meta:
        raise ConfigError(f"{source}: front matter needs 'name' and 'version'")
    pieces = _PARTS.split(match.group(2))
    parts = dict(zip(pieces[1::2], pieces[2::2], strict=True))
    if set(parts) != {"system", "user"}:
        raise ConfigError(f"{source}: needs a '<!-- system -->' and a '<!-- user -->' part")
    if "{{article}}" not in parts["user"] or "{{tag}}" not in parts["user"]:
        raise ConfigError(f"{source}: the user part must hold {{{{article}}}} inside <{{{{tag}}}}> delimiters")
    return Prompt(
        name=str(meta["name"]),
        version=f"{meta['name']}@{meta['version']}",
        hash=hashlib.sha256(text.encode()).hexdigest()[:16],
        description=str(meta.get("description", "")),
        system_template=parts["system"],
        user_template=parts["user"],
        path=source,
    )


def load_prompt(spec: str = DEFAULT_PROMPT) -> Prompt:
    """Load `NAME@VERSION` (e.g. `incident@v1`) from the prompt folders, or a template by path."""
    path = Path(spec)
    if path.suffix == ".md" and path.is_file():
        return parse_prompt(path.read_text(encoding="utf-8"), str(path))
    name, sep, version = spec.partition("@")
    if not sep or not name or not version:
        raise ConfigError(f"prompt {spec!r}: write NAME@VERSION, e.g. {DEFAULT_PROMPT}")
    for folder in prompt_dirs():
        candidate = folder / name / f"{version}.md"
        if candidate.is_file():
            return parse_prompt(candidate.read_text(encoding="utf-8"), str(candidate))
    where = ", ".join(str(d) for d in prompt_dirs())
    raise ConfigError(f"prompt {spec!r} not found (looked for {name}/{version}.md in {where})")
