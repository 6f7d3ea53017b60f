"""The LLM client against our OpenAI-compatible test server, through the real `openai` package."""

from __future__ import annotations

import asyncio
import time

import pytest
from fake_openai_server import FakeOpenAIServer
from fixtures_llm import FAKE_KEY

from annotator.errors import LLMRefused, LLMUnavailable
from annotator.llm import ChatClient, LLMSettings, Price, answer_json, cost, load_settings, price_for
from annotator.llm.client import RateGate
from annotator.taxonomy import draft_model, json_schema, load_taxonomy

TAX = load_taxonomy("oecd_aim")
SCHEMA = json_schema(TAX)


def settings(server: FakeOpenAIServer, **kw) -> LLMSettings:
    base = {"base_url": server.url, "api_key": FAKE_KEY, "model": "gpt-4o-mini", "backoff_cap": 0.5}
    return LLMSettings.model_validate({**base, **kw})


def ask(s: LLMSettings, n: int = 1, concurrency: int = 1):
    async def run():
        async with ChatClient(s) as client:
            sem = asyncio.Semaphore(concurrency)

            async def one(i: int):
                async with sem:
                    return await client.complete([{"role": "system", "content": "Label it."},
                                                  {"role": "user", "content": f"id: q{i}\nSome article {i}."}], SCHEMA)

            results = await asyncio.gather(*(one(i) for i in range(n)))
            return results, client

    return asyncio.run(run())


def test_answer_is_valid_and_priced(fake_openai):
    (c,), client = ask(settings(fake_openai))
    draft_model(TAX).model_validate_json(c.text)
    assert c.mode == "json_schema"
    assert c.usage.input_tokens > 0 and c.usage.output_tokens > 0
    assert c.usage.cost_usd == pytest.approx(cost(price_for("gpt-4o-mini", load_settings({}).prices),
                                                  c.usage.input_tokens, c.usage.cached_tokens, c.usage.output_tokens))


def test_unknown_model_has_unknown_cost_and_config_extends_the_table(fake_openai):
    (c,), _ = ask(settings(fake_openai, model="my-own-model"))
    assert c.usage.cost_usd is None
    s = load_settings({"llm": {"prices": {"my-own-model": {"input": 1.0, "output": 2.0}}}}, base_url=fake_openai.url,
                      model="my-own-model")
    assert s.prices["my-own-model"] == Price(input=1.0, output=2.0)
    assert price_for("gpt-4o-mini-2024-07-18", s.prices) == s.prices["gpt-4o-mini"]


@pytest.mark.parametrize("style,announced", [("seconds", 1.0), ("ms", 0.4)])
def test_429_waits_as_long_as_the_server_says(fake_openai, style, announced):
    fake_openai.faults.rate_limit_first = 1
    fake_openai.faults.retry_after = announced
    fake_openai.faults.retry_after_style = style
    t0 = time.monotonic()
    (c,), client = ask(settings(fake_openai, backoff_cap=5))
    elapsed = time.monotonic() - t0
    assert announced <= elapsed < announced + 1.0
    assert fake_openai.stats["counts"]["status:429"] == 1 and fake_openai.stats["answered"] == 1
    assert client.gate.throttled == 1


def test_5xx_and_dropped_connections_are_retried(fake_openai):
    fake_openai.faults.fail_first = 2
    fake_openai.faults.drop_first = 1
    (c,), client = ask(settings(fake_openai, backoff_cap=0.2))
    assert c.text
    assert fake_openai.stats["chat_requests"] == 4


def test_timeouts_are_retried_then_given_up(fake_openai):
    fake_openai.faults.latency = 1.0
    with pytest.raises(LLMUnavailable, match="gave up after 2 attempts: timeout"):
        ask(settings(fake_openai, timeout=0.3, max_attempts=2, backoff_cap=0.1))
    assert fake_openai.stats["chat_requests"] == 2  # retried once, then stopped: not one try, not endless


def test_wrong_key_fails_at_once_and_the_key_is_not_in_the_message(fake_openai):
    wrong = "sk-test-WRONG-KEY-0123456789"
    with pytest.raises(LLMRefused) as info:
        ask(settings(fake_openai, api_key=wrong))
    assert "401" in str(info.value) and "OPENAI_API_KEY" in str(info.value)
    assert wrong not in str(info.value) and "WRONG-KEY" not in str(info.value)
    assert fake_openai.stats["chat_requests"] == 1


def test_wrong_url_fails_at_once(fake_openai):
    with pytest.raises(LLMRefused, match="404"):
        ask(settings(fake_openai, base_url=fake_openai.url.removesuffix("/v1") + "/nope/v1"))


def test_endpoint_without_json_schema_gets_json_object_with_the_schema(fake_openai):
    fake_openai.faults.reject_json_schema = True
    fake_openai.faults.reject_keywords = ("uniqueItems",)
    (a, b), client = ask(settings(fake_openai), n=2)
    assert a.mode == b.mode == "json_object" and client.mode == "json_object"
    assert client.dropped_keywords == {"uniqueItems"}
    fmt = fake_openai.stats["last_request"]["response_format"]
    assert fmt["type"] == "json_object" and "uniqueItems" not in str(fmt["schema"]) and "maxItems" in str(fmt["schema"])
    draft_model(TAX).model_validate_json(b.text)
    # Learned once: the second answer needed no more 400s.
    assert fake_openai.stats["counts"]["status:400"] == 2


def test_plain_mode_sends_no_response_format(fake_openai):
    (c,), _ = ask(settings(fake_openai, output_mode="plain"))
    assert "response_format" not in fake_openai.stats["last_request"] and c.mode == "plain"


def test_logprobs_come_back_when_the_endpoint_has_them(fake_openai):
    fake_openai.faults.logprobs = False
    (c,), _ = ask(settings(fake_openai))
    assert c.logprobs is None
    fake_openai.faults.logprobs = True
    (c,), _ = ask(settings(fake_openai))
    assert c.logprobs and "".join(t for t, _ in c.logprobs) == c.text


@pytest.mark.slow
@pytest.mark.parametrize("headers", [True, False], ids=["limit-stated", "429s-only"])
def test_a_429_slows_every_worker(fake_openai, headers):
    """10 requests a second allowed, 8 workers: the shared gate keeps rejected requests few, whether
    the endpoint states its limit in x-ratelimit-* headers or only answers 429."""
    fake_openai.faults.rpm = 600
    fake_openai.faults.burst = 1
    fake_openai.faults.ratelimit_headers = headers
    t0 = time.monotonic()
    results, client = ask(settings(fake_openai, backoff_cap=2, max_attempts=20), n=30, concurrency=8)
    elapsed = time.monotonic() - t0
    stats = fake_openai.stats
    assert len(results) == 30 and stats["answered"] == 30
    assert elapsed >= 2.8  # the limit was respected: 30 requests at 10/s
    assert stats["counts"].get("status:429", 0) <= 30  # at most one rejection per answer, not a storm
    assert client.gate.throttled == stats["counts"]["status:429"] and client.gate.interval > 0  # one shared pace


def test_a_low_limit_stated_nowhere_costs_few_429s_from_the_start(fake_openai):
    """2 requests a second allowed, stated nowhere, 8 workers starting at once: the first 429 sets the
    pace to what the endpoint let through in the second before it, and later ones wait as long as the
    server says, so the run pays about one 429 for each worker that started too early, not a storm of
    them while the pace comes down (32 for 12 answers before)."""
    fake_openai.faults.rpm = 120
    fake_openai.faults.latency = 0.2
    fake_openai.faults.ratelimit_headers = False
    t0 = time.monotonic()
    results, client = ask(settings(fake_openai, backoff_cap=2, max_attempts=20), n=12, concurrency=8)
    elapsed = time.monotonic() - t0
    stats = fake_openai.stats
    assert len(results) == 12 and stats["answered"] == 12
    assert elapsed >= (12 - 2) / 2  # the limit was respected (2 a second, 2 in the bucket at the start)
    assert stats["counts"]["status:429"] <= 9  # the 6 of the first burst, and a few more at most


def test_the_pace_is_the_stated_limit_and_the_window_the_endpoints_time_not_a_slow_client():
    """3,000 a minute stated: paced at 97% of it; answers that took 6 s to reach a busy client while
    the endpoint spent 1 s on them do not open the window to 6 s worth of requests."""
    gate = RateGate(cap=512)
    gate.observe({"x-ratelimit-limit-requests": "3000"})
    assert gate.rate == pytest.approx(3000 / 60 * 0.97)
    for _ in range(20):
        gate.speed_up(6.0, processing=1.0)
    assert gate.limit <= 1.5 * gate.rate * 1.2 + 5  # Little's law on the endpoint's time, not 400+
    assert gate.rate == pytest.approx(3000 / 60 * 0.97)  # answers do not raise it past the stated limit


def test_an_answer_with_a_raw_line_break_in_a_string_still_parses():
    # What the embedded Gemma 3 270M wrote for 7 of the 26 samples (the string ends with a raw newline).
    text = '{"classification": "AI incident", "rationale": "damage to property.\n" ,"severity": "AI incident"}'
    assert answer_json(text) == {"classification": "AI incident", "rationale": "damage to property.\n", "severity": "AI incident"}
    with pytest.raises(ValueError):
        answer_json('{"rationale": "cut off')


def test_each_request_carries_its_own_schema_however_short_lived(fake_openai):
    """Two-step drafting builds a schema per request; one freed after its request may leave its
    memory address to the next one's, which must still be sent as it is, not as the first was."""
    async def run():
        sent = []
        async with ChatClient(settings(fake_openai)) as client:
            for i in range(100):  # more than the client keeps: old entries go, none goes stale
                schema: dict = {}  # allocated first: it may well take the last one's address
                schema.update(type="object", properties={f"field_{i}": {"type": "string"}},
                              required=[f"field_{i}"], additionalProperties=False)
                await client.complete([{"role": "user", "content": f"id: s{i}\nText {i}."}], schema)
                sent.append(list(fake_openai.stats["last_request"]["response_format"]["json_schema"]["schema"]["properties"]))
                del schema
        return sent

    assert asyncio.run(run()) == [[f"field_{i}"] for i in range(100)]
