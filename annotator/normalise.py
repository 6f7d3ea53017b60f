"""Normalisation of texts and URLs, in one place, at the strictness each purpose needs.

Three purposes, three families of functions:
- what an article record keeps (`clean_text`, `clean_title`, `clean_url`): the text as written,
  minus invisible characters, stray spacing and tracking parameters;
- article ids and exact de-duplication (`url_key`, `text_key`, `article_id`): strict, because
  every id already issued depends on them; changing them re-ids every article, so they do not change;
- story grouping for leak-free splits (`story_url_key`, `story_text_key`): looser on purpose (any
  scheme, mobile and AMP hosts and paths, punctuation and case), because grouping two copies too
  many costs little and a copy split across train and test leaks.
One rule is shared by all three: which query parameters are tracking (`is_tracking`).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_TRACKING_PARAMS = {
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid",
    "_ga", "_gl", "ref", "ref_src", "ref_url", "cmpid", "smid", "ocid", "spm", "share", "s_cid", "cid",
}  # fmt: skip


def clean_text(text: str) -> str:
    """NFC, no invisible characters, single spaces, at most one blank line between paragraphs."""
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [" ".join(line.split()) for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad"), None)


def clean_title(title: str) -> str:
    return " ".join(unicodedata.normalize("NFC", title).translate(_INVISIBLE).split())


def url_key(url: str) -> str | None:
    """For ids: the URL two copies of one page share: https, no `www.`, no tracking, fragment or trailing slash."""
    url = url.strip()
    if not url:
        return None
    if "://" not in url and url.lower().startswith("www."):
        url = "https://" + url
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return url  # not a web URL (doi:, urn:, a bare path): compare it as it is
    host = parts.hostname.lower().removeprefix("www.")
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    path = parts.path.rstrip("/")
    query = sorted(_untracked(parts.query))
    return f"https://{host}{path}" + (f"?{urlencode(query)}" if query else "")


def clean_url(url: str) -> str:
    """The URL as given minus tracking parameters and fragment: what the article record keeps."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return url
    return urlunsplit(parts._replace(query=urlencode(_untracked(parts.query)), fragment=""))


def is_tracking(param: str) -> bool:
    """A query parameter that says how a reader arrived, not which page they read."""
    return param.lower().startswith("utm_") or param.lower() in _TRACKING_PARAMS


def _untracked(query: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if not is_tracking(k)]


def text_key(text: str) -> str:
    """For ids and exact de-duplication: what two copies of one text share, whatever their line
    wrapping and letter case."""
    basis = " ".join(clean_text(text).casefold().split())
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:16]


def article_id(url: str | None, text: str) -> str:
    """`a_` + 16 hex: from the normalised URL when there is one, else from the normalised text."""
    norm = url_key(url) if url else None
    basis = f"url:{norm}" if norm else f"text:{text_key(text)}"
    return "a_" + hashlib.sha256(basis.encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- story grouping


def words(text: str) -> list[str]:
    """Words, Unicode-compatibility folded and case-folded: the unit story similarity counts."""
    return re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold())


def story_url_key(url: str | None) -> str | None:
    """For grouping: the URL without scheme, `www.`/`m.`/`amp.` host prefixes, AMP suffix, fragment
    and tracking parameters, so that the same page reached through two links compares equal."""
    if not url or not url.strip():
        return None
    parts = urlsplit(url.strip())
    if not parts.hostname:
        return url.strip().casefold()
    host = parts.hostname.casefold()
    for prefix in ("www.", "m.", "amp."):
        host = host.removeprefix(prefix)
    path = re.sub(r"(/amp|/index\.html?)?/*$", "", parts.path)
    query = sorted(_untracked(parts.query))
    return host + path + (f"?{urlencode(query)}" if query else "")


def story_text_key(text: str) -> str:
    """For grouping: case, Unicode form, punctuation and spacing folded away: equal strings mean a copied text."""
    return " ".join(words(text))
