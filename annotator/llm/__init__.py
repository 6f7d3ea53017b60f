"""Talking to OpenAI-compatible endpoints. Nothing outside this package knows the wire format."""

from annotator.llm.client import ChatClient, Completion, RateGate, Usage, answer_json
from annotator.llm.config import LLMSettings, load_settings
from annotator.llm.pricing import Price, cost, price_for

__all__ = ["ChatClient", "Completion", "LLMSettings", "Price", "RateGate", "Usage", "answer_json", "cost", "load_settings",
           "price_for"]
