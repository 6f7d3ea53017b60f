"""The one place that speaks the OpenAI chat-completions wire format.

`ChatClient.complete()` sends messages and returns a `Completion` (text, usage, cost, token
log-probabilities, which output mode was used). One retry policy rules: the `openai` client's own
retries are off and tenacity retries 429s (honouring Retry-After), 5xx, timeouts and dropped
connections with capped, jittered exponential backoff; 400/401/403/404 fail at once. A shared
`RateGate` makes every worker slow down when any one of them is told to.

Endpoints differ in structured output. The client starts with strict `json_schema` and, when an
endpoint answers 400 to it, falls back to `json_object` with the schema (llama-cpp-python's
server) and then to plain JSON; schema keywords or parameters an endpoint rejects by name are
dropped. The mode is per client (one endpoint) and reported in `Completion.mode`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import openai
from pydantic import BaseModel
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from annotator.errors import LLMError, LLMRefused, LLMUnavailable
from annotator.llm.config import LLMSettings, OutputMode
from annotator.llm.pricing import cost, price_for

Message = Mapping[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}
_MODES: tuple[OutputMode, ...] = ("json_schema", "json_object", "plain")
_SCHEMA_KEYWORDS = ("uniqueItems", "maxItems", "minItems", "maxLength", "minLength", "pattern")
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

    def __init__(self, message: str, retry_after: float | None = None, adapting: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.adapting = adapting


class RateGate:
    """Pacing shared by all workers of one endpoint.

    A 429 closes the gate for everyone until the server's Retry-After has passed and widens the
    gap between request starts; each success narrows it again a little (additive-increase,
    multiplicative-decrease, like TCP), so the pool settles just under the server's limit
    instead of each worker hammering it.
    """

    def __init__(self, requests_per_minute: float | None = None) -> None:
        self._floor = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self.interval = self._floor
        self._next = 0.0
        self._resume_at = 0.0
        self._lock = asyncio.Lock()
        self.throttled = 0

    async def acquire(self) -> None:
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next, self._resume_at)
            self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)

    def slow_down(self, retry_after: float | None) -> None:
        self.throttled += 1
        now = time.monotonic()
        self._resume_at = max(self._resume_at, now + (retry_after if retry_after is not None else 1.0))
        self.interval = min(max(self.interval * 1.25, 0.01), 60.0)

    def speed_up(self) -> None:
        self.interval = max(self._floor, self.interval * 0.98)


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

    def __init__(self, settings: LLMSettings, gate: RateGate | None = None) -> None:
        self.settings = settings
        self._secret = settings.api_key.get_secret_value() if settings.api_key else None
        self._client = openai.AsyncOpenAI(
            api_key=self._secret or "not-needed",  # local servers want some key, any key
            base_url=settings.base_url,
            max_retries=0,  # tenacity below is the one retry policy
            timeout=settings.timeout,
        )
        self.gate = gate or RateGate(settings.requests_per_minute)
        self.mode: OutputMode = "json_schema" if settings.output_mode == "auto" else settings.output_mode
        self._auto = settings.output_mode == "auto"
        self.dropped_keywords: set[str] = set(settings.drop_schema_keywords)
        self.dropped_params: set[str] = set() if settings.logprobs else {"logprobs"}
        self._price = price_for(settings.model, settings.prices)
        self.retries = 0

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.close()

    # ------------------------------------------------------------------ request bodies

    def _schema(self, schema: Mapping[str, Any], mode: OutputMode) -> dict[str, Any]:
        # json_object servers (llama-cpp-python) read a type list before an enum, so a nullable
        # enum would become "any string or null": there the enum alone says it (null included).
        enum_only = mode == "json_object"

        cap = self.settings.max_string_length

        def strip(node: Any) -> Any:
            if isinstance(node, dict):
                drop = set(self.dropped_keywords) | ({"type"} if enum_only and "enum" in node else set())
                out = {k: strip(v) for k, v in node.items() if k not in drop or k == "properties"}
                if cap and "maxLength" in out:
                    out["maxLength"] = min(out["maxLength"], cap)
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
        await self.gate.acquire()
        mode = self.mode
        try:
            raw = await self._client.chat.completions.create(**self.body(messages, schema, temperature=temperature,
                                                                        seed=seed, mode=mode))
        except openai.RateLimitError as exc:
            wait = _retry_after(exc.response)
            self.gate.slow_down(wait)
            raise _Retryable(f"429 rate limited by {self.settings.endpoint}", wait) from None
        except openai.BadRequestError as exc:
            if self._adapt(exc, mode):
                raise _Retryable("adapting to the endpoint", 0.0, adapting=True) from None
            raise LLMError(f"400 from {self.settings.endpoint}: {_safe(_error_text(exc), self._secret)}") from None
        except openai.APIStatusError as exc:
            status = exc.status_code
            if status >= 500 or status in (408, 409):
                raise _Retryable(f"{status} from {self.settings.endpoint}", _retry_after(exc.response)) from None
            hint = {401: "check OPENAI_API_KEY", 403: "the key may lack access to this model",
                    404: f"check the base URL and the model name {self.settings.model!r}"}.get(status, "")
            detail = _safe(_error_text(exc), self._secret)
            error = LLMRefused if status in (401, 403, 404) else LLMError
            raise error(f"{status} from {self.settings.endpoint}: {detail}" + (f" ({hint})" if hint else "")) from None
        except openai.APITimeoutError:
            raise _Retryable(f"timeout after {self.settings.timeout:g} s from {self.settings.endpoint}") from None
        except (openai.APIConnectionError, openai.APIResponseValidationError) as exc:
            raise _Retryable(f"connection to {self.settings.endpoint} failed: {type(exc).__name__}") from None
        self.gate.speed_up()
        return self.parse(raw.model_dump(), mode)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self.settings.backoff_cap) + random.uniform(0, 0.05)
        backoff = min(self.settings.backoff_cap, 0.5 * 2 ** (state.attempt_number - 1))
        return random.uniform(backoff / 2, backoff)  # jitter, so workers do not retry in step

    async def complete(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any],
        *,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> Completion:
        """One answer for `messages`; raises `LLMRefused` (every request will fail), `LLMUnavailable`
        (kept failing until the retries ran out) or `LLMError` (this request was refused)."""
        attempts = failures = 0

        def stop(state: RetryCallState) -> bool:  # adapting to the endpoint is not a failure
            return failures >= self.settings.max_attempts or state.attempt_number >= self.settings.max_attempts + 10

        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(lambda e: isinstance(e, _Retryable)), stop=stop, wait=self._wait, reraise=True,
            ):
                with attempt:
                    attempts += 1
                    try:
                        return await self._once(messages, schema, temperature, seed)
                    except _Retryable as exc:
                        failures += not exc.adapting
                        raise
        except _Retryable as exc:
            raise LLMUnavailable(f"gave up after {failures} attempts: {exc}") from None
        finally:
            self.retries += max(0, attempts - 1)
        raise AssertionError("unreachable")

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
