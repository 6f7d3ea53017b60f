"""Fixtures for the local OpenAI-compatible test server (owned by the drafting work)."""
