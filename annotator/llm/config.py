"""Settings of the model endpoint: `annotator.toml` `[llm]` (read by `annotator.config`), then the environment, then arguments.

API keys come from the environment only (`OPENAI_API_KEY`); a key in the config file is refused,
so it never lands in a repository. The key is held as a `SecretStr`, which prints as stars.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from annotator.config import CONFIG_FILE
from annotator.errors import ConfigError
from annotator.llm.pricing import BUILTIN_PRICES, Price

OutputMode = Literal["json_schema", "json_object", "plain"]
DEFAULT_MODEL = "gpt-4o-mini"


# OpenAI's documented limits on one Batch API input file (MB read as the smaller of its two meanings).
BATCH_MAX_REQUESTS = 50_000
BATCH_MAX_BYTES = 200_000_000


class LLMSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = DEFAULT_MODEL
    base_url: str | None = None
    api_key: SecretStr | None = Field(default=None, repr=False)
    output_mode: Literal["auto", "json_schema", "json_object", "plain"] = "auto"
    timeout: float = 50.0  # seconds without an answer before a request counts as failed (timeout)
    dead_after_failures: int = 3  # requests in a row with no answer at all (refused, reset, timeout) ...
    dead_after_seconds: float = 10.0  # ... spanning at least this long: the endpoint is down, stop the run
    batch_max_requests: int = BATCH_MAX_REQUESTS
    batch_max_bytes: int = BATCH_MAX_BYTES
    heartbeat: float = 30.0  # say so when a request has waited this long, and every as long again
    max_attempts: int = 8  # per request, across 429s, 5xx, timeouts and dropped connections
    backoff_cap: float = 30.0  # seconds, the longest wait between two attempts
    requests_per_minute: float | None = None  # known limit: pace to it from the start
    max_tokens: int = 1024
    temperature: float = 0.0
    seed: int | None = 0
    logprobs: bool = True
    drop_schema_keywords: list[str] = Field(default_factory=list)  # JSON-schema keywords this endpoint cannot take
    # Lower every string's maxLength to this (grammar-constrained servers: a short bound keeps the
    # grammar small and the answer short; the model's value still validates against the taxonomy's).
    max_string_length: int | None = None
    max_items: int | None = None  # likewise every list's maxItems (a small model repeats a value until the cap)
    # Ask for the evidence quotes (the embedded model's were never found in the article and made its longest answers).
    evidence: bool = True
    # Send the taxonomy's rules on the primary field inside the schema (one alternative per value): a
    # grammar-constrained server then cannot break them (the embedded model; see taxonomy.rules_schema).
    rules_in_schema: bool = False
    system_in_user: bool = False  # for chat templates without a system role (Gemma): prepend it to the user turn
    # Threads for the embedded model's answer; None: chosen from the machine's load at start (llm.local.answer_threads).
    embedded_threads: int | None = Field(default=None, ge=1)
    prices: dict[str, Price] = Field(default_factory=lambda: dict(BUILTIN_PRICES))

    @property
    def endpoint(self) -> str:
        """Where requests go, for cache keys and messages (never includes the key)."""
        return self.base_url or "openai"


def load_settings(config: dict[str, Any] | None = None, **overrides: Any) -> LLMSettings:
    """Settings from the `[llm]` table, `OPENAI_BASE_URL`/`OPENAI_API_KEY`, then non-None overrides."""
    section = dict((config or {}).get("llm", {}))
    if any("key" in k.lower() for k in section if k != "prices"):
        raise ConfigError(f"{CONFIG_FILE}: [llm] must not hold API keys; set OPENAI_API_KEY in the environment")
    prices = dict(BUILTIN_PRICES)
    try:
        prices.update({name: Price.model_validate(p) for name, p in section.pop("prices", {}).items()})
    except ValidationError as exc:
        raise ConfigError(f"{CONFIG_FILE}: [llm.prices]: {exc.errors()[0]['msg']}") from None
    values: dict[str, Any] = {**section, "prices": prices}
    if os.environ.get("OPENAI_BASE_URL"):
        values["base_url"] = os.environ["OPENAI_BASE_URL"]
    if os.environ.get("OPENAI_API_KEY"):
        values["api_key"] = os.environ["OPENAI_API_KEY"]
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return LLMSettings.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{CONFIG_FILE} [llm] {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
