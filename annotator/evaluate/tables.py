"""Figures and Markdown tables as both parts of the eval report print them, so they read alike."""

from __future__ import annotations

from collections.abc import Sequence


def fmt(value: float | None, ci: Sequence[float | None] | None = None, digits: int = 3) -> str:
    """`0.830 [0.800, 0.860]`, or `–` where a metric is undefined."""
    if value is None:
        return "–"
    if ci and ci[0] is not None and ci[1] is not None:
        return f"{value:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return f"{value:.{digits}f}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows])
