"""Articles in, drafts out: prompt + model + validation + cache, resumable and never paid twice.

Every answer is validated against the taxonomy's pydantic model and its rules between fields; one
that does not validate gets one repair round-trip quoting the error, and if that fails too the
draft is written with `error` set and no labels, so nothing outside the taxonomy reaches
drafts.jsonl as a label (an answer whose values are valid but still break a rule is kept, flagged).
Answers are cached by content before their draft is appended (and flushed): a run killed at any point and
started again drafts only what is missing and pays for nothing twice.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import math
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from annotator.cache import AnswerCache, cache_key
from annotator.checks import QUOTE_NOT_FOUND, locate_evidence, prompt_ngrams, rationale_flags
from annotator.config import DEFAULT_PROMPT, DEFAULT_TAXONOMY
from annotator.errors import ConfigError, LLMError, LLMRefused, LLMUnavailable, RecordError
from annotator.incidents import LINK_PROMPT, NONE, IncidentIndex, as_dicts, link_messages, link_schema, load_incidents, read_link
from annotator.injection import FLAG, REPORTED, looks_like_injection, take_report, with_report
from annotator.llm import ChatClient, Completion, LLMSettings, Usage, answer_json
from annotator.locks import hold
from annotator.prompt import Example, Prompt, load_prompt, truncate_to_tokens
from annotator.records import Article, Draft, GoldRecord, JsonlWriter, iter_jsonl, write_text_atomic
from annotator.taxonomy import (
    EVIDENCE,
    Taxonomy,
    draft_model,
    json_schema,
    load_taxonomy,
    rule_violations,
    rules_schema,
    split_answer,
    validate_labels,
)
from annotator.taxonomy import Field as TaxField
from annotator.twostep import TwoStep, applies, first_step, large_fields, second_step, to_roots

DEFAULT_CACHE = Path(".annotator") / "cache.sqlite"

# Reasons a draft fails, as the first word of `Draft.error`.
INVALID, REFUSED, UNAVAILABLE = "invalid_answer", "refused", "unavailable"

class DraftOptions(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    prompt: str = DEFAULT_PROMPT
    taxonomy: str = DEFAULT_TAXONOMY
    concurrency: int = 512  # a cap: how many requests are in flight adapts below it (llm.RateGate)
    samples: int = 1
    confidence_samples: int = 4  # short label-only answers when the endpoint gives no log-probabilities (0: off)
    max_article_tokens: int | None = 8000  # longer articles are cut (flag `truncated`); 0 or None: no cap
    examples: str | None = None  # gold JSONL for few-shot examples
    shots: int = 3
    cache: str = str(DEFAULT_CACHE)
    endpoint_id: str | None = None  # cache identity of the endpoint (local servers move ports)
    incidents: str | None = None  # recorded incidents (JSONL): also draft the taxonomy's link to one of them
    two_step: TwoStep = "auto"  # large hierarchical fields: tactics first, then techniques (annotator.twostep)


class DraftSummary(BaseModel):
    total: int = 0
    skipped: int = 0  # already in drafts.jsonl under this model_version
    drafted: int = 0
    from_cache: int = 0  # drafts made entirely from cached answers: nothing paid
    failed: Counter[str] = Field(default_factory=Counter)
    rejected_inputs: int = 0
    flagged: Counter[str] = Field(default_factory=Counter)
    paid: Usage = Usage()  # what this run sent and paid for
    requests: int = 0
    mode: str = ""
    seconds: float = 0.0
    batch_submitted: int = 0  # articles sent in a new batch this run
    batch_pending: int = 0  # articles waiting in submitted batches
    requeued: int = 0  # batch lines that failed or expired, submitted again
    batches: list[str] = Field(default_factory=list)  # one status line per batch seen or submitted this run
    peak_in_flight: int = 0  # most requests in flight at once (the adaptive limit at work)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.rejected_inputs

    def describe(self) -> str:
        cost = "unknown (model not in the price table)" if self.paid.cost_usd is None else f"${self.paid.cost_usd:.4f}"
        failed = ", ".join(f"{k} {v}" for k, v in sorted(self.failed.items())) or "0"
        flagged = ", ".join(f"{k} {v}" for k, v in sorted(self.flagged.items())) or "none"
        return "\n".join([
            f"drafted {self.drafted} of {self.total} articles ({self.from_cache} from cache, {self.skipped} already done), "
            f"failed: {failed}" + (f", rejected input lines: {self.rejected_inputs}" if self.rejected_inputs else ""),
            f"flags: {flagged}; output mode: {self.mode or 'n/a'}; requests sent: {self.requests}"
            + (f", at most {self.peak_in_flight} in flight" if self.peak_in_flight else ""),
            f"tokens paid this run: in {self.paid.input_tokens} (cached {self.paid.cached_tokens}), out {self.paid.output_tokens}; "
            f"cost {cost}; {self.seconds:.1f} s",
        ] + [f"  batch {line}" for line in self.batches]
          + ([f"batch: {self.batch_submitted} articles submitted, {self.batch_pending} pending, {self.requeued} re-queued; "
              "run the same command again to collect"] if self.batch_pending or self.requeued else []))


# --------------------------------------------------------------------------- pure helpers


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:4]:
        loc = ".".join(str(p) for p in err["loc"]) or "answer"
        got = f" (got {err['input']!r})" if err.get("type") in ("literal_error", "enum") else ""
        parts.append(f"{loc}: {err['msg']}{got}")
    return "; ".join(parts)


# A draft whose answer repeated a value in a multi-valued field: the repeat was dropped.
DEDUPLICATED = "duplicates_dropped"


def drop_repeats(tax: Taxonomy, data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The answer with repeated values of multi-valued fields dropped (first kept), and those fields.

    A tag given twice is a slip in set semantics, not a wrong label: failing the draft for it, or
    paying a repair round-trip, would cost more than it protects. Values outside the taxonomy are
    left for validation to reject.
    """
    fixed: list[str] = []
    out = dict(data)
    for f in tax.multi_fields:
        value = data.get(f.name)
        if isinstance(value, list) and all(isinstance(v, str) for v in value) and len(set(value)) < len(value):
            out[f.name] = list(dict.fromkeys(value))
            fixed.append(f.name)
    return out, fixed


def check_answer(tax: Taxonomy, completion: Completion) -> tuple[dict[str, Any], list[str]]:
    """The validated answer as a dict and the multi fields whose repeats were dropped, or ValueError
    saying what is wrong (to quote in a repair)."""
    if completion.finish_reason == "length":
        raise ValueError("the answer was cut off at the token limit; answer more briefly")
    try:
        data = answer_json(completion.text)
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected one JSON object, got {type(data).__name__}")
    reported = take_report(data)
    data, fixed = drop_repeats(tax, data)
    try:
        answer = draft_model(tax).model_validate(data).model_dump(mode="json")
    except ValidationError as exc:
        raise ValueError(_validation_message(exc)) from None
    return ({**answer, REPORTED: True} if reported else answer), fixed


_DECODER = json.JSONDecoder()


def field_confidence(tax: Taxonomy, text: str, logprobs: Sequence[tuple[str, float]] | None) -> dict[str, float | None]:
    """Per label field, the probability the model gave to the tokens of its value (exp of their sum)."""
    if not logprobs or "".join(t for t, _ in logprobs) != text:
        return {}
    ends = list(itertools.accumulate(len(t) for t, _ in logprobs))  # where each token ends in the text
    lps = [lp for _, lp in logprobs]
    out: dict[str, float | None] = {}
    for f in tax.label_fields:
        m = re.search(rf'"{re.escape(f.name)}"\s*:\s*', text)
        if not m:
            out[f.name] = None
            continue
        try:
            _, end = _DECODER.raw_decode(text, m.end())
        except ValueError:
            out[f.name] = None
            continue
        # The tokens overlapping the value: from the first that ends after its start to the last that starts before its end.
        first, last = bisect.bisect_right(ends, m.end()), bisect.bisect_left(ends, end) + 1
        out[f.name] = round(math.exp(sum(lps[first:last])), 4)
    return out


def _agreement(tax: Taxonomy, answers: Sequence[Mapping[str, Any]]) -> tuple[int, dict[str, float | None]]:
    """Pick the answer that agrees most with the others; per field, the share of samples agreeing with it."""

    def share(a: Mapping[str, Any], f: TaxField) -> float:
        return sum(f.same(b.get(f.name), a.get(f.name)) for b in answers) / len(answers)

    scores = [sum(share(a, f) for f in tax.label_fields) for a in answers]
    best = scores.index(max(scores))
    return best, {f.name: round(share(answers[best], f), 4) for f in tax.label_fields}


FIELDS_ONLY = ("Answer again with the label fields only (no rationale, no other text): one JSON object with "
               "exactly those fields.")


def answer_schema(tax: Taxonomy, settings: LLMSettings) -> dict[str, Any]:
    """The schema sent with every answer request, as the endpoint's settings shape it (the embedded
    model: the rules written in, no evidence quotes; see llm/local.py)."""
    schema = rules_schema(tax) if settings.rules_in_schema and tax.rules else json_schema(tax)
    if settings.evidence:
        return schema

    def drop(s: dict[str, Any]) -> dict[str, Any]:
        return {**s, "properties": {k: v for k, v in s["properties"].items() if k != EVIDENCE},
                "required": [k for k in s["required"] if k != EVIDENCE]}

    return {"anyOf": [drop(b) for b in schema["anyOf"]]} if "anyOf" in schema else drop(schema)


def fields_schema(tax: Taxonomy) -> dict[str, Any]:
    """The answer schema without free-text fields: what a label-only confidence sample answers."""
    schema = json_schema(tax)
    keep = {f.name for f in tax.label_fields}
    return {**schema, "properties": {k: v for k, v in schema["properties"].items() if k in keep},
            "required": [k for k in schema["required"] if k in keep]}


def vote_confidence(tax: Taxonomy, labels: Mapping[str, Any], samples: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """Per label field, the share of votes (the answer itself and each valid sample) that agree with the answer.

    Why agreement: without log-probabilities, how often the model gives the same label when asked
    again is the confidence it can report; five votes give 0.2 steps, enough to order drafts.
    """
    return {f.name: round((1 + sum(f.same(x.get(f.name), labels.get(f.name)) for x in samples)) / (1 + len(samples)), 4)
            for f in tax.label_fields}


def sampling_cost_line(n_articles: int, samples: int, prompt_chars: int, price: Any) -> str:
    """What agreement-based confidence may add, said before the run (about 4 characters a token,
    about 60 output tokens per label-only answer; prompt caching, where the endpoint has it, lowers it)."""
    from annotator.llm.pricing import cost

    tokens_in = prompt_chars // 4 * samples
    usd = cost(price, tokens_in, 0, 60 * samples * n_articles)
    money = "unknown (model not in the price table)" if usd is None else f"at most ${usd:.4f}"
    return (f"confidence: from log-probabilities where the endpoint returns them, else {samples} short label-only "
            f"answers per article: up to {samples * n_articles} more requests (~{tokens_in:,} input tokens), cost "
            f"{money}; --confidence-samples 0 turns it off")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]{3,}", text.lower())


def pick_examples(article: Article, pool: Sequence[Example], k: int) -> list[Example]:
    """The k pool examples most similar to the article (TF-IDF cosine), never the article itself."""
    if k <= 0 or not pool:
        return []
    docs = [Counter(_words(a.title + " " + a.text)) for a, _ in pool]
    df = Counter(w for d in docs for w in d)
    n = len(docs)

    def vec(counts: Counter[str]) -> dict[str, float]:
        return {w: c * math.log((1 + n) / (1 + df.get(w, 0))) for w, c in counts.items()}

    def cosine(a: dict[str, float], b: dict[str, float]) -> float:
        dot = sum(v * b.get(w, 0.0) for w, v in a.items())
        na, nb = math.sqrt(sum(v * v for v in a.values())), math.sqrt(sum(v * v for v in b.values()))
        return dot / (na * nb) if na and nb else 0.0

    q = vec(Counter(_words(article.title + " " + article.text)))
    scored = [(cosine(q, vec(d)), i) for i, d in enumerate(docs)
              if pool[i][0].id != article.id and pool[i][0].text != article.text]
    return [pool[i] for _, i in sorted(scored, key=lambda s: (-s[0], s[1]))[:k]]


def load_examples(path: str | Path, articles: Mapping[str, Article], tax: Taxonomy) -> list[Example]:
    """Gold records as examples. Text comes from the record (`text`, `title`) or the articles file."""
    pool: list[Example] = []
    for rec in iter_jsonl(path, GoldRecord):
        extra = rec.model_extra or {}
        article = articles.get(rec.article_id)
        if extra.get("text"):
            article = Article(id=rec.article_id, title=str(extra.get("title") or ""), text=str(extra["text"]))
        if article is None:
            continue
        answer = {**rec.labels, "rationale": rec.rationale}
        pool.append((article, {f.name: answer.get(f.name) for f in tax.fields}))
    return pool


# --------------------------------------------------------------------------- the run


class _Progress:
    """One stderr line every couple of seconds (rewritten in place on a terminal)."""

    def __init__(self, total: int, summary: DraftSummary, stream: Any = None) -> None:
        # sys.stderr looked up now, not when the module was imported: it may have been replaced since
        self.total, self.summary, self.stream = total, summary, stream or sys.stderr
        self.start = self.last = time.monotonic()
        self.done = 0
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def step(self, force: bool = False) -> None:
        self.done += 1
        now = time.monotonic()
        if not force and now - self.last < 2.0 and self.done < self.total:
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-9)
        eta = (self.total - self.done) / rate if rate else 0
        p = self.summary.paid
        cost = "?" if p.cost_usd is None else f"${p.cost_usd:.4f}"
        line = (f"draft {self.done}/{self.total} {100 * self.done / max(self.total, 1):.0f}% {rate * 60:.0f}/min "
                f"ETA {eta:.0f}s tokens in {p.input_tokens} out {p.output_tokens} cached {p.cached_tokens} cost {cost}")
        print(("\r" + line) if self.tty else line, end="" if self.tty and self.done < self.total else "\n",
              file=self.stream, flush=True)


class Drafter:
    """Turns one article into one Draft through a client, the cache and the prompt."""

    def __init__(self, client: ChatClient, prompt: Prompt, tax: Taxonomy, options: DraftOptions, cache: AnswerCache,
                 summary: DraftSummary, pool: Sequence[Example] = (), index: IncidentIndex | None = None) -> None:
        self.client, self.prompt, self.tax, self.options, self.cache = client, prompt, tax, options, cache
        self.summary, self.pool, self.index = summary, pool, index
        self.link_prompt = load_prompt(LINK_PROMPT) if index is not None else None
        self.schema = with_report(answer_schema(tax, client.settings))
        self.fields_schema = fields_schema(tax)
        self.model_version = f"{prompt.version}@{client.settings.model}"
        self.large = large_fields(tax, options.two_step)
        self.step_one = first_step(tax, self.large) if self.large else tax
        self._step_schemas: dict[str, dict[str, Any]] = {}
        self._second_steps: dict[tuple[str, frozenset[str]], tuple[Taxonomy, str]] = {}
        self._system = prompt.system_message(self.step_one)  # the same for every article without few-shot examples
        self.prompt_grams = prompt_ngrams(self._system)

    def key(self, messages: Sequence[Mapping[str, str]], temperature: float, seed: int | None,
            tax: Taxonomy | None = None) -> str:
        s = self.client.settings
        return cache_key({
            "model": s.model, "endpoint": self.options.endpoint_id or s.endpoint, "prompt": self.prompt.hash,
            "taxonomy": (tax or self.tax).hash, "messages": list(messages), "temperature": temperature, "seed": seed,
            "max_tokens": s.max_tokens,
        })

    async def _call(self, messages: list[dict[str, str]], temperature: float, seed: int | None,
                    used: dict[str, Any], tax: Taxonomy | None = None, schema: dict[str, Any] | None = None) -> Completion:
        tax = tax or self.tax
        key = self.key(messages, temperature, seed, tax)
        hit = self.cache.get(key)
        if hit is not None:
            used["hits"] += 1
            return Completion.model_validate(hit)
        self.summary.requests += 1
        schema = schema or self._schema_of(tax)
        completion = await self.client.complete(messages, schema, temperature=temperature, seed=seed)
        self.cache.put(key, completion.model_dump(mode="json"))  # committed before anything else can fail
        used["paid"] += 1
        self.summary.paid = self.summary.paid + completion.usage
        if completion.mode:
            self.summary.mode = completion.mode
        return completion

    def _schema_of(self, tax: Taxonomy) -> dict[str, Any]:
        """The answer schema of the whole taxonomy or of a drafting step: one object per step
        taxonomy, reused (the client keeps what it derives from a schema by the object)."""
        if tax is self.tax:
            return self.schema
        key = tax.hash
        if key not in self._step_schemas:
            self._step_schemas[key] = answer_schema(tax, self.client.settings)
        return self._step_schemas[key]

    async def _answer(self, messages: list[dict[str, str]], temperature: float, seed: int | None,
                      used: dict[str, Any], tax: Taxonomy | None = None) -> tuple[dict[str, Any] | None, Completion | None, str | None]:
        """(answer, completion, error) after at most one repair round-trip."""
        tax = tax or self.tax
        completion = await self._call(messages, temperature, seed, used, tax)
        used["usage"] = used["usage"] + completion.usage
        fallback: tuple[dict[str, Any], Completion] | None = None
        try:
            answer, fixed = check_answer(tax, completion)
            used["deduplicated"] = used["deduplicated"] or bool(fixed)
            broken = rule_violations(self.tax, answer)
            if not broken:
                return answer, completion, None
            problem, fallback = "it breaks the taxonomy's rules: " + "; ".join(broken), (answer, completion)
        except ValueError as exc:
            problem = str(exc)
        repair = messages + [
            {"role": "assistant", "content": completion.text},
            {"role": "user", "content": f"That answer is not valid: {problem}. Answer again with one corrected JSON object "
                                        "only, using only values from the label guide."},
        ]
        completion = await self._call(repair, temperature, seed, used, tax)
        used["usage"] = used["usage"] + completion.usage
        used["repaired"] = True
        try:
            answer, fixed = check_answer(tax, completion)
            used["deduplicated"] = used["deduplicated"] or bool(fixed)
        except ValueError as exc:
            if fallback is None:
                return None, None, f"{INVALID}: still invalid after one repair: {exc} (first answer: {problem})"
            answer, completion = fallback  # valid labels that break a rule: kept, and flagged below
        return answer, completion, None  # a rule still broken flags the draft (see `draft`); it does not fail it

    async def _sampled_confidence(self, messages: list[dict[str, str]], labels: Mapping[str, Any],
                                  used: dict[str, Any]) -> dict[str, float | None]:
        """Confidence from label-only re-answers (cached like every answer); invalid ones do not vote."""
        ask = messages + [{"role": "user", "content": FIELDS_ONLY}]
        base = self.client.settings.seed or 0
        votes = []
        for i in range(self.options.confidence_samples):
            try:
                completion = await self._call(ask, 1.0, base + 1 + i, used, schema=self.fields_schema)
            except LLMRefused:
                raise
            except LLMError:
                continue
            used["usage"] = used["usage"] + completion.usage
            try:
                data = answer_json(completion.text)
            except ValueError:
                continue
            if isinstance(data, dict) and not validate_labels(self.tax, {f.name: data.get(f.name) for f in self.tax.label_fields}):
                votes.append(data)
        return vote_confidence(self.tax, labels, votes) if votes else {f.name: None for f in self.tax.label_fields}

    def request(self, article: Article) -> tuple[list[dict[str, str]], list[str]]:
        """The messages for one article (step 1 of two when there are two), and the flags its input
        earns (truncated, possible_injection)."""
        examples = pick_examples(article, self.pool, self.options.shots) if self.pool else []
        if examples and self.large:  # step 1 asks for top-level values, so examples show theirs
            examples = [(a, {**answer, **{n: to_roots(self.tax.field(n), answer.get(n) or []) for n in self.large}})
                        for a, answer in examples]
        system = self.prompt.system_message(self.step_one, examples) if examples else self._system
        user, truncated = self.prompt.user_message(article, self.options.max_article_tokens or None)
        sent, _ = truncate_to_tokens(article.text, self.options.max_article_tokens or None)  # what the model sees
        flags = (["truncated"] if truncated else []) + ([FLAG] if looks_like_injection(
            f"{article.title}\n{sent}") else [])
        return [{"role": "system", "content": system}, {"role": "user", "content": user}], flags

    def _second_step(self, name: str, chosen: Sequence[str]) -> tuple[Taxonomy, str]:
        """The second step's taxonomy and system message, built once per field and chosen values
        (a few combinations cover a whole run)."""
        key = (name, frozenset(chosen))
        if key not in self._second_steps:
            step = second_step(self.tax, name, chosen)
            self._second_steps[key] = (step, self.prompt.system_message(step))
        return self._second_steps[key]

    async def _answer_steps(self, article: Article, messages: list[dict[str, str]], temperature: float, seed: int | None,
                            used: dict[str, Any]) -> tuple[dict[str, Any] | None, Completion | None, str | None]:
        """One answer: in one request, or, for large hierarchical fields, top-level values first and
        then one request per such field for the values under the chosen ones (`annotator.twostep`)."""
        if not self.large:
            return await self._answer(messages, temperature, seed, used)
        answer, completion, error = await self._answer(messages, temperature, seed, used, self.step_one)
        if answer is None:
            return answer, completion, error
        for name in self.large:
            chosen = answer.get(name) or []
            if not chosen or not applies(self.tax, name, answer):
                continue
            step, system = self._second_step(name, chosen)
            step_messages = [{"role": "system", "content": system}, messages[-1]]  # the same article, no examples
            more, _, error = await self._answer(step_messages, temperature, seed, used, step)
            if more is None:
                return None, None, f"{error} (second step, field {name})"
            answer[name] = more[name]
            used["steps"] = 2
        return answer, completion, None

    async def draft(self, article: Article) -> Draft:
        messages, flags = self.request(article)
        s = self.client.settings
        k = max(1, self.options.samples)
        temperature = s.temperature if k == 1 else max(s.temperature, 0.7)
        used: dict[str, Any] = {"hits": 0, "paid": 0, "usage": Usage(), "repaired": False, "deduplicated": False, "steps": 1}
        answers: list[tuple[dict[str, Any], Completion]] = []
        errors: list[str] = []
        for i in range(k):
            seed = None if s.seed is None else s.seed + i
            try:
                answer, completion, error = await self._answer_steps(article, messages, temperature, seed, used)
            except LLMRefused:
                raise
            except LLMUnavailable as exc:
                answer, completion, error = None, None, f"{UNAVAILABLE}: {exc}"
            except LLMError as exc:
                answer, completion, error = None, None, f"{REFUSED}: {exc}"
            if answer is not None and completion is not None:
                answers.append((answer, completion))
            elif error:
                errors.append(error)
        link = await self._link(article, used, flags) if self.index is not None and answers else {}
        if used["repaired"]:
            flags.append("repaired")
        if used["deduplicated"]:
            flags.append(DEDUPLICATED)
        u = used["usage"]
        usage = {**u.model_dump(), "requests": used["paid"], "cache_hits": used["hits"], "mode": self.client.mode,
                 "samples": k, "steps": used["steps"]}
        base = dict(article_id=article.id, model=s.model, prompt_version=self.prompt.version, model_version=self.model_version,
                    usage=usage, flags=flags, prompt_hash=self.prompt.hash, taxonomy=self.tax.name, taxonomy_hash=self.tax.hash)
        if not answers:
            return Draft(**base, error=errors[0] if errors else f"{INVALID}: no answer")
        best, agreement = _agreement(self.tax, [a for a, _ in answers])
        answer, completion = answers[best]
        labels, rationale = split_answer(self.tax, answer)
        if answer.get(REPORTED):  # the model saw instructions in the article
            flags += [REPORTED] + ([] if FLAG in flags else [FLAG])
        flags += [f"rule: {b.split(' (got ')[0]}" for b in rule_violations(self.tax, labels)]
        evidence, invented = locate_evidence(article.text, answer.get(EVIDENCE))
        flags += [QUOTE_NOT_FOUND] if invented else []
        flags += rationale_flags(rationale, article.title, article.text, labels.get(self.tax.primary),
                                 self.tax.field(self.tax.primary).value_ids, self.prompt_grams)
        # Two steps: a large field's confidence is that of its top-level values (the first answer's).
        confidence = field_confidence(self.tax, completion.text, completion.logprobs)
        if not confidence and k > 1:
            confidence = agreement
        elif not confidence and self.options.confidence_samples > 0:
            confidence = await self._sampled_confidence(messages, labels, used)
            usage = {**usage, **used["usage"].model_dump(), "requests": used["paid"], "cache_hits": used["hits"],
                     "confidence_samples": self.options.confidence_samples}
            base["usage"] = usage
        elif not confidence:
            confidence = {f.name: None for f in self.tax.label_fields}
        return Draft(**base, labels=labels, rationale=rationale, confidence=confidence, error=None, evidence=evidence, **link)

    async def _link(self, article: Article, used: dict[str, Any], flags: list[str]) -> dict[str, Any]:
        """The taxonomy's link: the recorded incidents offered (`incident_candidates`) and the one
        the model chose, or `none` (no request when nothing is offered). An answer outside the
        offered ids gets one repair; then the link is left empty and the draft flagged `link_invalid`.
        A link request that fails (endpoint errors after retries) leaves the link out and flags
        `link_failed`: the labels are kept, and a re-run asks for the link again."""
        assert self.index is not None and self.link_prompt is not None and self.tax.link is not None
        name, candidates = self.tax.link.name, self.index.candidates(article)
        out: dict[str, Any] = {"incident_candidates": as_dicts(candidates), name: NONE if not candidates else None}
        if not candidates:
            return out
        messages = link_messages(self.link_prompt, name, self.tax.link.description, article, candidates, self.index.by_id,
                                 self.options.max_article_tokens)
        schema, s = link_schema(name, candidates), self.client.settings
        for _ in range(2):
            try:
                completion = await self._call(messages, s.temperature, s.seed, used, schema=schema)
            except LLMRefused:
                raise
            except LLMError:
                flags.append("link_failed")
                return {}
            used["usage"] = used["usage"] + completion.usage
            try:
                out[name] = read_link(completion.text, name, candidates)
                return out
            except ValueError as exc:
                messages = messages + [{"role": "assistant", "content": completion.text},
                                       {"role": "user", "content": f"That answer is not valid: {exc}. Answer again."}]
        flags.append("link_invalid")
        return out


async def _heartbeat(client: ChatClient, stream: Any = None) -> None:
    """A line on stderr while a request waits long, and again every as long: a slow or stuck
    endpoint is visible at once instead of as a silent terminal."""
    s, last = client.settings, 0.0
    while True:
        await asyncio.sleep(min(1.0, s.heartbeat / 4))
        waited = client.health.oldest_wait()
        if waited >= s.heartbeat and time.monotonic() - last >= s.heartbeat:
            last = time.monotonic()
            print(f"draft: still waiting for {s.endpoint}: the oldest request was sent {waited:.0f} s ago "
                  f"({len(client.health.inflight)} in flight, timeout {s.timeout:g} s)", file=stream or sys.stderr, flush=True)


async def _draft_all(drafter: Drafter, todo: Sequence[Article], writer: JsonlWriter, summary: DraftSummary,
                     bar: _Progress | None) -> None:
    """Draft `todo` with `concurrency` workers; each draft is appended and flushed as it completes."""
    queue: asyncio.Queue[Article] = asyncio.Queue()
    for a in todo:
        queue.put_nowait(a)

    async def worker() -> None:
        while not queue.empty():
            article = queue.get_nowait()
            d = await drafter.draft(article)
            writer.write(d)
            if d.error:
                summary.failed[d.error.split(":", 1)[0]] += 1
                print(f"annotator: article {article.id}: {d.error}", file=sys.stderr)
            else:
                summary.drafted += 1
                if d.usage.get("requests") == 0:
                    summary.from_cache += 1
            summary.flagged.update(d.flags)
            if bar:
                bar.step()

    tasks = [asyncio.create_task(worker()) for _ in range(max(1, drafter.options.concurrency))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()


def _done_ids(path: Path, model_version: str, prompt_hash: str, tax_hash: str, link: bool = False) -> set[str]:
    """Articles already drafted under this version (failures kept only when the answer itself was invalid);
    with `link`, only drafts that offered recorded incidents (an earlier run without them is drafted
    again: its labels come from the cache, only the link is paid)."""
    if not path.exists():
        return set()
    done = set()
    for d in iter_jsonl(path, Draft, on_error=lambda e: None):
        extra = d.model_extra or {}
        same = (d.model_version == model_version and extra.get("prompt_hash", prompt_hash) == prompt_hash
                and extra.get("taxonomy_hash", tax_hash) == tax_hash)
        if same and (d.error is None or d.error.startswith(INVALID)) and (not link or d.error or "incident_candidates" in extra):
            done.add(d.article_id)
    return done


def articles_to_draft(path: str | Path, on_error: Callable[[str], None]) -> tuple[list[Article], int]:
    """The records of one articles.jsonl (ingest's output) in file order, first occurrence of an id
    wins; bad lines are reported and counted. Not `ingest.read_articles`, which reads raw inputs."""
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such articles file")
    bad = 0
    seen: dict[str, Article] = {}

    def reject(exc: RecordError) -> None:
        nonlocal bad
        bad += 1
        on_error(str(exc))

    for article in iter_jsonl(path, Article, on_error=reject):
        if article.id in seen:
            on_error(f"{path}: article {article.id!r} appears twice; drafting the first")
            continue
        seen[article.id] = article
    return list(seen.values()), bad


async def draft_async(articles: Iterable[Article], output: str | Path, settings: LLMSettings, options: DraftOptions,
                      summary: DraftSummary, progress: bool = True) -> DraftSummary:
    prompt, tax = load_prompt(options.prompt), load_taxonomy(options.taxonomy)
    output = Path(output)
    model_version = f"{prompt.version}@{settings.model}"
    articles = list(articles)
    index = _incident_index(tax, options.incidents)
    done = _done_ids(output, model_version, prompt.hash, tax.hash, link=index is not None)
    todo = [a for a in articles if a.id not in done]
    summary.total, summary.skipped = len(articles), len(articles) - len(todo)
    pool = load_examples(options.examples, {a.id: a for a in articles}, tax) if options.examples else []
    # The embedded model's server returns log-probabilities (llm/embedded_server.py): nothing to add there.
    embedded = (options.endpoint_id or "").startswith("local:")
    if todo and options.confidence_samples > 0 and options.samples <= 1 and not embedded:
        from annotator.llm.pricing import price_for

        chars = sum(len(a.title) + len(a.text) for a in todo) + len(prompt.system_message(tax)) * len(todo)
        print(sampling_cost_line(len(todo), options.confidence_samples, chars, price_for(settings.model, settings.prices)),
              file=sys.stderr)
    cache = AnswerCache(options.cache)
    start = time.monotonic()
    bar = _Progress(len(todo), summary) if progress and todo else None
    try:
        async with ChatClient(settings, max_in_flight=options.concurrency) as client:
            drafter = Drafter(client, prompt, tax, options, cache, summary, pool, index)
            beat = asyncio.create_task(_heartbeat(client)) if progress else None
            try:
                with JsonlWriter(output) as writer:
                    await _draft_all(drafter, todo, writer, summary, bar)
            finally:
                if beat:
                    beat.cancel()
            summary.mode = summary.mode or client.mode
            summary.peak_in_flight = client.gate.peak
            if client.dropped_keywords:
                summary.mode += f" (without {', '.join(sorted(client.dropped_keywords))})"
    finally:
        cache.close()
        summary.seconds = time.monotonic() - start
    return summary


def _incident_index(tax: Taxonomy, incidents: str | None) -> IncidentIndex | None:
    """The recorded incidents to link articles to, when asked for; a taxonomy without a link refuses them."""
    if not incidents:
        return None
    if tax.link is None:
        raise ConfigError(f"--incidents {incidents}: taxonomy {tax.name} declares no link "
                          "(add `link: {name: follow_up_of}` to its file to draft links to recorded incidents)")
    return IncidentIndex(load_incidents(incidents))


def draft(articles_path: str | Path, output: str | Path, settings: LLMSettings, options: DraftOptions | None = None,
          *, on_error: Callable[[str], None] | None = None, progress: bool = True) -> DraftSummary:
    """Draft every article of `articles_path` not yet in `output`; returns the run's summary."""
    options = options or DraftOptions()
    report = on_error or (lambda m: print(m, file=sys.stderr))
    articles, bad = articles_to_draft(articles_path, report)
    summary = DraftSummary(rejected_inputs=bad)
    with hold([output, options.cache], "draft", report):  # a second run on these files waits for this one
        asyncio.run(draft_async(articles, output, settings, options, summary, progress))
    return summary


def run_draft(articles_path: str | Path, output: str | Path, *, config: str | Path | None = None, batch: bool = False,
              progress: bool = True, model: str | None = None, base_url: str | None = None, output_mode: str | None = None,
              embedded_threads: int | None = None, on_error: Callable[[str], None] | None = None,
              **overrides: Any) -> DraftSummary:
    """The `draft` command: settings from annotator.toml + environment + arguments, then the right path.

    With no API key and no base URL the embedded local model is started, used and stopped.
    """
    from annotator.config import defaults, read_config
    from annotator.llm.config import load_settings

    cfg = read_config(config)
    settings = load_settings(cfg, model=model, base_url=base_url, output_mode=output_mode, embedded_threads=embedded_threads)
    try:
        options = DraftOptions.model_validate({**defaults(cfg).model_dump(), **cfg.get("draft", {}),
                                               **{k: v for k, v in overrides.items() if v is not None}})
    except ValidationError as exc:
        raise ConfigError(f"[draft] options: {_validation_message(exc)}") from None
    if batch:
        return run_batch(articles_path, output, settings, options, on_error=on_error)
    if settings.api_key is None and settings.base_url is None:
        from annotator.llm.local import LOCAL_MODEL, LOG, local_server, local_settings, prefix_hits

        options = options.model_copy(update={"endpoint_id": f"local:{LOCAL_MODEL}", "concurrency": 1})
        settings = local_settings(settings, "http://127.0.0.1/not-started", LOCAL_MODEL, model_given=model is not None)
        # A CPU model takes tens of seconds per answer: only a much longer wait means it is stuck.
        settings = settings.model_copy(update={"timeout": max(settings.timeout, 600.0), "heartbeat": max(settings.heartbeat, 120.0)})
        if _all_drafted(articles_path, output, settings.model, options):
            # Nothing to send (a re-run): starting and stopping the server would only cost seconds.
            return draft(articles_path, output, settings, options, on_error=on_error, progress=progress)
        start = LOG.stat().st_size if LOG.exists() else 0
        with local_server(LOG, threads=settings.embedded_threads) as (url, _):
            settings = settings.model_copy(update={"base_url": url})
            summary = draft(articles_path, output, settings, options, on_error=on_error, progress=progress)
        # The server reuses the shared prompt prefix but reports no cached tokens; its log does.
        summary.paid = summary.paid.model_copy(update={"cached_tokens": sum(prefix_hits(LOG, start))})
        return summary
    return draft(articles_path, output, settings, options, on_error=on_error, progress=progress)


def _all_drafted(articles_path: str | Path, output: str | Path, model: str, options: DraftOptions) -> bool:
    """Whether `output` already holds every article under this model and prompt (bad lines are reported later)."""
    prompt, tax = load_prompt(options.prompt), load_taxonomy(options.taxonomy)
    done = _done_ids(Path(output), f"{prompt.version}@{model}", prompt.hash, tax.hash, link=bool(options.incidents))
    articles, _ = articles_to_draft(articles_path, lambda message: None)
    return all(a.id in done for a in articles)


# --------------------------------------------------------------------------- batch


def batch_state_path(output: str | Path) -> Path:
    """Where submitted batches are remembered: beside the drafts file."""
    output = Path(output)
    return output.with_name(output.name + ".batches.json")


async def _batch_async(articles: Sequence[Article], output: Path, settings: LLMSettings, options: DraftOptions,
                       summary: DraftSummary) -> None:
    from annotator.llm.batch import collect, find, request_line, split, submit

    prompt, tax = load_prompt(options.prompt), load_taxonomy(options.taxonomy)
    state_path = batch_state_path(output)
    batches = json.loads(state_path.read_text())["batches"] if state_path.exists() else []
    done = _done_ids(output, f"{prompt.version}@{settings.model}", prompt.hash, tax.hash)
    pool = load_examples(options.examples, {a.id: a for a in articles}, tax) if options.examples else []
    by_id = {a.id: a for a in articles}
    summary.total = len(articles)
    summary.skipped = len(done & by_id.keys())
    cache = AnswerCache(options.cache)
    start = time.monotonic()
    try:
        async with ChatClient(settings) as client:
            drafter = Drafter(client, prompt, tax, options, cache, summary, pool)
            temperature, seed = settings.temperature, settings.seed
            pending, ready = [], []
            for b in batches:
                if b.get("id") is None:  # killed between creating it and saving its id: look for it
                    b["id"] = await find(client, b["token"], b["submitted_at"])
                    if b["id"] is None:
                        continue  # never created: its articles go into a new batch below
                result = await collect(client, b["id"], b["mode"])
                done_lines = result.counts.get("completed", len(result.answers))
                summary.batches.append(f"{b['id']}: {result.status}, {done_lines} of {len(b['articles'])} answered"
                                       + (f", {result.counts['failed']} failed" if result.counts.get("failed") else ""))
                if result.pending:
                    pending.append(b)
                    summary.batch_pending += len(b["articles"])
                    continue
                for cid, completion in result.answers.items():
                    article = by_id.get(cid)
                    if article is None or article.id in done:
                        continue
                    messages, _ = drafter.request(article)
                    cache.put(drafter.key(messages, temperature, seed), completion.model_dump(mode="json"))
                    summary.paid = summary.paid + completion.usage
                    ready.append(article)
                summary.requeued += len(set(b["articles"]) - set(result.answers))
            in_flight = {aid for b in pending for aid in b["articles"]}
            merged = {a.id for a in ready}
            todo = [a for a in articles if a.id not in done and a.id not in in_flight and a.id not in merged]
            # Anything already answered in the cache (an earlier live run) needs no batch line.
            cached = [a for a in todo if cache.get(drafter.key(drafter.request(a)[0], temperature, seed)) is not None]
            with JsonlWriter(output) as writer:
                await _draft_all(drafter, ready + cached, writer, summary, None)  # repairs, if any, go live
            todo = [a for a in todo if a not in cached]
            _save_batches(state_path, pending)  # finished batches are merged: forget them
            lines = [(a.id, request_line(a.id, client.body(drafter.request(a)[0], drafter.schema, temperature=temperature,
                                                             seed=seed))) for a in todo]
            try:
                files = split(lines, settings.batch_max_requests, settings.batch_max_bytes)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            for part in files:
                # Saved before it is created, with the token the batch will carry: a kill in between
                # is found again on the next run, never submitted twice.
                entry = {"id": None, "token": uuid.uuid4().hex, "mode": client.mode, "articles": [cid for cid, _ in part],
                         "model_version": drafter.model_version, "submitted_at": time.time()}
                pending.append(entry)
                _save_batches(state_path, pending)
                entry["id"] = await submit(client, part, entry["token"])
                _save_batches(state_path, pending)
                summary.batches.append(f"{entry['id']}: submitted, {len(part)} articles")
                summary.batch_submitted += len(part)
                summary.batch_pending += len(part)
            summary.mode = client.mode + " (batch)"
    finally:
        cache.close()
        summary.seconds = time.monotonic() - start


def _save_batches(path: Path, batches: list[dict[str, Any]]) -> None:
    write_text_atomic(path, json.dumps({"batches": batches}, indent=1))


def run_batch(articles_path: str | Path, output: str | Path, settings: LLMSettings, options: DraftOptions, *,
              on_error: Callable[[str], None] | None = None) -> DraftSummary:
    """One step of a batch job: collect and merge finished batches, submit what is still missing.

    Run it again until nothing is pending; failed and expired lines go into the next batch.
    """
    if options.samples > 1:
        raise ConfigError("--samples with --batch is not supported; draft live for agreement-based confidence")
    if options.incidents:
        raise ConfigError("--incidents with --batch is not supported yet; draft live to link articles to recorded incidents")
    # A batch is one round of requests; a second step would need a second batch per article.
    if options.two_step == "on":
        raise ConfigError("--two-step on with --batch is not supported: a second step needs a second batch per article; "
                          "draft live, or leave --two-step at auto (one step in a batch)")
    options = options.model_copy(update={"two_step": "off"})
    report = on_error or (lambda m: print(m, file=sys.stderr))
    articles, bad = articles_to_draft(articles_path, report)
    summary = DraftSummary(rejected_inputs=bad)
    with hold([output, options.cache], "draft --batch", report):
        asyncio.run(_batch_async(articles, Path(output), settings, options, summary))
    return summary
