"""Shared fixtures live in their own modules, one per real part, and are loaded here."""

pytest_plugins = ["fixtures_llm", "fixtures_labelstudio"]
