"""Fixtures for the real Label Studio server (owned by the Label Studio work)."""
