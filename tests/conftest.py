"""Shared fixtures live in their own modules, one per real part, and are loaded here."""

from __future__ import annotations

import pytest

pytest_plugins = ["fixtures_llm", "fixtures_labelstudio"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a test that uses the Label Studio server without `@pytest.mark.labelstudio`.

    `pytest -m "not labelstudio"` must leave out every test that would start the server; a
    missing marker would start it anyway (tens of seconds) or fail where no server can run.
    """
    unmarked = [item.nodeid for item in items
                if "labelstudio" in getattr(item, "fixturenames", ()) and item.get_closest_marker("labelstudio") is None]
    if unmarked:
        raise pytest.UsageError("tests that use the Label Studio server need @pytest.mark.labelstudio: " + ", ".join(unmarked))
