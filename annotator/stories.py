"""Stories: the articles that tell one event, found among a million of them.

Export keeps a story inside one split, push shows a reviewer the story's other articles: both
need the same grouping, and both can be handed a million articles. Two articles tell one story
when:

- they share a normalised URL or a normalised text (copies);
- words: the Jaccard similarity of their content words (title + lead) reaches `STORY_THRESHOLD`,
  or `NEAR_DATE_THRESHOLD` when they were published within `NEAR_DATE_DAYS` of each other;
- names: they share at least `NAMES_MIN_SHARED` names and figures with a cosine of at least
  `NAMES_COSINE`, and their words overlap at least `NAMES_WORD_FLOOR` (a translation, a digest).

Comparing every pair is quadratic (25 hours at a million articles). Which pairs are compared:

- **within `WINDOW_DAYS` of each other** (dated articles, sorted by day): every pair, exactly, as
  sparse products of day blocks, every rule. Outlets tell an event within days of each other;
  the work grows with the articles times how many are published per day, not with their square.
- **articles without a date**: every pair among them, exactly (words at `STORY_THRESHOLD`, names):
  quadratic in their number, so give dates to large corpora.
- **any two articles**, whatever their dates: candidates from MinHash LSH (the `datasketch`
  package computes the signatures: `NUM_PERM` permutations, `BANDS` bands of `ROWS`), then the
  exact words check at `STORY_THRESHOLD`. A pair of Jaccard s is a candidate with probability
  1 - (1 - s^ROWS)^BANDS: 0.99 at 0.6, 0.87 at 0.5, 0.23 at 0.3 (`candidate_probability`). So
  copies and close rewrites are found across years; a loose retelling (0.3-0.5) published more
  than `WINDOW_DAYS` away is found only by chance. What comes weeks later is usually a follow-up,
  which `annotator.incidents` links to its incident instead.

**No silent collapse.** Links are taken strongest first (copies, then by word Jaccard), and a link
that would make a story larger than `story_cap` articles is refused: at most `STORY_MAX_SHARE` of
the articles published within the story's dates (± `WINDOW_DAYS`; all articles for a story
without dates), and never less than `STORY_MIN_CAP`. A low threshold over a corpus written from
one vocabulary chains everything into one component; here the chain is cut at its weakest links
and every cut is reported (`Grouping.capped`), so export and a lead can see it.

Pure functions: articles in, groups out, no I/O.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import date

import numpy as np
from pydantic import BaseModel, Field
from scipy import sparse

from annotator.normalise import story_url_key, words
from annotator.records import Article, Review, newer_key

# Jaccard of the content-word sets of title + lead at which two articles count as one story.
# Copies and light edits score 0.6-1.0; two outlets retelling one event in their own words, with
# the same names, places and figures, score 0.40-0.54 on the stories in tests/test_export.py;
# different events on the same topic (two fake-face takedowns, two self-driving crashes) 0.04-0.12.
STORY_THRESHOLD = 0.3
# Outlets cover an event within days of each other. Two retellings without names ("a robotaxi",
# "an autonomous taxi"; "six metres", "20 feet") score only 0.14, so articles published at most
# NEAR_DATE_DAYS apart count as one story from NEAR_DATE_THRESHOLD on. A translation, or a
# retelling that shares fewer words, is left to the names signal below.
NEAR_DATE_THRESHOLD = 0.13
NEAR_DATE_DAYS = 3
# Only the lead is compared: news puts who, what and where first, and a short summary and a long
# feature about one event would otherwise differ by the feature's length alone. In Chinese,
# Japanese and Korean each character bigram counts as a word: two Chinese tellings of one scam
# score 0.24, a different scam on the same topic 0.07-0.09 (tests/test_splits.py).
LEAD_WORDS = 200
# The second signal. The words of two leads miss one event told through a translation, or as a
# digest against a full article: the OECD AIM record of the fake-LinkedIn-faces story (a summary
# plus 20 headlines, some Chinese; seed 000) and a translated 1,500-word article on it (seed 002)
# score 0.088, less than two different fake-face takedowns (0.12). What they share is names and
# figures: LinkedIn, Stanford, Internet, Observatory, NPR, 1000: 6 names, cosine 0.125, where any
# two different events among the samples, seeds and test stories share at most 3 (the closest
# pairs: `benchmarks/story_pairs.py`). That pair passes with little margin (6 >= 5, 0.125 >= 0.1,
# 0.088 >= 0.06): these thresholds rest on few real pairs; re-check them on a larger gold set.
NAMES_MIN_SHARED = 5
NAMES_COSINE = 0.1
# Shared names alone would join two different events about one company (OpenAI, Microsoft, Sam
# Altman, San Francisco): the words must still overlap a little.
NAMES_WORD_FLOOR = 0.06
# A name in more than this share of the articles (and more than NAMES_COMMON_MIN of them) tells
# no stories apart in this batch (AI, OpenAI, US in a gold set of AI news): it is not counted.
NAMES_COMMON_SHARE = 0.01
NAMES_COMMON_MIN = 20

_STOPWORDS = frozenset(re.split(r"\s+", """about above after again against also among and any are around because been before being
    below between both but can could did does doing down during each even ever every few for from
    further had has have having her here hers him his how into its just like made make many more
    most much must new not now off once one only other our out over own per said same says she
    should since some such than that the their them then there these they this those through too
    two under until upon very was were what when where which while who whom why will with within
    without would year years you your"""))
# Names that every story has: days, months, titles, and "AI" in a gold set about AI.
_NOT_NAMES = _STOPWORDS | frozenset(re.split(r"\s+", """ai the a an i mr mrs ms dr monday tuesday wednesday thursday friday
    saturday sunday january february march april may june july august september october november
    december"""))
# Scripts written without spaces between words (Han, kana, Hangul syllables).
_UNSPACED_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_UNSPACED = re.compile(f"[{_UNSPACED_CHARS}]+")
_PIECE = re.compile(f"[{_UNSPACED_CHARS}]+|[^{_UNSPACED_CHARS}]+")
# A capitalised word (any letter but a-z first, checked below) or a number; a domain's end.
_NAME = re.compile(r"(?<![\w.])(?:[^\W\d_a-z][\w'&]*+(?!\.\w)|\d[\d,.]*\d|\d)")
_DOMAIN_END = re.compile(r"\.[a-z]{2,}\b(?!\.\w)", re.IGNORECASE)
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\"'(|\u2022*#>\u201c\u2018\n]\s*)$")
_YEAR = re.compile(r"(?:19|20)\d\d")
# A thousands separator: 1,000 in English is 1.000 in German, Spanish or Portuguese, the same figure.
_THOUSANDS = re.compile(r"(?<=\d)[,.](?=\d{3}(?!\d))")


# --------------------------------------------------------------------------- normalisation


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            stem = word[: -len(suffix)]
            return stem[:-1] if suffix in ("ing", "ed") and stem[-1] == stem[-2] and stem[-1] not in "aeiouls" else stem
    return word


def _story_words(text: str) -> list[str]:
    """Words, with runs of an unspaced script cut into character bigrams: word-level `\\w+` would
    make a whole Chinese sentence one word, which no other telling shares."""
    if text.isascii() or not _UNSPACED.search(text):
        return words(text)
    out: list[str] = []
    for word in words(text):
        for piece in _PIECE.findall(word) if _UNSPACED.search(word) else (word,):
            if not _UNSPACED.match(piece) or len(piece) == 1:
                out.append(piece)
            else:
                out.extend(piece[c : c + 2] for c in range(len(piece) - 1))
    return out


def story_tokens(title: str, text: str) -> frozenset[str]:
    """Content words (crudely stemmed) of the title and the lead: what two tellings of one story share."""
    words = _story_words(title) + _story_words(text)[:LEAD_WORDS]
    # Bigrams and single characters of unspaced scripts (all from U+3040 on) are kept whole.
    return frozenset(_stem(w) for w in words if (len(w) >= 3 or w[0] >= "\u3040") and w not in _STOPWORDS)


def story_names(title: str, text: str) -> frozenset[str]:
    """Names and figures of the whole text, casefolded: the who, where and how many that every
    telling of one event repeats, in any language written with capitals or digits.

    A name is a capitalised word that is not a sentence's first word (unless it has capitals
    inside: LinkedIn, NPR) and never occurs in lower case in the same text (so title-case
    headlines add nothing); a figure is a number of three digits or more that is not a year
    (thousands separators dropped: 1,000 = 1.000 = 1000); a domain is anything like example.com.
    """
    text = unicodedata.normalize("NFKC", f"{title}\n{text}").replace("\u2019", "'")
    if not text.isascii():
        text = _UNSPACED.sub(" ", text)
    names: set[str] = set()
    capitalised: set[str] = set()
    for m in _NAME.finditer(text):
        token = m.group().rstrip("'").removesuffix("'s")
        if token[0].isdigit():
            number = _THOUSANDS.sub("", token)
            if sum(c.isdigit() for c in number) >= 3 and not _YEAR.fullmatch(number):
                names.add(number)
        elif token[0].isupper():
            folded = token.casefold()
            if folded in _NOT_NAMES or folded in capitalised or len(token) < 2:
                continue
            if token[1:].islower() and _SENTENCE_START.search(text, max(0, m.start() - 3), m.start()):
                continue
            capitalised.add(folded)
    names.update(word for word in capitalised if not _occurs(word, text))
    for m in _DOMAIN_END.finditer(text):  # found by its dot: a regex for whole domains is 6x slower
        start = m.start()
        if not start or not text[start - 1].isalnum():
            continue
        while start and (text[start - 1].isalnum() or text[start - 1] in ".-"):
            start -= 1
        names.add(text[start : m.end()].casefold().removeprefix("www."))
    return frozenset(names)


def _occurs(word: str, text: str) -> bool:
    """Whether `word` occurs in `text` as a whole word, exactly as written (so: in lower case).
    str.find, not a set of every lower-case word: that costs 4x more for the twenty we ask about."""
    start = text.find(word)
    while start != -1:
        end = start + len(word)
        if (not start or not text[start - 1].isalnum()) and (end == len(text) or not text[end].isalnum()):
            return True
        start = text.find(word, start + 1)
    return False


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 0.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)


# --------------------------------------------------------------------------- which pairs are compared

WINDOW_DAYS = NEAR_DATE_DAYS
NUM_PERM = 128
BANDS, ROWS = 32, 4
# Candidates whose signatures agree on less than this share of the permutations are not checked
# exactly: at STORY_THRESHOLD the estimate's standard deviation with 128 permutations is 0.04, so
# 0.15 below it loses a true pair with probability < 1e-4.
SIGNATURE_MARGIN = 0.15
# A bucket shared by more articles than this is a pile of near-identical texts: each is linked
# to the bucket's first article only, instead of every pair among them.
MAX_BUCKET = 50
# The chaining guard. One incident in the OECD AIM holds about 20 articles (seed 000); a big story
# a few hundred within a week, far below 2 % of what is published around it.
STORY_MIN_CAP = 50
STORY_MAX_SHARE = 0.02
COPY_WEIGHT = 2.0  # a shared URL or text: stronger than any word overlap


def candidate_probability(similarity: float, bands: int = BANDS, rows: int = ROWS) -> float:
    """Probability that LSH makes a pair of this Jaccard similarity a candidate."""
    return 1 - (1 - similarity**rows) ** bands


def story_id(group: Iterable[str]) -> str:
    """A story's id: a hash of its smallest article id, so the same grouping gives the same ids."""
    return "s-" + hashlib.sha256(min(group).encode()).hexdigest()[:12]


class CappedStory(BaseModel):
    """A story whose growth the chaining guard stopped: links refused, and why."""

    story: str
    size: int
    cap: int
    refused_links: int
    first_day: str | None = None
    last_day: str | None = None


class Grouping(BaseModel):
    groups: list[list[str]]
    capped: list[CappedStory] = Field(default_factory=list)
    pairs_compared: int = 0
    lsh_candidates: int = 0
    undated: int = 0

    def largest(self, k: int = 10) -> list[dict[str, object]]:
        """The k largest groups (size, story id, first ids): what a lead looks at for chaining."""
        top = sorted(self.groups, key=lambda g: (-len(g), g[0]))[:k]
        return [{"story": story_id(g), "size": len(g), "articles": g[:5]} for g in top if len(g) > 1]


# --------------------------------------------------------------------------- features


class _Features:
    """What grouping keeps per article: token ids as CSR rows, not Python sets (a million
    frozensets of 150 words would take gigabytes)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.days: list[int | None] = []
        self.copy_edges: list[tuple[int, int]] = []
        self._first: dict[tuple[int, int], int] = {}
        self.vocab: dict[str, int] = {}
        self._word_ids: dict[str, int] = {}
        self.names_vocab: dict[str, int] = {}
        self.words = array("i")
        self.word_ptr = array("q", [0])
        self.names = array("i")
        self.name_ptr = array("q", [0])

    def add(self, article: Article) -> None:
        i = len(self.ids)
        self.ids.append(article.id)
        self.days.append(_day(article.published_at))
        text_words = words(article.text)
        for kind, key in ((0, story_url_key(article.url)), (1, " ".join(text_words))):  # = story_text_key
            if key:
                digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
                j = self._first.setdefault((kind, digest), i)
                if j != i:
                    self.copy_edges.append((j, i))
        self.words.extend(self._token_ids(article.title, article.text, text_words))
        self.word_ptr.append(len(self.words))
        names = self.names_vocab
        self.names.extend(sorted({names.setdefault(t, len(names)) for t in story_names(article.title, article.text)}))
        self.name_ptr.append(len(self.names))

    def _token_ids(self, title: str, text: str, text_words: list[str]) -> list[int]:
        """Ids of `story_tokens`, reusing the words the copy key split the text into, and each
        word's stem and id looked up once per word (news repeats its words: most of the time
        went to stemming and looking up the same words again)."""
        vocab = self.vocab
        if not (text.isascii() or not _UNSPACED.search(text)) or not (title.isascii() or not _UNSPACED.search(title)):
            return sorted({vocab.setdefault(t, len(vocab)) for t in story_tokens(title, text)})
        known = self._word_ids
        out = set()
        for w in words(title) + text_words[:LEAD_WORDS]:
            i = known.get(w)
            if i is None:
                dropped = (len(w) < 3 and w[0] < "\u3040") or w in _STOPWORDS
                i = known[w] = -1 if dropped else vocab.setdefault(_stem(w), len(vocab))
            out.add(i)
        out.discard(-1)
        return sorted(out)

    def matrices(self) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        n = len(self.ids)
        words = _csr(self.words, self.word_ptr, n, len(self.vocab))
        names = _csr(self.names, self.name_ptr, n, len(self.names_vocab))
        # Names in more than NAMES_COMMON_SHARE of the articles (and NAMES_COMMON_MIN) tell no stories apart.
        frequency = np.bincount(names.indices, minlength=names.shape[1])
        common = frequency > max(NAMES_COMMON_MIN, NAMES_COMMON_SHARE * n)
        if common.any():
            names.data[common[names.indices]] = 0
            names.eliminate_zeros()
        return words, names


def _csr(indices: array, ptr: array, n: int, width: int) -> sparse.csr_matrix:
    idx = np.frombuffer(indices, dtype=np.int32) if len(indices) else np.zeros(0, np.int32)
    return sparse.csr_matrix((np.ones(len(idx), dtype=np.int32), idx, np.frombuffer(ptr, dtype=np.int64)), shape=(n, width))


def _day(published_at: str | None) -> int | None:
    try:
        return date.fromisoformat((published_at or "")[:10]).toordinal()
    except ValueError:
        return None


# --------------------------------------------------------------------------- candidate pairs


def _block_pairs(matrix: sparse.csr_matrix, order: np.ndarray, days: np.ndarray, window: int,
                 chunk: int = 512) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(i, j, shared) for every pair of rows at most `window` days apart that share a token.

    `order` lists the rows to compare sorted by `days` (aligned with it); each block of `chunk`
    rows is multiplied only with the rows up to `window` days after its last one.
    """
    if len(order) < 2:
        return
    ordered = matrix[order]
    for start in range(0, len(order), chunk):
        end = min(start + chunk, len(order))
        stop = int(np.searchsorted(days, days[end - 1] + window, side="right"))
        block = (ordered[start:end] @ ordered[start:stop].T).tocoo()
        a, b = block.row.astype(np.int64) + start, block.col.astype(np.int64) + start
        keep = (b > a) & (days[b] - days[a] <= window)
        yield order[a[keep]], order[b[keep]], block.data[keep]


def _lsh_candidates(words: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) whose MinHash signatures agree on a whole band, and agree on at least
    STORY_THRESHOLD - SIGNATURE_MARGIN of the permutations."""
    from datasketch import MinHash

    n = words.shape[0]
    signatures = np.empty((n, NUM_PERM), dtype=np.uint32)
    rows = np.split(words.indices, words.indptr[1:-1])
    empty = np.diff(words.indptr) == 0
    # Token ids are hashed by datasketch's own mixing (affine32 pre-mixes its input), so the identity will do.
    for i, m in enumerate(MinHash.generator(((int(t) for t in r) for r in rows), num_perm=NUM_PERM, seed=1,
                                            hashfunc=lambda t: t)):
        signatures[i] = m.hashvalues
    pairs: list[np.ndarray] = []
    for band in range(BANDS):
        part = np.ascontiguousarray(signatures[:, band * ROWS : (band + 1) * ROWS]).view(np.uint64)
        keys = part[:, 0] * np.uint64(0x9E3779B97F4A7C15) ^ part[:, 1]
        keys[empty] = np.arange(int(empty.sum()), dtype=np.uint64) ^ np.uint64(0xFFFF_FFFF_0000_0000)  # empty sets match nothing
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        same = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
        if not len(same):
            continue
        # Runs of equal keys: consecutive members give every pair of a run of two; longer runs below.
        starts = np.flatnonzero(np.diff(np.concatenate(([-2], same))) != 1)
        run_first = same[starts]
        run_len = np.diff(np.concatenate((starts, [len(same)]))) + 1
        two = run_len == 2
        pairs.append(np.stack((order[run_first[two]], order[run_first[two] + 1])))
        for first, length in zip(run_first[~two].tolist(), run_len[~two].tolist(), strict=True):
            members = order[first : first + length]
            if length > MAX_BUCKET:
                pairs.append(np.stack((np.full(length - 1, members[0]), members[1:])))
            else:
                a, b = np.triu_indices(length, 1)
                pairs.append(np.stack((members[a], members[b])))
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    both = np.concatenate(pairs, axis=1).astype(np.int64)
    lo, hi = np.minimum(both[0], both[1]), np.maximum(both[0], both[1])
    codes = np.unique(lo * n + hi)
    lo, hi = codes // n, codes % n
    agree = np.empty(len(codes), dtype=np.float64)
    for s in range(0, len(codes), 1 << 18):
        agree[s : s + (1 << 18)] = (signatures[lo[s : s + (1 << 18)]] == signatures[hi[s : s + (1 << 18)]]).mean(axis=1)
    keep = agree >= STORY_THRESHOLD - SIGNATURE_MARGIN
    return lo[keep], hi[keep]


def _shared(words: sparse.csr_matrix, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Tokens shared by each pair (i[k], j[k]): the exact check of candidate pairs."""
    out = np.empty(len(i), dtype=np.int64)
    ind, ptr = words.indices, words.indptr
    for k, (a, b) in enumerate(zip(i.tolist(), j.tolist(), strict=True)):
        out[k] = len(np.intersect1d(ind[ptr[a] : ptr[a + 1]], ind[ptr[b] : ptr[b + 1]], assume_unique=True))
    return out


# --------------------------------------------------------------------------- grouping


def story_groups(articles: Iterable[Article]) -> Grouping:
    """Article ids grouped into stories (each group sorted, groups sorted by their first id;
    singletons are groups too), with what the chaining guard cut. Reads `articles` once."""
    features = _Features()
    for article in articles:
        features.add(article)
    n = len(features.ids)
    words, names = features.matrices()
    word_size = np.diff(words.indptr).astype(np.float64)
    name_size = np.diff(names.indptr).astype(np.float64)
    edges_i: list[np.ndarray] = []
    edges_j: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    grouping = Grouping(groups=[])

    def link(i: np.ndarray, j: np.ndarray, weight: np.ndarray) -> None:
        edges_i.append(i)
        edges_j.append(j)
        weights.append(weight)

    if features.copy_edges:
        copies = np.array(features.copy_edges, dtype=np.int64)
        link(copies[:, 0], copies[:, 1], np.full(len(copies), COPY_WEIGHT))

    day_list = features.days
    dated = np.array([i for i, d in enumerate(day_list) if d is not None], dtype=np.int64)
    undated = np.array([i for i, d in enumerate(day_list) if d is None], dtype=np.int64)
    grouping.undated = len(undated)
    day_arr = np.array([d if d is not None else 0 for d in day_list], dtype=np.int64)
    dated = dated[np.argsort(day_arr[dated], kind="stable")]
    blocks = [(dated, day_arr[dated], WINDOW_DAYS), (undated, np.zeros(len(undated), np.int64), 0)]

    for order, days, window in blocks:
        for i, j, shared in _block_pairs(words, order, days, window):
            grouping.pairs_compared += len(i)
            similarity = shared / (word_size[i] + word_size[j] - shared)
            near = np.abs(day_arr[i] - day_arr[j]) <= NEAR_DATE_DAYS if window else np.zeros(len(i), bool)
            ok = (similarity >= STORY_THRESHOLD) | (near & (similarity >= NEAR_DATE_THRESHOLD))
            link(i[ok], j[ok], similarity[ok])
        for i, j, shared in _block_pairs(names, order, days, window):
            cosine = shared / np.sqrt(name_size[i] * name_size[j])
            ok = (shared >= NAMES_MIN_SHARED) & (cosine >= NAMES_COSINE)
            i, j = i[ok], j[ok]
            common = _shared(words, i, j)
            similarity = common / np.maximum(word_size[i] + word_size[j] - common, 1)
            ok = similarity >= NAMES_WORD_FLOOR
            link(i[ok], j[ok], similarity[ok])

    i, j = _lsh_candidates(words)
    grouping.lsh_candidates = len(i)
    common = _shared(words, i, j)
    similarity = common / np.maximum(word_size[i] + word_size[j] - common, 1)
    ok = similarity >= STORY_THRESHOLD
    link(i[ok], j[ok], similarity[ok])

    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(np.array(features.ids, dtype=object), kind="stable")] = np.arange(n)
    roots, grouping.capped = _guarded_union(n, day_list, np.concatenate(edges_i), np.concatenate(edges_j),
                                            np.concatenate(weights), rank)
    members: dict[int, list[str]] = {}
    for k, root in enumerate(roots):
        members.setdefault(root, []).append(features.ids[k])
    grouping.groups = sorted((sorted(set(ids)) for ids in members.values()), key=lambda g: g[0])
    group_of = {a: g for g in grouping.groups for a in g}
    for capped in grouping.capped:
        group = group_of[features.ids[int(capped.story)]]
        capped.story, capped.size = story_id(group), len(group)
    return grouping


def near_duplicate_groups(articles: Iterable[Article]) -> list[list[str]]:
    """Article ids grouped into stories: each group sorted, groups sorted by their first id,
    singletons too (`story_groups(...).groups`)."""
    return story_groups(articles).groups


def story_cap(first_day: int | None, last_day: int | None, sorted_days: list[int], n: int) -> int:
    """The most articles one story may hold: STORY_MAX_SHARE of those published within its dates
    (± WINDOW_DAYS), of all `n` when it has no dates, and at least STORY_MIN_CAP."""
    if first_day is None or last_day is None:
        around = n
    else:
        around = bisect_right(sorted_days, last_day + WINDOW_DAYS) - bisect_left(sorted_days, first_day - WINDOW_DAYS)
    return max(STORY_MIN_CAP, math.ceil(STORY_MAX_SHARE * around))


def _guarded_union(n: int, days: list[int | None], i: np.ndarray, j: np.ndarray, weight: np.ndarray,
                   rank: np.ndarray) -> tuple[list[int], list[CappedStory]]:
    """Union-find over the links, strongest first (ties in the order of the article ids, `rank`,
    so the input order changes nothing), refusing a link that would exceed the story cap."""
    parent = list(range(n))
    size = [1] * n
    first: list[int | None] = list(days)
    last: list[int | None] = list(days)
    sorted_days = sorted(d for d in days if d is not None)
    refused: Counter[int] = Counter()
    caps: dict[int, int] = {}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    lo_rank, hi_rank = np.minimum(rank[i], rank[j]), np.maximum(rank[i], rank[j])
    order = np.lexsort((hi_rank, lo_rank, -weight))
    for a, b in zip(i[order].tolist(), j[order].tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        lo = min((d for d in (first[ra], first[rb]) if d is not None), default=None)
        hi = max((d for d in (last[ra], last[rb]) if d is not None), default=None)
        cap = story_cap(lo, hi, sorted_days, n)
        if size[ra] + size[rb] > cap:
            refused[ra] += 1
            refused[rb] += 1
            caps[ra] = caps[rb] = cap
            continue
        ra, rb = min(ra, rb), max(ra, rb)
        parent[rb] = ra
        size[ra] += size[rb]
        first[ra], last[ra] = lo, hi
        if rb in refused:
            refused[ra] += refused.pop(rb)
        if rb in caps:
            caps[ra] = max(caps.get(ra, 0), caps.pop(rb))
    roots = [find(k) for k in range(n)]
    capped = []
    for root, count in refused.items():
        if find(root) != root:
            continue
        lo, hi = first[root], last[root]
        capped.append(CappedStory(
            story=str(root), size=size[root], cap=caps[root], refused_links=count,
            first_day=date.fromordinal(lo).isoformat() if lo else None,
            last_day=date.fromordinal(hi).isoformat() if hi else None))
    return roots, sorted(capped, key=lambda c: (-c.size, c.story))


# --------------------------------------------------------------------------- review a story once


def applied_reviews(reviews: Iterable[Review], story_of: Mapping[str, str], task_of: Mapping[str, int],
                    reviewed: set[tuple[str, str]] | None = None) -> list[Review]:
    """The reviews a reviewer's "apply to the rest of the story" stands for: for every other
    article of the story (`story_of`: article id -> story id; `task_of`: its task), the same labels
    and rationale, marked `applied_from_story` (the article reviewed), unless the reviewer left it
    out (`story_except`) or reviewed it themselves (their own review wins). Skipped and blind
    reviews apply nothing. Each article gets at most one applied review per reviewer: the newest.
    `reviewed` ((annotator, article) of every review) lets a streaming caller pass only the
    story-wide reviews; by default it is taken from `reviews`."""
    reviews = list(reviews)
    own = reviewed if reviewed is not None else {(r.annotator, r.article_id) for r in reviews}
    members: dict[str, list[str]] = {}
    for aid, sid in story_of.items():
        members.setdefault(sid, []).append(aid)
    out: dict[tuple[str, str], Review] = {}
    for r in reviews:
        extra = r.model_extra or {}
        sid = story_of.get(r.article_id)
        if not extra.get("story_apply") or r.skipped or r.blind or sid is None:
            continue
        left_out = set(extra.get("story_except") or [])
        for m in sorted(members[sid]):
            if m == r.article_id or m in left_out or (r.annotator, m) in own:
                continue
            applied = Review(article_id=m, task_id=task_of.get(m), annotator=r.annotator, labels=r.labels,
                             rationale=r.rationale, updated_at=r.updated_at, applied_from_story=r.article_id, story=sid)
            key = (r.annotator, m)
            if key not in out or newer_key(applied) >= newer_key(out[key]):
                out[key] = applied
    return sorted(out.values(), key=lambda r: (r.article_id, r.annotator))
