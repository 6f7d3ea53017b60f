"""What a call cost: a price table per model, in US dollars per million tokens.

The built-in table covers a few common models (list prices when written; check yours) and is
extended or overridden from `annotator.toml`:

    [llm.prices."my-model"]
    input = 0.15          # per million uncached input tokens
    cached_input = 0.075  # per million cached input tokens
    output = 0.60         # per million output tokens

A model missing from the table has an unknown cost (None), never a made-up zero; local models
cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float
    cached_input: float | None = None  # None: cached tokens cost as much as uncached ones
    output: float


BUILTIN_PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(input=0.15, cached_input=0.075, output=0.60),
    "gpt-4o": Price(input=2.50, cached_input=1.25, output=10.00),
    "gpt-4.1": Price(input=2.00, cached_input=0.50, output=8.00),
    "gpt-4.1-mini": Price(input=0.40, cached_input=0.10, output=1.60),
    "gpt-4.1-nano": Price(input=0.10, cached_input=0.025, output=0.40),
    "gpt-5-mini": Price(input=0.25, cached_input=0.025, output=2.00),
    "gpt-5-nano": Price(input=0.05, cached_input=0.005, output=0.40),
    "local": Price(input=0.0, cached_input=0.0, output=0.0),
}

BATCH_DISCOUNT = 0.5  # the Batch API bills half the list price


def price_for(model: str, table: Mapping[str, Price]) -> Price | None:
    """Exact name first, then the longest known prefix (dated snapshots like gpt-4o-mini-2024-07-18)."""
    if model in table:
        return table[model]
    prefixes = [name for name in table if model.startswith(name + "-")]
    return table[max(prefixes, key=len)] if prefixes else None


def cost(price: Price | None, input_tokens: int, cached_tokens: int, output_tokens: int, *, batch: bool = False) -> float | None:
    if price is None:
        return None
    cached_rate = price.input if price.cached_input is None else price.cached_input
    usd = ((input_tokens - cached_tokens) * price.input + cached_tokens * cached_rate + output_tokens * price.output) / 1e6
    return usd * (BATCH_DISCOUNT if batch else 1.0)
