"""Checks of a draft's free text against its article: evidence quotes and the rationale.

A reviewer checks a draft in seconds only if its evidence is real and its rationale explains
something. Quotes are looked up in the article after normalising blank space, quote marks and
dashes (models re-type them); a quote not found is dropped and the draft flagged, so nothing a
reviewer sees highlighted was invented. Rationales are flagged, never rejected: the flags tell a
reviewer (and the eval's lead) that a rationale restates the title, copies the article or the
prompt's definitions, names a class other than the one chosen, or says next to nothing.

Pure functions: text in, offsets and flags out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Flags, as drafts carry them and the report counts them.
QUOTE_NOT_FOUND = "evidence: quote not in the article (dropped)"
RESTATES_TITLE = "rationale: restates the title"
COPIES_ARTICLE = "rationale: copies the article"
COPIES_PROMPT = "rationale: copies the prompt's definitions"
OTHER_CLASS = "rationale: names another class"
TOO_SHORT = "rationale: empty or one phrase"
RATIONALE_FLAGS = (RESTATES_TITLE, COPIES_ARTICLE, COPIES_PROMPT, OTHER_CLASS, TOO_SHORT)

ARTICLE_RUN = 12  # words in a row shared with the article: copied, not explained
PROMPT_RUN = 8  # words in a row shared with the prompt's definitions and rules
MIN_WORDS = 8  # fewer words than this is a phrase, not a rationale

_SAME = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"', "\u2018": "'",
                       "\u2019": "'", "\u201a": "'", "\u2032": "'", "\u2013": "-", "\u2014": "-", "\u2212": "-",
                       "\u00a0": " "})


def _normalised(text: str) -> tuple[str, list[int]]:
    """`text` with quote marks and dashes unified and blank runs as one space, and for each
    character of the result the offset of its source character in `text`."""
    out: list[str] = []
    where: list[int] = []
    blank = False
    for i, ch in enumerate(text.translate(_SAME)):
        if ch.isspace():
            if not blank and out:
                out.append(" ")
                where.append(i)
            blank = True
            continue
        blank = False
        out.append(ch)
        where.append(i)
    return "".join(out), where


def find_quote(text: str, quote: str) -> tuple[int, int] | None:
    """(start, end) of `quote` in `text` as Python string offsets, or None when it is not there.

    Matching ignores differences in blank space, quote marks, dashes and letter case; the
    offsets are those of the article's own characters, so the span shows the article's text.
    """
    needle = _normalised(quote.strip().strip("\"'").strip())[0].casefold()
    if len(needle) < 3:
        return None
    hay, where = _normalised(text)
    at = hay.casefold().find(needle)
    if at < 0:
        return None
    return where[at], where[at + len(needle) - 1] + 1


def locate_evidence(text: str, evidence: Mapping[str, Iterable[str]] | None) -> tuple[list[dict[str, Any]], list[str]]:
    """Spans {kind, start, end, text} for the quotes found in `text`, and the quotes not found."""
    spans: list[dict[str, Any]] = []
    missing: list[str] = []
    for kind, quotes in (evidence or {}).items():
        for quote in quotes or []:
            if not isinstance(quote, str) or not quote.strip():
                continue
            hit = find_quote(text, quote)
            if hit is None:
                missing.append(quote)
                continue
            span = {"kind": kind, "start": hit[0], "end": hit[1], "text": text[hit[0]:hit[1]]}
            if span not in spans:
                spans.append(span)
    return spans, missing


# --------------------------------------------------------------------------- rationale


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.translate(_SAME).casefold())


def _grams(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def shares_run(a: Sequence[str], b_grams: set[tuple[str, ...]], n: int) -> bool:
    """Whether the words `a` hold a run of `n` words in a row that `b` holds too."""
    return any(tuple(a[i:i + n]) in b_grams for i in range(len(a) - n + 1))


def _mentions(words: Sequence[str], phrase: Sequence[str]) -> list[int]:
    n = len(phrase)
    return [i for i in range(len(words) - n + 1) if list(words[i:i + n]) == list(phrase)]


_NEGATION = {"not", "no", "nor", "than", "neither", "never", "isn", "rather", "instead", "nothing", "without"}
_VERDICT = {"is", "as", "was", "be", "label", "labelled", "labeled", "classified", "classify", "counts", "constitutes"}


def names_other_class(words: Sequence[str], chosen: str | None, classes: Sequence[str]) -> bool:
    """The rationale gives as its verdict a class other than the chosen one: it opens with that
    class, or names it right after "is", "as", "classified" and the like, outside a negation ("is
    not an AI hazard", "rather than"). A mere mention ("a response to an earlier AI incident") is no verdict."""
    for cls in classes:
        if cls == chosen:
            continue
        for at in _mentions(words, _words(cls)):
            if at <= 1:
                return True
            if set(words[max(0, at - 2):at]) & _VERDICT and not set(words[max(0, at - 4):at]) & _NEGATION:
                return True
    return False


def rationale_flags(rationale: str | None, title: str, text: str, chosen: str | None, classes: Sequence[str],
                    prompt_grams: set[tuple[str, ...]]) -> list[str]:
    """The flags a rationale earns (see the module docstring); `prompt_grams` from `prompt_ngrams`."""
    words = _words(rationale or "")
    if len(words) < MIN_WORDS:
        return [TOO_SHORT]
    flags = []
    title_words = _words(title)
    if title_words and (sum(w in set(title_words) for w in words) / len(words) >= 0.7
                        or len(title_words) >= 4 and _mentions(words, title_words) and len(words) < len(title_words) + MIN_WORDS):
        flags.append(RESTATES_TITLE)
    article = f" {' '.join(_words(text))} "  # a run found by substring search: no set of every run of a long article
    if any(f" {' '.join(words[i:i + ARTICLE_RUN])} " in article for i in range(len(words) - ARTICLE_RUN + 1)):
        flags.append(COPIES_ARTICLE)
    if shares_run(words, prompt_grams, PROMPT_RUN):
        flags.append(COPIES_PROMPT)
    if names_other_class(words, chosen, classes):
        flags.append(OTHER_CLASS)
    return flags


def prompt_ngrams(system_message: str) -> set[tuple[str, ...]]:
    """The word runs of the prompt's constant part (definitions, label guide, rules) to test against."""
    return _grams(_words(system_message), PROMPT_RUN)
