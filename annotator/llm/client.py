"""The one place that speaks the OpenAI chat-completions wire format.

`ChatClient.complete()` sends messages and returns a `Completion` (text, usage, cost, token
log-probabilities, which output mode was used). One retry policy rules: the `openai` client's own
retries are off and `complete` retries 429s (honouring Retry-After), 5xx, timeouts and dropped
connections with capped, jittered exponential backoff; 400/401/403/404 fail at once. A shared
`RateGate` paces every worker from what the endpoint admits and sets how many requests are in
flight (Little's law); `Health` stops the run when the endpoint does not answer at all.

Endpoints differ in structured output. The client starts with strict `json_schema` and, when an
endpoint answers 400 to it, falls back to `json_object` with the schema (llama-cpp-python's
server) and then to plain JSON; schema keywords or parameters an endpoint rejects by name are
dropped. The mode is per client (one endpoint) and reported in `Completion.mode`.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import itertools
import json
import math
import random
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import openai
from pydantic import BaseModel

from annotator.errors import EndpointDown, LLMError, LLMRefused, LLMUnavailable, NotChatCompletion
from annotator.llm.config import LLMSettings, OutputMode
from annotator.llm.pricing import cost, price_for

Message = Mapping[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}
_MODES: tuple[OutputMode, ...] = ("json_schema", "json_object", "plain")
_SCHEMA_KEYWORDS = ("uniqueItems", "maxItems", "minItems", "maxLength", "minLength", "pattern")
SCHEMAS_KEPT = 64  # stripped answer schemas kept per client (see ChatClient._schema)
_OPTIONAL_PARAMS = ("logprobs", "seed", "temperature")


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = 0.0

    def __add__(self, other: Usage) -> Usage:
        costs = None if self.cost_usd is None or other.cost_usd is None else self.cost_usd + other.cost_usd
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cost_usd=costs,
        )


class Completion(BaseModel):
    text: str
    finish_reason: str | None = None
    model: str = ""
    mode: str = ""
    usage: Usage = Usage()
    logprobs: list[tuple[str, float]] | None = None  # (token, log-probability) of the answer


class _Retryable(Exception):
    """A failure worth another attempt; `retry_after` is the server's requested wait, if any."""

    def __init__(self, message: str, retry_after: float | None = None, adapting: bool = False,
                 throttled: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.adapting = adapting  # learning the endpoint's output mode: not a failure
        self.throttled = throttled  # a 429 under the endpoint's limit: waiting one's turn, not a failure


class RateGate:
    """Pacing and the number of requests in flight, shared by all workers of one endpoint.

    Pace (requests a second, `rate`): when the endpoint states its limit (OpenAI and most
    providers send `x-ratelimit-limit-requests` with every answer, 429s included), the first
    answer sets the pace to 97% of it (the rest absorbs network jitter, which would otherwise bunch
    requests into 429s). With no header, the first 429 sets it from the requests that were sent
    and not refused in the second before the refused one (at the start: what the bucket let
    through, about a second's worth; counted over the time since the start, 8 requests sent at
    once to a 60-a-minute endpoint made a pace of 112 a second and 46 429s in the first 17 s), and
    that pace is also the mark answers climb to slowly (below). Later 429s cut it by a tenth, or to
    the measured rate if lower, at most once
    per round trip, so that a burst of 429s for requests sent together counts as one signal (as
    TCP cuts its window once per loss event, not per lost packet); answers raise it by about 5% a
    round trip, up to the stated limit (additive increase, multiplicative decrease). With fewer than
    5 answers a round trip (60 a minute at 0.2 s), 5% a round trip is 5% an answer, and each 429 costs
    a whole second's token: a 10% cut was undone in 2-3 answers and held 0.78 of R. There, answers
    raise it quickly to 97% of the pace that drew the last cut and then by 0.1% an answer, one 429
    in 30-odd answers. A 429 closes the
    gate for everyone for its Retry-After: the bucket is empty (or in debt) until then, and
    providers count refused requests against the limit, so a request sent earlier only costs
    capacity. A Retry-After in whole seconds is coarse: with a pace known, it closes the gate for
    at most two intervals of the pace.

    In flight, by Little's law (in flight = rate x latency): with a pace known, the limit is
    1.5 x rate x latency + 4 (room for latency jitter and retries; the latency counted at most
    twice the lowest seen, and at most a little over the endpoint's own processing time when it
    states it); with none (no limit stated and no
    429 seen yet) it grows by one per success while every slot is busy, doubling each round trip,
    until the latency rises above twice the lowest seen (the endpoint is queueing: then it shrinks
    by a tenth per round trip). `cap` (`--concurrency`) bounds it always.
    """

    MARGIN = 0.97  # share of a stated limit to pace at
    WINDOW = 1.0  # seconds over which the admitted rate is measured (providers enforce per-second buckets)
    PROBE = 0.001  # rise per answer near the pace that drew the last cut, with fewer than 5 answers a round trip

    def __init__(self, requests_per_minute: float | None = None, cap: int = 8) -> None:
        self._configured = requests_per_minute / 60 if requests_per_minute else None
        self.ceiling: float | None = self._configured  # requests a second the endpoint allows, when known
        self.rate: float | None = self._configured  # the pace, requests a second; None: not paced
        self._stated = ""  # the last x-ratelimit-limit-requests seen
        self._next = 0.0
        self._resume_at = 0.0
        self._closed = 0  # times a 429 closed the gate
        self.throttled = 0
        self.cap = max(1, cap)
        self.limit = float(min(self.cap, 8))
        self.in_flight = 0
        self.peak = 0  # most requests in flight at once, for the summary
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._latency = 0.0
        self._min_latency = math.inf
        self._sent: collections.deque[float] = collections.deque()  # start times over the last window
        self._refused: collections.deque[float] = collections.deque()  # start times of those refused (429)
        self._last_cut = 0.0
        self._cut_at: float | None = None  # the pace that drew the last cut

    @property
    def interval(self) -> float:
        """Seconds between request starts (0: not paced)."""
        return 1.0 / self.rate if self.rate else 0.0

    async def acquire(self) -> float:
        """Wait for a slot and for the pace; returns when the request may start (monotonic)."""
        while self.in_flight >= int(self.limit):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        while True:  # a start planned before a 429 closed the gate is planned again after it
            now = time.monotonic()
            start = max(now, self._next, self._resume_at)
            self._next = start + self.interval
            if start <= now:
                break
            closed = self._closed
            try:
                await asyncio.sleep(start - now)
            except BaseException:
                self.release()
                raise
            if closed == self._closed:
                break
        sent = self._sent
        sent.append(start)
        while sent[0] < start - self.WINDOW:
            sent.popleft()
        return start

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        free = int(self.limit) - self.in_flight
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read the limit the endpoint states (x-ratelimit-limit-requests, per minute), if it does."""
        stated = headers.get("x-ratelimit-limit-requests")
        if not stated or stated == self._stated:
            return
        self._stated = stated
        try:
            top = float(stated) / 60 * self.MARGIN
        except ValueError:
            return
        if top <= 0:
            return
        if self._configured:
            top = min(top, self._configured)
        if self.ceiling is None or self.rate is None or self.rate > top:
            self.rate = top
        self.ceiling = top
        self._fit_window()

    def _admitted(self, before: float) -> float:
        """Requests sent and not refused per second over the window up to `before` (a refused
        request's start: what the endpoint let through just before it said no)."""
        edge = before - self.WINDOW
        while self._refused and self._refused[0] < edge:
            self._refused.popleft()
        sent = sum(1 for t in self._sent if edge <= t < before)
        return max(0, sent - sum(1 for t in self._refused if t < before)) / self.WINDOW

    def slow_down(self, retry_after: float | None, sent_at: float = math.inf) -> None:
        self.throttled += 1
        now = time.monotonic()
        wait = retry_after if retry_after is not None else 1.0
        if self.rate is not None and wait == int(wait):
            wait = min(wait, 2 * self.interval)  # a coarse Retry-After (whole seconds) must not stall a fast pace
        if now + wait > self._resume_at:
            self._resume_at = self._next = now + wait
            self._closed += 1
        if sent_at != math.inf:
            self._refused.append(sent_at)
        if sent_at < self._last_cut:
            return  # sent before the last cut: the same burst
        self._last_cut = now
        measured = self._admitted(min(sent_at, now))
        if self.rate is None:
            self.rate = max(measured, 1.0 / max(wait, 0.01))
        else:
            self._cut_at = self.rate
            self.rate = max(self.rate * 0.5, min(self.rate * 0.9, measured or self.rate))
        self._fit_window()

    def speed_up(self, latency: float | None = None, sent_at: float = 0.0, processing: float | None = None) -> None:
        """An answer came `latency` seconds after its start; `processing`: the endpoint's own time for it
        (OpenAI's openai-processing-ms), which bounds the latency counted: a longer wait is this
        process being slow to send and read (a busy event loop, a starved CPU), where more requests in
        flight would only add work."""
        if latency is not None and processing is not None:
            latency = min(latency, 1.1 * processing + 0.1)
        if latency is not None:
            self._latency = latency if not self._latency else 0.9 * self._latency + 0.1 * latency
            self._min_latency = min(self._min_latency, latency)
        rate = self.rate
        if rate is not None:
            if self.ceiling is None or rate < self.ceiling:
                per_trip = rate * self._latency  # answers a round trip
                step = 0.05 / max(1.0, per_trip)  # about 5% a round trip
                near = self.MARGIN * self._cut_at if self._cut_at and per_trip < 5 else math.inf
                rate = rate * (1 + self.PROBE) if rate >= near else min(rate * (1 + step), near)
                self.rate = min(rate, self.ceiling) if self.ceiling else rate
            self._fit_window()
        elif latency is not None and latency > 2 * self._min_latency + 0.05:
            if sent_at >= self._last_cut:
                self._last_cut = time.monotonic()
                self.limit = max(1.0, self.limit * 0.9)
        elif self.in_flight >= int(self.limit) - 1:
            self.limit = min(float(self.cap), self.limit + 1)
        self._wake()

    def _fit_window(self) -> None:
        # The latency is taken at most twice the lowest seen: beyond that the wait is in this process
        # (a busy event loop) or in the endpoint's queue, where more requests in flight add no
        # throughput, only connections for the HTTP pool to walk on every request.
        if self.rate and self._latency:
            latency = min(self._latency, 2 * self._min_latency)
            self.limit = float(min(self.cap, max(1, math.ceil(1.5 * latency * self.rate) + 4)))


class Health:
    """Whether the endpoint answers at all, judged across every worker of one run.

    A request that gets no HTTP answer (connection refused or reset, timeout) is a failure; any
    answer, even a 500 or a 429, proves the endpoint is there and ends the streak. After
    `failures` failures in a row that span at least `seconds` (so one network blip that resets
    every connection at once does not end a long run), the endpoint is down: every worker stops
    with one `EndpointDown` naming the endpoint and what to check. It also keeps the start time of
    every request in flight, for the heartbeat line of a long wait.
    """

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self.streak = 0
        self.since = 0.0
        self.reasons: dict[str, int] = {}
        self.down: EndpointDown | None = None
        self.inflight: dict[int, float] = {}  # id -> monotonic start

    def answered(self) -> None:
        self.streak, self.reasons = 0, {}

    def failed(self, reason: str, started: float) -> None:
        if not self.streak:
            self.since = started
        self.streak += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        s = self.settings
        age = time.monotonic() - self.since
        if self.down is None and self.streak >= s.dead_after_failures and age >= s.dead_after_seconds:
            why = ", ".join(f"{n} {r}" for r, n in sorted(self.reasons.items()))
            slow = f", or raise [llm] timeout (now {s.timeout:g} s) if it is only slow" if "timeout" in self.reasons else ""
            self.down = EndpointDown(
                f"{s.endpoint} is not answering: {self.streak} requests in a row over {age:.0f} s got no answer ({why}); "
                f"check that the server is up and reachable and that OPENAI_BASE_URL or [llm] base_url points at it{slow}. "
                "Nothing done so far is lost: run the same command again.")

    def oldest_wait(self) -> float:
        """Seconds the longest-waiting request in flight has waited (0 when none is)."""
        return time.monotonic() - min(self.inflight.values()) if self.inflight else 0.0


def _retry_after(response: Any) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (seconds or an HTTP date), if given."""
    headers = getattr(response, "headers", None) or {}
    try:
        if headers.get("retry-after-ms"):
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                from email.utils import parsedate_to_datetime

                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
    return None


def _processing(headers: Mapping[str, str]) -> float | None:
    """Seconds the endpoint says it spent on the request (`openai-processing-ms`), if it says."""
    value = headers.get("openai-processing-ms")
    try:
        return float(value) / 1000 if value else None
    except ValueError:
        return None


def _transport_failure(exc: BaseException) -> str:
    """'connection refused' when that is the root of it (nothing listens: the usual dead endpoint)."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return "connection refused"
        seen = seen.__cause__ or seen.__context__
    return "connection failed"


_SECRETISH = re.compile(r"(sk|key|token)[-_][A-Za-z0-9_*.\-]{6,}", re.IGNORECASE)


def _safe(text: str, secret: str | None) -> str:
    """An error text fit for logs: the key (and anything that looks like one) blanked out."""
    if secret:
        text = text.replace(secret, "***")
    return _SECRETISH.sub("***", text)[:500]


def _error_text(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping):
        body = body.get("error", body)
        if isinstance(body, Mapping):
            body = body.get("message", body)
    return str(body if body is not None else exc.message)


class ChatClient:
    """An async client for one endpoint and model. Use `async with`, or call `aclose()`."""

    def __init__(self, settings: LLMSettings, gate: RateGate | None = None, max_in_flight: int = 8) -> None:
        self.settings = settings
        self._secret = settings.api_key.get_secret_value() if settings.api_key else None
        self._client = openai.AsyncOpenAI(
            api_key=self._secret or "not-needed",  # local servers want some key, any key
            base_url=settings.base_url,
            max_retries=0,  # `complete` below is the one retry policy
            timeout=settings.timeout,
        )
        self.gate = gate or RateGate(settings.requests_per_minute, cap=max_in_flight)
        self.mode: OutputMode = "json_schema" if settings.output_mode == "auto" else settings.output_mode
        self._auto = settings.output_mode == "auto"
        self.dropped_keywords: set[str] = set(settings.drop_schema_keywords)
        self.dropped_params: set[str] = set() if settings.logprobs else {"logprobs"}
        self._price = price_for(settings.model, settings.prices)
        self.health = Health(settings)
        self._tickets = itertools.count()
        self._schemas: collections.OrderedDict[tuple[int, str, frozenset[str]], tuple[Mapping[str, Any], dict[str, Any]]] = collections.OrderedDict()

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.close()

    # ------------------------------------------------------------------ request bodies

    def _schema(self, schema: Mapping[str, Any], mode: OutputMode) -> dict[str, Any]:
        """The schema as this endpoint takes it; computed once per mode and set of dropped keywords
        (the same schema goes with every request, and copying it each time cost CPU per article).

        Keyed by the schema object's identity, so the entry keeps that object alive: a schema freed
        after its request could otherwise leave its address to another one, which would then be
        sent as the first was. The most recently used SCHEMAS_KEPT are kept (an entry dropped takes
        its key with it, so nothing stale remains)."""
        key = (id(schema), mode, frozenset(self.dropped_keywords))
        if key in self._schemas:
            self._schemas.move_to_end(key)
        else:
            self._schemas[key] = (schema, self._stripped(schema, mode))
            if len(self._schemas) > SCHEMAS_KEPT:  # per-article schemas (incident links) come and go
                self._schemas.popitem(last=False)
        return self._schemas[key][1]

    def _stripped(self, schema: Mapping[str, Any], mode: OutputMode) -> dict[str, Any]:
        # json_object servers (llama-cpp-python) read a type list before an enum, so a nullable
        # enum would become "any string or null": there the enum alone says it (null included).
        enum_only = mode == "json_object"

        cap, items = self.settings.max_string_length, self.settings.max_items

        def strip(node: Any) -> Any:
            if isinstance(node, dict):
                drop = set(self.dropped_keywords) | ({"type"} if enum_only and "enum" in node else set())
                out = {k: strip(v) for k, v in node.items() if k not in drop or k == "properties"}
                if cap and "maxLength" in out:
                    out["maxLength"] = min(out["maxLength"], cap)
                if items and "maxItems" in out:
                    out["maxItems"] = min(out["maxItems"], items)
                return out
            if isinstance(node, list):
                return [strip(v) for v in node]
            return node

        return strip(copy.deepcopy(dict(schema)))

    def body(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any],
        *,
        temperature: float | None = None,
        seed: int | None = None,
        mode: OutputMode | None = None,
    ) -> dict[str, Any]:
        """The request body for these messages in the current output mode (also used for batch files)."""
        mode = mode or self.mode
        sent = [dict(m) for m in messages]
        if self.settings.system_in_user and len(sent) > 1 and sent[0]["role"] == "system":
            system = sent.pop(0)["content"]
            sent[0] = {**sent[0], "content": f"{system}\n\n{sent[0]['content']}"}
        out: dict[str, Any] = {
            "model": self.settings.model,
            "messages": sent,
            "max_tokens": self.settings.max_tokens,
        }
        temp = self.settings.temperature if temperature is None else temperature
        if "temperature" not in self.dropped_params:
            out["temperature"] = temp
        seed = self.settings.seed if seed is None else seed
        if seed is not None and "seed" not in self.dropped_params:
            out["seed"] = seed
        if "logprobs" not in self.dropped_params:
            out["logprobs"] = True
        if "max_tokens" in self.dropped_params:
            out["max_completion_tokens"] = out.pop("max_tokens")
        if mode == "json_schema":
            out["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "strict": True, "schema": self._schema(schema, mode)},
            }
        elif mode == "json_object":
            out["response_format"] = {"type": "json_object", "schema": self._schema(schema, mode)}
        return out

    def _chat_json(self, response: Any) -> dict[str, Any]:
        """The JSON of a 200 answer, or `NotChatCompletion` naming what came instead (a login page,
        the HTML of a wrong base URL, some other API's JSON): no retry will change it."""
        body: bytes = response.content
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and "choices" in data:
            return data
        ctype = response.headers.get("content-type") or "no content type"
        head = _safe(body[:100].decode("utf-8", "replace"), self._secret)
        raise NotChatCompletion(
            f"{self.settings.endpoint} answered 200 with {ctype}, not a chat completion (first bytes: {head!r}); "
            "check the base URL (an OpenAI-compatible API usually ends in /v1) and any proxy or login page in between")

    def parse(self, data: Mapping[str, Any], mode: str = "", *, batch: bool = False) -> Completion:
        """A chat.completion response (dict) as a `Completion`, priced."""
        choices = data.get("choices") or []
        if not choices:
            raise _Retryable("the endpoint answered without choices")
        choice = choices[0]
        message = choice.get("message") or {}
        usage = data.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        n_in, n_out = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        n_cached = int(details.get("cached_tokens") or 0)
        content = (choice.get("logprobs") or {}).get("content")
        logprobs = [(t["token"], float(t["logprob"])) for t in content] if content else None
        return Completion(
            text=message.get("content") or "",
            finish_reason=choice.get("finish_reason"),
            model=str(data.get("model") or self.settings.model),
            mode=mode,
            usage=Usage(input_tokens=n_in, output_tokens=n_out, cached_tokens=n_cached,
                        cost_usd=cost(self._price, n_in, n_cached, n_out, batch=batch)),
            logprobs=logprobs,
        )

    # ------------------------------------------------------------------ calling

    def _adapt(self, exc: openai.BadRequestError, mode: OutputMode) -> bool:
        """Learn from a 400 that names what the endpoint rejects; True if worth another try."""
        text = _error_text(exc)
        for keyword in _SCHEMA_KEYWORDS:
            if re.search(rf"\b{keyword}\b", text) and keyword not in self.dropped_keywords and mode != "plain":
                self.dropped_keywords.add(keyword)
                return True
        for param in (*_OPTIONAL_PARAMS, "max_tokens"):
            if re.search(rf"\b{param}\b", text) and param not in self.dropped_params:
                self.dropped_params.add(param)
                return True
        if self._auto and mode != "plain" and re.search(r"response_format|json_schema|json_object|schema", text, re.I):
            if self.mode == mode:  # other workers may have moved on already
                self.mode = _MODES[_MODES.index(mode) + 1]
            return True
        return False

    async def _once(self, messages: Sequence[Message], schema: Mapping[str, Any], temperature: float | None,
                    seed: int | None) -> Completion:
        health = self.health
        if health.down:
            raise health.down
        gate = self.gate
        started = await gate.acquire()
        mode = self.mode
        ticket = next(self._tickets)
        health.inflight[ticket] = started
        try:
            # The body as built here, posted by the `openai` client (its auth, timeouts, errors) without
            # its per-request walk over the parameters and its response models: both cost more CPU per
            # article than everything else we do (measured 1.6-1.8 against 2.3-3.4 ms a request). The
            # answer is parsed here, one json.loads, so a 200 that is not a chat completion is seen
            # for what it is.
            raw = await self._client.post("/chat/completions", cast_to=httpx.Response,
                                          body=self.body(messages, schema, temperature=temperature, seed=seed, mode=mode))
        except openai.RateLimitError as exc:
            health.answered()
            if "insufficient_quota" in str(exc.body) or "exceeded your current quota" in _error_text(exc):
                raise LLMRefused(f"429 from {self.settings.endpoint}: {_safe(_error_text(exc), self._secret)} "
                                 "(the account's quota is used up: check its plan and billing)") from None
            wait = _retry_after(exc.response)
            gate.observe(exc.response.headers)
            gate.slow_down(wait, started)
            raise _Retryable(f"429 rate limited by {self.settings.endpoint}", wait, throttled=True) from None
        except openai.BadRequestError as exc:
            health.answered()
            if self._adapt(exc, mode):
                raise _Retryable("adapting to the endpoint", 0.0, adapting=True) from None
            raise LLMError(f"400 from {self.settings.endpoint}: {_safe(_error_text(exc), self._secret)}") from None
        except openai.APIStatusError as exc:
            health.answered()
            gate.observe(exc.response.headers)
            status = exc.status_code
            if status >= 500 or status in (408, 409):
                raise _Retryable(f"{status} from {self.settings.endpoint}", _retry_after(exc.response)) from None
            hint = {401: "check OPENAI_API_KEY", 403: "the key may lack access to this model",
                    404: f"check the base URL and the model name {self.settings.model!r}"}.get(status, "")
            detail = _safe(_error_text(exc), self._secret)
            error = LLMRefused if status in (401, 403, 404) else LLMError
            raise error(f"{status} from {self.settings.endpoint}: {detail}" + (f" ({hint})" if hint else "")) from None
        except openai.APITimeoutError:
            health.failed("timeout", started)
            if health.down:
                raise health.down from None
            raise _Retryable(f"timeout after {self.settings.timeout:g} s from {self.settings.endpoint}") from None
        except openai.APIConnectionError as exc:
            cause = str(exc.__cause__ or exc)
            health.failed(_transport_failure(exc), started)
            if health.down:
                raise health.down from None
            raise _Retryable(f"connection to {self.settings.endpoint} failed: {_safe(cause, self._secret)}") from None
        finally:
            del health.inflight[ticket]
            gate.release()
        health.answered()
        gate.observe(raw.headers)
        gate.speed_up(time.monotonic() - started, started, _processing(raw.headers))
        return self.parse(self._chat_json(raw), mode)

    def _backoff(self, exc: _Retryable, failures: int) -> float:
        if exc.retry_after is not None:
            return min(exc.retry_after, self.settings.backoff_cap) + random.uniform(0, 0.05)
        backoff = min(self.settings.backoff_cap, 0.5 * 2 ** max(0, failures - 1))
        return random.uniform(backoff / 2, backoff)  # jitter, so workers do not retry in step

    async def complete(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any],
        *,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> Completion:
        """One answer for `messages`; raises `LLMRefused` (every request will fail: a refusal, a dead
        endpoint, a page that is not a chat completion), `LLMUnavailable` (kept failing until the
        retries ran out) or `LLMError` (this request was refused).

        Failures (5xx, timeouts, dropped connections) count against `max_attempts`; learning the
        endpoint's output mode and waiting out a 429 do not, up to a bound of their own.
        """
        limit = self.settings.max_attempts
        attempts = failures = 0
        while True:
            attempts += 1
            try:
                return await self._once(messages, schema, temperature, seed)
            except _Retryable as exc:
                failures += not (exc.adapting or exc.throttled)
                if failures >= limit or attempts >= limit + 50:
                    raise LLMUnavailable(f"gave up after {failures if failures >= limit else attempts} attempts: {exc}") from None
                await asyncio.sleep(self._backoff(exc, failures))

    # ------------------------------------------------------------------ files and batches

    @property
    def raw(self) -> openai.AsyncOpenAI:
        """The underlying client, for the batch module in this package only."""
        return self._client


def answer_json(text: str) -> Any:
    """Parse an answer, tolerating a Markdown code fence around it (plain mode).

    Raw line breaks and tabs inside strings are accepted (`strict=False`): small local models
    end rationales with one, the grammar lets it through, and the meaning is not in doubt.
    """
    stripped = text.strip()
    fence = re.match(r"^```(?:json)?\s*\n(.*)\n```$", stripped, re.DOTALL)
    return json.loads(fence.group(1) if fence else stripped, strict=False)
